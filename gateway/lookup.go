package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/popconnect/popconnect/gateway/filter"
)

// lookup serves GET /v1/citizens/{nationalId}[?fields=a,b]. serve has
// parsed the ID from the path (x.id) and put its hash in the audit record.
func (g *Gateway) lookup(x *exchange) *apiError {
	id := x.id
	if id == "" {
		_, err := parseLookupPath(x.r.URL.Path)
		return err
	}
	fields, err := parseFields(x.r.URL.RawQuery)
	if err != nil {
		return err
	}
	trie := x.agency.trie
	if fields != nil {
		for _, f := range fields {
			if !trie.Allows(f) {
				return fieldNotAllowed(x.rec.Agency, f)
			}
		}
		sub, cerr := filter.Compile(append(fields, alwaysReturned))
		if cerr != nil {
			return errorf(http.StatusBadRequest, "invalid_request", "invalid fields")
		}
		trie = sub
	}

	res, err := g.callUpstream(x, http.MethodGet, lookupPrefix+id, nil)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return upstreamStatusError(res.status)
	}
	out, gotID, ferr := trie.FilterKey(x.out[:0], res.body, &x.seen, alwaysReturned)
	x.out = out
	if ferr != nil {
		g.cfg.Log.Warn("upstream record rejected", "requestId", x.rec.RequestID, "reason", ferr.Error())
		return invalidUpstream()
	}
	// A record for another citizen (an upstream bug, a cache mix-up) must
	// never reach the agency, even projected.
	if got, ok := jsonStringBytes(gotID); !ok || string(got) != id {
		g.cfg.Log.Warn("upstream record rejected", "requestId", x.rec.RequestID, "reason", "nationalId differs from the one requested")
		return invalidUpstream()
	}
	x.fields = x.seen.Paths(trie, x.fields[:0])
	x.rec.FieldsReturned = x.fields
	x.writeJSON(g, out)
	return nil
}

// jsonStringBytes decodes a raw JSON string value. The common form (no
// escapes) is returned as a sub-slice without allocating.
func jsonStringBytes(raw []byte) ([]byte, bool) {
	if len(raw) < 2 || raw[0] != '"' || raw[len(raw)-1] != '"' {
		return nil, false
	}
	inner := raw[1 : len(raw)-1]
	for _, c := range inner {
		if c == '\\' || c == '"' || c < 0x20 {
			var s string
			if json.Unmarshal(raw, &s) != nil {
				return nil, false
			}
			return []byte(s), true
		}
	}
	return inner, true
}
