package demo

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// leakFinding is one line of a log holding something it must not.
type leakFinding struct {
	file string
	line int
	what string
}

func (f leakFinding) String() string { return fmt.Sprintf("%s:%d: %s", f.file, f.line, f.what) }

// scanText reports each line of text (named file) that holds a PEM block,
// a national ID (when ids is set) or any form of a secret. Findings name
// the secret, never print it.
func scanText(file string, text []byte, s *sensitive, ids bool) []leakFinding {
	var found []leakFinding
	for i, line := range bytes.Split(text, []byte("\n")) {
		add := func(what string) { found = append(found, leakFinding{file: file, line: i + 1, what: what}) }
		if bytes.Contains(line, []byte("-----BEGIN")) {
			add("a PEM block")
		}
		if ids {
			for _, id := range s.nationalIDs {
				if bytes.Contains(line, []byte(id)) {
					add("the national ID " + id)
				}
			}
		}
		for _, sec := range s.secrets {
			for _, form := range sec.forms {
				if bytes.Contains(line, []byte(form)) {
					add("key material of " + sec.what)
					break
				}
			}
		}
	}
	return found
}

// scanDemoLogs scans every log a demo run wrote in workDir (the child
// processes' logs, the audit database's among them: the records
// themselves are checked by the demo's audit step) and its transcript.
func scanDemoLogs(t *testing.T, workDir, transcript string, s *sensitive) []leakFinding {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(workDir, "logs", "*"))
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(files)
	var found []leakFinding
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("reading %s: %v", f, err)
		}
		rel, _ := filepath.Rel(workDir, f)
		found = append(found, scanText(rel, b, s, true)...)
	}
	// Kubernetes Events, which any namespace reader sees.
	found = append(found, scanText("events", []byte(s.events), s, true)...)
	// The transcript narrates the agencies' own requests, national IDs
	// included (an agency knows whom it asks about); it must hold no key.
	found = append(found, scanText("transcript", []byte(transcript), s, false)...)
	return found
}

// TestLeakScan: the scanner finds an ID, a PEM block and a key in each of
// its forms, and names the file and line.
func TestLeakScan(t *testing.T) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der})
	auditKey := []byte("0123456789abcdef0123456789abcdef")
	s := &sensitive{
		nationalIDs: []string{"001234567890"},
		secrets: []secretForms{
			{what: "Secret ns/agency-client-tls key tls.key", forms: keyForms(keyPEM)},
			{what: "the audit hash key", forms: encodings(auditKey)},
		},
	}
	body := strings.Split(strings.TrimSpace(string(keyPEM)), "\n")[1]
	lines := []string{
		`{"msg":"clean line"}`,
		`{"msg":"lookup","path":"/v1/citizens/001234567890"}`,
		`{"msg":"loaded","cert":"-----BEGIN CERTIFICATE-----"}`,
		`{"secret":{"data":{"tls.key":"` + base64.StdEncoding.EncodeToString(keyPEM) + `"}}}`,
		`{"partial":"` + body + `"}`,
		`{"der":"` + hex.EncodeToString(der) + `"}`,
		`{"auditKey":"` + hex.EncodeToString(auditKey) + `"}`,
		`{"auditKey":"` + base64.StdEncoding.EncodeToString(auditKey) + `"}`,
	}
	found := scanText("logs/gateway.log", []byte(strings.Join(lines, "\n")), s, true)
	want := []string{
		"logs/gateway.log:2: the national ID 001234567890",
		"logs/gateway.log:3: a PEM block",
		"logs/gateway.log:4: key material of Secret ns/agency-client-tls key tls.key",
		"logs/gateway.log:5: key material of Secret ns/agency-client-tls key tls.key",
		"logs/gateway.log:6: key material of Secret ns/agency-client-tls key tls.key",
		"logs/gateway.log:7: key material of the audit hash key",
		"logs/gateway.log:8: key material of the audit hash key",
	}
	var got []string
	for _, f := range found {
		got = append(got, f.String())
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("findings:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if found := scanText("transcript", []byte(lines[1]), s, false); len(found) != 0 {
		t.Fatalf("national IDs are allowed in the transcript, got %v", found)
	}
}
