package controllers_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	authzv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/render"
	"github.com/popconnect/popconnect/internal/testenv"
)

// TestGatewayRBACIsLeastPrivilege asks the API server's authorizer what the
// gateway's ServiceAccount may do: read its own namespace's ConfigMaps (its
// policy shards), and nothing else.
func TestGatewayRBACIsLeastPrivilege(t *testing.T) {
	f := newFixture(t, "rbac")
	names := render.NamesFor(f.gateway)
	sa := fmt.Sprintf("system:serviceaccount:%s:%s", f.ns, names.ServiceAccount)
	testenv.Poll(t, waitShort, func() (bool, error) {
		err := s.c.Get(context.Background(), client.ObjectKey{Namespace: f.ns, Name: names.RoleBinding}, &metav1.PartialObjectMetadata{
			TypeMeta: metav1.TypeMeta{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "RoleBinding"},
		})
		return err == nil, client.IgnoreNotFound(err)
	})
	tests := []struct {
		verb, group, resource, namespace string
		allowed                          bool
	}{
		{"list", "", "configmaps", f.ns, true},
		{"watch", "", "configmaps", f.ns, true},
		{"get", "", "configmaps", f.ns, true},
		{"update", "", "configmaps", f.ns, false},
		{"create", "", "configmaps", f.ns, false},
		{"delete", "", "configmaps", f.ns, false},
		{"list", "", "configmaps", "kube-system", false},
		{"list", "", "configmaps", "", false}, // cluster-wide
		{"get", "", "secrets", f.ns, false},
		{"list", "", "secrets", f.ns, false},
		{"list", "popconnect.io", "agencyconnections", f.ns, false},
		{"get", "popconnect.io", "populationgateways", f.ns, false},
		{"create", "", "pods", f.ns, false},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprintf("%s %s/%s in %q", tc.verb, tc.group, tc.resource, tc.namespace), func(t *testing.T) {
			sar := &authzv1.SubjectAccessReview{Spec: authzv1.SubjectAccessReviewSpec{
				User:   sa,
				Groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + f.ns, "system:authenticated"},
				ResourceAttributes: &authzv1.ResourceAttributes{
					Verb: tc.verb, Group: tc.group, Resource: tc.resource, Namespace: tc.namespace,
				},
			}}
			must(t, s.c.Create(context.Background(), sar), "creating SubjectAccessReview")
			if sar.Status.Allowed != tc.allowed {
				t.Errorf("allowed = %v, want %v (%s)", sar.Status.Allowed, tc.allowed, sar.Status.Reason)
			}
		})
	}
}

// TestClientSecretDeletedIsReissued: deleting an agency's key pair makes
// cert-manager issue a new one, and the connection's status follows.
func TestClientSecretDeletedIsReissued(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t, "reissue")
	conn := f.connection(t, sampleConnections[3], nil)
	conn = waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
	oldSerial := conn.Status.Certificate.SerialNumber
	secret := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: f.ns, Name: conn.Status.Certificate.SecretName}}
	get(t, secret)
	must(t, s.c.Delete(ctx, secret), "deleting the client Secret")
	testenv.Poll(t, waitLong, func() (bool, error) {
		cur := &popv1.AgencyConnection{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), cur); err != nil {
			return false, err
		}
		st := cur.Status.Certificate
		return st != nil && st.SerialNumber != "" && st.SerialNumber != oldSerial, nil
	})
	// The status names the certificate the new Secret holds.
	testenv.Poll(t, waitLong, func() (bool, error) {
		cur := &popv1.AgencyConnection{}
		fresh := &corev1.Secret{}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(conn), cur); err != nil {
			return false, err
		}
		if err := s.c.Get(ctx, client.ObjectKeyFromObject(secret), fresh); err != nil || len(fresh.Data["tls.crt"]) == 0 {
			return false, client.IgnoreNotFound(err)
		}
		serial := strings.ToUpper(parseCert(t, fresh.Data["tls.crt"]).SerialNumber.Text(16))
		return serial == cur.Status.Certificate.SerialNumber && serial != oldSerial, nil
	})
	waitCondition(t, conn, popv1.ConditionReady, metav1.ConditionTrue, popv1.ReasonReady, waitLong)
}
