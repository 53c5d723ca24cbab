//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
)

// change is a line of `agency-client watch` (and load's first 200).
type change struct {
	Time    int64   `json:"time"`
	Outcome outcome `json:"outcome"`
}

// nextLine waits for the next line of a running agency-client.
func nextLine(t *testing.T, lines <-chan string, what string) (string, bool) {
	t.Helper()
	select {
	case l, ok := <-lines:
		return l, ok
	case <-time.After(installTimeout):
		t.Fatalf("agency-client printed nothing for %s while %s", installTimeout, what)
		return "", false
	}
}

// TestSuspensionStopsAnAgencyPodsReadsWithinOneSecond: a pod reading in a
// loop (one lookup every 10 ms) is refused with 403 agency_suspended less
// than a second after the connection is suspended, as the pod sees it (the
// time its first refused request was sent, on the node's clock, which the
// pod shares).
func TestSuspensionStopsAnAgencyPodsReadsWithinOneSecond(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	a := cl.newAgency(t, "suspended", "E2E-SUSP", nil)
	pod := cl.clientPod(t, a.ns, "reader", map[string]string{agencyPodLabel: agencyApp}, a.secret)
	id, err := popdb.NationalID(3)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/citizens/" + id
	a.waitForOK(ctx, t, pod, path)

	lines, wait := cl.clientExecStream(ctx, t, a.ns, pod, "watch", "-url", cl.gatewayURL(t)+path,
		"-server-name", servingName, "-interval", "10ms", "-duration", "2m")
	var c change
	l, _ := nextLine(t, lines, "reading before the suspension")
	if err := json.Unmarshal([]byte(l), &c); err != nil || !(c.Outcome.Status == http.StatusOK) {
		t.Fatalf("watch began with %q (%v), want a 200", l, err)
	}

	var conn popv1.AgencyConnection
	if err := cl.client.Get(ctx, client.ObjectKeyFromObject(a.conn), &conn); err != nil {
		t.Fatal(err)
	}
	patch := client.MergeFrom(conn.DeepCopy())
	conn.Spec.Suspended = true
	suspendedAt := time.Now()
	if err := cl.client.Patch(ctx, &conn, patch); err != nil {
		t.Fatal(err)
	}
	var refused *change
	for l := range lines {
		var c change
		if err := json.Unmarshal([]byte(l), &c); err != nil {
			t.Fatalf("watch printed %q: %v", l, err)
		}
		if c.Outcome.Status != http.StatusOK && refused == nil {
			refused = &c
		}
	}
	if err := wait(); err != nil {
		t.Fatal(err)
	}
	if refused == nil {
		t.Fatal("watch ended without a refusal")
	}
	if refused.Outcome.Status != http.StatusForbidden || refused.Outcome.Code != "agency_suspended" {
		t.Fatalf("after the suspension the pod got %v, want 403 agency_suspended", refused.Outcome)
	}
	latency := time.Unix(0, refused.Time).Sub(suspendedAt)
	t.Logf("suspension latency as the pod saw it: %s (from the API request to the first refused request sent)", latency.Round(time.Millisecond))
	if latency > time.Second {
		t.Errorf("the pod was still served %s after the suspension, want at most 1s", latency.Round(time.Millisecond))
	}
}
