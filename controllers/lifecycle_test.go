package controllers_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller/controllerutil"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/controllers"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestCrossNamespaceDeletion: a connection to a gateway in another
// namespace holds a finalizer for its NetworkPolicy there; deleting the
// connection removes that policy and the policy entry, and everything
// else it made is owned by it (the garbage collector removes it on a real
// cluster; none runs under envtest).
func TestCrossNamespaceDeletion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "xns-gw")
	admitAllNamespaces(t, f.gateway)
	agencyNS := newNamespace(t, "xns-agency")
	conn := &popv1.AgencyConnection{}
	readSample(t, sampleConnections[0], conn)
	conn.Namespace = agencyNS
	conn.Spec.AgencyCode = "BYT-" + strings.ToUpper(agencyNS[len(agencyNS)-5:])
	conn.Spec.GatewayRef.Namespace = f.ns
	must(t, s.c.Create(ctx, conn), "creating connection")
	ready := waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	if !controllerutil.ContainsFinalizer(ready, controllers.FinalizerNetworkPolicy) {
		t.Fatalf("finalizers %v lack %s", ready.Finalizers, controllers.FinalizerNetworkPolicy)
	}
	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.ConnectionNetworkPolicyName(ready)}}
	get(t, np)
	if len(np.OwnerReferences) != 0 {
		t.Errorf("a cross-namespace NetworkPolicy has owner references %v", np.OwnerReferences)
	}

	must(t, s.c.Delete(ctx, ready), "deleting connection")
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(ctx, client.ObjectKeyFromObject(ready), &popv1.AgencyConnection{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})
	if err := s.c.Get(ctx, client.ObjectKeyFromObject(np), &networkingv1.NetworkPolicy{}); !apierrors.IsNotFound(err) {
		t.Errorf("NetworkPolicy in the gateway's namespace survived the connection: %v", err)
	}
	waitShard(t, f.gateway, ready.Spec.AgencyCode, waitShort, "absent", func(e *policy.Agency) bool { return e == nil })
	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: agencyNS, Name: ready.Name + "-client"}}
	if err := s.c.Get(ctx, client.ObjectKeyFromObject(cert), cert); err == nil && !ownedBy(cert, ready.UID) {
		t.Errorf("Certificate left without an owner reference to the deleted connection")
	}
}

// TestGatewayDeletion: every object a gateway made is owned by it, so the
// garbage collector removes them all on a real cluster.
func TestGatewayDeletion(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "gw-delete")
	conn := f.connection(t, sampleConnections[3], nil)
	waitCondition(t, conn, popv1.ConditionProgrammed, metav1.ConditionTrue, "", waitLong)
	// The shard and the workload are written by two reconcilers: wait
	// for the workload too.
	testenv.Poll(t, waitShort, func() (bool, error) {
		var deps appsv1.DeploymentList
		var nps networkingv1.NetworkPolicyList
		if err := s.c.List(ctx, &deps, client.InNamespace(f.ns)); err != nil {
			return false, err
		}
		err := s.c.List(ctx, &nps, client.InNamespace(f.ns), client.MatchingLabels{render.LabelComponent: "default-deny"})
		return len(deps.Items) > 0 && len(nps.Items) > 0, err
	})
	gw := &popv1.PopulationGateway{}
	must(t, s.c.Get(ctx, client.ObjectKeyFromObject(f.gateway), gw), "reading gateway")
	must(t, s.c.Delete(ctx, gw), "deleting gateway")

	var made []client.Object
	var cms corev1.ConfigMapList
	must(t, s.c.List(ctx, &cms, client.InNamespace(f.ns), client.MatchingLabels{render.LabelManagedBy: render.ManagedByValue}), "listing")
	for i := range cms.Items {
		made = append(made, &cms.Items[i])
	}
	var deps appsv1.DeploymentList
	must(t, s.c.List(ctx, &deps, client.InNamespace(f.ns)), "listing")
	for i := range deps.Items {
		made = append(made, &deps.Items[i])
	}
	var nps networkingv1.NetworkPolicyList
	must(t, s.c.List(ctx, &nps, client.InNamespace(f.ns), client.MatchingLabels{render.LabelComponent: "default-deny"}), "listing")
	for i := range nps.Items {
		made = append(made, &nps.Items[i])
	}
	if len(made) < 3 {
		t.Fatalf("found %d gateway children, want shards, Deployment and NetworkPolicy", len(made))
	}
	for _, o := range made {
		if !ownedBy(o, gw.UID) {
			t.Errorf("%T %s is not owned by the deleted gateway", o, o.GetName())
		}
	}
	// The connection now points at nothing and says so.
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionFalse, popv1.ReasonGatewayNotFound, waitShort)
}

