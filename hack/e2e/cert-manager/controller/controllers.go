package main

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/go-logr/logr"

	config "github.com/cert-manager/cert-manager/internal/apis/config/controller"
	cmcontroller "github.com/cert-manager/cert-manager/pkg/controller"
	crapprover "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/approver"
	crca "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/ca"
	crselfsigned "github.com/cert-manager/cert-manager/pkg/controller/certificaterequests/selfsigned"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/issuing"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/keymanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/readiness"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/requestmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/revisionmanager"
	"github.com/cert-manager/cert-manager/pkg/controller/certificates/trigger"
	"github.com/cert-manager/cert-manager/pkg/controller/clusterissuers"
	"github.com/cert-manager/cert-manager/pkg/controller/issuers"

	// The issuers register themselves (from init) in the registry where
	// the Issuer controllers and the CertificateRequest signers look them up.
	_ "github.com/cert-manager/cert-manager/pkg/issuer/ca"
	_ "github.com/cert-manager/cert-manager/pkg/issuer/selfsigned"
)

// controllers are the ones this build runs. Each name comes from its
// package, whose init registers the constructor: naming it links it in.
// Left out: ACME, Vault and Venafi, the Ingress and Gateway shims, and the
// CertificateSigningRequest controllers (an alpha feature gate).
var controllers = []string{
	trigger.ControllerName,
	keymanager.ControllerName,
	requestmanager.ControllerName,
	issuing.ControllerName,
	readiness.ControllerName,
	revisionmanager.ControllerName,
	crapprover.ControllerName,
	crselfsigned.CRControllerName,
	crca.CRControllerName,
	issuers.ControllerName,
	clusterissuers.ControllerName,
}

// runControllers builds the controllers over shared informers and runs them
// until ctx ends or one of them fails, which stops the others: a pipeline
// with a stage missing would leave Certificates unissued without a word.
func runControllers(ctx context.Context, log logr.Logger, c *config.ControllerConfiguration) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	factory, err := cmcontroller.NewContextFactory(ctx, cmcontroller.ContextOptions{
		APIServerHost:      c.APIServerHost,
		Kubeconfig:         c.KubeConfig,
		KubernetesAPIQPS:   c.KubernetesAPIQPS,
		KubernetesAPIBurst: c.KubernetesAPIBurst,
		Namespace:          c.Namespace,
		IssuerOptions: cmcontroller.IssuerOptions{
			ClusterResourceNamespace:        c.ClusterResourceNamespace,
			IssuerAmbientCredentials:        c.IssuerAmbientCredentials,
			ClusterIssuerAmbientCredentials: c.ClusterIssuerAmbientCredentials,
		},
		CertificateOptions: cmcontroller.CertificateOptions{
			EnableOwnerRef:                           c.EnableCertificateOwnerRef,
			CopiedAnnotationPrefixes:                 c.CopiedAnnotationPrefixes,
			CertificateRequestMinimumBackoffDuration: c.CertificateRequestMinimumBackoffDuration,
			CertificateRequestMaximumBackoffDuration: c.CertificateRequestMaximumBackoffDuration,
		},
	})
	if err != nil {
		return fmt.Errorf("creating cert-manager's controller context: %w", err)
	}
	known := cmcontroller.Known()
	built := make(map[string]cmcontroller.Interface, len(controllers))
	// Every controller must be built before the informers start: building
	// one registers the informers it needs.
	for _, name := range controllers {
		newController, ok := known[name]
		if !ok {
			return fmt.Errorf("controller %s is not registered in this cert-manager version", name)
		}
		if built[name], err = newController(factory); err != nil {
			return fmt.Errorf("building controller %s: %w", name, err)
		}
	}
	base, err := factory.Build()
	if err != nil {
		return fmt.Errorf("building cert-manager's controller context: %w", err)
	}
	base.SharedInformerFactory.Start(ctx.Done())
	base.KubeSharedInformerFactory.Start(ctx.Done())
	base.HTTP01ResourceMetadataInformersFactory.Start(ctx.Done())

	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
	)
	for name, ctrl := range built {
		log.Info("starting controller", "controller", name)
		wg.Go(func() {
			if err := ctrl.Run(c.NumberOfConcurrentWorkers, ctx); err != nil && ctx.Err() == nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("controller %s: %w", name, err))
				mu.Unlock()
				cancel()
			}
		})
	}
	<-ctx.Done()
	wg.Wait()
	base.SharedInformerFactory.Shutdown()
	base.KubeSharedInformerFactory.Shutdown()
	base.HTTP01ResourceMetadataInformersFactory.Shutdown()
	return errors.Join(errs...)
}
