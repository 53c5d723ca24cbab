package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
)

// citizenIndex picks the demo's citizen; any index below simRecords works.
const citizenIndex = 4242

// citizen returns the demo citizen as the simulator generates it, so the
// demo knows true values to verify against.
func (r *runner) citizen() (popdb.Citizen, error) {
	gen, err := popdb.NewGenerator(simSeed, simRecords)
	if err != nil {
		return popdb.Citizen{}, fmt.Errorf("citizen generator: %w", err)
	}
	c := gen.Record(citizenIndex)
	if !slices.Contains(r.ids, c.NationalID) {
		r.ids = append(r.ids, c.NationalID)
	}
	return c, nil
}

func (r *runner) connection(ctx context.Context, code string) (*popv1.AgencyConnection, error) {
	var ac popv1.AgencyConnection
	if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: r.connNames[code]}, &ac); err != nil {
		return nil, fmt.Errorf("reading connection of %s: %w", code, err)
	}
	return &ac, nil
}

// leaves collects the dotted paths of a JSON document's scalar values
// with one sample value each; array elements share their array's path.
func leaves(prefix string, v any, out map[string]string) {
	switch x := v.(type) {
	case map[string]any:
		for k, child := range x {
			p := k
			if prefix != "" {
				p = prefix + "." + k
			}
			leaves(p, child, out)
		}
	case []any:
		for _, child := range x {
			leaves(prefix, child, out)
		}
	default:
		if _, ok := out[prefix]; !ok {
			out[prefix] = fmt.Sprint(x)
		}
	}
}

func (r *runner) lookupMinimised(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	ac, err := r.connection(ctx, "BYT")
	if err != nil {
		return err
	}
	var catalog popv1.FieldCatalog
	if err := r.env.Client.Get(ctx, client.ObjectKey{Name: "citizen-record"}, &catalog); err != nil {
		return fmt.Errorf("reading the FieldCatalog: %w", err)
	}
	allowed := map[string]bool{"nationalId": true} // the ID asked for is always echoed
	for _, f := range ac.Spec.AllowedFields {
		allowed[string(f)] = true
	}
	resp, err := r.agencyCall(ctx, "BYT", http.MethodGet, "/v1/citizens/"+c.NationalID, nil, "BYT Lookup (200)")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == http.StatusOK, "200 OK (got %d)", resp.status); err != nil {
		return err
	}
	var doc any
	if err := json.Unmarshal(resp.body, &doc); err != nil {
		return fmt.Errorf("lookup response is not JSON: %w", err)
	}
	got := map[string]string{}
	leaves("", doc, got)
	r.n.info("fields returned to BYT:")
	var outside []string
	for _, f := range catalog.Spec.Fields {
		if v, ok := got[string(f.Name)]; ok {
			r.n.info("  %-28s %-10s %s", f.Name, f.Sensitivity, v)
		}
	}
	for p := range got {
		if !allowed[p] {
			outside = append(outside, p)
		}
	}
	var withheld, sensitive []string
	for _, f := range catalog.Spec.Fields {
		if _, ok := got[string(f.Name)]; !ok {
			withheld = append(withheld, string(f.Name))
			if f.Sensitivity == popv1.SensitivitySensitive {
				sensitive = append(sensitive, string(f.Name))
			}
		}
	}
	r.n.info("withheld (in the catalog, not granted to BYT): %d fields, Sensitive among them: %s", len(withheld), strings.Join(sensitive, ", "))
	r.n.block(wrap(strings.Join(withheld, ", "), 100))
	slices.Sort(outside)
	if err := r.n.expect(len(outside) == 0, "no field outside BYT's allowedFields came back (outside: %v)", outside); err != nil {
		return err
	}
	return r.n.expect(len(got) == len(allowed), "all %d allowed fields (+ nationalId) came back, %d withheld (got %d paths)", len(allowed)-1, len(withheld), len(got))
}

