package cmrunner_test

import (
	"testing"

	"github.com/go-logr/logr"
	"github.com/go-logr/logr/testr"
)

// testLogger shows cert-manager's errors and warnings in the test output
// (logs/ErrorLevel 0, WarnLevel 1); its Info (2) and Debug (4) are noise.
// The runner is stopped in t.Cleanup, so nothing logs after the test ends.
func testLogger(t *testing.T) logr.Logger {
	return testr.NewWithOptions(t, testr.Options{Verbosity: 1})
}
