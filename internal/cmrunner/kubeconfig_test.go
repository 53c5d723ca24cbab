package cmrunner

import (
	"bytes"
	"net/http"
	"net/url"
	"testing"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
)

func TestKubeconfigRoundTrip(t *testing.T) {
	in := &rest.Config{
		Host:            "https://127.0.0.1:6443",
		BearerToken:     "token",
		TLSClientConfig: rest.TLSClientConfig{CAData: []byte("ca"), CertData: []byte("cert"), KeyData: []byte("key"), ServerName: "kube"},
	}
	path, cleanup, err := writeKubeconfig(in)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	out, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		t.Fatalf("load written kubeconfig: %v", err)
	}
	if out.Host != in.Host || out.BearerToken != in.BearerToken || out.ServerName != in.ServerName ||
		!bytes.Equal(out.CAData, in.CAData) || !bytes.Equal(out.CertData, in.CertData) || !bytes.Equal(out.KeyData, in.KeyData) {
		t.Errorf("round trip changed the config:\n in: %+v\nout: %+v", in, out)
	}
}

func TestKubeconfigRejectsWhatItCannotCarry(t *testing.T) {
	cfg := &rest.Config{Host: "https://x", Proxy: func(*http.Request) (*url.URL, error) { return nil, nil }}
	if _, err := kubeconfigFor(cfg); err == nil {
		t.Error("kubeconfigFor accepted a proxy function")
	}
}