func ownedBy(o client.Object, uid types.UID) bool {
	for _, ref := range o.GetOwnerReferences() {
		if ref.UID == uid && ref.BlockOwnerDeletion != nil && *ref.BlockOwnerDeletion {
			return true
		}
	}
	return false
}

// TestChildrenRestored: a child edited or deleted by hand is put back.
func TestChildrenRestored(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "restore")
	conn := f.connection(t, sampleConnections[3], nil)
	conn = waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)

	np := &networkingv1.NetworkPolicy{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.ConnectionNetworkPolicyName(conn)}}
	get(t, np)
	must(t, s.c.Delete(ctx, np), "deleting NetworkPolicy")
	testenv.Poll(t, waitShort, func() (bool, error) {
		got := &networkingv1.NetworkPolicy{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), got)
		return err == nil && got.UID != np.UID, client.IgnoreNotFound(err)
	})
	// An edited spec too: the cache holds only its digest (cache_slim.go).
	edit(t, np, "editing NetworkPolicy", func() {
		np.Spec.Ingress[0].From = []networkingv1.NetworkPolicyPeer{{IPBlock: &networkingv1.IPBlock{CIDR: "0.0.0.0/0"}}}
	})
	testenv.Poll(t, waitShort, func() (bool, error) {
		got := &networkingv1.NetworkPolicy{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(np), got)
		return err == nil && len(got.Spec.Ingress) == 1 && len(got.Spec.Ingress[0].From) > 0 &&
			(got.Spec.Ingress[0].From[0].IPBlock == nil || got.Spec.Ingress[0].From[0].IPBlock.CIDR != "0.0.0.0/0"), err
	})

	cert := &cmapi.Certificate{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: conn.Name + "-client"}}
	edit(t, cert, "editing Certificate", func() {
		cert.Spec.URIs = []string{"spiffe://popconnect.io/agency/SOMEONE-ELSE"}
	})
	testenv.Poll(t, waitShort, func() (bool, error) {
		got := &cmapi.Certificate{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(cert), got)
		return err == nil && len(got.Spec.URIs) == 1 && got.Spec.URIs[0] == render.AgencyURI(conn.Spec.AgencyCode), err
	})

	shard := &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.ShardName(f.gateway.Name, render.ShardIndex(conn.Spec.AgencyCode))}}
	edit(t, shard, "editing shard", func() {
		shard.Data[policy.ShardDataKey] = `{"version":"forged","agencies":[]}`
	})
	waitShard(t, f.gateway, conn.Spec.AgencyCode, waitShort, "restored", func(e *policy.Agency) bool { return e != nil && !e.Suspended })

	dep := &appsv1.Deployment{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: render.NamesFor(f.gateway).Deployment}}
	edit(t, dep, "editing Deployment", func() {
		dep.Spec.Template.Spec.Containers[0].Image = "evil.example/gateway:latest"
	})
	testenv.Poll(t, waitShort, func() (bool, error) {
		got := &appsv1.Deployment{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(dep), got)
		return err == nil && got.Spec.Template.Spec.Containers[0].Image != "evil.example/gateway:latest", err
	})
}

