package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/popconnect/popconnect/gateway/audit"
	"github.com/popconnect/popconnect/gateway/audit/pghistory"
	"github.com/popconnect/popconnect/gateway/audit/pgsink"
	"github.com/popconnect/popconnect/gateway/metrics"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/testpg"
)

func historyAgencies(policeDelay string) []policy.Agency {
	reads := []policy.Operation{policy.OperationLookup, policy.OperationVerify, policy.OperationBatchLookup}
	fast := policy.RateLimit{RequestsPerSecond: 1000, Burst: 1000}
	fields := []string{"fullName", "dateOfBirth"}
	return []policy.Agency{
		{AgencyCode: "BYT", DisplayName: "Bộ Y tế", Purpose: "vaccination registry", AllowedFields: fields, AllowedOperations: reads, RateLimit: fast},
		{AgencyCode: "TAX", Purpose: "tax assessment", AllowedFields: fields, AllowedOperations: reads, RateLimit: fast},
		{AgencyCode: "POLICE", DisplayName: "Police", Purpose: "criminal investigations", AllowedFields: fields, AllowedOperations: reads,
			RateLimit: fast, DisclosureDelay: policeDelay},
		{AgencyCode: "PORTAL", DisplayName: "Citizen portal", Purpose: "citizens' own access history", AllowedFields: []string{"fullName"},
			AllowedOperations: []policy.Operation{policy.OperationAccessHistory}, RateLimit: policy.RateLimit{RequestsPerSecond: 100, Burst: 100}},
		{AgencyCode: "SLOWPORTAL", AllowedFields: []string{"fullName"},
			AllowedOperations: []policy.Operation{policy.OperationAccessHistory}, RateLimit: policy.RateLimit{RequestsPerSecond: 1, Burst: 1}},
	}
}

// newHistoryHarness is the harness with its records in PostgreSQL (url)
// and its history read from there, or from store when url is "".
func newHistoryHarness(t *testing.T, url string, store HistoryStore) *harness {
	t.Helper()
	h := newHarness(t, nil)
	key := []byte("an audit key of at least 32 bytes!!")
	if url != "" {
		sink, err := pgsink.New(url)
		if err != nil {
			t.Fatal(err)
		}
		if h.audit, err = audit.New(sink, key); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { h.audit.Close() })
		hs, err := pghistory.New(url, pghistory.WithTimeout(10*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(hs.Close)
		store = hs
	}
	cfg := h.gw.cfg
	cfg.Audit, cfg.Metrics, cfg.History = h.audit, metrics.New(), store
	cfg.Log = slog.New(slog.NewJSONHandler(io.Discard, nil))
	gw, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	h.gw = gw
	h.setPolicy(t, historyAgencies("8760h"))
	return h
}

type historyBody struct {
	NationalID string `json:"nationalId"`
	Entries    []struct {
		Time          string   `json:"time"`
		AgencyCode    string   `json:"agencyCode"`
		AgencyName    string   `json:"agencyName"`
		Operation     string   `json:"operation"`
		Fields        []string `json:"fields"`
		Purpose       string   `json:"purpose"`
		CaseReference string   `json:"caseReference"`
	} `json:"entries"`
}

func (h *harness) history(t *testing.T, agency, nationalID, query string) historyBody {
	t.Helper()
	w := h.do(agency, "GET", "/v1/citizens/"+nationalID+"/accessHistory"+query, "")
	if w.Code != http.StatusOK {
		t.Fatalf("history%s: %d %s", query, w.Code, w.Body)
	}
	var b historyBody
	dec := json.NewDecoder(strings.NewReader(w.Body.String()))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("history body %s: %v", w.Body, err)
	}
	if b.Entries == nil {
		t.Fatalf("history body %s: entries must be a list, even empty", w.Body)
	}
	return b
}

// summary is "agency/operation" of each entry, in order.
func (b historyBody) summary() string {
	var s []string
	for _, e := range b.Entries {
		s = append(s, e.AgencyCode+"/"+e.Operation)
	}
	return strings.Join(s, ",")
}

