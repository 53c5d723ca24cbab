package render

import (
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/utils/ptr"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// TestGatewayDeploymentPolicyVersion checks that a new policy never rolls
// the pods: only the Deployment's own metadata records it.
func TestGatewayDeploymentPolicyVersion(t *testing.T) {
	gw := gatewayNamed("gw")
	gw.Spec.Upstream.URL = "http://popdb.data.svc:8080"
	without := GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage})
	with := GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage, PolicyVersion: "sha256:abc"})
	if diff := cmp.Diff(without.Spec, with.Spec); diff != "" {
		t.Errorf("PolicyVersion changed the Deployment spec:\n%s", diff)
	}
	if got := with.Annotations[GatewayPolicyVersionAnnotation]; got != "sha256:abc" {
		t.Errorf("annotation %s = %q", GatewayPolicyVersionAnnotation, got)
	}
	if len(without.Annotations) != 0 {
		t.Errorf("annotations without a PolicyVersion: %v", without.Annotations)
	}
}

func TestGatewayDeploymentDefaults(t *testing.T) {
	gw := gatewayNamed("gw")
	gw.Spec.Upstream.URL = "http://popdb.data.svc:8080"
	d := GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage})
	c := d.Spec.Template.Spec.Containers[0]
	if got := ptr.Deref(d.Spec.Replicas, -1); got != 2 {
		t.Errorf("replicas = %d, want 2", got)
	}
	if c.Image != gatewayTestImage {
		t.Errorf("image = %q, want %q", c.Image, gatewayTestImage)
	}
	if d.Spec.Template.Spec.SecurityContext.Sysctls != nil {
		t.Errorf("sysctls on port 8443: %v", d.Spec.Template.Spec.SecurityContext.Sysctls)
	}

	gw.Spec.Image = "example.com/gw:1"
	gw.Spec.Replicas = ptr.To[int32](0)
	gw.Spec.Upstream.Timeout = &metav1.Duration{Duration: 1500 * 1e6}
	gw.Spec.Upstream.CASecretRef = &popv1.SecretReference{Name: "ca"}
	d = GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage})
	c = d.Spec.Template.Spec.Containers[0]
	if got := ptr.Deref(d.Spec.Replicas, -1); got != 0 {
		t.Errorf("replicas = %d, want 0", got)
	}
	if c.Image != "example.com/gw:1" {
		t.Errorf("image = %q, want the spec's", c.Image)
	}
	wantArgs := []string{
		"--policy-namespace=ns",
		"--policy-selector=popconnect.io/gateway=gw",
		"--upstream-url=http://popdb.data.svc:8080",
		"--upstream-timeout=1.5s",
		"--upstream-ca-file=/etc/popconnect/upstream-ca/ca.crt",
		"--listen-address=:8443",
		"--tls-cert-file=/etc/popconnect/serving/tls.crt",
		"--tls-key-file=/etc/popconnect/serving/tls.key",
		"--client-ca-file=/etc/popconnect/client-ca/ca.crt",
		"--metrics-address=:9090",
		"--audit-file=-",
		"--audit-hash-key-file=/etc/popconnect/audit-key/key",
	}
	if diff := cmp.Diff(wantArgs, c.Args); diff != "" {
		t.Errorf("args (-want +got):\n%s", diff)
	}
}

// TestGatewayDeploymentAuditPostgres checks that the PostgreSQL store's URL
// is mounted from its Secret key only, read from a file, and that a change
// of the Secret's name or key changes the pod template (the pods roll).
func TestGatewayDeploymentAuditPostgres(t *testing.T) {
	gw := gatewayNamed("gw")
	gw.Spec.Upstream.URL = "http://popdb.data.svc:8080"
	gw.Spec.Audit = &popv1.AuditSpec{Postgres: &popv1.PostgresAuditSpec{
		URLSecretRef: popv1.SecretKeyReference{Name: "audit-db", Key: "dsn"},
	}}
	d := GatewayDeployment(gw, GatewayOptions{DefaultImage: gatewayTestImage})
	pod := d.Spec.Template.Spec
	args := pod.Containers[0].Args
	if !slices.Contains(args, "--audit-postgres-url-file=/etc/popconnect/audit-postgres/url") {
		t.Errorf("args %q lack the URL file", args)
	}
	for _, a := range args {
		if strings.HasPrefix(a, "--audit-file") || strings.Contains(a, "postgres://") {
			t.Errorf("arg %q: the URL is read from its file only, and stdout is not the sink", a)
		}
	}
	i := slices.IndexFunc(pod.Volumes, func(v corev1.Volume) bool { return v.Name == "audit-postgres" })
	if i < 0 || pod.Volumes[i].Secret == nil {
		t.Fatalf("no audit-postgres Secret volume in %+v", pod.Volumes)
	}
	src := pod.Volumes[i].Secret
	if src.SecretName != "audit-db" || !cmp.Equal(src.Items, []corev1.KeyToPath{{Key: "dsn", Path: "url"}}) {
		t.Errorf("volume = %+v, want key dsn of audit-db as url", src)
	}
	j := slices.IndexFunc(pod.Containers[0].VolumeMounts, func(m corev1.VolumeMount) bool { return m.Name == "audit-postgres" })
	if j < 0 || !pod.Containers[0].VolumeMounts[j].ReadOnly || pod.Containers[0].VolumeMounts[j].MountPath != "/etc/popconnect/audit-postgres" {
		t.Errorf("mounts = %+v", pod.Containers[0].VolumeMounts)
	}

	for _, change := range []func(*popv1.PopulationGateway){
		func(g *popv1.PopulationGateway) { g.Spec.Audit.Postgres.URLSecretRef.Name = "audit-db-2" },
		func(g *popv1.PopulationGateway) { g.Spec.Audit.Postgres.URLSecretRef.Key = "url" },
		func(g *popv1.PopulationGateway) { g.Spec.Audit = nil },
	} {
		changed := gw.DeepCopy()
		change(changed)
		if cmp.Equal(d.Spec.Template, GatewayDeployment(changed, GatewayOptions{DefaultImage: gatewayTestImage}).Spec.Template) {
			t.Errorf("a change of the audit store left the pod template alone: %+v", changed.Spec.Audit)
		}
	}
}
