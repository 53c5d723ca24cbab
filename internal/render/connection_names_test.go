package render

import (
	"regexp"
	"strings"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

func connectionNamed(namespace, name string) *popv1.AgencyConnection {
	return &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: name}}
}

// connectionPolicySuffix is how every connection's NetworkPolicy name ends.
var connectionPolicySuffix = regexp.MustCompile(`-[0-9a-f]{16}$`)

// TestConnectionNetworkPolicyNamesAreUnique: names that once collided
// ("popconnect-<ns>-<name>" read the same for different splits) differ, every
// name is a valid object name and label value, and none can be a gateway
// child's name.
func TestConnectionNetworkPolicyNamesAreUnique(t *testing.T) {
	long63 := strings.Repeat("n", 63)
	long253 := strings.Repeat("abcdefghi.", 25) + "xyz"
	pairs := []struct{ a, b *popv1.AgencyConnection }{
		{connectionNamed("moh-hanoi", "ministry-of-health"), connectionNamed("moh", "hanoi-ministry-of-health")},
		{connectionNamed("a", "b-c"), connectionNamed("a-b", "c")},
		// Long names once shared their cut prefix.
		{connectionNamed(long63, long253), connectionNamed(long63, long253[:252]+"q")},
	}
	for _, p := range pairs {
		na, nb := ConnectionNetworkPolicyName(p.a), ConnectionNetworkPolicyName(p.b)
		if na == nb {
			t.Errorf("%s/%s and %s/%s share the NetworkPolicy name %s", p.a.Namespace, p.a.Name, p.b.Namespace, p.b.Name, na)
		}
		for _, n := range []string{na, nb} {
			if errs := validation.IsDNS1123Subdomain(n); len(errs) != 0 || len(n) > 63 {
				t.Errorf("%q (%d characters): %v", n, len(n), errs)
			}
			if !connectionPolicySuffix.MatchString(n) {
				t.Errorf("%q does not end in a 16-digit hash", n)
			}
		}
	}
	if got, want := ConnectionNetworkPolicyName(pairs[0].a), "popconnect-moh-hanoi-ministry-of-health-"; !strings.HasPrefix(got, want) {
		t.Errorf("name %q lost its readable prefix %q", got, want)
	}
	// A gateway's NetworkPolicy ends in a word or a 10-digit hash, never in
	// a connection's 16-digit one, however the gateway is named.
	for _, gwName := range []string{"g", "popconnect-moh", "popconnect-moh-hanoi-ministry-of-health-0123456789abcdef", long253, strings.Repeat("0", 240)} {
		n := NamesFor(gatewayNamed(gwName)).DefaultDenyPolicy
		if connectionPolicySuffix.MatchString(n) {
			t.Errorf("gateway %q's default-deny policy %q could be a connection's", gwName, n)
		}
	}
}