// TestAccessHistory, against PostgreSQL: the portal sees every successful
// read of the citizen (Lookup, Verify, BatchLookup) by every agency, newest
// first, with agency name, fields, purpose and case reference; not
// refusals, not reads of others, not AccessHistory requests, not reads
// whose disclosure delay has not passed (even after the delay is removed
// from the policy: the record fixed it); pages with ?limit= and ?before=.
func TestAccessHistory(t *testing.T) {
	srv := testpg.Start(t)
	h := newHistoryHarness(t, srv.URL(), nil)
	x, y := id(t, 7), id(t, 8)
	step := func() { h.clock.Advance(time.Second) }
	mustStatus := func(w *httptest.ResponseRecorder, status int) {
		t.Helper()
		if w.Code != status {
			t.Fatalf("status %d, want %d: %s", w.Code, status, w.Body)
		}
	}
	r := httptest.NewRequest("GET", "/v1/citizens/"+x+"?fields=fullName", nil)
	r.Header.Set(CaseReferenceHeader, "VR-2026/1")
	mustStatus(h.doRequest("BYT", r), 200)
	step()
	mustStatus(h.do("TAX", "GET", "/v1/citizens/"+x, ""), 200)
	step()
	r = httptest.NewRequest("GET", "/v1/citizens/"+x, nil)
	r.Header.Set(CaseReferenceHeader, "HS-2026/77")
	mustStatus(h.doRequest("POLICE", r), 200) // hidden for a year
	step()
	mustStatus(h.do("BYT", "GET", "/v1/citizens/"+x+"?fields=taxCode", ""), 403) // a refusal is no read
	step()
	mustStatus(h.do("BYT", "POST", "/v1/citizens:verify", `{"nationalId":"`+x+`","fullName":"nobody"}`), 200)
	step()
	mustStatus(h.do("TAX", "POST", "/v1/citizens:batchLookup", `{"nationalIds":["`+y+`","`+x+`"]}`), 200)
	step()
	mustStatus(h.do("BYT", "GET", "/v1/citizens/"+y, ""), 200) // another citizen
	step()

	b := h.history(t, "PORTAL", x, "")
	if b.NationalID != x || b.summary() != "TAX/BatchLookup,BYT/Verify,TAX/Lookup,BYT/Lookup" {
		t.Fatalf("history %s: %+v", b.summary(), b)
	}
	first := b.Entries[3]
	if first.AgencyName != "Bộ Y tế" || first.Purpose != "vaccination registry" || first.CaseReference != "VR-2026/1" ||
		strings.Join(first.Fields, ",") != "fullName,nationalId" {
		t.Errorf("BYT's lookup: %+v", first)
	}
	if tax := b.Entries[2]; tax.AgencyName != "TAX" || tax.CaseReference != "" || tax.Purpose != "tax assessment" {
		t.Errorf("TAX's lookup (no displayName: the code): %+v", tax)
	}
	if v := b.Entries[1]; strings.Join(v.Fields, ",") != "fullName" {
		t.Errorf("a Verify's fields are those it compared: %+v", v)
	}
	if got, err := time.Parse(time.RFC3339, first.Time); err != nil || !got.Equal(h.clock.Now().Add(-7*time.Second)) {
		t.Errorf("BYT's lookup at %s (%v), want %s", first.Time, err, h.clock.Now().Add(-7*time.Second))
	}

	// Pages: ?limit= and ?before= (exclusive).
	p1 := h.history(t, "PORTAL", x, "?limit=2")
	p2 := h.history(t, "PORTAL", x, "?limit=2&before="+url.QueryEscape(p1.Entries[1].Time))
	p3 := h.history(t, "PORTAL", x, "?before="+url.QueryEscape(p2.Entries[1].Time))
	if p1.summary() != "TAX/BatchLookup,BYT/Verify" || p2.summary() != "TAX/Lookup,BYT/Lookup" || len(p3.Entries) != 0 {
		t.Fatalf("pages %q %q %q", p1.summary(), p2.summary(), p3.summary())
	}

	// The policy no longer delays POLICE: its read made under the delay
	// stays hidden until the time its record fixed.
	h.setPolicy(t, historyAgencies(""))
	if b := h.history(t, "PORTAL", x, ""); strings.Contains(b.summary(), "POLICE") {
		t.Fatalf("a read made under a delay revealed by a policy change: %s", b.summary())
	}
	h.clock.Advance(8760*time.Hour - 10*time.Second)
	if b := h.history(t, "PORTAL", x, ""); strings.Contains(b.summary(), "POLICE") {
		t.Fatalf("POLICE's read shown before its delay passed: %s", b.summary())
	}
	h.clock.Advance(time.Minute)
	b = h.history(t, "PORTAL", x, "")
	if b.summary() != "TAX/BatchLookup,BYT/Verify,POLICE/Lookup,TAX/Lookup,BYT/Lookup" {
		t.Fatalf("after the delay: %s", b.summary())
	}
	if p := b.Entries[2]; p.AgencyName != "Police" || p.CaseReference != "HS-2026/77" || p.Purpose != "criminal investigations" {
		t.Errorf("POLICE's read: %+v", p)
	}

	// Another citizen's history; an agency without AccessHistory; a bad ID.
	if b := h.history(t, "PORTAL", y, ""); b.summary() != "BYT/Lookup,TAX/BatchLookup" {
		t.Errorf("history of y: %s", b.summary())
	}
	w := h.do("BYT", "GET", "/v1/citizens/"+x+"/accessHistory", "")
	if w.Code != http.StatusForbidden || errorCode(t, w) != "operation_not_allowed" {
		t.Fatalf("BYT's AccessHistory: %d %s", w.Code, w.Body)
	}

	// Each AccessHistory request is audited, with the citizen's hash.
	h.audit.Flush()
	var seen, refused int
	err := pgsink.ScanURL(context.Background(), srv.URL(), func(r pgsink.Row) error {
		if r.Operation == "AccessHistory" {
			if len(r.NationalIDHashes) != 1 || (r.NationalIDHashes[0] != h.audit.Hash(x) && r.NationalIDHashes[0] != h.audit.Hash(y)) {
				t.Errorf("AccessHistory record %+v", r)
			}
			if r.Agency == "PORTAL" && r.Status == 200 && r.Purpose == "citizens' own access history" {
				seen++
			}
			if r.Agency == "BYT" && r.Status == 403 {
				refused++
			}
		}
		return nil
	})
	if err != nil || seen != 8 || refused != 1 {
		t.Fatalf("AccessHistory records: %d answered, %d refused (%v)", seen, refused, err)
	}
}

