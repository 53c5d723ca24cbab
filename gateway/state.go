package gateway

import (
	"fmt"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/ratelimit"
)

// alwaysReturned is written back in every record: the caller named the
// citizen, and a batch response needs it to tell records apart.
const alwaysReturned = "nationalId"

// state is one compiled policy. It is immutable once published; requests
// read it through an atomic pointer, so a swap never blocks them.
type state struct {
	version  string
	agencies map[string]*agencyState
}

// agencyState is one agency's compiled entry.
type agencyState struct {
	entry    policy.Agency
	ops      opSet
	trie     *filter.Trie // allowed fields plus alwaysReturned
	limiter  ratelimit.Admitter
	conflict bool // present in two shards with different entries: denied
	// delay is the entry's disclosureDelay, parsed.
	delay time.Duration
	// pinned is set when the entry has certificateSHA256 (even empty):
	// only a leaf whose digest is in pins is accepted.
	pinned bool
	pins   pinSet
	// metrics caches the agency's metric children. It is made on the
	// agency's first request rather than at compile time, so a policy of
	// 10,000 agencies costs nothing until they call, and it lives as long
	// as the entry is unchanged across reloads.
	metrics atomic.Pointer[metrics.Agency]
}

// metricsOf returns the agency's metric cache, making it on first use.
func (a *agencyState) metricsOf(m *metrics.Metrics) *metrics.Agency {
	if am := a.metrics.Load(); am != nil {
		return am
	}
	am := m.ForAgency(a.entry.AgencyCode)
	if !a.metrics.CompareAndSwap(nil, am) {
		return a.metrics.Load()
	}
	return am
}

// opSlot is an operation's index in metrics.Agency.
func opSlot(op policy.Operation) int {
	switch op {
	case policy.OperationLookup:
		return 0
	case policy.OperationVerify:
		return 1
	case policy.OperationBatchLookup:
		return 2
	case policy.OperationAccessHistory:
		return 3
	}
	return -1
}

type opSet uint8

func (s opSet) has(op policy.Operation) bool { return s&opBit(op) != 0 }

func opBit(op policy.Operation) opSet {
	if i := opSlot(op); i >= 0 {
		return 1 << i
	}
	return 0
}

// compile builds a state from a merged policy. Entries unchanged since prev
// are reused as they are (trie and limiter included), so a reload of 10,000
// agencies that changes one compiles one, and limiter state survives.
func compile(m policy.Merged, prev *state, loc *time.Location) (*state, error) {
	return compileWith(m, prev, loc, ratelimit.Local{})
}

// compileWith is compile with the agencies' limiters made by store.
func compileWith(m policy.Merged, prev *state, loc *time.Location, store ratelimit.Store) (*state, error) {
	s := &state{version: m.Version, agencies: make(map[string]*agencyState, len(m.Agencies)+len(m.Conflicts))}
	tries := map[string]*filter.Trie{} // shared between agencies with the same fields
	for code, a := range m.Agencies {
		var old *agencyState
		if prev != nil {
			old = prev.agencies[code]
		}
		if old != nil && !old.conflict && policy.SameEntry(old.entry, a) {
			s.agencies[code] = old
			continue
		}
		fields := append(slices.Clone(a.AllowedFields), alwaysReturned)
		slices.Sort(fields)
		fields = slices.Compact(fields)
		key := strings.Join(fields, ",")
		trie := tries[key]
		if trie == nil {
			var err error
			if trie, err = filter.Compile(fields); err != nil {
				return nil, fmt.Errorf("agency %s: %w", code, err)
			}
			tries[key] = trie
		}
		var ops opSet
		for _, op := range a.AllowedOperations {
			ops |= opBit(op)
		}
		var pins pinSet
		if a.CertificateSHA256 != nil {
			var err error
			if pins, err = compilePins(a.CertificateSHA256); err != nil {
				return nil, fmt.Errorf("agency %s: %w", code, err)
			}
		}
		var prevLimiter ratelimit.Admitter
		if old != nil {
			prevLimiter = old.limiter
		}
		s.agencies[code] = &agencyState{
			entry:   a,
			ops:     ops,
			trie:    trie,
			limiter: store.Next(prevLimiter, code, a.RateLimit, loc),
			delay:   a.Delay(),
			pinned:  a.CertificateSHA256 != nil,
			pins:    pins,
		}
	}
	for _, code := range m.Conflicts {
		s.agencies[code] = &agencyState{entry: policy.Agency{AgencyCode: code}, conflict: true}
	}
	return s, nil
}
