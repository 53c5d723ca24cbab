package controllers

import (
	"context"
	"sort"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// The store lister is exercised by every envtest suite (the manager's
// cache); this covers the fallback through a client, for readers that are
// not an informer cache.
func TestClientConnectionLister(t *testing.T) {
	scheme := runtime.NewScheme()
	if err := popv1.AddToScheme(scheme); err != nil {
		t.Fatal(err)
	}
	c := fake.NewClientBuilder().WithScheme(scheme).WithObjects(
		&popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "a", Name: "one"}},
		&popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{Namespace: "b", Name: "two"}},
	).Build()
	conns, err := clientConnectionLister(c)(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, conn := range conns {
		got = append(got, conn.Namespace+"/"+conn.Name)
	}
	sort.Strings(got)
	if len(got) != 2 || got[0] != "a/one" || got[1] != "b/two" {
		t.Errorf("listed %v, want every namespace's connections", got)
	}
}
