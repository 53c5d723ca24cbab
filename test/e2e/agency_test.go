//go:build e2e

package e2e

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

const (
	// agencyNamespaceLabel marks the namespaces the sample gateway admits
	// connections from (install patches its allowedConnections to select
	// it): each agency of these tests has a namespace of its own, as the
	// architecture has it.
	agencyNamespaceLabel = "popconnect.io/e2e-agency"
	agencyClientImage    = imageRegistry + "/agency-client:" + imageTag
	// agencyCertDir is where agency pods mount their connection's Secret.
	agencyCertDir = "/var/run/popconnect/agency"
	// agencyStopDir is an emptyDir: `agency-client stop` tells a running
	// load to finish through a file there.
	agencyStopDir = "/run/agency-client"
	// agencyPodLabel is the label the connections' network rules select.
	agencyPodLabel = "app.kubernetes.io/name"
	agencyApp      = "agency-client"
)

// agency is an agency's namespace with its AgencyConnection to the sample
// gateway, and the Secret the operator had issued for it there.
type agency struct {
	cl     *cluster
	ns     string
	conn   *popv1.AgencyConnection
	secret string
}

// newAgency creates namespace e2e-<name> (admitted by the gateway, Pod
// Security "restricted") and an AgencyConnection in it whose network rules
// admit the namespace's pods labelled app.kubernetes.io/name=agency-client,
// and waits until it is Ready with its certificate issued. mutate adjusts
// the spec first. The namespace is deleted when the test ends.
func (cl *cluster) newAgency(t *testing.T, name, code string, mutate func(*popv1.AgencyConnectionSpec)) *agency {
	t.Helper()
	ctx := context.Background()
	ns := "e2e-" + name
	cl.createAgencyNamespace(t, ns, map[string]string{agencyNamespaceLabel: "true"})
	conn := &popv1.AgencyConnection{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: popv1.AgencyConnectionSpec{
			AgencyCode:        code,
			DisplayName:       "e2e agency " + code,
			GatewayRef:        popv1.GatewayReference{Name: gatewayName, Namespace: systemNamespace},
			Purpose:           "End-to-end test of the gateway on a real cluster.",
			AllowedFields:     []popv1.FieldPath{"fullName", "dateOfBirth"},
			AllowedOperations: []popv1.Operation{popv1.OperationLookup},
			RateLimit:         popv1.RateLimit{RequestsPerSecond: 500, Burst: 1000},
			ClientCertificate: popv1.ClientCertificateSpec{
				IssuerRef: popv1.IssuerReference{Name: caName, Kind: "ClusterIssuer"},
			},
			Network: &popv1.NetworkSpec{
				PodSelector: &metav1.LabelSelector{MatchLabels: map[string]string{agencyPodLabel: agencyApp}},
			},
		},
	}
	if mutate != nil {
		mutate(&conn.Spec)
	}
	if err := cl.client.Create(ctx, conn); err != nil {
		t.Fatalf("creating AgencyConnection %s/%s: %v", ns, name, err)
	}
	a := &agency{cl: cl, ns: ns, conn: conn}
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		if err := cl.client.Get(ctx, client.ObjectKeyFromObject(conn), conn); err != nil {
			return false, err.Error(), nil
		}
		ok, state := conditionTrue(conn.Status.Conditions, popv1.ConditionReady)
		if !ok || conn.Status.Certificate == nil || conn.Status.Certificate.SecretName == "" {
			return false, state, nil
		}
		var s corev1.Secret
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: ns, Name: conn.Status.Certificate.SecretName}, &s); err != nil {
			return false, err.Error(), nil
		}
		a.secret = s.Name
		return len(s.Data["tls.crt"]) > 0 && len(s.Data["ca.crt"]) > 0, "Secret " + s.Name + " without tls.crt or ca.crt", nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatalf("AgencyConnection %s/%s: %v", ns, name, err)
	}
	return a
}

// createAgencyNamespace creates ns, enforcing "restricted", deleted when
// the test ends (without waiting for it to go).
func (cl *cluster) createAgencyNamespace(t *testing.T, ns string, labels map[string]string) {
	t.Helper()
	all := map[string]string{podSecurityEnforceLabel: "restricted", podSecurityEnforceLabel + "-version": "latest"}
	for k, v := range labels {
		all[k] = v
	}
	obj := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns, Labels: all}}
	if err := cl.client.Create(context.Background(), obj); err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	t.Cleanup(func() { _ = cl.client.Delete(context.Background(), obj) })
}

// clientPod starts an agency-client pod in ns with labels, mounting the
// Secret secret ("" for none) at agencyCertDir, and waits until it runs.
func (cl *cluster) clientPod(t *testing.T, ns, name string, labels map[string]string, secret string) string {
	t.Helper()
	ctx := context.Background()
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns, Labels: labels},
		Spec: corev1.PodSpec{
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr(true),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			// The client does nothing on SIGTERM but exit.
			TerminationGracePeriodSeconds: ptr[int64](1),
			Containers: []corev1.Container{{
				Name:            "client",
				Image:           agencyClientImage,
				ImagePullPolicy: corev1.PullNever,
				Args:            []string{"idle"},
				SecurityContext: &corev1.SecurityContext{
					AllowPrivilegeEscalation: ptr(false),
					ReadOnlyRootFilesystem:   ptr(true),
					Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
				},
				VolumeMounts: []corev1.VolumeMount{{Name: "stop", MountPath: agencyStopDir}},
			}},
			Volumes: []corev1.Volume{{Name: "stop", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}},
		},
	}
	if secret != "" {
		pod.Spec.Containers[0].VolumeMounts = append(pod.Spec.Containers[0].VolumeMounts,
			corev1.VolumeMount{Name: "agency", MountPath: agencyCertDir, ReadOnly: true})
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "agency",
			VolumeSource: corev1.VolumeSource{Secret: &corev1.SecretVolumeSource{SecretName: secret}}})
	}
	if err := cl.client.Create(ctx, pod); err != nil {
		t.Fatalf("creating pod %s/%s: %v", ns, name, err)
	}
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		if err := cl.client.Get(ctx, client.ObjectKeyFromObject(pod), pod); err != nil {
			return false, err.Error(), nil
		}
		for _, c := range pod.Status.Conditions {
			if c.Type == corev1.PodReady && c.Status == corev1.ConditionTrue {
				return pod.Status.PodIP != "", "no pod IP", nil
			}
		}
		return false, "pod " + string(pod.Status.Phase), nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatalf("pod %s/%s: %v", ns, name, err)
	}
	return name
}

