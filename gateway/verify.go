package gateway

import (
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/verifylimit"
)

// verify serves POST /v1/citizens:verify. The agency learns one bit,
// whether every submitted value matches; the comparison happens upstream,
// and only fields the agency may read can be compared (otherwise it could
// learn a forbidden field by guessing).
func (g *Gateway) verify(x *exchange) *apiError {
	body, err := g.readBody(x)
	if err != nil {
		return err
	}
	req, err := parseVerifyBody(body)
	g.auditVerifyID(x, req)
	if err != nil {
		return err
	}
	for _, f := range req.fields {
		if !x.agency.trie.Allows(f.path) {
			return fieldNotAllowed(x.rec.Agency, f.path)
		}
	}
	// The guessing limit is checked before the upstream is asked: a
	// refused guess must teach nothing.
	citizen := verifyCitizen(g, x, req.nationalID)
	if v := g.guesses.Begin(x.rec.Agency, citizen, x.rec.Time); !v.Allowed {
		return verifyLimited(x.rec.Agency, v)
	}
	mismatch := false
	defer func() { g.guesses.End(x.rec.Agency, citizen, g.cfg.Now(), mismatch) }()
	for _, f := range req.fields {
		x.rec.FieldsReturned = append(x.rec.FieldsReturned, f.path)
	}

	// Re-encode what was validated rather than forwarding the client's bytes.
	up := append(make([]byte, 0, len(body)+16), `{"nationalId":"`...)
	up = append(up, req.nationalID...)
	up = append(up, '"')
	for _, f := range req.fields {
		up = append(up, ',')
		up = strconv.AppendQuote(up, f.path) // paths are ASCII letters, digits and dots
		up = append(up, ':')
		up = append(up, f.value...)
	}
	up = append(up, '}')

	res, err := g.callUpstream(x, http.MethodPost, "/v1/citizens:verify", up)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return upstreamStatusError(res.status)
	}
	match, found := false, false
	perr := filter.Members(res.body, func(key, value []byte) error {
		if string(key) != "match" {
			return nil
		}
		switch string(value) {
		case "true":
			match, found = true, true
		case "false":
			found = true
		}
		return nil
	})
	if perr != nil || !found {
		return invalidUpstream()
	}
	if match {
		x.writeJSON(g, []byte(`{"match":true}`))
	} else {
		mismatch = true
		x.writeJSON(g, []byte(`{"match":false}`))
	}
	return nil
}

// Verify's guessing limit: without one, Verify answers "is the date of
// birth X?" for every X until it says yes, and any field becomes readable.
const (
	// maxVerifyMismatches is the most mismatches an agency gets per
	// citizen in verifyWindow.
	maxVerifyMismatches = 10
	verifyWindow        = 24 * time.Hour
	// DefaultVerifyGuessCitizens is how many citizens with mismatches in
	// the window each agency's table holds by default: under 1 KB each at
	// the limit (the 64-byte hash, 10 times, their queue entries, map and
	// slice overhead), so under 10 MB per agency at worst. An agency that fills
	// its table is refused Verify for other citizens until mismatches age
	// out; nothing is evicted, since evicting would reset a guesser.
	DefaultVerifyGuessCitizens = 10_000
)

// verifyCitizen is the key of the Verify's citizen: the keyed hash of the
// national ID, the one the audit record carries, so no ID is kept.
func verifyCitizen(g *Gateway, x *exchange, nationalID string) string {
	if len(x.rec.NationalIDHashes) == 1 {
		return x.rec.NationalIDHashes[0] // auditVerifyID hashed it
	}
	return g.cfg.Audit.Hash(nationalID)
}

func newGuessGuard(citizens int) *verifylimit.Guard {
	return verifylimit.New(maxVerifyMismatches, verifyWindow, citizens)
}

// verifyLimited is the refusal of a Verify over the guessing limit.
func verifyLimited(agency string, v verifylimit.Verdict) *apiError {
	msg := fmt.Sprintf("agency %s has had %d mismatches for this citizen in 24 h; Verify of this citizen is refused until the oldest is 24 h old", agency, maxVerifyMismatches)
	if v.Full {
		msg = fmt.Sprintf("agency %s has Verify mismatches for too many citizens in 24 h; Verify of another citizen is refused until the oldest are 24 h old", agency)
	}
	e := errorf(http.StatusTooManyRequests, "verify_limit", msg)
	e.retryAfter = v.RetryAfter
	return e
}

// auditVerifyID puts the hash of the Verify's national ID in the audit
// record as soon as it parsed, so a refusal further on still names it.
func (g *Gateway) auditVerifyID(x *exchange, req *verifyRequest) {
	if req != nil && req.nationalID != "" && len(x.rec.NationalIDHashes) == 0 {
		x.hash1[0] = g.cfg.Audit.Hash(req.nationalID)
		x.rec.NationalIDHashes = x.hash1[:]
	}
}
