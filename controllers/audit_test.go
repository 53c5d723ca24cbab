package controllers_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"
	networkingv1 "k8s.io/api/networking/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestGatewayAuditPostgresWorkload: spec.audit.postgres mounts the URL's
// Secret key into the pods and passes its file to the gateway; the
// NetworkPolicy opens spec.audit.postgres.to on the port, and without to
// NetworkReady says what is missing.
func TestGatewayAuditPostgresWorkload(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "audit-pg")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), f.gateway) })
	setAudit(t, f.gateway, &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{
		URLSecretRef: popv1.SecretKeyReference{Name: "audit-db", Key: "dsn"},
	}})
	waitGateway(t, f.gateway, "NetworkReady to name spec.audit.postgres.to", func(gw *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionNetworkReady)
		return c != nil && c.Status == metav1.ConditionFalse && c.Reason == popv1.ReasonEgressUnresolved &&
			strings.Contains(c.Message, "spec.audit.postgres.to") && c.ObservedGeneration == gw.Generation
	})

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).Deployment}}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(dep), dep)
		return err == nil && slices.Contains(dep.Spec.Template.Spec.Containers[0].Args,
			"--audit-postgres-url-file=/etc/popconnect/audit-postgres/url"), client.IgnoreNotFound(err)
	})
	i := slices.IndexFunc(dep.Spec.Template.Spec.Volumes, func(v corev1.Volume) bool { return v.Name == "audit-postgres" })
	if i < 0 || dep.Spec.Template.Spec.Volumes[i].Secret == nil || dep.Spec.Template.Spec.Volumes[i].Secret.SecretName != "audit-db" ||
		len(dep.Spec.Template.Spec.Volumes[i].Secret.Items) != 1 || dep.Spec.Template.Spec.Volumes[i].Secret.Items[0] != (corev1.KeyToPath{Key: "dsn", Path: "url"}) {
		t.Errorf("volumes = %+v, want key dsn of Secret audit-db as file url", dep.Spec.Template.Spec.Volumes)
	}

	setAudit(t, f.gateway, &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{
		URLSecretRef: popv1.SecretKeyReference{Name: "audit-db", Key: "dsn"},
		To:           []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "10.40.0.0/24"}}},
	}})
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).DefaultDenyPolicy}}
	hasDatabase := func() bool {
		for _, r := range np.Spec.Egress {
			if len(r.To) == 1 && r.To[0].IPBlock != nil && r.To[0].IPBlock.CIDR == "10.40.0.0/24" &&
				len(r.Ports) == 1 && r.Ports[0].Port.IntVal == 5432 && *r.Ports[0].Protocol == corev1.ProtocolTCP {
				return true
			}
		}
		return false
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), np)
		return err == nil && hasDatabase(), client.IgnoreNotFound(err)
	})
	// The manager's pods, and only they, may ask the pods on the metrics port.
	if len(np.Spec.Ingress) != 1 || len(np.Spec.Ingress[0].From) != 1 || len(np.Spec.Ingress[0].Ports) != 1 ||
		np.Spec.Ingress[0].Ports[0].Port.IntVal != 9090 ||
		np.Spec.Ingress[0].From[0].NamespaceSelector.MatchLabels[corev1.LabelMetadataName] != suiteManager.Namespace ||
		np.Spec.Ingress[0].From[0].PodSelector.MatchLabels["app.kubernetes.io/component"] != "manager" {
		t.Errorf("ingress = %+v, want the manager's pods on 9090 only", np.Spec.Ingress)
	}
	waitGateway(t, f.gateway, "NetworkReady to stop naming spec.audit.postgres.to", func(gw *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionNetworkReady)
		return c != nil && !strings.Contains(c.Message, "spec.audit.postgres.to") && c.ObservedGeneration == gw.Generation
	})
}

