package demo

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"k8s.io/apimachinery/pkg/watch"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// probeInterval of the revocation probes: fine enough to time a change in
// tens of milliseconds, far below TCT's rate limit (100/s).
const probeInterval = 10 * time.Millisecond

// probe is the first gateway answer that met a condition, and when.
type probe struct {
	resp  *response
	at    time.Time
	count int
	err   error
}

// probeUntil calls the gateway as code every probeInterval until want holds,
// ctx ends or limit passes. It runs on its own goroutine while kubectl
// runs, so it touches nothing of the runner but the agency's client.
func (r *runner) probeUntil(ctx context.Context, code, path string, limit time.Duration, want func(*response) bool) probe {
	c := r.agencies[code].client
	deadline := time.Now().Add(limit)
	var p probe
	for {
		resp, err := r.call(ctx, c, http.MethodGet, path, nil)
		if err != nil {
			p.err = fmt.Errorf("GET %s as %s: %w", path, code, err)
			return p
		}
		p.count++
		if want(resp) {
			p.resp, p.at = resp, time.Now()
			return p
		}
		if time.Now().After(deadline) {
			p.err = fmt.Errorf("still %d %s after %v", resp.status, strings.TrimSpace(string(resp.body)), limit)
			return p
		}
		select {
		case <-ctx.Done():
			p.err = ctx.Err()
			return p
		case <-time.After(probeInterval):
		}
	}
}

// watchCommit reports when a watch first shows the connection with
// spec.suspended == suspended: the moment the API server accepted the
// change, within milliseconds. kubectl's own start-up and exit take a few
// hundred, so timing from kubectl would blur the measurement.
func (r *runner) watchCommit(ctx context.Context, name string, suspended bool) (<-chan time.Time, func(), error) {
	return r.watchConnection(ctx, name, func(ev watch.Event) bool {
		ac, ok := ev.Object.(*popv1.AgencyConnection)
		return ok && ac.Spec.Suspended == suspended
	})
}

// watchDeletion reports when a watch first shows the connection being
// deleted: its deletionTimestamp set (the operator's finalizer keeps it a
// moment longer) or the object gone.
func (r *runner) watchDeletion(ctx context.Context, name string) (<-chan time.Time, func(), error) {
	return r.watchConnection(ctx, name, func(ev watch.Event) bool {
		ac, ok := ev.Object.(*popv1.AgencyConnection)
		return ev.Type == watch.Deleted || ok && ac.DeletionTimestamp != nil
	})
}

// watchConnection reports the time of the first watch event on the named
// connection that matches.
func (r *runner) watchConnection(ctx context.Context, name string, match func(watch.Event) bool) (<-chan time.Time, func(), error) {
	wc, err := client.NewWithWatch(r.env.Config, client.Options{Scheme: r.env.Scheme})
	if err != nil {
		return nil, nil, fmt.Errorf("creating watch client: %w", err)
	}
	w, err := wc.Watch(ctx, &popv1.AgencyConnectionList{}, client.InNamespace(r.opts.Namespace), client.MatchingFields{"metadata.name": name})
	if err != nil {
		return nil, nil, fmt.Errorf("watching %s: %w", name, err)
	}
	at := make(chan time.Time, 1)
	go func() {
		for ev := range w.ResultChan() {
			if match(ev) {
				at <- time.Now()
				return
			}
		}
	}()
	return at, w.Stop, nil
}

// timedPatch sets spec.suspended with kubectl while probing the gateway,
// and returns the first answer meeting want and how long after the API
// server accepted the change it came.
func (r *runner) timedPatch(ctx context.Context, code, path string, suspended bool, want func(*response) bool) (*response, time.Duration, error) {
	name := r.connNames[code]
	committed, stopWatch, err := r.watchCommit(ctx, name, suspended)
	if err != nil {
		return nil, 0, err
	}
	defer stopWatch()
	patch := fmt.Sprintf(`{"spec":{"suspended":%t}}`, suspended)
	return r.timedChange(ctx, code, path, committed, fmt.Sprintf("spec.suspended=%t", suspended), want,
		"patch", "ac", name, "-n", r.opts.Namespace, "--type=merge", "-p", patch)
}

// timedChange runs kubectl with args while code probes the gateway, and
// returns the first answer meeting want and how long after committed
// fired (the API server accepted the change) it came.
func (r *runner) timedChange(ctx context.Context, code, path string, committed <-chan time.Time, what string, want func(*response) bool, args ...string) (*response, time.Duration, error) {
	probed := make(chan probe, 1)
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// Generous: the probe must outlast kubectl; the bound is checked by
	// the caller.
	go func() { probed <- r.probeUntil(pctx, code, path, r.opts.SuspendBound+30*time.Second, want) }()

	if _, err := r.kubectl(ctx, true, args...); err != nil {
		return nil, 0, err
	}
	var at time.Time
	select {
	case at = <-committed:
	case <-time.After(r.opts.ReadyTimeout):
		return nil, 0, fmt.Errorf("the watch never showed %s", what)
	}
	p := <-probed
	r.responses += p.count
	if p.err != nil {
		return nil, 0, p.err
	}
	return p.resp, max(0, p.at.Sub(at)), nil
}

