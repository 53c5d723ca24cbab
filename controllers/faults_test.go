package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// pauseSuiteManager stops the suite's manager for a test that runs its own,
// and starts a new one when the test ends.
func pauseSuiteManager(t *testing.T) {
	t.Helper()
	s.stopManager()
	t.Cleanup(func() {
		stop, err := startManagerForSuite()
		if err != nil {
			t.Fatalf("restarting the suite's manager: %v", err)
		}
		s.stopManager = stop
	})
}

// TestLeaderElection: of two managers only the elected one writes; when it
// stops, the other takes over and does the work.
func TestLeaderElection(t *testing.T) {
	pauseSuiteManager(t)
	id := fmt.Sprintf("leader-test-%d.popconnect.io", time.Now().UnixNano())
	leaderWrites, followerWrites := &writeLog{}, &writeLog{}
	stopLeader, leaderElected, err := startManager(s.env, leaderWrites, id)
	must(t, err, "starting the first manager")
	defer func() { stopLeader() }()
	select {
	case <-leaderElected:
	case <-time.After(waitShort):
		t.Fatal("the first manager was not elected")
	}
	stopFollower, followerElected, err := startManager(s.env, followerWrites, id)
	must(t, err, "starting the second manager")
	defer stopFollower()

	f := newFixture(t, "leader")
	first := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, first, popv1.ConditionProgrammed, metav1.ConditionTrue, "", waitLong)
	if n, what := followerWrites.snapshot(); n != 0 {
		t.Fatalf("the follower wrote %d times while not elected: %v", n, what)
	}
	select {
	case <-followerElected:
		t.Fatal("the follower was elected while the leader runs")
	default:
	}

	stopLeader()
	stopLeader = func() {}
	select {
	case <-followerElected:
	case <-time.After(waitShort):
		t.Fatal("the second manager did not take over")
	}
	second := f.connection(t, sampleConnections[4], nil)
	waitCondition(t, second, popv1.ConditionProgrammed, metav1.ConditionTrue, "", waitLong)
	n, what := followerWrites.snapshot()
	reconciled := false
	for _, w := range what {
		reconciled = reconciled || strings.Contains(w, "/agencyconnections/"+second.Name)
	}
	if n == 0 || !reconciled {
		t.Errorf("the new leader did not reconcile the new connection (%d writes: %v)", n, what)
	}
}

// TestInterruptedCreation: a manager stopped while it creates 300
// connections' children, and a new one started, leave every child exactly
// once and every connection programmed.
func TestInterruptedCreation(t *testing.T) {
	const n = 300
	ctx := context.Background()
	pauseSuiteManager(t)
	writes := &writeLog{}
	stop, _, err := startManager(s.env, writes, "")
	must(t, err, "starting the manager")

	f := newFixture(t, "interrupt")
	var conns []*popv1.AgencyConnection
	for i := range n {
		conns = append(conns, f.connection(t, sampleConnections[3], func(c *popv1.AgencyConnection) {
			c.Name = fmt.Sprintf("agency-%03d", i)
			c.Spec.AgencyCode = fmt.Sprintf("A%03d-%s", i, strings.ToUpper(f.ns[len(f.ns)-5:]))
			// No issuer runs by this name: issuing 300 certificates would
			// only slow the test; Programmed does not wait for them.
			c.Spec.ClientCertificate.IssuerRef.Name = "not-running"
		}))
	}
	// Stop in the middle of the work: after the first writes, before all.
	testenv.Poll(t, waitLong, func() (bool, error) {
		count, _ := writes.snapshot()
		return count > n/3, nil
	})
	stop()
	programmed := countProgrammed(t, f.ns)
	t.Logf("stopped after %d writes, with %d of %d connections programmed", func() int { c, _ := writes.snapshot(); return c }(), programmed, n)

	stop, _, err = startManager(s.env, &writeLog{}, "")
	must(t, err, "starting a new manager")
	defer stop()
	testenv.Poll(t, 3*waitLong, func() (bool, error) { return countProgrammed(t, f.ns) == n, nil })

	var certs cmapi.CertificateList
	must(t, s.c.List(ctx, &certs, client.InNamespace(f.ns), client.MatchingLabels{render.LabelComponent: "client-certificate"}), "listing")
	var nps networkingv1.NetworkPolicyList
	must(t, s.c.List(ctx, &nps, client.InNamespace(f.ns), client.MatchingLabels{render.LabelComponent: "agency-network-policy"}), "listing")
	if len(certs.Items) != n || len(nps.Items) != n {
		t.Errorf("%d Certificates and %d NetworkPolicies, want %d of each", len(certs.Items), len(nps.Items), n)
	}
	seen := map[string]bool{}
	for _, c := range conns {
		e := shardEntry(t, f.gateway, c.Spec.AgencyCode)
		if e == nil || seen[e.AgencyCode] {
			t.Errorf("agency %s: entry %v (seen before: %v)", c.Spec.AgencyCode, e, seen[c.Spec.AgencyCode])
			continue
		}
		seen[e.AgencyCode] = true
	}
	for _, c := range certs.Items {
		if len(c.OwnerReferences) != 1 {
			t.Errorf("Certificate %s has owner references %v, want exactly its connection", c.Name, c.OwnerReferences)
		}
	}
}

func countProgrammed(t *testing.T, ns string) int {
	t.Helper()
	var list popv1.AgencyConnectionList
	must(t, s.c.List(context.Background(), &list, client.InNamespace(ns)), "listing connections")
	count := 0
	for _, c := range list.Items {
		if cond := meta.FindStatusCondition(c.Status.Conditions, popv1.ConditionProgrammed); cond != nil && cond.Status == metav1.ConditionTrue {
			count++
		}
	}
	return count
}
