package render

import "flag"

// update makes golden-file tests rewrite their expected output instead of
// comparing against it: go test ./internal/render/ -update
var update = flag.Bool("update", false, "rewrite golden files")
