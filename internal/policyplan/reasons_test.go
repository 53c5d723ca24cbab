package policyplan

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

// notDecidedHere are the condition reasons another part of the operator
// decides, with who: every other reason the API declares is the compiler's,
// and a golden file must show it.
var notDecidedHere = map[string]string{
	popv1.ReasonIssued:                "the connection's certificate phase",
	popv1.ReasonIssuing:               "the connection's certificate phase",
	popv1.ReasonNotRequested:          "the connection's certificate and network phases",
	popv1.ReasonApplied:               "the connection's network phase",
	popv1.ReasonDeploymentUnavailable: "the gateway's workload phase",
	popv1.ReasonScaledToZero:          "the gateway's workload phase",
	popv1.ReasonNameConflict:          "the gateway's and connection's writers of child objects",
	popv1.ReasonEgressUnresolved:      "the gateway's egress NetworkPolicy",
	popv1.ReasonAuditSinkWritable:     "the gateway's audit probe",
	popv1.ReasonAuditSinkFailing:      "the gateway's audit probe",
	popv1.ReasonAuditStateUnknown:     "the gateway's audit probe",
	popv1.ReasonSharedCountInUse:      "the gateway's rate-limit probe",
	popv1.ReasonFallbackToShare:       "the gateway's rate-limit probe",
	popv1.ReasonNoStore:               "the gateway's rate-limit probe",
	popv1.ReasonRateLimitStateUnknown: "the gateway's rate-limit probe",
}

// TestGoldenCoversEveryReason fails when a condition reason declared in
// api/v1alpha1/conditions.go is neither shown by some testdata/*.out.yaml
// nor listed in notDecidedHere: a new reason must be given a golden case
// (or an owner) when it is added.
func TestGoldenCoversEveryReason(t *testing.T) {
	reasons := declaredReasons(t, filepath.Join("..", "..", "api", "v1alpha1", "conditions.go"))
	if len(reasons) == 0 {
		t.Fatal("no Reason constants found in conditions.go")
	}
	shown := map[string]bool{}
	outs, err := filepath.Glob(filepath.Join("testdata", "*.out.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, path := range outs {
		raw, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			if r, ok := strings.CutPrefix(strings.TrimSpace(line), "reason: "); ok {
				shown[r] = true
			}
		}
	}
	for name, value := range reasons {
		if _, ok := notDecidedHere[value]; ok {
			if shown[value] {
				t.Errorf("%s (%q) is in notDecidedHere but a golden file shows it: remove it from notDecidedHere", name, value)
			}
			continue
		}
		if !shown[value] {
			t.Errorf("%s (%q) is shown by no testdata/*.out.yaml: add a golden case that leads to it, or list it in notDecidedHere with who decides it", name, value)
		}
	}
}

// declaredReasons are the string constants named Reason* in the file.
func declaredReasons(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, decl := range f.Decls {
		gen, ok := decl.(*ast.GenDecl)
		if !ok || gen.Tok != token.CONST {
			continue
		}
		for _, spec := range gen.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if !strings.HasPrefix(name.Name, "Reason") || i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING {
					t.Fatalf("%s is not a string literal", name.Name)
				}
				value, err := strconv.Unquote(lit.Value)
				if err != nil {
					t.Fatal(err)
				}
				out[name.Name] = value
			}
		}
	}
	return out
}
