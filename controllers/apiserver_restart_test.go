package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// apiServerDown is how long the API server stays stopped: longer than
// client-go's first retries (so informers really lose their watches and
// reconciles really fail), short enough for a quick test.
const apiServerDown = 3 * time.Second

// TestAPIServerRestart: the kube-apiserver is stopped while the suite's
// manager (and cert-manager) are in the middle of reconciling new
// connections, and started again with etcd untouched. Without restarting
// the manager, every connection made before the outage and every one made
// after it becomes Ready (certificate issued, network policy written,
// programmed into the gateway's shards), each with exactly one Certificate.
// It fails if a reconciler gives up after an error, an informer does not
// re-establish its watch, or a failed write is never retried.
func TestAPIServerRestart(t *testing.T) {
	const before, after = 20, 10
	ctx := context.Background()
	f := newFixture(t, "apirestart")
	suffix := strings.ToUpper(f.ns[strings.LastIndex(f.ns, "-")+1:])
	newConn := func(i int) *popv1.AgencyConnection {
		conn := &popv1.AgencyConnection{}
		readSample(t, sampleConnections[3], conn)
		conn.Namespace = f.ns
		conn.Name = fmt.Sprintf("agency-%02d", i)
		conn.Spec.AgencyCode = fmt.Sprintf("R%02d-%s", i, suffix)
		return conn
	}
	for i := range before {
		if err := s.c.Create(ctx, newConn(i)); err != nil {
			t.Fatalf("creating connection %d: %v", i, err)
		}
	}

	// Stop in the middle of the work: some connections programmed, not all
	// Ready (their certificates are still being issued).
	testenv.Poll(t, waitLong, func() (bool, error) { return countProgrammed(t, f.ns) > 0, nil })
	readyAtStop := countReady(t, f.ns)
	if readyAtStop == before {
		t.Fatalf("all %d connections were Ready before the API server stopped: the restart was not mid-reconcile", before)
	}
	t.Logf("stopping the API server with %d of %d connections programmed, %d Ready", countProgrammed(t, f.ns), before, readyAtStop)
	if err := s.env.StopAPIServer(); err != nil {
		t.Fatal(err)
	}
	// Whatever happens below, later tests need an API server.
	t.Cleanup(func() { _ = s.env.StartAPIServer() })
	time.Sleep(apiServerDown)
	started := time.Now()
	if err := s.env.StartAPIServer(); err != nil {
		t.Fatal(err)
	}
	t.Logf("API server back after %v down, healthy %v after the start", apiServerDown, time.Since(started).Round(time.Millisecond))

	// Right after the restart the CRDs may not be served for a moment:
	// creates are retried, bounded, as a GitOps tool would.
	for i := before; i < before+after; i++ {
		testenv.Poll(t, waitShort, func() (bool, error) {
			err := s.c.Create(ctx, newConn(i))
			return err == nil || apierrors.IsAlreadyExists(err), nil
		})
	}
	const n = before + after
	testenv.Poll(t, 3*waitLong, func() (bool, error) { return countReady(t, f.ns) == n, nil })
	t.Logf("all %d connections Ready %v after the API server came back", n, time.Since(started).Round(100*time.Millisecond))

	var certs cmapi.CertificateList
	must(t, s.c.List(ctx, &certs, client.InNamespace(f.ns), client.MatchingLabels{render.LabelComponent: "client-certificate"}), "listing Certificates")
	if len(certs.Items) != n {
		t.Errorf("%d client Certificates, want %d (one per connection)", len(certs.Items), n)
	}
	for i := range n {
		code := fmt.Sprintf("R%02d-%s", i, suffix)
		if e := shardEntry(t, f.gateway, code); e == nil || e.Suspended {
			t.Errorf("agency %s: shard entry %+v, want an active entry", code, e)
		}
	}
}

// countReady counts the connections in ns with Ready=True for their
// current generation.
func countReady(t *testing.T, ns string) int {
	t.Helper()
	var list popv1.AgencyConnectionList
	must(t, s.c.List(context.Background(), &list, client.InNamespace(ns)), "listing connections")
	count := 0
	for _, c := range list.Items {
		if cond := meta.FindStatusCondition(c.Status.Conditions, popv1.ConditionReady); cond != nil &&
			cond.Status == metav1.ConditionTrue && cond.ObservedGeneration == c.Generation {
			count++
		}
	}
	return count
}
