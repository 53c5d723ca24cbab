package gateway

import (
	"net/http"

	"github.com/popconnect/popconnect/gateway/filter"
)

// lookup serves GET /v1/citizens/{nationalId}[?fields=a,b].
func (g *Gateway) lookup(x *exchange) *apiError {
	id, err := parseLookupPath(x.r.URL.Path)
	if err != nil {
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
	x.rec.NationalIDHashes = []string{g.cfg.Audit.Hash(id)}

	res, err := g.callUpstream(x.r.Context(), http.MethodGet, lookupPrefix+id, nil, x.rec.RequestID, x.rec.Agency, x.buf)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return upstreamStatusError(res.status)
	}
	var seen filter.Seen
	out, ferr := trie.Filter(x.out.Bytes()[:0], res.body, &seen)
	if ferr != nil {
		g.cfg.Log.Warn("upstream record rejected", "requestId", x.rec.RequestID, "reason", ferr.Error())
		return invalidUpstream()
	}
	x.rec.FieldsReturned = seen.Paths(trie, nil)
	writeJSON(x.w, out)
	return nil
}
