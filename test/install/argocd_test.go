package install_test

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	lua "github.com/yuin/gopher-lua"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"
)

// healthCase is one object (YAML) and the health Argo CD should report.
type healthCase struct {
	name        string
	object      string
	wantStatus  string
	wantMessage string
}

// argoHealthStatuses are the health codes Argo CD accepts from a script.
func argoHealthStatuses() []string {
	return []string{"Healthy", "Progressing", "Degraded", "Suspended", "Missing", "Unknown"}
}

// runHealthScript runs a health check the way Argo CD does: a Lua state
// with the base, table, string and math libraries, the object converted to
// the global table obj, and the script's returned table read as
// {status, message}.
func runHealthScript(t *testing.T, script string, obj map[string]any) (status, message string) {
	t.Helper()
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	defer l.Close()
	for _, lib := range []struct {
		name string
		open lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.StringLibName, lua.OpenString},
		{lua.MathLibName, lua.OpenMath},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(lib.open), NRet: 0, Protect: true}, lua.LString(lib.name)); err != nil {
			t.Fatalf("opening Lua library %s: %v", lib.name, err)
		}
	}
	l.SetGlobal("obj", toLuaValue(l, obj))
	if err := l.DoString(script); err != nil {
		t.Fatalf("running the health script: %v", err)
	}
	result, ok := l.Get(-1).(*lua.LTable)
	if !ok {
		t.Fatalf("the health script returned %s, want a table", l.Get(-1).Type())
	}
	statusValue, ok := result.RawGetString("status").(lua.LString)
	if !ok {
		t.Fatalf("hs.status is %s, want a string", result.RawGetString("status").Type())
	}
	if m := result.RawGetString("message"); m != lua.LNil {
		msg, ok := m.(lua.LString)
		if !ok {
			t.Fatalf("hs.message is %s, want a string", m.Type())
		}
		message = string(msg)
	}
	return string(statusValue), message
}

// toLuaValue converts an unstructured value to Lua as Argo CD's decodeValue
// does: maps and slices become tables, numbers LNumber.
func toLuaValue(l *lua.LState, v any) lua.LValue {
	switch v := v.(type) {
	case map[string]any:
		t := l.NewTable()
		for k, item := range v {
			t.RawSetString(k, toLuaValue(l, item))
		}
		return t
	case []any:
		t := l.NewTable()
		for _, item := range v {
			t.Append(toLuaValue(l, item))
		}
		return t
	case string:
		return lua.LString(v)
	case bool:
		return lua.LBool(v)
	case int64:
		return lua.LNumber(v)
	case float64:
		return lua.LNumber(v)
	case nil:
		return lua.LNil
	default:
		panic(fmt.Sprintf("unexpected %T in the object", v))
	}
}

// parseObject turns a YAML fixture into an unstructured object, so numbers
// are int64 as in what Argo CD reads from the API.
func parseObject(t *testing.T, doc string) map[string]any {
	t.Helper()
	data, err := yaml.YAMLToJSON([]byte(doc))
	if err != nil {
		t.Fatalf("fixture: %v", err)
	}
	var u unstructured.Unstructured
	if err := u.UnmarshalJSON(data); err != nil {
		t.Fatalf("fixture: %v", err)
	}
	return u.Object
}

func readScript(t *testing.T, name string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repoRoot(t), "config", "argocd", name))
	if err != nil {
		t.Fatal(err)
	}
	script := string(data)
	if !strings.HasSuffix(strings.TrimSpace(script), "return hs") {
		t.Fatalf("%s must end with `return hs`", name)
	}
	return script
}

func runHealthCases(t *testing.T, scriptName string, cases []healthCase) {
	script := readScript(t, scriptName)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, message := runHealthScript(t, script, parseObject(t, tc.object))
			if !slices.Contains(argoHealthStatuses(), status) {
				t.Fatalf("status %q is not an Argo CD health status", status)
			}
			if status != tc.wantStatus || message != tc.wantMessage {
				t.Errorf("health = (%q, %q), want (%q, %q)", status, message, tc.wantStatus, tc.wantMessage)
			}
		})
	}
}

// acHeader is an AgencyConnection at generation 3; cases append spec and status.
const acHeader = `
apiVersion: popconnect.io/v1alpha1
kind: AgencyConnection
metadata:
  name: byt
  namespace: agency-byt
  generation: 3
`

