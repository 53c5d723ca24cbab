package policyplan

import (
	"time"

	"k8s.io/apimachinery/pkg/types"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/internal/admission"
	"github.com/popconnect/popconnect/internal/render"
)

// Verdict is what the plan decides for one connection.
type Verdict struct {
	// Connection is the connection judged, as given in Input (not copied).
	Connection *popv1.AgencyConnection
	// Problem is the first problem only the connection's author (or the
	// gateway's owner) can fix; the connection has no entry while it is set.
	Problem *admission.Problem
	// IdentityRefused is set when the agency code belongs to another
	// connection or the gateway does not admit the connection's namespace:
	// the connection then gets no certificate and no network access either,
	// since anyone who may create it could otherwise obtain a certificate
	// the gateway trusts.
	IdentityRefused bool
	// Denied is set when the entry refuses the agency (spec.suspended, or
	// spec.validUntil has passed).
	Denied bool
	// Pins are the certificate digests the entry pins the agency to, from
	// the connection's status (render.CertificatePins); set when admitted.
	Pins []string
	// RequeueAt is when the verdict changes by itself (validUntil, the end
	// of a previous certificate's grace); zero when it does not.
	RequeueAt time.Time

	gateway types.NamespacedName
	expired bool
	fields  fieldsVerdict
}

// fieldsVerdict is what the FieldsValid condition reports: Unknown with
// unknown's reason when there is no catalog to check against, False with
// problem's, True otherwise. Its message is built only when read: a plan
// of 10,000 connections need not format 10,000 of them.
type fieldsVerdict struct {
	unknown *admission.Problem
	problem *admission.Problem
	catalog string
}

// Admitted reports whether the connection has an entry in the policy.
func (v *Verdict) Admitted() bool { return v.Problem == nil }

// Entry is the connection's policy entry, built from its spec and the
// pins of its status; meaningful only when Admitted.
func (v *Verdict) Entry() policy.Agency {
	return render.PolicyEntry(v.Connection, v.Denied, v.Pins)
}

// EntryWith is the entry the connection will have once its certificate
// status is cert (the status a reconcile of the connection is about to
// write), and when that entry changes by itself (zero when it does not).
func (v *Verdict) EntryWith(cert *popv1.CertificateStatus, now time.Time) (policy.Agency, time.Time) {
	pins, next := render.CertificatePins(cert, v.Connection.Spec.ClientCertificate.RevokedSerialNumbers, now)
	return render.PolicyEntry(v.Connection, v.Denied, pins), next
}

// Shard is the index and name of the policy shard that holds (or would
// hold) the connection's entry.
func (v *Verdict) Shard() (int, string) {
	return shardOf(v.gateway.Name, v.Connection.Spec.AgencyCode)
}

// computePins sets Pins from the connection's status and returns when they
// change by themselves.
func (v *Verdict) computePins(now time.Time) time.Time {
	pins, next := render.CertificatePins(v.Connection.Status.Certificate, v.Connection.Spec.ClientCertificate.RevokedSerialNumbers, now)
	v.Pins = pins
	return next
}
