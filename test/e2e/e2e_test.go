//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apimeta "k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/testenv"
)

const (
	systemNamespace = "popconnect-system"
	releaseName     = "popconnect"
	caName          = "popconnect-ca"
	clientCASecret  = "agency-client-ca"
	gatewayName     = "national-gateway"
	// imageRegistry and imageTag name what hack/e2e/images.sh builds.
	imageRegistry = "popconnect.local"
	imageTag      = "e2e"

	podSecurityEnforceLabel = "pod-security.kubernetes.io/enforce"

	// installTimeout bounds each step of the install on a busy 2-core node.
	installTimeout = 3 * time.Minute
)

// cluster is what every test shares: the install is done once, by the first
// test that needs it.
type cluster struct {
	repo    string
	config  *rest.Config
	client  client.Client
	kubectl string
	helm    string
	// helmInstalled is when `helm install` started, firstOK when the
	// install's last step had its first 200 through the gateway.
	helmInstalled, firstOK time.Time
}

var (
	installOnce sync.Once
	installed   *cluster
	installErr  error
)

// setup returns the cluster with popconnect installed, installing it on the
// first call.
func setup(t *testing.T) *cluster {
	t.Helper()
	installOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 4*installTimeout)
		defer cancel()
		installed, installErr = install(ctx, t)
	})
	if installErr != nil {
		t.Fatalf("installing popconnect: %v", installErr)
	}
	return installed
}

func newCluster() (*cluster, error) {
	repo, err := testenv.RepoRoot()
	if err != nil {
		return nil, err
	}
	kubeconfig := os.Getenv("KUBECONFIG")
	if kubeconfig == "" {
		return nil, fmt.Errorf("KUBECONFIG is not set: run the e2e tests with `make e2e` (hack/e2e/cluster.sh up)")
	}
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return nil, fmt.Errorf("loading %s: %w", kubeconfig, err)
	}
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, popv1.AddToScheme, cmapi.AddToScheme} {
		if err := add(scheme); err != nil {
			return nil, err
		}
	}
	c, err := client.New(cfg, client.Options{Scheme: scheme})
	if err != nil {
		return nil, err
	}
	cl := &cluster{repo: repo, config: cfg, client: c, kubectl: "kubectl", helm: filepath.Join(repo, "bin", "helm")}
	if v := os.Getenv("KUBECTL"); v != "" {
		cl.kubectl = v
	}
	if v := os.Getenv("HELM"); v != "" {
		cl.helm = v
	}
	return cl, nil
}

// install does what a platform engineer's first install does: cert-manager
// from its own chart and a CA ClusterIssuer, the chart, the agencies' CA
// Secret, the population database, and the samples.
func install(ctx context.Context, t *testing.T) (*cluster, error) {
	cl, err := newCluster()
	if err != nil {
		return nil, err
	}
	step := func(name string, f func() error) error {
		start := time.Now()
		if err := f(); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		t.Logf("install: %s (%s)", name, time.Since(start).Round(time.Millisecond))
		return nil
	}
	for _, s := range []struct {
		name string
		f    func() error
	}{
		{"cert-manager: helm install of its chart, its webhook admitting, the CA ClusterIssuer", func() error { return cl.installCertManager(ctx) }},
		{"namespace " + systemNamespace + " (Pod Security: restricted)", func() error { return cl.createNamespace(ctx, systemNamespace) }},
		{"helm install popconnect", func() error { return cl.installChart(ctx) }},
		{"popdb-sim Deployment and Service", func() error { return cl.installPopDB(ctx) }},
		{"agency client CA Secret", func() error { return cl.installClientCA(ctx) }},
		{"kubectl apply -k config/samples", func() error {
			_, err := cl.run(ctx, cl.kubectl, "apply", "-n", systemNamespace, "-k", filepath.Join(cl.repo, "config", "samples"))
			return err
		}},
		{"the sample gateway admits the agencies' namespaces", func() error { return cl.admitAgencyNamespaces(ctx) }},
		{"first 200 through the gateway Service", func() error { return cl.firstLookup(ctx) }},
	} {
		if err := step(s.name, s.f); err != nil {
			return cl, err
		}
	}
	t.Logf("install: from helm install to the first 200 through the gateway Service: %s", cl.firstOK.Sub(cl.helmInstalled).Round(time.Millisecond))
	return cl, nil
}

func (cl *cluster) installChart(ctx context.Context) error {
	cl.helmInstalled = time.Now()
	_, err := cl.run(ctx, cl.helm, "install", releaseName, filepath.Join(cl.repo, "charts", "popconnect"),
		"--namespace", systemNamespace,
		"--set", "image.repository="+imageRegistry+"/popconnect-manager",
		"--set", "image.tag="+imageTag,
		"--set", "image.pullPolicy=Never",
		"--set", "gatewayImage.repository="+imageRegistry+"/popconnect-gateway",
		"--set", "gatewayImage.tag="+imageTag,
		"--wait", "--timeout", installTimeout.String())
	return err
}

// createNamespace creates a namespace to install into, with the
// "restricted" Pod Security Standard enforced, as the README asks of
// production clusters: every pod there (cert-manager's; the manager,
// gateway and popdb-sim) must pass it or its ReplicaSet cannot create it.
func (cl *cluster) createNamespace(ctx context.Context, name string) error {
	return cl.client.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{
		Name: name,
		Labels: map[string]string{
			podSecurityEnforceLabel:              "restricted",
			podSecurityEnforceLabel + "-version": "latest",
		},
	}})
}

