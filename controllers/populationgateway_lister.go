package controllers

import (
	"context"
	"fmt"

	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// connectionLister returns every AgencyConnection in the cache, as the
// cached objects themselves: callers must not modify them.
type connectionLister func(ctx context.Context) ([]*popv1.AgencyConnection, error)

// storeConnectionLister reads the informer's store directly. The gateway's
// policy render reads every connection on every change; a client List,
// even without deep copies, copies each of 10,000 structs into a new
// slice (with GC write barriers while a collection runs): at 10,000
// connections that copy was about half of the render's CPU.
func storeConnectionLister(ctx context.Context, c cache.Cache) (connectionLister, error) {
	inf, err := c.GetInformer(ctx, &popv1.AgencyConnection{})
	if err != nil {
		return nil, fmt.Errorf("getting the AgencyConnection informer: %w", err)
	}
	withStore, ok := inf.(interface{ GetStore() toolscache.Store })
	if !ok {
		return nil, fmt.Errorf("the AgencyConnection informer (%T) exposes no store", inf)
	}
	store := withStore.GetStore()
	return func(context.Context) ([]*popv1.AgencyConnection, error) {
		objs := store.List()
		out := make([]*popv1.AgencyConnection, 0, len(objs))
		for _, o := range objs {
			conn, ok := o.(*popv1.AgencyConnection)
			if !ok {
				return nil, fmt.Errorf("unexpected %T in the AgencyConnection store", o)
			}
			out = append(out, conn)
		}
		return out, nil
	}, nil
}

// clientConnectionLister lists through a client: for a reader that is not
// an informer cache.
func clientConnectionLister(c client.Reader) connectionLister {
	return func(ctx context.Context) ([]*popv1.AgencyConnection, error) {
		var list popv1.AgencyConnectionList
		if err := c.List(ctx, &list, client.UnsafeDisableDeepCopy); err != nil {
			return nil, fmt.Errorf("listing connections: %w", err)
		}
		out := make([]*popv1.AgencyConnection, len(list.Items))
		for i := range list.Items {
			out[i] = &list.Items[i]
		}
		return out, nil
	}
}
