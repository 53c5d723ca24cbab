package main

import (
	"context"
	"fmt"
	"sync"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/rest"
	toolscache "k8s.io/client-go/tools/cache"
	"sigs.k8s.io/controller-runtime/pkg/cache"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// programmedTracker counts the connections of a namespace whose
// Programmed condition is True for their current generation. It watches
// (one LIST, then a WATCH): polling 10,000 objects would load the API
// server the bench is measuring.
type programmedTracker struct {
	mu         sync.Mutex
	programmed map[string]bool
	count      int
	waiters    []waiter
}

type waiter struct {
	n  int
	ch chan struct{}
}

func startTracker(ctx context.Context, cfg *rest.Config, scheme *runtime.Scheme, ns string) (*programmedTracker, error) {
	t := &programmedTracker{programmed: map[string]bool{}}
	c, err := cache.New(cfg, cache.Options{
		Scheme:            scheme,
		DefaultNamespaces: map[string]cache.Config{ns: {}},
		// Keep only what the tracker reads, so the bench's own memory and
		// CPU stay small next to the manager's.
		DefaultTransform: func(o any) (any, error) {
			conn, ok := o.(*popv1.AgencyConnection)
			if !ok {
				return o, nil
			}
			slim := &popv1.AgencyConnection{ObjectMeta: metav1.ObjectMeta{
				Namespace: conn.Namespace, Name: conn.Name, Generation: conn.Generation,
				ResourceVersion: conn.ResourceVersion,
			}}
			if p := meta.FindStatusCondition(conn.Status.Conditions, popv1.ConditionProgrammed); p != nil {
				slim.Status.Conditions = []metav1.Condition{*p}
			}
			return slim, nil
		},
	})
	if err != nil {
		return nil, fmt.Errorf("creating the tracker's cache: %w", err)
	}
	inf, err := c.GetInformer(ctx, &popv1.AgencyConnection{})
	if err != nil {
		return nil, fmt.Errorf("watching connections: %w", err)
	}
	if _, err := inf.AddEventHandler(toolscache.ResourceEventHandlerFuncs{
		AddFunc:    func(o any) { t.observe(o, false) },
		UpdateFunc: func(_, o any) { t.observe(o, false) },
		DeleteFunc: func(o any) { t.observe(o, true) },
	}); err != nil {
		return nil, fmt.Errorf("watching connections: %w", err)
	}
	go func() { _ = c.Start(ctx) }()
	if !c.WaitForCacheSync(ctx) {
		return nil, fmt.Errorf("the tracker's cache did not sync: %w", ctx.Err())
	}
	return t, nil
}

func (t *programmedTracker) observe(o any, deleted bool) {
	if d, ok := o.(toolscache.DeletedFinalStateUnknown); ok {
		o, deleted = d.Obj, true
	}
	conn, ok := o.(*popv1.AgencyConnection)
	if !ok {
		return
	}
	p := meta.FindStatusCondition(conn.Status.Conditions, popv1.ConditionProgrammed)
	now := !deleted && p != nil && p.Status == metav1.ConditionTrue && p.ObservedGeneration == conn.Generation
	t.mu.Lock()
	defer t.mu.Unlock()
	if was := t.programmed[conn.Name]; was != now {
		if now {
			t.count++
		} else {
			t.count--
		}
	}
	if now {
		t.programmed[conn.Name] = true
	} else {
		delete(t.programmed, conn.Name)
	}
	kept := t.waiters[:0]
	for _, w := range t.waiters {
		if t.count >= w.n {
			close(w.ch)
		} else {
			kept = append(kept, w)
		}
	}
	t.waiters = kept
}

// Count is how many connections are programmed now.
func (t *programmedTracker) Count() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.count
}

// atLeast returns a channel closed once n connections are programmed.
func (t *programmedTracker) atLeast(n int) <-chan struct{} {
	t.mu.Lock()
	defer t.mu.Unlock()
	ch := make(chan struct{})
	if t.count >= n {
		close(ch)
		return ch
	}
	t.waiters = append(t.waiters, waiter{n: n, ch: ch})
	return ch
}
