package popdb

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// maxBodyBytes bounds request bodies; a 100-ID batch is about 1.6 KiB.
const maxBodyBytes = 64 << 10

// maxBatch is the largest batch the simulator answers, like the gateway.
const maxBatch = 100

// Handler serves the population-database API:
//
//	GET  /v1/citizens/{nationalId}
//	POST /v1/citizens:verify       {"nationalId": "...", "<dotted.path>": value...} -> {"match": bool}
//	POST /v1/citizens:batchLookup  {"nationalIds": [...]} -> {"records": [...], "notFound": [...]}
func Handler(g *Generator) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/citizens/{id}", func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !ValidNationalID(id) {
			writeError(w, http.StatusBadRequest, "national ID must be 12 digits")
			return
		}
		c, ok := g.Lookup(id)
		if !ok {
			writeError(w, http.StatusNotFound, "no such citizen")
			return
		}
		writeJSON(w, http.StatusOK, c)
	})
	mux.HandleFunc("POST /v1/citizens:verify", func(w http.ResponseWriter, r *http.Request) {
		var body map[string]any
		if err := decodeBody(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		id, _ := body["nationalId"].(string)
		if !ValidNationalID(id) {
			writeError(w, http.StatusBadRequest, "nationalId must be 12 digits")
			return
		}
		c, ok := g.Lookup(id)
		if !ok {
			writeError(w, http.StatusNotFound, "no such citizen")
			return
		}
		delete(body, "nationalId")
		match, err := Verify(c, body)
		if err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		writeJSON(w, http.StatusOK, map[string]bool{"match": match})
	})
	mux.HandleFunc("POST /v1/citizens:batchLookup", func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			NationalIDs []string `json:"nationalIds"`
		}
		if err := decodeBody(r, &body); err != nil {
			writeError(w, http.StatusBadRequest, err.Error())
			return
		}
		if len(body.NationalIDs) == 0 || len(body.NationalIDs) > maxBatch {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("nationalIds must hold 1..%d IDs", maxBatch))
			return
		}
		resp := struct {
			Records  []Citizen `json:"records"`
			NotFound []string  `json:"notFound"`
		}{Records: []Citizen{}, NotFound: []string{}}
		for _, id := range body.NationalIDs {
			if !ValidNationalID(id) {
				writeError(w, http.StatusBadRequest, "every national ID must be 12 digits")
				return
			}
			if c, ok := g.Lookup(id); ok {
				resp.Records = append(resp.Records, c)
			} else {
				resp.NotFound = append(resp.NotFound, id)
			}
		}
		writeJSON(w, http.StatusOK, resp)
	})
	return mux
}

// Verify reports whether every submitted dotted path holds the submitted
// value in c. A path under an array matches when any element holds the value.
// An unknown path is an error, not a mismatch, so callers notice typos.
func Verify(c Citizen, fields map[string]any) (bool, error) {
	raw, err := json.Marshal(c)
	if err != nil {
		return false, fmt.Errorf("encoding record: %w", err)
	}
	var doc map[string]any
	if err := json.Unmarshal(raw, &doc); err != nil {
		return false, fmt.Errorf("decoding record: %w", err)
	}
	if len(fields) == 0 {
		return false, fmt.Errorf("no field to verify")
	}
	match := true
	for path, want := range fields {
		values, found := lookupPath(doc, strings.Split(path, "."))
		if !found {
			return false, fmt.Errorf("unknown field %q", path)
		}
		any := false
		for _, v := range values {
			if v == want {
				any = true
				break
			}
		}
		match = match && any
	}
	return match, nil
}

// lookupPath returns every value at path below v, descending into arrays.
func lookupPath(v any, path []string) ([]any, bool) {
	if len(path) == 0 {
		switch v.(type) {
		case map[string]any, []any:
			return nil, false
		}
		return []any{v}, true
	}
	switch t := v.(type) {
	case map[string]any:
		child, ok := t[path[0]]
		if !ok {
			return nil, false
		}
		return lookupPath(child, path[1:])
	case []any:
		var out []any
		found := false
		for _, e := range t {
			vs, ok := lookupPath(e, path)
			found = found || ok
			out = append(out, vs...)
		}
		return out, found || len(t) == 0
	}
	return nil, false
}

func decodeBody(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, maxBodyBytes))
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("invalid JSON body: %w", err)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		writeError(w, http.StatusInternalServerError, "encoding response")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}

func writeError(w http.ResponseWriter, status int, msg string) {
	b, _ := json.Marshal(map[string]string{"error": msg})
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
