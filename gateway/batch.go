package gateway

import (
	"encoding/json"
	"net/http"

	"github.com/popconnect/popconnect/gateway/filter"
	"github.com/popconnect/popconnect/gateway/policy"
)

// batchLookup serves POST /v1/citizens:batchLookup: each record is filtered
// like a Lookup, and a record or notFound entry for an ID the agency did not
// ask for makes the whole answer invalid (it would be another citizen's
// data).
func (g *Gateway) batchLookup(x *exchange) *apiError {
	body, err := g.readBody(x)
	var ids []string
	if err == nil {
		ids, err = parseBatchBody(body)
		g.auditBatchIDs(x, ids)
	}
	// A batch of N IDs costs N requests, charged once they are counted. A
	// body that does not parse costs one, like any other request, so bad
	// bodies are not free to send.
	cost := 1
	if err == nil {
		cost = len(ids)
	}
	if cerr := g.charge(x, policy.OperationBatchLookup, cost); cerr != nil {
		return cerr
	}
	if err != nil {
		return err
	}
	asked := make(map[string]bool, len(ids))
	for _, id := range ids {
		asked[id] = true
	}
	up, merr := json.Marshal(struct {
		NationalIDs []string `json:"nationalIds"`
	}{ids})
	if merr != nil {
		return errorf(http.StatusInternalServerError, "internal", "could not encode the upstream request")
	}

	res, err := g.callUpstream(x, http.MethodPost, "/v1/citizens:batchLookup", up)
	if err != nil {
		return err
	}
	if res.status != http.StatusOK {
		return upstreamStatusError(res.status)
	}
	trie := x.agency.trie
	seen := &x.seen
	out := append(x.out[:0], `{"records":[`...)
	var notFound []string
	sawRecords := false
	perr := filter.Members(res.body, func(key, value []byte) error {
		switch string(key) {
		case "records":
			sawRecords = true
			n := 0
			return filter.Elements(value, func(rec []byte) error {
				if n > 0 {
					out = append(out, ',')
				}
				n++
				var ferr error
				var id []byte
				if out, id, ferr = trie.FilterKey(out, rec, seen, alwaysReturned); ferr != nil {
					return ferr
				}
				if got, ok := jsonStringBytes(id); !ok || !asked[string(got)] {
					return filter.ErrSyntax
				}
				return nil
			})
		case "notFound":
			return filter.Elements(value, func(elem []byte) error {
				var id string
				if json.Unmarshal(elem, &id) != nil || !asked[id] {
					return filter.ErrSyntax
				}
				notFound = append(notFound, id)
				return nil
			})
		}
		return nil // other keys are dropped
	})
	if perr != nil || !sawRecords {
		g.cfg.Log.Warn("upstream batch rejected", "requestId", x.rec.RequestID)
		return invalidUpstream()
	}
	out = append(out, `],"notFound":[`...)
	for i, id := range notFound {
		if i > 0 {
			out = append(out, ',')
		}
		out = append(out, '"')
		out = append(out, id...)
		out = append(out, '"')
	}
	out = append(out, ']', '}')
	x.out = out
	x.fields = seen.Paths(trie, x.fields[:0])
	x.rec.FieldsReturned = x.fields
	x.writeJSON(g, out)
	return nil
}

// auditBatchIDs puts the hashes of a batch's national IDs in the audit
// record once the list parsed, so a refusal further on still names them.
func (g *Gateway) auditBatchIDs(x *exchange, ids []string) {
	if len(ids) == 0 || len(x.rec.NationalIDHashes) > 0 {
		return
	}
	hashes := make([]string, len(ids))
	for i, id := range ids {
		hashes[i] = g.cfg.Audit.Hash(id)
	}
	x.rec.NationalIDHashes = hashes
}