func TestArgoCDHealthAgencyConnection(t *testing.T) {
	const spec = "spec:\n  agencyCode: BYT\n"
	const suspendedSpec = "spec:\n  agencyCode: BYT\n  suspended: true\n"
	runHealthCases(t, "agencyconnection.lua", []healthCase{
		{
			name:        "no status",
			object:      acHeader + spec,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 3",
		},
		{
			name: "status without observedGeneration",
			object: acHeader + spec + `
status:
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: Access is allowed.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 3",
		},
		{
			name: "stale status, even if Ready",
			object: acHeader + spec + `
status:
  observedGeneration: 2
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: Access is allowed.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 3",
		},
		{
			name: "stale status, even if suspended",
			object: acHeader + suspendedSpec + `
status:
  observedGeneration: 2
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 3",
		},
		{
			name: "ready",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: FieldsValid, status: "True", reason: FieldsValid, message: All 4 fields are in the catalog.}
  - {type: CertificateReady, status: "True", reason: Issued, message: Certificate issued.}
  - {type: Ready, status: "True", reason: Ready, message: Access is allowed.}
`,
			wantStatus:  "Healthy",
			wantMessage: "Access is allowed.",
		},
		{
			name: "observedGeneration newer than generation counts as observed",
			object: acHeader + spec + `
status:
  observedGeneration: 4
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: Access is allowed.}
`,
			wantStatus:  "Healthy",
			wantMessage: "Access is allowed.",
		},
		{
			name: "pending while the certificate is issued",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: CertificateReady, status: "False", reason: Issuing, message: cert-manager is issuing the certificate.}
  - {type: Ready, status: "False", reason: Pending, message: Waiting for the client certificate.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the client certificate.",
		},
		{
			name: "observed but no Ready condition yet",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions: []
`,
			wantStatus:  "Progressing",
			wantMessage: "",
		},
		{
			name: "Ready Unknown",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: Unknown, reason: Pending, message: Reconciling.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Reconciling.",
		},
		{
			name: "suspended",
			object: acHeader + suspendedSpec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: Suspended, message: Access is suspended (spec.suspended).}
`,
			wantStatus:  "Suspended",
			wantMessage: "Access is suspended (spec.suspended).",
		},
		{
			name: "suspended wins over invalid fields",
			object: acHeader + suspendedSpec + `
status:
  observedGeneration: 3
  conditions:
  - {type: FieldsValid, status: "False", reason: UnknownField, message: religion is not in the catalog.}
  - {type: Ready, status: "False", reason: Suspended, message: Access is suspended (spec.suspended).}
`,
			wantStatus:  "Suspended",
			wantMessage: "Access is suspended (spec.suspended).",
		},
		{
			name: "suspended: false is not suspended",
			object: acHeader + "spec:\n  agencyCode: BYT\n  suspended: false\n" + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: Access is allowed.}
`,
			wantStatus:  "Healthy",
			wantMessage: "Access is allowed.",
		},
		{
			name: "unknown field",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: FieldsValid, status: "False", reason: UnknownField, message: "allowedFields: religion is not in the catalog national-v1."}
  - {type: Ready, status: "False", reason: UnknownField, message: "Remove religion from spec.allowedFields or add it to the catalog."}
`,
			wantStatus:  "Degraded",
			wantMessage: "Remove religion from spec.allowedFields or add it to the catalog.",
		},
		{
			name: "FieldsValid False degrades even while Ready is Pending",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: FieldsValid, status: "False", reason: LegalBasisRequired, message: ethnicity is Sensitive; set spec.legalBasis.}
  - {type: Ready, status: "False", reason: Pending, message: Waiting.}
`,
			wantStatus:  "Degraded",
			wantMessage: "Waiting.",
		},
		{
			name: "FieldsValid False without Ready: the FieldsValid message",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: FieldsValid, status: "False", reason: LegalBasisRequired, message: ethnicity is Sensitive; set spec.legalBasis.}
`,
			wantStatus:  "Degraded",
			wantMessage: "ethnicity is Sensitive; set spec.legalBasis.",
		},
		{
			name: "duplicate agency code",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: DuplicateAgencyCode, message: Agency code BYT belongs to namespace agency-byt-old.}
`,
			wantStatus:  "Degraded",
			wantMessage: "Agency code BYT belongs to namespace agency-byt-old.",
		},
		{
			name: "expired",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: Expired, message: The agreement ended at 2026-01-01T00:00:00Z.}
`,
			wantStatus:  "Degraded",
			wantMessage: "The agreement ended at 2026-01-01T00:00:00Z.",
		},
		{
			name: "gateway not found",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: GatewayNotFound, message: PopulationGateway popconnect/national does not exist.}
`,
			wantStatus:  "Degraded",
			wantMessage: "PopulationGateway popconnect/national does not exist.",
		},
		{
			name: "Ready False without a message",
			object: acHeader + spec + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "False", reason: CatalogNotFound}
`,
			wantStatus:  "Degraded",
			wantMessage: "",
		},
	})
}

