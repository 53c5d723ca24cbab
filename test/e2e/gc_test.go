//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"testing"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
)

// TestDeletedGatewaysChildrenAreCollected: a second gateway (the sample's
// spec under another name) gets its Deployment, Service, ServiceAccount and
// serving Certificate; deleting it removes them all, through owner
// references and kube-controller-manager's garbage collector.
func TestDeletedGatewaysChildrenAreCollected(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	var sample popv1.PopulationGateway
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &sample); err != nil {
		t.Fatal(err)
	}
	gw := &popv1.PopulationGateway{
		ObjectMeta: metav1.ObjectMeta{Name: "gc-check", Namespace: systemNamespace},
		Spec:       *sample.Spec.DeepCopy(),
	}
	gw.Spec.ServerCertificate.DNSNames = []string{"gc-check.popconnect-system.svc"}
	if err := cl.client.Create(ctx, gw); err != nil {
		t.Fatal(err)
	}
	names := render.NamesFor(gw)
	children := []client.Object{
		&appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Name: names.Deployment}},
		&corev1.Service{ObjectMeta: metav1.ObjectMeta{Name: names.Service}},
		&corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: names.ServiceAccount}},
		&cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Name: names.ServingCertificate}},
	}
	// count returns how many of the children exist.
	count := func() (int, string, error) {
		n, missing := 0, ""
		for _, obj := range children {
			err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: obj.GetName()}, obj)
			switch {
			case err == nil:
				n++
			case apierrors.IsNotFound(err):
				missing += fmt.Sprintf(" %T %s", obj, obj.GetName())
			default:
				return 0, "", err
			}
		}
		return n, missing, nil
	}
	if err := poll(ctx, installTimeout, func() (bool, string, error) {
		n, missing, err := count()
		return n == len(children), "missing:" + missing, err
	}); err != nil {
		cl.dump(t)
		t.Fatalf("children of gateway gc-check: %v", err)
	}
	if err := cl.client.Delete(ctx, gw); err != nil {
		t.Fatal(err)
	}
	if err := poll(ctx, installTimeout, func() (bool, string, error) {
		n, _, err := count()
		return n == 0, fmt.Sprintf("%d of %d children still there", n, len(children)), err
	}); err != nil {
		cl.dump(t)
		t.Fatalf("after deleting gateway gc-check: %v", err)
	}
}
