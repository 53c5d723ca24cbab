package cmrunner

import (
	"fmt"
	"os"
	"path/filepath"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

// writeKubeconfig writes cfg as a kubeconfig file in a new temporary
// directory and returns its path and a function removing it.
//
// cert-manager's controller.NewContextFactory accepts no *rest.Config: it
// loads one from ContextOptions.Kubeconfig (or in-cluster config when that is
// empty). A kubeconfig file is the only way in, and it is read once, inside
// NewContextFactory, so the file can be removed as soon as that returns.
func writeKubeconfig(cfg *rest.Config) (path string, cleanup func(), err error) {
	kc, err := kubeconfigFor(cfg)
	if err != nil {
		return "", nil, err
	}
	dir, err := os.MkdirTemp("", "cmrunner-kubeconfig-")
	if err != nil {
		return "", nil, fmt.Errorf("creating kubeconfig directory: %w", err)
	}
	cleanup = func() { _ = os.RemoveAll(dir) }
	path = filepath.Join(dir, "kubeconfig")
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		cleanup()
		return "", nil, fmt.Errorf("writing kubeconfig: %w", err)
	}
	return path, cleanup, nil
}

// kubeconfigFor converts the parts of a rest.Config that a kubeconfig can
// hold: server, TLS material (inline or as files), bearer token and basic
// auth. That covers envtest (client certificates) and ordinary kubeconfigs.
// Exec plugins, proxy functions and custom transports cannot be expressed and are rejected
// rather than silently dropped.
func kubeconfigFor(cfg *rest.Config) (*clientcmdapi.Config, error) {
	if cfg.WrapTransport != nil || cfg.Transport != nil || cfg.ExecProvider != nil || cfg.AuthProvider != nil || cfg.Proxy != nil {
		return nil, fmt.Errorf("rest.Config uses a custom transport, proxy function or auth plugin, which cannot be passed to cert-manager through a kubeconfig")
	}
	cluster := &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthority:     cfg.CAFile,
		CertificateAuthorityData: cfg.CAData,
		InsecureSkipTLSVerify:    cfg.Insecure,
		TLSServerName:            cfg.ServerName,
	}
	user := &clientcmdapi.AuthInfo{
		ClientCertificate:     cfg.CertFile,
		ClientCertificateData: cfg.CertData,
		ClientKey:             cfg.KeyFile,
		ClientKeyData:         cfg.KeyData,
		Token:                 cfg.BearerToken,
		TokenFile:             cfg.BearerTokenFile,
		Impersonate:           cfg.Impersonate.UserName,
		ImpersonateUID:        cfg.Impersonate.UID,
		ImpersonateGroups:     cfg.Impersonate.Groups,
		ImpersonateUserExtra:  cfg.Impersonate.Extra,
		Username:              cfg.Username,
		Password:              cfg.Password,
	}
	const name = "cmrunner"
	kc := clientcmdapi.NewConfig()
	kc.Clusters[name] = cluster
	kc.AuthInfos[name] = user
	kc.Contexts[name] = &clientcmdapi.Context{Cluster: name, AuthInfo: name}
	kc.CurrentContext = name
	return kc, nil
}
