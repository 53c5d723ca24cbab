//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	coordinationv1 "k8s.io/api/coordination/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// leaseName is the manager's leader-election Lease (main.go).
const leaseName = "manager.popconnect.io"

// TestManagerFailsOverWhenTheLeaderPodIsDeleted: of the chart's two manager
// replicas one holds the Lease; deleting its pod hands the Lease to another
// pod, and the Deployment is back to two ready replicas.
func TestManagerFailsOverWhenTheLeaderPodIsDeleted(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	deployment := releaseName + "-controller-manager"
	if err := cl.waitDeploymentAvailable(ctx, deployment); err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
	holder := func() (string, error) {
		var l coordinationv1.Lease
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: leaseName}, &l); err != nil {
			return "", err
		}
		if l.Spec.HolderIdentity == nil {
			return "", nil
		}
		// controller-runtime's identity is <hostname>_<uuid>; the hostname
		// is the pod's name.
		pod, _, _ := strings.Cut(*l.Spec.HolderIdentity, "_")
		return pod, nil
	}
	var leader string
	if err := poll(ctx, time.Minute, func() (bool, string, error) {
		var err error
		leader, err = holder()
		return err == nil && leader != "", fmt.Sprintf("lease %s: holder %q, %v", leaseName, leader, err), nil
	}); err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
	if err := cl.client.Delete(ctx, &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Name: leader, Namespace: systemNamespace}}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := poll(ctx, 2*time.Minute, func() (bool, string, error) {
		now, err := holder()
		if err != nil {
			return false, err.Error(), nil
		}
		return now != "" && now != leader, fmt.Sprintf("lease still held by %q (deleted %s)", now, leader), nil
	}); err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
	t.Logf("the lease moved from %s after %s", leader, time.Since(start).Round(time.Millisecond))
	if err := cl.waitDeploymentAvailable(ctx, deployment); err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
}
