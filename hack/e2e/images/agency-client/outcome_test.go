package main

import (
	"testing"
	"time"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		name   string
		status int
		body   string
		want   string
	}{
		{"a record", 200, `{"fullName":"x"}`, "200"},
		{"a refusal", 403, `{"error":"agency_suspended","message":"agency X is suspended"}`, "403 agency_suspended"},
		{"a rate limit", 429, `{"error":"rate_limited","message":"..."}`, "429 rate_limited"},
		{"not the gateway's JSON", 502, `bad gateway`, "502"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Classify(tc.status, []byte(tc.body)).String(); got != tc.want {
				t.Errorf("Classify(%d, %s) = %q, want %q", tc.status, tc.body, got, tc.want)
			}
		})
	}
}

func TestSummary(t *testing.T) {
	s := NewSummary()
	t0 := time.Unix(100, 0)
	s.Add(t0, Outcome{Status: 200})
	s.Add(t0.Add(2*time.Second), Outcome{Error: "connection reset"})
	s.Add(t0.Add(time.Second), Outcome{Status: 503, Code: "upstream_unavailable"})
	s.Add(t0.Add(3*time.Second), Outcome{Status: 200})
	if s.Requests != 4 || s.OK != 2 {
		t.Errorf("requests %d ok %d, want 4 and 2", s.Requests, s.OK)
	}
	if s.Outcomes["error: connection reset"] != 1 || s.Outcomes["503 upstream_unavailable"] != 1 || s.Outcomes["200"] != 2 {
		t.Errorf("outcomes %v", s.Outcomes)
	}
	if s.FirstNotOK != t0.Add(time.Second).UnixNano() || s.LastNotOK != t0.Add(2*time.Second).UnixNano() {
		t.Errorf("first/last not OK %d %d", s.FirstNotOK, s.LastNotOK)
	}
	if s.FirstRequest != t0.UnixNano() || s.LastRequest != t0.Add(3*time.Second).UnixNano() {
		t.Errorf("first/last request %d %d", s.FirstRequest, s.LastRequest)
	}
}
