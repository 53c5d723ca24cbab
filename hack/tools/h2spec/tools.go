//go:build tools

// Package tools pins the h2spec command for `make h2spec`.
package tools

import _ "github.com/summerwind/h2spec/cmd/h2spec"
