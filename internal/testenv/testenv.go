// Package testenv starts a real control plane (etcd + kube-apiserver, via
// controller-runtime's envtest) for the operator's integration tests. There
// is no kube-controller-manager: nothing garbage-collects owned objects and
// no namespace is ever finalized, so tests clean up explicitly.
package testenv

import (
	"bytes"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
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
	// certDir is the kube-apiserver's certificate directory, owned by us
	// (see Start) and removed by Stop.
	certDir string
	// apiMu serialises StopAPIServer, StartAPIServer and Stop.
	apiMu sync.Mutex
	// apiDown is set while the API server is stopped by StopAPIServer.
	apiDown bool
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

	// The API server's certificate directory is ours rather than envtest's:
	// envtest deletes a directory it created when the API server stops and
	// makes new serving and signing keys on the next start, so a restarted
	// API server would no longer match the CA in Config nor accept the
	// service-account tokens it issued. With our own directory a restart
	// reuses the same serving certificate, client CA and signing key, and
	// the port stays the one envtest picked, so clients reconnect unchanged.
	certDir, err := os.MkdirTemp("", "testenv-apiserver-")
	if err != nil {
		return nil, fmt.Errorf("creating the API server's certificate directory: %w", err)
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
	te.ControlPlane.GetAPIServer().CertDir = certDir
	cfg, err := te.Start()
	if err != nil {
		// Start may fail after launching processes (e.g. a bad CRD): stop
		// them so a failed suite leaves no etcd or apiserver behind.
		return nil, errors.Join(fmt.Errorf("starting envtest: %w", err), stopEnv(te, certDir))
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, errors.Join(fmt.Errorf("creating client: %w", err), stopEnv(te, certDir))
	}
	return &Env{Config: cfg, Scheme: scheme, Client: c, env: te, certDir: certDir}, nil
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
	e.apiMu.Lock()
	defer e.apiMu.Unlock()
	return stopEnv(e.env, e.certDir)
}

func stopEnv(te *envtest.Environment, certDir string) error {
	var errs []error
	if err := te.Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stopping envtest: %w", err))
	}
	if err := os.RemoveAll(certDir); err != nil {
		errs = append(errs, fmt.Errorf("removing the API server's certificate directory: %w", err))
	}
	return errors.Join(errs...)
}

// StopAPIServer kills kube-apiserver and leaves etcd running, as when an
// API server crashes or its node dies: every client's connections are
// reset and its requests fail until StartAPIServer brings it back.
//
// It kills (SIGKILL) rather than asking politely: with clients watching,
// a SIGTERMed kube-apiserver waits its full shutdown timeout (60s) for the
// watch streams to end, which is what envtest's own Stop would do.
func (e *Env) StopAPIServer() error {
	e.apiMu.Lock()
	defer e.apiMu.Unlock()
	if e.apiDown {
		return errors.New("testenv: the API server is already stopped")
	}
	pid, err := e.apiServerPID()
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return fmt.Errorf("killing kube-apiserver (pid %d): %w", pid, err)
	}
	// envtest reaps the process; once it has, its Stop sees the exit and
	// forgets the process instead of signalling it (a Stop racing the reap
	// fails with ESRCH, hence the retries).
	deadline := time.Now().Add(controlPlaneStopTimeout)
	for {
		err := e.env.ControlPlane.APIServer.Stop()
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stopping kube-apiserver: %w", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	e.apiDown = true
	return nil
}

// apiServerPID finds this Env's kube-apiserver by its --cert-dir, a
// directory only this Env uses; envtest does not expose the process.
func (e *Env) apiServerPID() (int, error) {
	want := []byte("--cert-dir=" + e.certDir + "\x00")
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, fmt.Errorf("listing processes: %w", err)
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && bytes.Contains(cmdline, want) {
			return pid, nil
		}
	}
	return 0, fmt.Errorf("testenv: no kube-apiserver process with --cert-dir=%s", e.certDir)
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the
// same address with the same certificates (see Start), and waits until it
// is healthy. Config and every client made from it keep working.
func (e *Env) StartAPIServer() error {
	e.apiMu.Lock()
	defer e.apiMu.Unlock()
	if !e.apiDown {
		return errors.New("testenv: the API server is not stopped")
	}
	api := e.env.ControlPlane.APIServer
	if err := api.Start(); err != nil {
		return fmt.Errorf("restarting kube-apiserver: %w", err)
	}
	e.apiDown = false
	host := api.SecureServing.URL("https", "").Host
	if u, err := url.Parse(e.Config.Host); err != nil || u.Host != host {
		return fmt.Errorf("testenv: kube-apiserver came back on %s, clients use %s", host, e.Config.Host)
	}
	return nil
}

// RestartAPIServer kills kube-apiserver, waits down (clients see refused
// connections meanwhile), and starts it again; etcd and its data stay.
func (e *Env) RestartAPIServer(down time.Duration) error {
	if err := e.StopAPIServer(); err != nil {
		return err
	}
	time.Sleep(down)
	return e.StartAPIServer()
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
