//go:build e2e

package e2e

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
	"github.com/popconnect/popconnect/internal/popdb"
	"github.com/popconnect/popconnect/internal/render"
)

// servingName is the sample gateway's first DNS name.
const servingName = "gateway.popconnect.example"

// TestAgencyLooksUpThroughTheGatewayService: with the client certificate
// the operator had issued for the Ministry of Health (Secret
// ministry-of-health-client-tls), a lookup through the gateway Service
// (its ClusterIP, through kube-proxy, to a gateway pod, to popdb-sim behind
// its Service name) answers 200, and asking for a field the connection may
// not read answers 403.
//
// The client runs on the node, not in a pod, with the sample connection's
// Secret: the first 200 after helm install. Agency pods in namespaces of
// their own are in agencyreads_test.go and netpol_test.go.
func TestAgencyLooksUpThroughTheGatewayService(t *testing.T) {
	cl := setup(t)
	ctx := context.Background()
	hc := cl.agencyClient(t, "ministry-of-health-client-tls")
	addr := cl.gatewayServiceAddr(t)
	id, err := popdb.NationalID(0)
	if err != nil {
		t.Fatal(err)
	}
	get := func(path string) (int, string, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+path, nil)
		if err != nil {
			return 0, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		return resp.StatusCode, string(body), nil
	}
	start := time.Now()
	err = poll(ctx, time.Minute, func() (bool, string, error) {
		code, body, err := get("/v1/citizens/" + id)
		if err != nil {
			return false, err.Error(), nil
		}
		return code == http.StatusOK, fmt.Sprintf("%d %s", code, body), nil
	})
	if err != nil {
		cl.dump(t)
		t.Fatalf("BYT lookup: %v", err)
	}
	t.Logf("200 through the gateway Service after %s of polling; the install's first 200 came %s after helm install started",
		time.Since(start).Round(time.Millisecond), cl.firstOK.Sub(cl.helmInstalled).Round(time.Millisecond))

	code, body, err := get("/v1/citizens/" + id + "?fields=fullName,religion")
	if err != nil {
		t.Fatal(err)
	}
	if code != http.StatusForbidden {
		t.Errorf("BYT ?fields=fullName,religion: %d %s, want 403", code, body)
	}
}

// agencyClient is an agency's HTTPS client from the key pair and CA in the
// named Secret: TLS 1.3, verifying the gateway as servingName.
func (cl *cluster) agencyClient(t *testing.T, secret string) *http.Client {
	t.Helper()
	hc, err := cl.secretClient(context.Background(), secret)
	if err != nil {
		cl.dump(t)
		t.Fatal(err)
	}
	return hc
}

// secretClient waits for the named Secret in the system namespace to hold
// a certificate and returns an HTTPS client with it.
func (cl *cluster) secretClient(ctx context.Context, secret string) (*http.Client, error) {
	var s corev1.Secret
	err := poll(ctx, installTimeout, func() (bool, string, error) {
		err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: secret}, &s)
		if err != nil {
			return false, err.Error(), nil
		}
		return len(s.Data["tls.crt"]) > 0 && len(s.Data["ca.crt"]) > 0, "secret without tls.crt or ca.crt", nil
	})
	if err != nil {
		return nil, fmt.Errorf("Secret %s: %w", secret, err)
	}
	pair, err := tls.X509KeyPair(s.Data["tls.crt"], s.Data["tls.key"])
	if err != nil {
		return nil, fmt.Errorf("Secret %s: %w", secret, err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(s.Data["ca.crt"]) {
		return nil, fmt.Errorf("Secret %s: ca.crt holds no certificate", secret)
	}
	cfg := &tls.Config{RootCAs: roots, ServerName: servingName, MinVersion: tls.VersionTLS13,
		GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return &pair, nil }}
	return &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{TLSClientConfig: cfg}}, nil
}

// firstLookup is the install's last step: it polls a lookup from the node,
// with the Ministry of Health's Secret, until the gateway Service answers
// 200, and notes when: the time from helm install to the first 200.
func (cl *cluster) firstLookup(ctx context.Context) error {
	hc, err := cl.secretClient(ctx, "ministry-of-health-client-tls")
	if err != nil {
		return err
	}
	id, err := popdb.NationalID(0)
	if err != nil {
		return err
	}
	var gw popv1.PopulationGateway
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &gw); err != nil {
		return err
	}
	err = poll(ctx, installTimeout, func() (bool, string, error) {
		var svc corev1.Service
		if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: render.NamesFor(&gw).Service}, &svc); err != nil || len(svc.Spec.Ports) == 0 {
			return false, fmt.Sprintf("gateway Service: %v", err), nil
		}
		addr := net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "https://"+addr+"/v1/citizens/"+id, nil)
		if err != nil {
			return false, "", err
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false, err.Error(), nil
		}
		_ = resp.Body.Close()
		return resp.StatusCode == http.StatusOK, resp.Status, nil
	})
	if err != nil {
		return err
	}
	cl.firstOK = time.Now()
	return nil
}

// gatewayServiceAddr is the sample gateway Service's ClusterIP and port.
func (cl *cluster) gatewayServiceAddr(t *testing.T) string {
	t.Helper()
	var gw popv1.PopulationGateway
	ctx := context.Background()
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: gatewayName}, &gw); err != nil {
		t.Fatal(err)
	}
	var svc corev1.Service
	if err := cl.client.Get(ctx, client.ObjectKey{Namespace: systemNamespace, Name: render.NamesFor(&gw).Service}, &svc); err != nil {
		t.Fatal(err)
	}
	if len(svc.Spec.Ports) == 0 {
		t.Fatalf("Service %s has no ports", svc.Name)
	}
	return net.JoinHostPort(svc.Spec.ClusterIP, strconv.Itoa(int(svc.Spec.Ports[0].Port)))
}