// TestGatewayAuditReadyFromPods: AuditReady follows what a gateway pod
// answers at GET /auditz, served by a real audit.Logger over a writer that
// can fail, as the pod's readiness changes (no kubelet runs under envtest:
// the test plays it, patching the pod's status).
func TestGatewayAuditReadyFromPods(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "auditz")
	t.Cleanup(func() { _ = s.c.Delete(context.Background(), f.gateway) })

	out := &failingWriter{}
	logger, err := audit.NewLogger(out, []byte("0123456789abcdef0123456789abcdef"), audit.WithRetryInterval(time.Hour))
	must(t, err, "creating the audit logger")
	t.Cleanup(func() { _ = logger.Close() })
	s.auditz.serve(t, audit.StateHandler(logger))

	waitAudit(t, f.gateway, metav1.ConditionUnknown, popv1.ReasonAuditStateUnknown)

	// The pod as the Deployment's ReplicaSet would make it: the template's
	// labels (which the operator's pod cache selects).
	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).Deployment}}
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(dep), dep)
		return err == nil, client.IgnoreNotFound(err)
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: dep.Name + "-0", Labels: dep.Spec.Template.Labels},
		Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "gateway", Image: "gateway:test"}}},
	}
	must(t, s.c.Create(ctx, pod), "creating the gateway pod")
	t.Cleanup(func() {
		_ = s.c.Delete(context.Background(), pod, client.GracePeriodSeconds(0))
	})
	setPodReady(t, pod, corev1.ConditionTrue)
	gw := waitAudit(t, f.gateway, metav1.ConditionTrue, popv1.ReasonAuditSinkWritable)
	if c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionAuditReady); !strings.Contains(c.Message, "file") {
		t.Errorf("AuditReady message %q does not name the sink", c.Message)
	}
	if c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionReady); c.Reason == popv1.ReasonAuditSinkFailing {
		t.Errorf("Ready = %+v with a writable sink", c)
	}

	// The sink fails: the pod's commit fails, its /readyz (played here)
	// fails, the pod turns NotReady.
	out.fail.Store(true)
	if err := logger.Commit(&audit.Record{Time: time.Now(), RequestID: "r1", Agency: "BYT", Operation: "Lookup", Status: 200}); err == nil {
		t.Fatal("a commit to a failing writer succeeded")
	}
	setPodReady(t, pod, corev1.ConditionFalse)
	gw = waitAudit(t, f.gateway, metav1.ConditionFalse, popv1.ReasonAuditSinkFailing)
	c := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionAuditReady)
	for _, want := range []string{"1 of 1", "file", errDiskFull.Error()} {
		if !strings.Contains(c.Message, want) {
			t.Errorf("AuditReady message %q lacks %q", c.Message, want)
		}
	}
	if ready := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionReady); ready.Status != metav1.ConditionFalse ||
		ready.Reason != popv1.ReasonAuditSinkFailing {
		t.Errorf("Ready = %+v, want False AuditSinkFailing", ready)
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		return len(auditEvents(t, gw, corev1.EventTypeWarning, popv1.ReasonAuditSinkFailing)) > 0, nil
	})

	// The sink works again: the logger's next write succeeds, /readyz
	// passes, the pod turns Ready.
	out.fail.Store(false)
	logger.Flush()
	setPodReady(t, pod, corev1.ConditionTrue)
	gw = waitAudit(t, f.gateway, metav1.ConditionTrue, popv1.ReasonAuditSinkWritable)
	if ready := meta.FindStatusCondition(gw.Status.Conditions, popv1.ConditionReady); ready.Reason == popv1.ReasonAuditSinkFailing {
		t.Errorf("Ready = %+v after the sink recovered", ready)
	}
	if n := len(auditEvents(t, gw, corev1.EventTypeWarning, popv1.ReasonAuditSinkFailing)); n != 1 {
		t.Errorf("%d Warning AuditSinkFailing events for one failure, want 1", n)
	}
}

// errDiskFull is the failing writer's error, which AuditReady reports.
var errDiskFull = errors.New("no space left on device")

// failingWriter is an audit sink's file that fails on demand.
type failingWriter struct{ fail atomic.Bool }

func (w *failingWriter) Write(p []byte) (int, error) {
	if w.fail.Load() {
		return 0, errDiskFull
	}
	return len(p), nil
}

// setAudit sets the gateway's spec.audit.
func setAudit(t *testing.T, gw *popv1.PopulationGateway, spec *popv1.AuditSpec) {
	t.Helper()
	ctx := context.Background()
	cur := &popv1.PopulationGateway{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(gw), cur), "reading the gateway")
	patch := client.MergeFrom(cur.DeepCopy())
	cur.Spec.Audit = spec
	must(t, s.c.Patch(ctx, cur, patch), "setting spec.audit")
}

// setPodReady plays the kubelet: the pod runs at 127.0.0.1 (where the
// suite's /auditz server listens) with its Ready condition at status.
func setPodReady(t *testing.T, pod *corev1.Pod, status corev1.ConditionStatus) {
	t.Helper()
	ctx := context.Background()
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(pod), pod), "reading the pod")
	patch := client.MergeFrom(pod.DeepCopy())
	now := metav1.Now()
	pod.Status.Phase = corev1.PodRunning
	pod.Status.PodIP = "127.0.0.1"
	pod.Status.PodIPs = []corev1.PodIP{{IP: "127.0.0.1"}}
	pod.Status.Conditions = []corev1.PodCondition{{Type: corev1.PodReady, Status: status, LastTransitionTime: now}}
	must(t, s.c.Status().Patch(ctx, pod, patch), "patching the pod's status")
}

// waitGateway waits until ok holds for the gateway.
func waitGateway(t *testing.T, gw *popv1.PopulationGateway, what string, ok func(*popv1.PopulationGateway) bool) *popv1.PopulationGateway {
	t.Helper()
	t.Logf("waiting for %s", what)
	cur := &popv1.PopulationGateway{}
	testenv.Poll(t, waitShort, func() (bool, error) {
		if err := s.c.Get(context.Background(), client.ObjectKeyFromObject(gw), cur); err != nil {
			return false, err
		}
		return ok(cur), nil
	})
	return cur
}

// waitAudit waits until the gateway's AuditReady has status and reason.
func waitAudit(t *testing.T, gw *popv1.PopulationGateway, status metav1.ConditionStatus, reason string) *popv1.PopulationGateway {
	t.Helper()
	return waitGateway(t, gw, "AuditReady "+string(status)+"/"+reason, func(cur *popv1.PopulationGateway) bool {
		c := meta.FindStatusCondition(cur.Status.Conditions, popv1.ConditionAuditReady)
		return c != nil && c.Status == status && c.Reason == reason
	})
}

// auditEvents are the gateway's events of type and reason.
func auditEvents(t *testing.T, gw *popv1.PopulationGateway, eventType, reason string) []eventsv1.Event {
	t.Helper()
	var list eventsv1.EventList
	must(t, s.c.List(context.Background(), &list, client.InNamespace(gw.Namespace)), "listing events")
	var out []eventsv1.Event
	for _, e := range list.Items {
		if e.Regarding.Name == gw.Name && e.Regarding.Kind == "PopulationGateway" && e.Type == eventType && e.Reason == reason {
			out = append(out, e)
		}
	}
	return out
}