const pgwHeader = `
apiVersion: popconnect.io/v1alpha1
kind: PopulationGateway
metadata:
  name: national
  namespace: popconnect
  generation: 2
spec:
  catalogRef: {name: national-v1}
`

func TestArgoCDHealthPopulationGateway(t *testing.T) {
	runHealthCases(t, "populationgateway.lua", []healthCase{
		{
			name:        "no status",
			object:      pgwHeader,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 2",
		},
		{
			name: "stale status",
			object: pgwHeader + `
status:
  observedGeneration: 1
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: 2 of 2 pods serve 5 agencies.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 2",
		},
		{
			name: "ready",
			object: pgwHeader + `
status:
  observedGeneration: 2
  activeConnections: 5
  conditions:
  - {type: Available, status: "True", reason: Ready, message: 2 of 2 pods available.}
  - {type: Ready, status: "True", reason: Ready, message: 2 of 2 pods serve 5 agencies.}
`,
			wantStatus:  "Healthy",
			wantMessage: "2 of 2 pods serve 5 agencies.",
		},
		{
			name: "pending rollout",
			object: pgwHeader + `
status:
  observedGeneration: 2
  conditions:
  - {type: Available, status: "False", reason: DeploymentUnavailable, message: 0 of 2 pods available.}
  - {type: Ready, status: "False", reason: Pending, message: Waiting for the gateway pods.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the gateway pods.",
		},
		{
			name: "catalog not found",
			object: pgwHeader + `
status:
  observedGeneration: 2
  conditions:
  - {type: PolicyReady, status: "False", reason: CatalogNotFound, message: FieldCatalog national-v1 does not exist.}
  - {type: Ready, status: "False", reason: CatalogNotFound, message: Create FieldCatalog national-v1 or fix spec.catalogRef.}
`,
			wantStatus:  "Degraded",
			wantMessage: "Create FieldCatalog national-v1 or fix spec.catalogRef.",
		},
		{
			name: "no Ready condition",
			object: pgwHeader + `
status:
  observedGeneration: 2
`,
			wantStatus:  "Progressing",
			wantMessage: "",
		},
	})
}

const fcHeader = `
apiVersion: popconnect.io/v1alpha1
kind: FieldCatalog
metadata:
  name: national-v1
  generation: 4
spec:
  fields:
  - {name: fullName, sensitivity: Personal}
`

func TestArgoCDHealthFieldCatalog(t *testing.T) {
	runHealthCases(t, "fieldcatalog.lua", []healthCase{
		{
			name:        "no status",
			object:      fcHeader,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 4",
		},
		{
			name: "stale",
			object: fcHeader + `
status:
  observedGeneration: 3
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: 12 fields.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the operator to reconcile generation 4",
		},
		{
			name: "ready",
			object: fcHeader + `
status:
  observedGeneration: 4
  fieldCount: 12
  conditions:
  - {type: Ready, status: "True", reason: Ready, message: 12 fields.}
`,
			wantStatus:  "Healthy",
			wantMessage: "12 fields.",
		},
		{
			name: "observed, not ready",
			object: fcHeader + `
status:
  observedGeneration: 4
  conditions:
  - {type: Ready, status: "False", reason: Pending, message: Reading the catalog.}
`,
			wantStatus:  "Progressing",
			wantMessage: "Reading the catalog.",
		},
		{
			name: "observed, no conditions",
			object: fcHeader + `
status:
  observedGeneration: 4
`,
			wantStatus:  "Progressing",
			wantMessage: "Waiting for the catalog to become Ready",
		},
	})
}

// TestArgoCDHealthInChartReadme checks that the chart README's argocd-cm
// snippet holds each script exactly as in config/argocd.
func TestArgoCDHealthInChartReadme(t *testing.T) {
	readme, err := os.ReadFile(filepath.Join(repoRoot(t), chartDir, "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	for kind, file := range map[string]string{
		"AgencyConnection":  "agencyconnection.lua",
		"PopulationGateway": "populationgateway.lua",
		"FieldCatalog":      "fieldcatalog.lua",
	} {
		var block strings.Builder
		block.WriteString("  resource.customizations.health.popconnect.io_" + kind + ": |\n")
		for line := range strings.Lines(readScript(t, file)) {
			if strings.TrimSpace(line) == "" {
				block.WriteString("\n")
				continue
			}
			block.WriteString("    " + line)
		}
		if !strings.Contains(string(readme), block.String()) {
			t.Errorf("%s/README.md does not hold config/argocd/%s as the argocd-cm key for %s: update the README", chartDir, file, kind)
		}
	}
}