// wrap breaks a comma-separated list into lines of at most width bytes.
func wrap(s string, width int) string {
	var b strings.Builder
	line := 0
	for i, w := range strings.Split(s, " ") {
		if i > 0 && line+1+len(w) > width {
			b.WriteString("\n")
			line = 0
		} else if i > 0 {
			b.WriteString(" ")
			line++
		}
		b.WriteString(w)
		line += len(w)
	}
	return b.String()
}

func (r *runner) fieldNotAllowed(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	resp, err := r.agencyCall(ctx, "BYT", http.MethodGet, "/v1/citizens/"+c.NationalID+"?fields=fullName,bloodType", nil, "")
	if err != nil {
		return err
	}
	var sub map[string]any
	if err := json.Unmarshal(resp.body, &sub); err != nil {
		return fmt.Errorf("lookup response is not JSON: %w", err)
	}
	if err := r.n.expect(resp.status == http.StatusOK && len(sub) == 3, "a subset of granted fields is fine: 200 with fullName, bloodType and nationalId only (got %d, %d keys)", resp.status, len(sub)); err != nil {
		return err
	}
	resp, err = r.agencyCall(ctx, "BYT", http.MethodGet, "/v1/citizens/"+c.NationalID+"?fields=fullName,religion", nil, "BYT ?fields=religion (403)")
	if err != nil {
		return err
	}
	code := errorCode(resp.body)
	return r.n.expect(resp.status == http.StatusForbidden && code == "field_not_allowed" && strings.Contains(string(resp.body), "religion"),
		"403 field_not_allowed naming religion (got %d %s)", resp.status, code)
}

func (r *runner) operationNotAllowed(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	resp, err := r.agencyCall(ctx, "VCB", http.MethodGet, "/v1/citizens/"+c.NationalID, nil, "VCB Lookup (403)")
	if err != nil {
		return err
	}
	code := errorCode(resp.body)
	return r.n.expect(resp.status == http.StatusForbidden && code == "operation_not_allowed", "403 operation_not_allowed (got %d %s)", resp.status, code)
}

func (r *runner) verify(ctx context.Context) error {
	c, err := r.citizen()
	if err != nil {
		return err
	}
	r.n.info("a customer of Vietcombank declares: %s, born %s, ID %s", c.FullName, c.DateOfBirth, c.NationalID)
	body, err := json.Marshal(map[string]string{"nationalId": c.NationalID, "fullName": c.FullName, "dateOfBirth": c.DateOfBirth})
	if err != nil {
		return fmt.Errorf("encoding verify body: %w", err)
	}
	resp, err := r.agencyCall(ctx, "VCB", http.MethodPost, "/v1/citizens:verify", body, "VCB Verify (match)")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == http.StatusOK && strings.Contains(string(resp.body), `"match":true`), "the declared identity matches: {\"match\":true}"); err != nil {
		return err
	}
	r.n.info("an impostor declares the same name and ID with another birth date")
	body, err = json.Marshal(map[string]string{"nationalId": c.NationalID, "fullName": c.FullName, "dateOfBirth": "1999-01-01"})
	if err != nil {
		return fmt.Errorf("encoding verify body: %w", err)
	}
	resp, err = r.agencyCall(ctx, "VCB", http.MethodPost, "/v1/citizens:verify", body, "")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == http.StatusOK && strings.Contains(string(resp.body), `"match":false`), "no match, and nothing else learnt: {\"match\":false}"); err != nil {
		return err
	}
	body, err = json.Marshal(map[string]string{"nationalId": c.NationalID, "religion": "None"})
	if err != nil {
		return fmt.Errorf("encoding verify body: %w", err)
	}
	resp, err = r.agencyCall(ctx, "VCB", http.MethodPost, "/v1/citizens:verify", body, "")
	if err != nil {
		return err
	}
	code := errorCode(resp.body)
	return r.n.expect(resp.status == http.StatusForbidden && code == "field_not_allowed",
		"guessing a field not granted is refused too: 403 field_not_allowed (got %d %s)", resp.status, code)
}
