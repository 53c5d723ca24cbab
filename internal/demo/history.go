package demo

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
)

// historyCitizenIndex is the citizen of the access-history step: one no
// earlier step read, so that the history holds this step's reads only.
const historyCitizenIndex = 777

// historyConnections are the police's connection (its reads hidden from the
// citizen for a year, each naming its case) and the citizen portal's (the
// only one allowed AccessHistory).
const historyConnections = `apiVersion: popconnect.io/v1alpha1
kind: AgencyConnection
metadata:
  name: hanoi-police
spec:
  agencyCode: CA-HN
  displayName: Hanoi Police
  gatewayRef: {name: ` + gatewayName + `}
  purpose: Identify persons in criminal investigations.
  allowedFields: [fullName, dateOfBirth]
  allowedOperations: [Lookup]
  rateLimit: {requestsPerSecond: 10, burst: 10}
  clientCertificate:
    issuerRef: {name: ` + caName + `, kind: ClusterIssuer}
  disclosureDelay: 8760h
  requireCaseReference: true
---
apiVersion: popconnect.io/v1alpha1
kind: AgencyConnection
metadata:
  name: citizen-portal
spec:
  agencyCode: PORTAL
  displayName: National citizen portal
  gatewayRef: {name: ` + gatewayName + `}
  purpose: Show each citizen, once the portal has authenticated them, who read their record.
  allowedFields: [fullName]
  allowedOperations: [AccessHistory]
  rateLimit: {requestsPerSecond: 20, burst: 40, dailyQuota: 200000}
  clientCertificate:
    issuerRef: {name: ` + caName + `, kind: ClusterIssuer}
`

