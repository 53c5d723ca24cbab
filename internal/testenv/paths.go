package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

const (
	// assetsEnv is the variable envtest itself reads; when a user or the
	// Makefile sets it, it wins over our own lookup.
	assetsEnv = "KUBEBUILDER_ASSETS"
	// certManagerCRDsEnv lets CI point at a vendored or unpacked copy of
	// cert-manager's CRDs instead of the module cache.
	certManagerCRDsEnv = "CERT_MANAGER_CRDS_DIR"
	certManagerModule  = "github.com/cert-manager/cert-manager"
	binariesScript     = "hack/envtest-binaries.sh"
)

// RepoRoot returns the directory holding go.mod, found by walking up from
// the working directory. Tests run with the package directory as working
// directory, so relative paths such as config/crd/bases are resolved from
// here rather than from wherever `go test` happened to be started.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("getting working directory: %w", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod found in the working directory or any parent")
		}
		dir = parent
	}
}

// AssetsDir returns the directory holding the kube-apiserver and etcd
// binaries: $KUBEBUILDER_ASSETS when set, otherwise the cache that
// hack/envtest-binaries.sh fills.
func AssetsDir(root string) (string, error) {
	if dir := os.Getenv(assetsEnv); dir != "" {
		if err := checkAssets(dir); err != nil {
			return "", fmt.Errorf("%s=%s: %w", assetsEnv, dir, err)
		}
		return dir, nil
	}
	// --print only computes the path; it never builds, so this is cheap and
	// keeps the cache location defined in one place (the script).
	out, err := run(root, "bash", binariesScript, "--print")
	if err != nil {
		return "", fmt.Errorf("locating envtest binaries (run `make envtest`): %w", err)
	}
	if err := checkAssets(out); err != nil {
		return "", fmt.Errorf("envtest binaries missing in %s (run `make envtest` to build them): %w", out, err)
	}
	return out, nil
}

func checkAssets(dir string) error {
	for _, bin := range []string{"kube-apiserver", "etcd"} {
		fi, err := os.Stat(filepath.Join(dir, bin))
		if err != nil {
			return fmt.Errorf("%s: %w", bin, err)
		}
		if fi.IsDir() || fi.Mode()&0o111 == 0 {
			return fmt.Errorf("%s is not an executable file", bin)
		}
	}
	return nil
}

// CertManagerCRDDir returns the directory with cert-manager's CRD manifests:
// $CERT_MANAGER_CRDS_DIR when set, otherwise deploy/crds inside the
// cert-manager module that go.mod pins, so the CRDs always match the Go
// types and controllers we compile against.
func CertManagerCRDDir(root string) (string, error) {
	if dir := os.Getenv(certManagerCRDsEnv); dir != "" {
		return dir, nil
	}
	modDir, err := run(root, "go", "list", "-m", "-f", "{{.Dir}}", certManagerModule)
	if err != nil {
		return "", fmt.Errorf("locating the %s module: %w", certManagerModule, err)
	}
	if modDir == "" {
		return "", fmt.Errorf("module %s is not in the module cache (run `go mod download %s`)", certManagerModule, certManagerModule)
	}
	dir := filepath.Join(modDir, "deploy", "crds")
	if _, err := os.Stat(dir); err != nil {
		return "", fmt.Errorf("cert-manager CRDs: %w", err)
	}
	return dir, nil
}

// run executes a command in dir and returns its trimmed stdout; stderr is
// folded into the error so failures explain themselves.
func run(dir, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	cmd.Stdout = &stdout
	cmd.Stderr = &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}
