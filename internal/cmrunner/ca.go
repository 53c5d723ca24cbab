package cmrunner

import (
	"context"
	"fmt"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	cmmeta "github.com/cert-manager/cert-manager/pkg/apis/meta/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

const (
	// caReadyTimeout bounds BootstrapCA: two issuances and two issuer
	// checks take a few seconds, but a loaded CI machine is slow.
	caReadyTimeout = 2 * time.Minute
	caPollInterval = 200 * time.Millisecond
	caDuration     = 10 * 365 * 24 * time.Hour
)

// CA names the objects BootstrapCA creates.
type CA struct {
	// Name is the CA ClusterIssuer, and also the CA Certificate and its
	// Secret in Namespace.
	Name string
	// Namespace must be the runner's ClusterResourceNamespace: a
	// ClusterIssuer reads its CA Secret from there. Default "cert-manager".
	Namespace string
}

// SelfSignedIssuerName is the self-signed ClusterIssuer that signs the CA.
func (ca CA) SelfSignedIssuerName() string { return ca.Name + "-selfsigned" }

// BootstrapCA creates the chain a real cluster uses: a self-signed
// ClusterIssuer, a CA Certificate (isCA, ECDSA P-256) it signs into a Secret
// in the cluster resource namespace, and a CA ClusterIssuer over that
// Secret. It waits (at most 2 minutes, or until ctx ends) until the CA
// ClusterIssuer is Ready. Objects that already exist are kept, so calling it
// again is harmless. The cert-manager controllers (Start) must be running.
func BootstrapCA(ctx context.Context, c client.Client, ca CA) error {
	if ca.Name == "" {
		return fmt.Errorf("bootstrap CA: name is required")
	}
	if ca.Namespace == "" {
		ca.Namespace = DefaultClusterResourceNamespace
	}
	objs := []client.Object{
		&cmapi.ClusterIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: ca.SelfSignedIssuerName()},
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{
				SelfSigned: &cmapi.SelfSignedIssuer{},
			}},
		},
		&cmapi.Certificate{
			ObjectMeta: metav1.ObjectMeta{Name: ca.Name, Namespace: ca.Namespace},
			Spec: cmapi.CertificateSpec{
				IsCA:       true,
				CommonName: ca.Name,
				SecretName: ca.Name,
				Duration:   &metav1.Duration{Duration: caDuration},
				PrivateKey: &cmapi.CertificatePrivateKey{
					Algorithm: cmapi.ECDSAKeyAlgorithm,
					Size:      256,
				},
				IssuerRef: cmmeta.IssuerReference{
					Name:  ca.SelfSignedIssuerName(),
					Kind:  cmapi.ClusterIssuerKind,
					Group: cmapi.SchemeGroupVersion.Group,
				},
			},
		},
		&cmapi.ClusterIssuer{
			ObjectMeta: metav1.ObjectMeta{Name: ca.Name},
			Spec: cmapi.IssuerSpec{IssuerConfig: cmapi.IssuerConfig{
				CA: &cmapi.CAIssuer{SecretName: ca.Name},
			}},
		},
	}
	for _, obj := range objs {
		if err := c.Create(ctx, obj); err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("bootstrap CA: creating %T %s: %w", obj, obj.GetName(), err)
		}
	}
	return waitIssuerReady(ctx, c, ca.Name)
}

// waitIssuerReady polls until the ClusterIssuer reports Ready=True for its
// current generation. The CA issuer stays not-Ready until the CA Secret
// exists, so this also waits for the CA Certificate to be issued.
func waitIssuerReady(ctx context.Context, c client.Client, name string) error {
	var last *cmapi.IssuerCondition
	err := wait.PollUntilContextTimeout(ctx, caPollInterval, caReadyTimeout, true, func(ctx context.Context) (bool, error) {
		var iss cmapi.ClusterIssuer
		if err := c.Get(ctx, client.ObjectKey{Name: name}, &iss); err != nil {
			return false, fmt.Errorf("getting ClusterIssuer %s: %w", name, err)
		}
		for i, cond := range iss.Status.Conditions {
			if cond.Type == cmapi.IssuerConditionReady {
				last = &iss.Status.Conditions[i]
				return cond.Status == cmmeta.ConditionTrue && cond.ObservedGeneration == iss.Generation, nil
			}
		}
		return false, nil
	})
	if err != nil {
		if last != nil {
			return fmt.Errorf("bootstrap CA: ClusterIssuer %s not Ready (%s: %s): %w", name, last.Reason, last.Message, err)
		}
		return fmt.Errorf("bootstrap CA: ClusterIssuer %s not Ready: %w", name, err)
	}
	return nil
}
