package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

// TestAPIDocsUpToDate fails when docs/api.md is not what the API types
// generate, so `make test` catches a type change without `make api-docs`.
func TestAPIDocsUpToDate(t *testing.T) {
	root := filepath.Join("..", "..")
	want, err := generate(filepath.Join(root, "api", "v1alpha1"))
	if err != nil {
		t.Fatalf("generating the API reference: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(root, "docs", "api.md"))
	if err != nil {
		t.Fatalf("reading docs/api.md: %v (run make api-docs)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("docs/api.md is out of date with api/v1alpha1: run make api-docs and commit the result\n%s", firstDifference(got, want))
	}
}

// TestGenerateIsDeterministic: two runs give the same bytes.
func TestGenerateIsDeterministic(t *testing.T) {
	dir := filepath.Join("..", "..", "api", "v1alpha1")
	a, err := generate(dir)
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		b, err := generate(dir)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("two runs differ:\n%s", firstDifference(a, b))
		}
	}
}

// TestReferenceCoversTheAPI checks a few things the reference must say,
// so that a regression of the generator cannot pass silently.
func TestReferenceCoversTheAPI(t *testing.T) {
	doc, err := generate(filepath.Join("..", "..", "api", "v1alpha1"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(doc)
	for _, want := range []string{
		"## FieldCatalog", "## PopulationGateway", "## AgencyConnection",
		"### RateLimit", "### ClientCertificateSpec", "### NetworkSpec", "### IssuerReference",
		"| `requestsPerSecond` | int32 | **required** |  | ≥ 1<br>≤ 100000 |",
		"| `replicas` | int32 | optional | `2` |",
		`message: "burst must be >= requestsPerSecond"`,
		"one of `Lookup`, `Verify`, `BatchLookup`",
		"spiffe://popconnect.io/agency/&lt;agencyCode>",
		"| `DuplicateAgencyCode` |",
		"(checked on update)",
	} {
		if !strings.Contains(s, want) {
			t.Errorf("the reference does not contain %q", want)
		}
	}
}

func TestMarkerArgs(t *testing.T) {
	got := markerArgs("rule=\"self.a == 'x, y'\",message=\"a, \\\"b\\\"\"")
	if got["rule"] != "self.a == 'x, y'" || got["message"] != `a, "b"` {
		t.Errorf("quoted args: %q", got)
	}
	got = markerArgs("name=Ready,type=string,priority=1,JSONPath=`.status.conditions[?(@.type==\"Ready\")].status`")
	if got["name"] != "Ready" || got["priority"] != "1" || got["JSONPath"] != `.status.conditions[?(@.type=="Ready")].status` {
		t.Errorf("plain and raw args: %q", got)
	}
}

// firstDifference shows the first line where got and want differ.
func firstDifference(got, want []byte) string {
	g, w := strings.Split(string(got), "\n"), strings.Split(string(want), "\n")
	for i := 0; i < len(g) || i < len(w); i++ {
		var gl, wl string
		if i < len(g) {
			gl = g[i]
		}
		if i < len(w) {
			wl = w[i]
		}
		if gl != wl {
			return "line " + strconv.Itoa(i+1) + ":\n  committed: " + gl + "\n  generated: " + wl
		}
	}
	return ""
}