// TestRestartIsQuiet: a new manager taking over a converged cluster
// creates no duplicate child and writes nothing. The new manager re-reads
// the objects of every test that ran before it.
func TestRestartIsQuiet(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "restart")
	var conns []*popv1.AgencyConnection
	for _, file := range sampleConnections {
		conns = append(conns, f.connection(t, file, nil))
	}
	for _, c := range conns {
		waitCondition(t, c, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	}
	testenv.Poll(t, waitShort, func() (bool, error) {
		gw := &popv1.PopulationGateway{}
		err := s.c.Get(ctx, client.ObjectKeyFromObject(f.gateway), gw)
		return err == nil && gw.Status.ActiveConnections == int32(len(conns)) && gw.Status.ObservedGeneration == gw.Generation, err
	})

	s.stopManager()
	s.writes.reset()
	pinned := pinnedSerials(t)
	stop, err := startManagerForSuite()
	if err != nil {
		t.Fatal(err)
	}
	s.stopManager = stop
	// The new manager lists and reconciles every object of the suite; a
	// quiet period this long covers its start and all of that work.
	quiet := 15 * time.Second
	time.Sleep(quiet)
	if n, what := s.writes.snapshot(); n != 0 {
		// cert-manager sometimes issues a certificate a second time just
		// after the first (its trigger controller can judge the Secret from
		// a cache older than the Certificate). One that did so around the
		// restart left the cluster not converged: pinning the new
		// certificate is the new manager's work, not a restart's write.
		explained := reissuedWrites(t, pinned)
		var unexplained []string
		for _, w := range what {
			if !explained(w) {
				unexplained = append(unexplained, w)
			}
		}
		switch {
		case n > len(what) || len(unexplained) > 0:
			t.Errorf("the restarted manager made %d API writes on a converged cluster, want 0: %v", n, what)
		default:
			t.Logf("the restarted manager pinned certificates cert-manager issued again around the restart: %v", what)
		}
	}
	var certs cmapi.CertificateList
	must(t, s.c.List(ctx, &certs, client.InNamespace(f.ns)), "listing Certificates")
	if want := len(conns) + 1; len(certs.Items) != want { // plus the gateway's serving certificate
		t.Errorf("%d Certificates in the namespace, want %d", len(certs.Items), want)
	}
	var nps networkingv1.NetworkPolicyList
	must(t, s.c.List(ctx, &nps, client.InNamespace(f.ns)), "listing NetworkPolicies")
	if want := len(conns) + 1; len(nps.Items) != want { // plus the default deny
		t.Errorf("%d NetworkPolicies in the namespace, want %d", len(nps.Items), want)
	}
}

// pinnedSerials are the serial numbers the connections' statuses name, by
// connection, cluster-wide.
func pinnedSerials(t *testing.T) map[types.NamespacedName]string {
	t.Helper()
	var list popv1.AgencyConnectionList
	must(t, s.c.List(context.Background(), &list), "listing connections")
	out := map[types.NamespacedName]string{}
	for i := range list.Items {
		if st := list.Items[i].Status.Certificate; st != nil {
			out[client.ObjectKeyFromObject(&list.Items[i])] = st.SerialNumber
		}
	}
	return out
}

// reissuedWrites says which writes ("PATCH /path") pin a certificate
// cert-manager issued after pinned was read, or that the stopped manager
// had not pinned yet: those of a connection whose Secret now holds another
// serial than its status named then. They are its status, its entry's
// shard, its gateway's status and the events of its namespace (its Ready
// event, after the moment its certificate was being issued).
func reissuedWrites(t *testing.T, pinned map[types.NamespacedName]string) func(string) bool {
	t.Helper()
	ctx := context.Background()
	var paths, events []string
	var list popv1.AgencyConnectionList
	must(t, s.c.List(ctx, &list), "listing connections")
	for i := range list.Items {
		conn := &list.Items[i]
		was, ok := pinned[client.ObjectKeyFromObject(conn)]
		if !ok || conn.Status.Certificate == nil {
			continue
		}
		secret := &corev1.Secret{}
		err := s.c.Get(ctx, client.ObjectKey{Namespace: conn.Namespace, Name: conn.Status.Certificate.SecretName}, secret)
		if err != nil || len(secret.Data["tls.crt"]) == 0 {
			continue
		}
		if strings.ToUpper(parseCert(t, secret.Data["tls.crt"]).SerialNumber.Text(16)) == was {
			continue
		}
		t.Logf("cert-manager issued the certificate of %s/%s again around the restart", conn.Namespace, conn.Name)
		gwNS := conn.Spec.GatewayRef.Namespace
		if gwNS == "" {
			gwNS = conn.Namespace
		}
		gw := conn.Spec.GatewayRef.Name
		paths = append(paths,
			"/apis/popconnect.io/v1alpha1/namespaces/"+conn.Namespace+"/agencyconnections/"+conn.Name+"/status",
			"/api/v1/namespaces/"+gwNS+"/configmaps/"+render.ShardName(gw, render.ShardIndex(conn.Spec.AgencyCode)),
			"/apis/popconnect.io/v1alpha1/namespaces/"+gwNS+"/populationgateways/"+gw+"/status")
		events = append(events, "/apis/events.k8s.io/v1/namespaces/"+conn.Namespace+"/events")
	}
	return func(write string) bool {
		_, path, _ := strings.Cut(write, " ")
		return slices.Contains(paths, path) || slices.ContainsFunc(events, func(p string) bool { return strings.HasPrefix(path, p) })
	}
}
