package loader

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes/fake"

	"github.com/popconnect/popconnect/gateway/policy"
)

// recorder is a Target that keeps the last policy applied.
type recorder struct {
	mu      sync.Mutex
	last    *policy.Merged
	applied int
	errors  atomic.Int64
}

func (r *recorder) target() Target {
	return Target{
		Apply: func(m policy.Merged) error {
			r.mu.Lock()
			defer r.mu.Unlock()
			r.last, r.applied = &m, r.applied+1
			return nil
		},
		LoadError: func() { r.errors.Add(1) },
	}
}

func (r *recorder) snapshot() (policy.Merged, int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.last == nil {
		return policy.Merged{}, 0
	}
	return *r.last, r.applied
}

func entry(code string, fields ...string) string {
	return fmt.Sprintf(`{"agencyCode":%q,"allowedFields":%q,"allowedOperations":["Lookup"],"rateLimit":{"requestsPerSecond":1,"burst":1}}`, code, fields)
}

func doc(entries ...string) string {
	s := `{"version":"v1","agencies":[`
	for i, e := range entries {
		if i > 0 {
			s += ","
		}
		s += e
	}
	return s + "]}"
}

func gz(t *testing.T, s string) []byte {
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	io.WriteString(w, s)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func shard(name, rv string, data map[string]string, binary map[string][]byte) *corev1.ConfigMap {
	return &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "gw", ResourceVersion: rv,
			Labels: map[string]string{"popconnect.io/gateway": "gw1"}},
		Data: data, BinaryData: binary,
	}
}

// waitFor polls (bounded) until the recorded policy satisfies cond.
func waitFor(t *testing.T, r *recorder, what string, cond func(policy.Merged) bool) policy.Merged {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		m, n := r.snapshot()
		if n > 0 && cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s; last policy %+v", what, m)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestKubeShards(t *testing.T) {
	other := shard("other-gateway", "1", map[string]string{"p.json": doc(entry("OTHER", "fullName"))}, nil)
	other.Labels["popconnect.io/gateway"] = "gw2"
	client := fake.NewClientset(
		shard("s1", "1", map[string]string{"a.json": doc(entry("BYT", "fullName")), "b.yaml": "version: v1\nagencies:\n- agencyCode: BCA\n  allowedFields: [fullName]\n  allowedOperations: [Verify]\n  rateLimit: {requestsPerSecond: 1, burst: 1}\n"}, nil),
		shard("s2", "1", nil, map[string][]byte{"big.json.gz": gz(t, doc(entry("BTC", "taxCode")))}),
		other,
	)
	r := &recorder{}
	k, err := NewKube(client, "gw", "popconnect.io/gateway=gw1", r.target(), slog.New(slog.NewJSONHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	synced := make(chan struct{})
	errc := make(chan error, 1)
	go func() { errc <- k.Run(ctx, synced) }()
	select {
	case <-synced:
	case err := <-errc:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatal("not synced")
	}

	m := waitFor(t, r, "the union of three documents", func(m policy.Merged) bool { return len(m.Agencies) == 3 })
	if _, ok := m.Agencies["OTHER"]; ok {
		t.Fatal("a shard of another gateway was loaded")
	}
	cms := client.CoreV1().ConfigMaps("gw")

	// An agency in two shards with different entries is denied.
	if _, err := cms.Update(ctx, shard("s2", "2", map[string]string{"c.json": doc(entry("BYT", "religion"))},
		map[string][]byte{"big.json.gz": gz(t, doc(entry("BTC", "taxCode")))}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	m = waitFor(t, r, "the conflict", func(m policy.Merged) bool { return len(m.Conflicts) == 1 })
	if _, ok := m.Agencies["BYT"]; ok || m.Conflicts[0] != "BYT" || r.errors.Load() != 1 {
		t.Fatalf("conflict: %+v, %d errors", m, r.errors.Load())
	}

	// A corrupt shard keeps its last good documents and counts an error;
	// other shards still update.
	if _, err := cms.Update(ctx, shard("s2", "3", map[string]string{"c.json": `{"version":`},
		map[string][]byte{"big.json.gz": []byte("not gzip")}), metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, r, "two more load errors", func(policy.Merged) bool { return r.errors.Load() == 4 })
	m, _ = r.snapshot()
	if _, ok := m.Agencies["BTC"]; !ok || len(m.Conflicts) != 1 {
		t.Fatalf("corrupt shard dropped its last good documents: %+v", m)
	}
	if _, err := cms.Create(ctx, shard("s3", "1", map[string]string{"d.json": doc(entry("BHXH", "socialInsuranceNumber"))}, nil), metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	m = waitFor(t, r, "the new shard", func(m policy.Merged) bool { _, ok := m.Agencies["BHXH"]; return ok })
	if r.errors.Load() != 5 { // the still-conflicting BYT is counted once more
		t.Fatalf("load errors %d: a corrupt document must be counted once", r.errors.Load())
	}

	// Deleting a shard removes its agencies.
	if err := cms.Delete(ctx, "s2", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	m = waitFor(t, r, "the deletion", func(m policy.Merged) bool { _, ok := m.Agencies["BTC"]; return !ok })
	if _, ok := m.Agencies["BYT"]; !ok || len(m.Conflicts) != 0 {
		t.Fatalf("after deleting s2: %+v", m)
	}
	cancel()
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
}

func TestNewKubeValidates(t *testing.T) {
	if _, err := NewKube(fake.NewClientset(), "gw", "a in (", Target{}, slog.Default()); err == nil {
		t.Fatal("bad selector accepted")
	}
	if _, err := NewKube(fake.NewClientset(), "", "a=b", Target{}, slog.Default()); err == nil {
		t.Fatal("empty namespace accepted")
	}
}
