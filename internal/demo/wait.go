package demo

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

const pollInterval = 200 * time.Millisecond

// poll calls cond until it returns true, the manager exits, ctx ends or
// timeout passes; describe explains the state on timeout.
func (r *runner) poll(ctx context.Context, timeout time.Duration, cond func(context.Context) (bool, error), describe func() string) error {
	deadline := time.Now().Add(timeout)
	for {
		done, err := cond(ctx)
		if err != nil {
			return err
		}
		if done {
			return nil
		}
		if r.manager != nil {
			if err := r.manager.exited(); err != nil {
				return err
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not within %v: %s", timeout, describe())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(pollInterval):
		}
	}
}

// readyState summarises a connection's Ready condition for messages.
func readyState(ac *popv1.AgencyConnection) (bool, string) {
	c := meta.FindStatusCondition(ac.Status.Conditions, popv1.ConditionReady)
	if c == nil {
		return false, "no Ready condition yet"
	}
	ok := c.Status == metav1.ConditionTrue && c.ObservedGeneration == ac.Generation
	return ok, fmt.Sprintf("Ready=%s %s: %s", c.Status, c.Reason, c.Message)
}

func (r *runner) waitConnections(ctx context.Context) error {
	var list popv1.AgencyConnectionList
	cond := func(ctx context.Context) (bool, error) {
		if err := r.env.Client.List(ctx, &list, client.InNamespace(r.opts.Namespace)); err != nil {
			return false, fmt.Errorf("listing connections: %w", err)
		}
		for i := range list.Items {
			if ok, _ := readyState(&list.Items[i]); !ok {
				return false, nil
			}
		}
		return len(list.Items) > 0, nil
	}
	describe := func() string {
		var s []string
		for i := range list.Items {
			_, st := readyState(&list.Items[i])
			s = append(s, list.Items[i].Name+": "+st)
		}
		return "connections not Ready: " + strings.Join(s, "; ")
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, cond, describe); err != nil {
		return err
	}
	r.connNames = map[string]string{}
	codes := make([]string, 0, len(list.Items))
	for _, ac := range list.Items {
		r.connNames[ac.Spec.AgencyCode] = ac.Name
		codes = append(codes, ac.Spec.AgencyCode)
	}
	sort.Strings(codes)
	if err := r.n.expect(len(list.Items) == 5, "all %d connections Ready=True in %s (%s)", len(list.Items), r.n.since(), strings.Join(codes, ", ")); err != nil {
		return err
	}
	if _, err := r.kubectl(ctx, true, "get", "ac", "-n", r.opts.Namespace); err != nil {
		return err
	}
	out, err := r.kubectl(ctx, true, "get", "certificates,secrets", "-n", r.opts.Namespace)
	if err != nil {
		return err
	}
	return r.n.expect(strings.Contains(out, "ministry-of-health-client-tls"), "cert-manager issued each agency's client certificate into its own Secret")
}