func (r *runner) suspendResume(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	path := "/v1/citizens/" + c.NationalID + "?fields=fullName,taxCode"
	resp, err := r.agencyCall(ctx, "TCT", http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == http.StatusOK, "TCT is served before the suspension (got %d)", resp.status); err != nil {
		return err
	}
	r.n.info("while kubectl runs, TCT calls GET %s every %v", path, probeInterval)
	refused, took, err := r.timedPatch(ctx, "TCT", path, true, func(x *response) bool {
		return x.status == http.StatusForbidden && errorCode(x.body) == "agency_suspended"
	})
	if err != nil {
		return fmt.Errorf("suspension not enforced: %w", err)
	}
	r.shown = append(r.shown, shownRequest{requestID: refused.requestID, what: "TCT while suspended (403)"})
	r.n.info("-> %d %s", refused.status, strings.TrimSpace(string(refused.body)))
	note := ""
	if took > suspendTarget {
		note = fmt.Sprintf(" (WARNING: above the %v target; is the machine loaded?)", suspendTarget)
	}
	if err := r.n.expect(took <= r.opts.SuspendBound, "refused %d ms after the API server accepted the patch (bound %v)%s",
		took.Milliseconds(), r.opts.SuspendBound, note); err != nil {
		return err
	}
	r.suspendTook = took
	if err := r.waitReadyReason(ctx, "TCT", "Suspended"); err != nil {
		return err
	}
	if _, err := r.kubectl(ctx, true, "get", "ac", r.connNames["TCT"], "-n", r.opts.Namespace, "-o", "wide"); err != nil {
		return err
	}

	_, took, err = r.timedPatch(ctx, "TCT", path, false, func(x *response) bool { return x.status == http.StatusOK })
	if err != nil {
		return fmt.Errorf("resumption not enforced: %w", err)
	}
	if err := r.n.expect(took <= r.opts.SuspendBound, "served again %d ms after the API server accepted the patch", took.Milliseconds()); err != nil {
		return err
	}
	if err := r.waitReadyReason(ctx, "TCT", ""); err != nil {
		return err
	}
	if err := r.deleteConnection(ctx); err != nil {
		return err
	}
	r.n.info("revocation measured: suspension -> refusal %d ms, deletion -> refusal %d ms (contract: within %v)",
		r.suspendTook.Milliseconds(), r.deleteTook.Milliseconds(), suspendTarget)
	return nil
}

// deletedAgency is the agency whose connection the demo deletes; no later
// step uses it.
const deletedAgency = "BHXH"

// deleteConnection deletes an agency's AgencyConnection with kubectl
// while the agency probes the gateway, and times the refusal: a deleted
// connection leaves the policy shards, so the gateway no longer knows the
// agency (403 agency_unknown) although its certificate is still valid.
func (r *runner) deleteConnection(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	code, name := deletedAgency, r.connNames[deletedAgency]
	path := "/v1/citizens/" + c.NationalID + "?fields=fullName"
	r.n.info("deleting a connection revokes it too: %s (%s) is served now, then its AgencyConnection is deleted", code, name)
	resp, err := r.agencyCall(ctx, code, http.MethodGet, path, nil, "")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == http.StatusOK, "%s is served before the deletion (got %d)", code, resp.status); err != nil {
		return err
	}
	committed, stopWatch, err := r.watchDeletion(ctx, name)
	if err != nil {
		return err
	}
	defer stopWatch()
	refused, took, err := r.timedChange(ctx, code, path, committed, "the deletion", func(x *response) bool {
		return x.status == http.StatusForbidden && errorCode(x.body) == "agency_unknown"
	}, "delete", "ac", name, "-n", r.opts.Namespace)
	if err != nil {
		return fmt.Errorf("deletion not enforced: %w", err)
	}
	r.shown = append(r.shown, shownRequest{requestID: refused.requestID, what: code + " after its connection was deleted (403)"})
	r.n.info("-> %d %s", refused.status, strings.TrimSpace(string(refused.body)))
	note := ""
	if took > suspendTarget {
		note = fmt.Sprintf(" (WARNING: above the %v target; is the machine loaded?)", suspendTarget)
	}
	if err := r.n.expect(took <= r.opts.SuspendBound, "deleted: refused %d ms after the API server accepted the deletion, with its certificate still valid (bound %v)%s",
		took.Milliseconds(), r.opts.SuspendBound, note); err != nil {
		return err
	}
	r.deleteTook = took
	r.deleted = append(r.deleted, code)
	return nil
}

// waitReadyReason waits until code's connection is Ready=False with
// reason, or Ready=True when reason is empty.
func (r *runner) waitReadyReason(ctx context.Context, code, reason string) error {
	state := ""
	cond := func(ctx context.Context) (bool, error) {
		ac, err := r.connection(ctx, code)
		if err != nil {
			return false, err
		}
		ok, st := readyState(ac)
		state = st
		if reason == "" {
			return ok, nil
		}
		return strings.HasPrefix(st, "Ready=False "+reason+":"), nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, cond, func() string { return code + ": " + state }); err != nil {
		return err
	}
	return r.n.expect(true, "%s connection: %s", code, state)
}