// clientExec runs `agency-client ARGS` in the pod and returns its output.
func (cl *cluster) clientExec(ctx context.Context, ns, pod string, args ...string) (string, error) {
	return cl.run(ctx, cl.kubectl, append([]string{"exec", "-n", ns, pod, "-c", "client", "--", "/agency-client"}, args...)...)
}

// clientExecStream starts `agency-client ARGS` in the pod and returns its
// output lines as they come; the channel closes when the command ends, and
// wait then returns its error.
func (cl *cluster) clientExecStream(ctx context.Context, t *testing.T, ns, pod string, args ...string) (lines <-chan string, wait func() error) {
	t.Helper()
	cmd := exec.CommandContext(ctx, cl.kubectl, append([]string{"exec", "-n", ns, pod, "-c", "client", "--", "/agency-client"}, args...)...)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	ch := make(chan string)
	done := make(chan struct{})
	go func() {
		defer close(ch)
		defer close(done)
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			ch <- sc.Text()
		}
		_, _ = io.Copy(io.Discard, stdout)
	}()
	return ch, func() error {
		<-done
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("agency-client %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return nil
	}
}

// outcome is what agency-client reports of one request (its Outcome).
type outcome struct {
	Status int    `json:"status"`
	Code   string `json:"code"`
	Error  string `json:"error"`
	Body   string `json:"body"`
}

func (o outcome) String() string {
	switch {
	case o.Status == 0:
		return "error: " + o.Error
	case o.Code == "":
		return strconv.Itoa(o.Status)
	default:
		return strconv.Itoa(o.Status) + " " + o.Code
	}
}

// get makes n requests to path through the gateway Service from the pod.
func (a *agency) get(ctx context.Context, t *testing.T, pod, path string, n int) []outcome {
	t.Helper()
	out, err := a.cl.clientExec(ctx, a.ns, pod, "get", "-url", a.cl.gatewayURL(t)+path,
		"-server-name", servingName, "-n", strconv.Itoa(n))
	if err != nil {
		t.Fatal(err)
	}
	return decodeLines[outcome](t, out)
}

// waitForOK polls a lookup from the pod until it answers 200: the
// NetworkPolicy that admits a new pod is in place only once the enforcer
// has seen the pod, and the gateway knows the connection only once its
// policy shard has reached the pods.
func (a *agency) waitForOK(ctx context.Context, t *testing.T, pod, path string) {
	t.Helper()
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		got := a.get(ctx, t, pod, path, 1)
		if len(got) != 1 {
			return false, fmt.Sprintf("%d outcomes", len(got)), nil
		}
		return got[0].Status == 200, got[0].String(), nil
	})
	if err != nil {
		a.cl.dump(t)
		t.Fatalf("pod %s/%s: no 200 through the gateway: %v", a.ns, pod, err)
	}
}

// dial opens a TCP connection from the pod to addr and reports whether it
// was established, and the error otherwise.
func (cl *cluster) dial(ctx context.Context, t *testing.T, ns, pod, addr string) (bool, string) {
	t.Helper()
	out, err := cl.clientExec(ctx, ns, pod, "dial", "-addr", addr, "-timeout", "3s")
	if err != nil {
		t.Fatal(err)
	}
	rs := decodeLines[struct {
		Connected bool   `json:"connected"`
		Error     string `json:"error"`
	}](t, out)
	if len(rs) != 1 {
		t.Fatalf("dial: %q", out)
	}
	return rs[0].Connected, rs[0].Error
}

func decodeLines[T any](t *testing.T, out string) []T {
	t.Helper()
	var rs []T
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r T
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("agency-client printed %q: %v", line, err)
		}
		rs = append(rs, r)
	}
	return rs
}

// gatewayURL is https://<gateway Service ClusterIP>:<port>.
func (cl *cluster) gatewayURL(t *testing.T) string {
	return "https://" + cl.gatewayServiceAddr(t)
}

// popdbAddr is the popdb-sim Service's ClusterIP and port: a Service no
// NetworkPolicy selects, which every pod may reach.
func (cl *cluster) popdbAddr(t *testing.T) string {
	t.Helper()
	var svc corev1.Service
	if err := cl.client.Get(context.Background(), client.ObjectKey{Namespace: systemNamespace, Name: "popdb"}, &svc); err != nil {
		t.Fatal(err)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
}

// gatewayReachableFromNode checks that the gateway Service accepts TCP
// connections from the node (NetworkPolicy never filters the node's own
// traffic to its pods, so the kubelet's probes work): a refused pod is then
// refused by a policy, not by a gateway that is down.
func (cl *cluster) gatewayReachableFromNode(t *testing.T) {
	t.Helper()
	c, err := net.DialTimeout("tcp", cl.gatewayServiceAddr(t), 3*time.Second)
	if err != nil {
		t.Fatalf("the gateway Service does not accept connections from the node either: %v", err)
	}
	_ = c.Close()
}