// failingHistory is a store that always fails.
type failingHistory struct{}

func (failingHistory) History(context.Context, pghistory.Query) ([]pghistory.Entry, error) {
	return nil, errors.New("connection refused")
}

// TestAccessHistoryRefusals, without PostgreSQL: no store or a failing
// store is 503 history_unavailable (audited), never a partial answer; bad
// parameters are 400; the portal's own rate limit applies.
func TestAccessHistoryRefusals(t *testing.T) {
	for name, store := range map[string]HistoryStore{"no store": nil, "store fails": failingHistory{}} {
		t.Run(name, func(t *testing.T) {
			h := newHistoryHarness(t, "", store)
			x := id(t, 7)
			w := h.do("PORTAL", "GET", "/v1/citizens/"+x+"/accessHistory", "")
			if w.Code != http.StatusServiceUnavailable || errorCode(t, w) != "history_unavailable" {
				t.Fatalf("%d %s", w.Code, w.Body)
			}
			rec := h.auditRecord(t, w.Header().Get("X-Request-Id"))
			if rec["operation"] != "AccessHistory" || rec["reason"] != "history_unavailable" || rec["nationalIdHash"] != h.audit.Hash(x) {
				t.Fatalf("record %v", rec)
			}
		})
	}
	h := newHistoryHarness(t, "", failingHistory{})
	x := id(t, 7)
	for _, tc := range []struct{ target, code string }{
		{"/v1/citizens/" + x + "/accessHistory?limit=0", "invalid_request"},
		{"/v1/citizens/" + x + "/accessHistory?limit=201", "invalid_request"},
		{"/v1/citizens/" + x + "/accessHistory?limit=x", "invalid_request"},
		{"/v1/citizens/" + x + "/accessHistory?before=yesterday", "invalid_request"},
		{"/v1/citizens/" + x + "/accessHistory?limit=1&limit=2", "invalid_request"},
		{"/v1/citizens/" + x + "/accessHistory?fields=fullName", "invalid_request"},
		{"/v1/citizens/12345/accessHistory", "invalid_national_id"},
		{"/v1/citizens//accessHistory", "invalid_national_id"},
	} {
		w := h.do("PORTAL", "GET", tc.target, "")
		if w.Code != http.StatusBadRequest || errorCode(t, w) != tc.code {
			t.Errorf("%s: %d %s", tc.target, w.Code, w.Body)
		}
	}
	if w := h.do("PORTAL", "POST", "/v1/citizens/"+x+"/accessHistory", ""); w.Code != http.StatusMethodNotAllowed {
		t.Errorf("POST: %d %s", w.Code, w.Body)
	}
	// SLOWPORTAL's burst of 1: the second request is over its rate.
	h.do("SLOWPORTAL", "GET", "/v1/citizens/"+x+"/accessHistory", "")
	if w := h.do("SLOWPORTAL", "GET", "/v1/citizens/"+x+"/accessHistory", ""); w.Code != http.StatusTooManyRequests {
		t.Errorf("over the rate: %d %s", w.Code, w.Body)
	}
}

func TestParseHistoryQuery(t *testing.T) {
	if l, b, err := parseHistoryQuery(""); err != nil || l != DefaultHistoryLimit || !b.IsZero() {
		t.Fatalf("default: %d %v %v", l, b, err)
	}
	l, b, err := parseHistoryQuery("limit=200&before=2026-12-02T09%3A30%3A00.123456Z")
	if err != nil || l != 200 || !b.Equal(time.Date(2026, 12, 2, 9, 30, 0, 123456000, time.UTC)) {
		t.Fatalf("%d %v %v", l, b, err)
	}
}
