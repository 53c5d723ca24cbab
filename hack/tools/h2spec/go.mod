// The h2spec HTTP/2 conformance suite, pinned with its dependencies for
// `make h2spec` (h2spec has no go.mod of its own, so `go install ...@version`
// would take the newest of each dependency). A module of its own, so that
// the project's go.mod does not carry a test tool's dependencies.
module github.com/popconnect/popconnect/hack/tools/h2spec

go 1.26.0

require github.com/summerwind/h2spec v2.2.1+incompatible

require (
	github.com/fatih/color v1.19.0 // indirect
	github.com/inconshreveable/mousetrap v1.1.0 // indirect
	github.com/mattn/go-colorable v0.1.14 // indirect
	github.com/mattn/go-isatty v0.0.20 // indirect
	github.com/spf13/cobra v1.10.2 // indirect
	github.com/spf13/pflag v1.0.9 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
)
