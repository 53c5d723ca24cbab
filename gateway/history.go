package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/popconnect/popconnect/gateway/audit/pghistory"
)

// HistoryStore answers citizens' access histories from the audit store
// (pghistory.Store). Config.History is nil without the PostgreSQL sink:
// AccessHistory is then 503 history_unavailable.
type HistoryStore interface {
	History(ctx context.Context, q pghistory.Query) ([]pghistory.Entry, error)
}

const (
	historySuffix = "/accessHistory"
	// DefaultHistoryLimit and MaxHistoryLimit bound ?limit= of AccessHistory.
	DefaultHistoryLimit = 50
	MaxHistoryLimit     = 200
)

// parseHistoryPath extracts the national ID from
// /v1/citizens/{nationalId}/accessHistory.
func parseHistoryPath(path string) (string, *apiError) {
	p, ok := strings.CutSuffix(path, historySuffix)
	if !ok {
		return "", errorf(http.StatusNotFound, "not_found", "no such endpoint")
	}
	return parseLookupPath(p)
}

// parseHistoryQuery reads ?limit= (1..MaxHistoryLimit, default
// DefaultHistoryLimit) and ?before= (an RFC 3339 time, exclusive; absent:
// none). Any other parameter, or one given twice, is refused.
func parseHistoryQuery(rawQuery string) (limit int, before time.Time, _ *apiError) {
	limit = DefaultHistoryLimit
	if rawQuery == "" {
		return limit, before, nil
	}
	q, err := url.ParseQuery(rawQuery)
	if err != nil {
		return 0, before, errorf(http.StatusBadRequest, "invalid_request", "malformed query string")
	}
	for k, vs := range q {
		if len(vs) != 1 {
			return 0, before, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("query parameter %q given more than once", truncate(k)))
		}
		switch k {
		case "limit":
			n, err := strconv.Atoi(vs[0])
			if err != nil || n < 1 || n > MaxHistoryLimit {
				return 0, before, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("limit must be an integer from 1 to %d", MaxHistoryLimit))
			}
			limit = n
		case "before":
			t, err := time.Parse(time.RFC3339Nano, vs[0])
			if err != nil {
				return 0, before, errorf(http.StatusBadRequest, "invalid_request", "before must be an RFC 3339 time, e.g. 2026-12-02T09:30:00Z")
			}
			before = t
		default:
			return 0, before, errorf(http.StatusBadRequest, "invalid_request", fmt.Sprintf("unknown query parameter %q", truncate(k)))
		}
	}
	return limit, before, nil
}

func historyUnavailable() *apiError {
	return errorf(http.StatusServiceUnavailable, "history_unavailable", "the access history cannot be read now; retry later")
}

type historyEntry struct {
	Time          string   `json:"time"`
	AgencyCode    string   `json:"agencyCode"`
	AgencyName    string   `json:"agencyName"`
	Operation     string   `json:"operation"`
	Fields        []string `json:"fields"`
	Purpose       string   `json:"purpose"`
	CaseReference string   `json:"caseReference"`
}

type historyAnswer struct {
	NationalID string         `json:"nationalId"`
	Entries    []historyEntry `json:"entries"`
}

// accessHistory serves GET /v1/citizens/{nationalId}/accessHistory: the
// citizen's reads from the audit store, newest first, one page of them.
// serve has parsed the ID (x.id) and put its hash in the record. The answer
// is the whole page or 503 history_unavailable, never part of a page.
func (g *Gateway) accessHistory(x *exchange) *apiError {
	if x.id == "" {
		_, err := parseHistoryPath(x.r.URL.Path)
		return err
	}
	limit, before, apiErr := parseHistoryQuery(x.r.URL.RawQuery)
	if apiErr != nil {
		return apiErr
	}
	if g.cfg.History == nil {
		return historyUnavailable()
	}
	entries, err := g.cfg.History.History(x.r.Context(), pghistory.Query{
		Hash: x.hash1[0], Before: before, Now: x.rec.Time, Limit: limit,
	})
	if err != nil {
		g.cfg.Log.Warn("access history unavailable", "requestId", x.rec.RequestID, "error", err.Error())
		return historyUnavailable()
	}
	ans := historyAnswer{NationalID: x.id, Entries: make([]historyEntry, 0, len(entries))}
	for _, e := range entries {
		name := e.AgencyName
		if name == "" {
			name = e.Agency
		}
		fields := e.Fields
		if fields == nil {
			fields = []string{}
		}
		ans.Entries = append(ans.Entries, historyEntry{
			Time: e.Time.UTC().Format(time.RFC3339Nano), AgencyCode: e.Agency, AgencyName: name,
			Operation: e.Operation, Fields: fields, Purpose: e.Purpose, CaseReference: e.CaseReference,
		})
	}
	body, err := json.Marshal(ans)
	if err != nil {
		return historyUnavailable()
	}
	x.writeJSON(g, body)
	return nil
}
