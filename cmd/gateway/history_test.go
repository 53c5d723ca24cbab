package main

import (
	"encoding/json"
	"io"
	"net/http"
	"testing"

	"github.com/popconnect/popconnect/gateway/testpki"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/testpg"
)

// writeHistoryPolicy gives BYT Lookup and PORTAL AccessHistory.
func (f *fixture) writeHistoryPolicy(t *testing.T) {
	t.Helper()
	testpki.WriteFile(t, f.dir, "policy.json", []byte(`{"version":"h","agencies":[
	{"agencyCode":"BYT","displayName":"Bộ Y tế","purpose":"vaccination registry","allowedFields":["fullName"],"allowedOperations":["Lookup"],
	 "rateLimit":{"requestsPerSecond":1000,"burst":1000}},
	{"agencyCode":"PORTAL","purpose":"citizens' own access history","allowedFields":["fullName"],"allowedOperations":["AccessHistory"],
	 "rateLimit":{"requestsPerSecond":10,"burst":10}}]}`))
}

// TestAccessHistoryBinary: the gateway binary answers AccessHistory from
// the audit database named by --audit-postgres-url-file, and 503
// history_unavailable with a file sink.
func TestAccessHistoryBinary(t *testing.T) {
	db := testpg.Start(t)
	f := newFixture(t)
	f.writeHistoryPolicy(t)
	id, _ := popdb.NationalID(9)
	byt := f.client(f.ca.Agency(t, "BYT"), 0)
	portal := f.client(f.ca.Agency(t, "PORTAL"), 0)
	historyOf := func(addr string) (int, []byte) {
		t.Helper()
		resp, err := portal.Get("https://" + addr + "/v1/citizens/" + id + "/accessHistory")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, body
	}

	gw := f.startPostgres(t, db.URL())
	resp, err := byt.Get("https://" + gw.agencyAddr + "/v1/citizens/" + id)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("lookup: %v %v", resp, err)
	}
	resp.Body.Close()
	status, body := historyOf(gw.agencyAddr)
	var ans struct {
		NationalID string `json:"nationalId"`
		Entries    []struct {
			AgencyCode, AgencyName, Operation, Purpose string
		} `json:"entries"`
	}
	if status != http.StatusOK || json.Unmarshal(body, &ans) != nil || ans.NationalID != id || len(ans.Entries) != 1 ||
		ans.Entries[0].AgencyCode != "BYT" || ans.Entries[0].AgencyName != "Bộ Y tế" || ans.Entries[0].Operation != "Lookup" ||
		ans.Entries[0].Purpose != "vaccination registry" {
		t.Fatalf("history: %d %s", status, body)
	}
	gw.stop(t)

	file := f.start(t)
	if status, body := historyOf(file.agencyAddr); status != http.StatusServiceUnavailable || !json.Valid(body) ||
		string(body) == "" || !containsCode(body, "history_unavailable") {
		t.Fatalf("history without PostgreSQL: %d %s", status, body)
	}
}

func containsCode(body []byte, code string) bool {
	var e struct{ Error string }
	return json.Unmarshal(body, &e) == nil && e.Error == code
}