// installPopDB runs the synthetic population database where the sample
// gateway's upstream points: http://popdb.popconnect-system.svc:8080.
func (cl *cluster) installPopDB(ctx context.Context) error {
	labels := map[string]string{"app.kubernetes.io/name": "popdb-sim"}
	dep := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: "popdb", Namespace: systemNamespace, Labels: labels},
		Spec: appsv1.DeploymentSpec{
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					SecurityContext: &corev1.PodSecurityContext{
						RunAsNonRoot:   ptr(true),
						SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
					},
					Containers: []corev1.Container{{
						Name:            "popdb-sim",
						Image:           imageRegistry + "/popconnect-popdb-sim:" + imageTag,
						ImagePullPolicy: corev1.PullNever,
						Args:            []string{"--listen-address=:8080", "--records=100000"},
						Ports:           []corev1.ContainerPort{{Name: "http", ContainerPort: 8080}},
						SecurityContext: &corev1.SecurityContext{
							AllowPrivilegeEscalation: ptr(false),
							ReadOnlyRootFilesystem:   ptr(true),
							Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
						},
					}},
				},
			},
		},
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: "popdb", Namespace: systemNamespace, Labels: labels},
		Spec: corev1.ServiceSpec{
			Selector: labels,
			Ports:    []corev1.ServicePort{{Name: "http", Port: 8080}},
		},
	}
	for _, obj := range []client.Object{dep, svc} {
		if err := cl.client.Create(ctx, obj); err != nil {
			return err
		}
	}
	return cl.waitDeploymentAvailable(ctx, "popdb")
}

// installClientCA gives the gateway the CA that issues agencies'
// certificates (popconnect-ca), as ca.crt of the Secret the sample names.
func (cl *cluster) installClientCA(ctx context.Context) error {
	var ca corev1.Secret
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: certManagerNamespace, Name: caName}, &ca); err != nil {
		return err
	}
	return cl.client.Create(ctx, &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Name: clientCASecret, Namespace: systemNamespace},
		Data:       map[string][]byte{"ca.crt": ca.Data["ca.crt"]},
	})
}

// admitAgencyNamespaces lets the sample gateway accept AgencyConnections
// from the namespaces labelled agencyNamespaceLabel, as the sample's comment
// shows: the agencies of the scenarios manage their connections from
// namespaces of their own.
func (cl *cluster) admitAgencyNamespaces(ctx context.Context) error {
	var gw popv1.PopulationGateway
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &gw); err != nil {
		return err
	}
	patch := client.MergeFrom(gw.DeepCopy())
	gw.Spec.AllowedConnections = &popv1.AllowedConnections{Namespaces: &popv1.AllowedNamespaces{
		From:     popv1.NamespacesFromSelector,
		Selector: &metav1.LabelSelector{MatchLabels: map[string]string{agencyNamespaceLabel: "true"}},
	}}
	return cl.client.Patch(ctx, &gw, patch)
}

func (cl *cluster) waitDeploymentAvailable(ctx context.Context, name string) error {
	return poll(ctx, installTimeout, func() (bool, string, error) {
		var d appsv1.Deployment
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: name}, &d); err != nil {
			return false, err.Error(), nil
		}
		want := int32(1)
		if d.Spec.Replicas != nil {
			want = *d.Spec.Replicas
		}
		state := fmt.Sprintf("deployment %s: %d/%d ready, %d updated", name, d.Status.ReadyReplicas, want, d.Status.UpdatedReplicas)
		return d.Status.ObservedGeneration == d.Generation && d.Status.ReadyReplicas == want && d.Status.UpdatedReplicas == want, state, nil
	})
}

// run runs a command, returning its stdout; its stderr goes into the error.
func (cl *cluster) run(ctx context.Context, name string, args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = cl.repo
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return "", fmt.Errorf("%s %s: %w\n%s%s", filepath.Base(name), strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), nil
}

// poll calls cond every half second until it is true, an error, or timeout;
// the error then says the last state cond saw.
func poll(ctx context.Context, timeout time.Duration, cond func() (bool, string, error)) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	last := ""
	for {
		done, state, err := cond()
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		last = state
		select {
		case <-ctx.Done():
			return fmt.Errorf("not within %s: %s", timeout, last)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dump writes what a failed test needs to be understood into the test log:
// pods, events, and the logs of popconnect's pods.
func (cl *cluster) dump(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, args := range [][]string{
		{"get", "nodes,pods,deployments,services,networkpolicies", "-A", "-o", "wide"},
		{"get", "populationgateways,agencyconnections,certificates", "-A"},
		{"get", "events", "-A", "--sort-by=.lastTimestamp"},
		{"logs", "-n", systemNamespace, "-l", "app.kubernetes.io/name=popconnect", "--all-containers", "--tail=100", "--prefix"},
		{"logs", "-n", systemNamespace, "-l", "app.kubernetes.io/name=popconnect-gateway", "--all-containers", "--tail=100", "--prefix"},
		{"logs", "-n", certManagerNamespace, "-l", "app.kubernetes.io/instance=" + certManagerRelease, "--all-containers", "--tail=100", "--prefix"},
	} {
		out, err := cl.run(ctx, cl.kubectl, args...)
		if err != nil {
			t.Logf("kubectl %s: %v", strings.Join(args, " "), err)
			continue
		}
		t.Logf("kubectl %s:\n%s", strings.Join(args, " "), out)
	}
}

func ptr[T any](v T) *T { return &v }

// conditionTrue reports whether obj's condition typ is True, and says what
// it is otherwise.
func conditionTrue(conds []metav1.Condition, typ string) (bool, string) {
	c := apimeta.FindStatusCondition(conds, typ)
	if c == nil {
		return false, typ + " not reported"
	}
	return c.Status == metav1.ConditionTrue, fmt.Sprintf("%s=%s %s: %s", typ, c.Status, c.Reason, c.Message)
}