// accessHistory: BYT and TCT read a citizen, the police read them too under
// a one-year disclosure delay; the portal's history shows two reads, and an
// agency's certificate cannot ask for it.
func (r *runner) accessHistory(ctx context.Context) error {
	file := filepath.Join(r.opts.WorkDir, "history-connections.yaml")
	if err := os.WriteFile(file, []byte(historyConnections), 0o600); err != nil {
		return fmt.Errorf("writing %s: %w", file, err)
	}
	if _, err := r.kubectl(ctx, true, "apply", "-f", r.rel(file), "-n", r.opts.Namespace); err != nil {
		return err
	}
	names := map[string]string{"CA-HN": "hanoi-police", "PORTAL": "citizen-portal"}
	// A connection lives in its agency's namespace: its editors cannot
	// grant themselves AccessHistory or a delay; the gateway's owner does.
	var state string
	refused := func(ctx context.Context) (bool, error) {
		state = ""
		for _, name := range names {
			var ac popv1.AgencyConnection
			if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: name}, &ac); err != nil {
				return false, fmt.Errorf("reading connection %s: %w", name, err)
			}
			c := meta.FindStatusCondition(ac.Status.Conditions, popv1.ConditionReady)
			if c == nil || c.Reason != popv1.ReasonPrivilegeNotGranted || c.ObservedGeneration != ac.Generation {
				state = name + " is not yet refused for its privileges"
				return false, nil
			}
		}
		return true, nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, refused, func() string { return state }); err != nil {
		return err
	}
	if err := r.n.expect(true, "both Ready=False PrivilegeNotGranted: the gateway's owner has not granted AccessHistory to the portal nor a disclosure delay to the police"); err != nil {
		return err
	}
	grant := `{"spec":{"privilegedConnections":{"accessHistory":[{"namespace":"` + r.opts.Namespace + `","name":"citizen-portal"}],` +
		`"disclosureDelay":[{"namespace":"` + r.opts.Namespace + `","name":"hanoi-police"}]}}}`
	if _, err := r.kubectl(ctx, true, "patch", "populationgateway", gatewayName, "-n", r.opts.Namespace, "--type=merge", "-p", grant); err != nil {
		return err
	}
	ready := func(ctx context.Context) (bool, error) {
		state = ""
		for _, name := range names {
			var ac popv1.AgencyConnection
			if err := r.env.Client.Get(ctx, client.ObjectKey{Namespace: r.opts.Namespace, Name: name}, &ac); err != nil {
				return false, fmt.Errorf("reading connection %s: %w", name, err)
			}
			if ok, st := readyState(&ac); !ok {
				state = name + ": " + st
				return false, nil
			}
		}
		return true, nil
	}
	if err := r.poll(ctx, r.opts.ReadyTimeout, ready, func() string { return state }); err != nil {
		return err
	}
	for code, name := range names {
		r.connNames[code] = name
		if err := r.loadAgency(ctx, code); err != nil {
			return err
		}
	}

	gen, err := popdb.NewGenerator(simSeed, simRecords)
	if err != nil {
		return fmt.Errorf("citizen generator: %w", err)
	}
	id := gen.Record(historyCitizenIndex).NationalID
	r.ids = append(r.ids, id)
	// The policy reaches the gateway within a second or two of Ready.
	if err := r.poll(ctx, r.opts.ReadyTimeout, func(ctx context.Context) (bool, error) {
		resp, err := r.call(ctx, r.agencies["PORTAL"].client, "GET", "/v1/citizens/"+id+"/accessHistory", nil)
		if err != nil {
			return false, nil
		}
		r.responses++
		return resp.status == 200, nil
	}, func() string { return "the gateway has not loaded the portal's connection" }); err != nil {
		return err
	}

	for _, code := range []string{"BYT", "TCT"} {
		resp, err := r.agencyCall(ctx, code, "GET", "/v1/citizens/"+id+"?fields=fullName", nil, "")
		if err != nil {
			return err
		}
		if err := r.n.expect(resp.status == 200, "%s reads the citizen", code); err != nil {
			return err
		}
	}
	resp, err := r.agencyCall(ctx, "CA-HN", "GET", "/v1/citizens/"+id+"?fields=fullName", nil, "")
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == 400 && errorCode(resp.body) == "case_reference_required",
		"the police connection requires a case reference: 400 case_reference_required without one"); err != nil {
		return err
	}
	r.caseReference = "HS-2026/0815"
	resp, err = r.agencyCall(ctx, "CA-HN", "GET", "/v1/citizens/"+id+"?fields=fullName", nil, "the police's read, under a one-year disclosure delay")
	r.caseReference = ""
	if err != nil {
		return err
	}
	if err := r.n.expect(resp.status == 200, "the police read the citizen, naming the case"); err != nil {
		return err
	}

	resp, err = r.agencyCall(ctx, "PORTAL", "GET", "/v1/citizens/"+id+"/accessHistory", nil, "the portal's AccessHistory request")
	if err != nil {
		return err
	}
	var ans struct {
		NationalID string `json:"nationalId"`
		Entries    []struct {
			Time, AgencyCode, AgencyName, Operation, Purpose, CaseReference string
			Fields                                                          []string
		} `json:"entries"`
	}
	if err := json.Unmarshal(resp.body, &ans); err != nil || resp.status != 200 {
		return fmt.Errorf("access history: %d %s", resp.status, resp.body)
	}
	var agencies []string
	for _, e := range ans.Entries {
		agencies = append(agencies, e.AgencyCode)
		r.n.info("  %s  %s (%s) %s %s  purpose: %s", e.Time, e.AgencyName, e.AgencyCode, e.Operation, strings.Join(e.Fields, ","), e.Purpose)
	}
	if err := r.n.expect(strings.Join(agencies, ",") == "TCT,BYT",
		"the citizen's access history has two entries, newest first (%s); the police's read stays hidden for a year", strings.Join(agencies, ", ")); err != nil {
		return err
	}
	resp, err = r.agencyCall(ctx, "BYT", "GET", "/v1/citizens/"+id+"/accessHistory", nil, "")
	if err != nil {
		return err
	}
	return r.n.expect(resp.status == 403 && errorCode(resp.body) == "operation_not_allowed",
		"an agency's certificate cannot read a citizen's history: 403 operation_not_allowed")
}
