package render

import (
	"flag"
	"os"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// update makes golden-file tests rewrite their expected output instead of
// comparing against it: go test ./internal/render/ -update
var update = flag.Bool("update", false, "rewrite golden files")

// checkGolden compares got with the golden file at path, or rewrites the
// file with -update.
func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run with -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; run with -update to accept):\n%s", path, diff)
	}
}
