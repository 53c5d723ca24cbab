package install_test

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	rbacv1 "k8s.io/api/rbac/v1"
	"k8s.io/apimachinery/pkg/runtime"
)

// managerGrants is every verb the manager's ClusterRole may grant, each with
// why the manager needs it. The generated role (controller-gen, from the
// +kubebuilder:rbac markers) must grant exactly these: a new verb needs a
// reason here, and a verb no longer needed must go.
var managerGrants = map[string]string{
	// The three kinds it reconciles: read through the cache, status
	// written with one patch per reconcile.
	"popconnect.io/fieldcatalogs:get,list,watch":                      "cache of the reconciled kind",
	"popconnect.io/fieldcatalogs/status:get,patch":                    "conditions",
	"popconnect.io/populationgateways:get,list,watch":                 "cache of the reconciled kind",
	"popconnect.io/populationgateways/status:get,patch":               "conditions",
	"popconnect.io/populationgateways/finalizers:update":              "children's owner references block the gateway's deletion (OwnerReferencesPermissionEnforcement)",
	"popconnect.io/agencyconnections:get,list,patch,watch":            "cache; patch adds and removes the NetworkPolicy cleanup finalizer",
	"popconnect.io/agencyconnections/status:get,patch":                "conditions",
	"popconnect.io/agencyconnections/finalizers:update":               "the Certificate's owner reference blocks the connection's deletion",
	"cert-manager.io/certificates:create,delete,get,list,patch,watch": "client and serving Certificates: applied, watched, deleted when a connection is refused",
	"cert-manager.io/certificaterequests:get,list":                    "the issued certificate's serial number and digest (the pin), read past the cache",
	"cert-manager.io/certificates/status:get,patch":                   "a revoked current certificate is renewed: the Issuing condition, as cmctl renew sets it, once per revoked serial",
	// Metadata only: the labels allowedConnections.namespaces.selector matches.
	"core/namespaces:get,list,watch": "whether a connection's namespace may use its gateway (allowedConnections Selector)",
	// Children in the gateway's namespace; the caches hold only objects
	// labelled managed-by=popconnect. get: the uncached read that tells a
	// child not yet cached from someone else's object of the same name.
	"core/configmaps:create,delete,get,list,patch,watch":                   "policy shards: created, applied, deleted when no longer needed",
	"core/serviceaccounts:create,get,list,patch,watch":                     "the gateway's ServiceAccount",
	"core/services:create,get,list,patch,watch":                            "the gateway's Service",
	"apps/deployments:create,get,list,patch,watch":                         "the gateway's Deployment",
	"policy/poddisruptionbudgets:create,get,list,patch,watch":              "the gateway's PodDisruptionBudget",
	"rbac.authorization.k8s.io/roles:create,get,list,patch,watch":          "the gateway's policy-reader Role (configmaps get/list/watch, which the manager holds itself: no escalate or bind)",
	"rbac.authorization.k8s.io/rolebindings:create,get,list,patch,watch":   "binds that Role to the gateway's ServiceAccount",
	"networking.k8s.io/networkpolicies:create,delete,get,list,patch,watch": "connections' and gateways' NetworkPolicies; delete: stale ones of a connection",
	// No list or watch: the manager never holds or enumerates Secrets.
	"core/secrets:create,get": "create: the gateway's audit key, once; get: one metadata-only read by name per gateway and process start, whether the key exists and is the gateway's (someone else's is refused)",
	// Only the API server's own endpoints are cached (namespace default,
	// label kubernetes.io/service-name=kubernetes).
	"discovery.k8s.io/endpointslices:list,watch": "the gateway's egress names the API server's addresses",
	"events.k8s.io/events:create,patch":          "Warning events with the conditions' reasons",
	// Read only, never exec, log, evict or write: the cache holds only
	// managed-by=popconnect pods (the gateways'), slimmed to their
	// readiness and IPs.
	"core/pods:get,list,watch": "AuditReady: which gateway pods to ask for their audit state (GET /auditz on their IP), and when (their readiness)",
}

// TestManagerRBACIsLeastPrivilege reads the generated manager ClusterRole
// and checks that it grants exactly managerGrants: in particular no list or
// watch of Secrets (finding 8: the manager could read every Secret of the
// cluster), no wildcard and no escalate, bind or impersonate; and, whatever
// managerGrants says, no exec into pods and no write to them.
func TestManagerRBACIsLeastPrivilege(t *testing.T) {
	u := onlyOne(t, readObjects(t, "config/rbac/role.yaml"), "ClusterRole")
	var role rbacv1.ClusterRole
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &role); err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, rule := range role.Rules {
		if len(rule.ResourceNames) != 0 || len(rule.NonResourceURLs) != 0 {
			t.Errorf("unexpected rule shape %+v", rule)
		}
		verbs := append([]string(nil), rule.Verbs...)
		sort.Strings(verbs)
		for _, g := range rule.APIGroups {
			if g == "" {
				g = "core"
			}
			for _, r := range rule.Resources {
				key := fmt.Sprintf("%s/%s:%s", g, r, strings.Join(verbs, ","))
				got[key] = true
				if _, ok := managerGrants[key]; !ok {
					t.Errorf("the manager's ClusterRole grants %s, which managerGrants does not justify", key)
				}
			}
		}
	}
	// Whatever managerGrants says: the manager asks gateway pods for their
	// audit state over the network, and never needs a shell in them, their
	// logs, or to change them.
	for key := range got {
		resource, verbs, _ := strings.Cut(key, ":")
		switch resource {
		case "core/pods/exec", "core/pods/attach", "core/pods/portforward", "core/pods/proxy", "core/pods/eviction", "core/pods/ephemeralcontainers":
			t.Errorf("the manager's ClusterRole grants %s", key)
		case "core/pods", "core/pods/status":
			for _, v := range strings.Split(verbs, ",") {
				if v != "get" && v != "list" && v != "watch" {
					t.Errorf("the manager's ClusterRole grants %s: %s on pods", key, v)
				}
			}
		}
	}
	for key := range managerGrants {
		if !got[key] {
			t.Errorf("managerGrants justifies %s, which the generated ClusterRole does not grant exactly (remove or correct it)", key)
		}
	}
}
