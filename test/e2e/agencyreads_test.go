//go:build e2e

package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
)

// TestAgencyPodReadsThroughTheGatewayService: an agency pod in its own
// namespace, mounting the Secret the operator had issued for its
// connection, reads through the gateway Service: a lookup answers 200 with
// the record projected to the connection's allowed fields (popdb-sim's
// record has more), a field it may not read answers 403, and requests
// beyond its rate answer 429.
func TestAgencyPodReadsThroughTheGatewayService(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	// A rate the test can exceed: 1 a second, at most 5 at once.
	a := cl.newAgency(t, "reader", "E2E-READ", func(s *popv1.AgencyConnectionSpec) {
		s.RateLimit = popv1.RateLimit{RequestsPerSecond: 1, Burst: 5}
	})
	pod := cl.clientPod(t, a.ns, "reader", map[string]string{agencyPodLabel: agencyApp}, a.secret)
	id, err := popdb.NationalID(2)
	if err != nil {
		t.Fatal(err)
	}
	path := "/v1/citizens/" + id
	a.waitForOK(ctx, t, pod, path)

	// Allowed, and filtered: the record's fields are the allowed ones and
	// the national ID, while popdb-sim holds more.
	full := cl.popdbRecordFields(t, id)
	if len(full) <= 3 {
		t.Fatalf("popdb-sim's record has only %v: nothing to filter", full)
	}
	got := a.get(ctx, t, pod, path, 1)
	if len(got) != 1 || got[0].Status != 200 {
		t.Fatalf("lookup: %v, want 200", got)
	}
	fields := jsonFields(t, got[0].Body)
	if want := []string{"dateOfBirth", "fullName", "nationalId"}; fmt.Sprint(fields) != fmt.Sprint(want) {
		t.Errorf("lookup returned the fields %v, want %v (popdb-sim's record has %v)", fields, want, full)
	}

	// A field the connection may not read.
	got = a.get(ctx, t, pod, path+"?fields=fullName,religion", 1)
	if len(got) != 1 || got[0].Status != http.StatusForbidden {
		t.Errorf("?fields=fullName,religion: %v, want 403", got)
	}

	// Beyond the rate: 10 in a row against a burst of 5, of which at most
	// two were left.
	got = a.get(ctx, t, pod, path, 10)
	limited := 0
	for _, o := range got {
		switch {
		case o.Status == http.StatusTooManyRequests && o.Code == "rate_limited":
			limited++
		case o.Status != http.StatusOK:
			t.Errorf("a request beyond the rate: %v, want 200 or 429 rate_limited", o)
		}
	}
	if limited == 0 {
		t.Errorf("10 requests in a row at a rate of 1/s with a burst of 5: none answered 429 (%v)", got)
	}
	cl.auditRecordsInPodLogs(ctx, t, "E2E-READ", 12)
}

// auditRecordsInPodLogs waits until the gateway pods' logs hold at least
// n audit records of agency: in a pod the records go to stdout, a pipe
// that the container runtime reads into the pod's log. It also checks
// that the gateways write that pipe through a non-blocking descriptor of
// their own, which they can open only because containerd makes the pipe
// the container user's (else they say so and use stdout as it is).
func (cl *cluster) auditRecordsInPodLogs(ctx context.Context, t *testing.T, agency string, n int) {
	t.Helper()
	record := `"agency":"` + agency + `"`
	err := poll(ctx, time.Minute, func() (bool, string, error) {
		logs, err := cl.run(ctx, cl.kubectl, "logs", "-n", systemNamespace, "-l", "app.kubernetes.io/name=popconnect-gateway",
			"--all-containers", "--tail=-1")
		if err != nil {
			return false, "", err
		}
		if strings.Contains(logs, "go through its shared descriptor") || !strings.Contains(logs, "non-blocking descriptor of the pipe") {
			return false, "", fmt.Errorf("a gateway does not write its stdout pipe through a descriptor of its own:\n%s", logs)
		}
		got := strings.Count(logs, record)
		return got >= n, fmt.Sprintf("%d records with %s in the gateway pods' logs, want %d", got, record, n), nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// popdbRecordFields are the top-level fields of popdb-sim's record for id,
// read from the node through its Service.
func (cl *cluster) popdbRecordFields(t *testing.T, id string) []string {
	t.Helper()
	resp, err := http.Get("http://" + cl.popdbAddr(t) + "/v1/citizens/" + id)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("popdb-sim: %d %s", resp.StatusCode, body)
	}
	return jsonFields(t, string(body))
}

// jsonFields are a JSON object's keys, sorted.
func jsonFields(t *testing.T, body string) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(body), &m); err != nil {
		t.Fatalf("not a JSON object: %q: %v", body, err)
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
