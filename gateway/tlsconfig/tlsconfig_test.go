package tlsconfig

import (
	"net"
	"testing"

	"github.com/popconnect/popconnect/gateway/testpki"
)

// TestClientCAGeneration: the generation moves when, and only when, a
// reload loads a different client CA bundle, so that a renewal of the
// serving certificate does not make the gateway re-verify every open
// connection, and a failed reload changes nothing.
func TestClientCAGeneration(t *testing.T) {
	dir := t.TempDir()
	caA, caB := testpki.NewCA(t, "a"), testpki.NewCA(t, "b")
	serving := func() *testpki.Leaf {
		return caA.Issue(t, testpki.Options{IPs: []net.IP{net.ParseIP("127.0.0.1")}, Server: true})
	}
	first := serving()
	s, err := New(Files{
		CertFile:     testpki.WriteFile(t, dir, "tls.crt", first.CertPEM),
		KeyFile:      testpki.WriteFile(t, dir, "tls.key", first.KeyPEM),
		ClientCAFile: testpki.WriteFile(t, dir, "ca.crt", caA.CertPEM),
	}, false)
	if err != nil {
		t.Fatal(err)
	}
	for _, step := range []struct {
		name    string
		files   map[string][]byte
		wantErr bool
		wantGen uint64
	}{
		{"unchanged", nil, false, 1},
		{"serving certificate renewed", func() map[string][]byte {
			l := serving()
			return map[string][]byte{"tls.crt": l.CertPEM, "tls.key": l.KeyPEM}
		}(), false, 1},
		{"CA bundle grows", map[string][]byte{"ca.crt": append(append([]byte{}, caA.CertPEM...), caB.CertPEM...)}, false, 2},
		{"old CA dropped", map[string][]byte{"ca.crt": caB.CertPEM}, false, 3},
		{"broken bundle: kept", map[string][]byte{"ca.crt": []byte("not PEM")}, true, 3},
		{"same bundle again", map[string][]byte{"ca.crt": caB.CertPEM}, false, 3},
	} {
		for name, data := range step.files {
			testpki.WriteFile(t, dir, name, data)
		}
		if err := s.Reload(); (err != nil) != step.wantErr {
			t.Fatalf("%s: Reload: %v", step.name, err)
		}
		pool, gen := s.ClientCAs()
		if gen != step.wantGen {
			t.Fatalf("%s: generation %d, want %d", step.name, gen, step.wantGen)
		}
		// The pool is the one new handshakes verify with.
		if cfg, _ := s.Config().GetConfigForClient(nil); pool != cfg.ClientCAs {
			t.Fatalf("%s: ClientCAs is not the handshakes' pool", step.name)
		}
	}
}
