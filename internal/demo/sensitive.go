package demo

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/popconnect/popconnect/internal/popdb"
)

// sensitive is what must never appear in a log the demo's processes
// wrote: the national IDs the demo asked about and every secret key of
// the run, each in the forms a careless log line would carry it. Run fills
// it, while the control plane still runs, when Options.sensitive is set
// (TestDemoScenario scans the logs with it after teardown).
type sensitive struct {
	nationalIDs []string
	secrets     []secretForms
	// events is every Kubernetes Event of the run, one per line, scanned
	// like the logs: events are read by far more people than Secrets.
	events string
}

// secretForms is one secret value and the encodings searched for.
type secretForms struct {
	what  string // e.g. "Secret popconnect-demo/x key tls.key"; never the value
	forms []string
}

// collectSensitive records the national IDs and the private keys of every
// Secret in the control plane (agency client certificates, the gateway's
// serving certificate, the CA) and the audit hash key.
func (r *runner) collectSensitive(s *sensitive) error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s.nationalIDs = append(s.nationalIDs, r.ids...)
	// The demo also asks popdb-sim for citizen 0 while waiting for it.
	if id, err := popdb.NationalID(0); err == nil {
		s.nationalIDs = append(s.nationalIDs, id)
	}
	if len(r.auditKey) > 0 {
		s.secrets = append(s.secrets, secretForms{what: "the audit hash key", forms: encodings(r.auditKey)})
	}
	if r.db != nil {
		s.secrets = append(s.secrets, secretForms{what: "the audit database password", forms: encodings([]byte(r.db.Password()))})
	}
	if r.redisPassword != "" {
		s.secrets = append(s.secrets, secretForms{what: "the Redis password", forms: encodings([]byte(r.redisPassword))})
	}
	events, err := r.eventText(ctx)
	if err != nil {
		return err
	}
	s.events = events
	var list corev1.SecretList
	if err := r.env.Client.List(ctx, &list); err != nil {
		return fmt.Errorf("listing Secrets for the leak check: %w", err)
	}
	for _, sec := range list.Items {
		for key, value := range sec.Data {
			if key != "key" && !strings.HasSuffix(key, ".key") || len(value) == 0 {
				continue
			}
			s.secrets = append(s.secrets, secretForms{
				what:  fmt.Sprintf("Secret %s/%s key %s", sec.Namespace, sec.Name, key),
				forms: keyForms(value),
			})
		}
	}
	return nil
}

// eventText is every Event of the control plane (events.k8s.io and core),
// one line each: object, reason and message.
func (r *runner) eventText(ctx context.Context) (string, error) {
	var b strings.Builder
	var events eventsv1.EventList
	if err := r.env.Client.List(ctx, &events); err != nil {
		return "", fmt.Errorf("listing Events for the leak check: %w", err)
	}
	for _, e := range events.Items {
		fmt.Fprintf(&b, "%s/%s %s %s %s\n", e.Regarding.Namespace, e.Regarding.Name, e.Type, e.Reason, e.Note)
	}
	var core corev1.EventList
	if err := r.env.Client.List(ctx, &core); err != nil {
		return "", fmt.Errorf("listing Events for the leak check: %w", err)
	}
	for _, e := range core.Items {
		fmt.Fprintf(&b, "%s/%s %s %s %s\n", e.InvolvedObject.Namespace, e.InvolvedObject.Name, e.Type, e.Reason, e.Message)
	}
	return b.String(), nil
}

// encodings are the raw bytes (when printable enough to be logged as a
// string) and their hex and base64 forms.
func encodings(b []byte) []string {
	forms := []string{
		hex.EncodeToString(b), strings.ToUpper(hex.EncodeToString(b)),
		base64.StdEncoding.EncodeToString(b), base64.RawStdEncoding.EncodeToString(b),
		base64.URLEncoding.EncodeToString(b), base64.RawURLEncoding.EncodeToString(b),
	}
	if len(b) >= 16 {
		forms = append(forms, string(b))
	}
	return forms
}

// keyForms are the forms of a PEM private key: the file as logged whole
// (and base64-encoded, as in a Secret's JSON), each line of its base64
// body on its own, and the DER key in hex and base64.
func keyForms(value []byte) []string {
	forms := encodings(value)
	rest := value
	for {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			break
		}
		forms = append(forms, encodings(block.Bytes)...)
		body := base64.StdEncoding.EncodeToString(block.Bytes)
		for len(body) > 0 {
			n := min(64, len(body))
			// A short last line could occur by chance; full lines cannot.
			if n == 64 {
				forms = append(forms, body[:n])
			}
			body = body[n:]
		}
	}
	return forms
}
