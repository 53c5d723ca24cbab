// Package testenv starts a real control plane (etcd + kube-apiserver, via
// controller-runtime's envtest) for the operator's integration tests. There
// is no kube-controller-manager: nothing garbage-collects owned objects and
// no namespace is ever finalized, so tests clean up explicitly.
package testenv

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// Timeouts sized for a loaded 2-core machine: a cold kube-apiserver can take
// well over envtest's 20s default to become healthy when other compiles run.
const (
	controlPlaneStartTimeout = 2 * time.Minute
	controlPlaneStopTimeout  = time.Minute
	crdEstablishTimeout      = time.Minute
)

// Options selects what is installed into the control plane.
type Options struct {
	// CRDDirectoryPaths are directories or files of CRD manifests; relative
	// paths are resolved from the repository root. A missing path is an error.
	CRDDirectoryPaths []string
	// CertManagerCRDs installs cert-manager's CRDs (cert-manager.io and
	// acme.cert-manager.io) from the pinned cert-manager module.
	CertManagerCRDs bool
	// AddToScheme adds the caller's API types (e.g. our v1alpha1) to Scheme.
	AddToScheme []func(*runtime.Scheme) error
}

// Env is a running control plane and a client for it.
type Env struct {
	// Config authenticates as a system:masters user.
	Config *rest.Config
	// Scheme holds client-go's types, apiextensions/v1, cert-manager.io/v1
	// and whatever Options.AddToScheme added.
	Scheme *runtime.Scheme
	// Client talks to the API server directly (no cache), so a test reads
	// its own writes.
	Client client.Client

	env *envtest.Environment
}

// Start builds the scheme, starts etcd and kube-apiserver, installs the
// requested CRDs and waits until they are established.
func Start(opts Options) (*Env, error) {
	scheme, err := newScheme(opts.AddToScheme)
	if err != nil {
		return nil, err
	}
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	paths := make([]string, 0, len(opts.CRDDirectoryPaths)+1)
	for _, p := range opts.CRDDirectoryPaths {
		if !filepath.IsAbs(p) {
			p = filepath.Join(root, p)
		}
		// envtest checks paths only after the control plane is up; checking
		// first turns a typo into an instant error instead of a slow one.
		if _, err := os.Stat(p); err != nil {
			return nil, fmt.Errorf("CRD path: %w", err)
		}
		paths = append(paths, p)
	}
	if opts.CertManagerCRDs {
		dir, err := CertManagerCRDDir(root)
		if err != nil {
			return nil, err
		}
		paths = append(paths, dir)
	}
	assets, err := AssetsDir(root)
	if err != nil {
		return nil, err
	}

	te := &envtest.Environment{
		Scheme:                   scheme,
		BinaryAssetsDirectory:    assets,
		CRDDirectoryPaths:        paths,
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: controlPlaneStartTimeout,
		ControlPlaneStopTimeout:  controlPlaneStopTimeout,
		CRDInstallOptions:        envtest.CRDInstallOptions{MaxTime: crdEstablishTimeout},
	}
	cfg, err := te.Start()
	if err != nil {
		// Start may fail after launching processes (e.g. a bad CRD): stop
		// them so a failed suite leaves no etcd or apiserver behind.
		return nil, errors.Join(fmt.Errorf("starting envtest: %w", err), stopEnv(te))
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating client: %w", err), stopEnv(te))
	}
	return &Env{Config: cfg, Scheme: scheme, Client: c, env: te}, nil
}

// New is Start for a test: it fails the test when the control plane cannot
// start and stops it when the test and its subtests finish.
func New(t testing.TB, opts Options) *Env {
	t.Helper()
	e, err := Start(opts)
	if err != nil {
		t.Fatalf("testenv: %v", err)
	}
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("testenv: %v", err)
		}
	})
	return e
}

// Stop stops kube-apiserver and etcd and removes their data directories.
func (e *Env) Stop() error {
	return stopEnv(e.env)
}

func stopEnv(te *envtest.Environment) error {
	if err := te.Stop(); err != nil {
		return fmt.Errorf("stopping envtest: %w", err)
	}
	return nil
}

func newScheme(extra []func(*runtime.Scheme) error) (*runtime.Scheme, error) {
	s := runtime.NewScheme()
	adders := append([]func(*runtime.Scheme) error{
		clientgoscheme.AddToScheme,
		apiextensionsv1.AddToScheme,
		cmapi.AddToScheme,
	}, extra...)
	for _, add := range adders {
		if err := add(s); err != nil {
			return nil, fmt.Errorf("building scheme: %w", err)
		}
	}
	return s, nil
}
