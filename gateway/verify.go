package gateway

import (
	"net/http"
	"strconv"

	"github.com/popconnect/popconnect/gateway/filter"
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

	res, err := g.callUpstream(x.r.Context(), http.MethodPost, "/v1/citizens:verify", up, x.rec.RequestID, x.rec.Agency, &x.buf)
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
		x.writeJSON(g, []byte(`{"match":false}`))
	}
	return nil
}

// auditVerifyID puts the hash of the Verify's national ID in the audit
// record as soon as it parsed, so a refusal further on still names it.
func (g *Gateway) auditVerifyID(x *exchange, req *verifyRequest) {
	if req != nil && req.nationalID != "" && len(x.rec.NationalIDHashes) == 0 {
		x.hash1[0] = g.cfg.Audit.Hash(req.nationalID)
		x.rec.NationalIDHashes = x.hash1[:]
	}
}
