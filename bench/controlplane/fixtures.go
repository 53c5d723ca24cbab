package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/yaml"

	popv1 "github.com/popconnect/popconnect/api/v1alpha1"
)

const (
	gatewayName = "national-gateway"
	clientCASec = "agency-client-ca"
	issuerName  = "popconnect-ca"
)

// readSample decodes a file of config/samples into obj, so the bench runs
// the same catalog and gateway as the demo.
func readSample(root, file string, obj any) error {
	data, err := os.ReadFile(filepath.Join(root, "config", "samples", file))
	if err != nil {
		return fmt.Errorf("reading sample: %w", err)
	}
	if err := yaml.UnmarshalStrict(data, obj); err != nil {
		return fmt.Errorf("decoding %s: %w", file, err)
	}
	return nil
}

// agencyCode is the code of the i-th bench connection.
func agencyCode(i int) string { return fmt.Sprintf("AG-%05d", i) }

// connectionName is the name of the i-th bench connection.
func connectionName(i int) string { return fmt.Sprintf("agency-%05d", i) }

// connection builds a realistic connection: 6 to 20 catalog fields (so a
// legal basis, because some are Sensitive), one to three operations, rate
// limits and quota, and, for most of them, source CIDRs or a namespace
// selector and an agreement end date, so that entries and NetworkPolicies
// vary in shape and size like real ones.
func connection(ns string, i int, fields []popv1.FieldPath) *popv1.AgencyConnection {
	n := 6 + i%15
	start := (i * 7) % len(fields)
	allowed := make([]popv1.FieldPath, 0, n)
	for k := 0; k < n && k < len(fields); k++ {
		allowed = append(allowed, fields[(start+k)%len(fields)])
	}
	ops := [][]popv1.Operation{
		{popv1.OperationLookup},
		{popv1.OperationLookup, popv1.OperationVerify},
		{popv1.OperationLookup, popv1.OperationVerify, popv1.OperationBatchLookup},
		{popv1.OperationVerify},
	}[i%4]
	if i == 0 {
		// The propagation client looks citizens up as agency 0.
		ops = []popv1.Operation{popv1.OperationLookup, popv1.OperationVerify}
	}
	rps := int32(10 + i%200)
	quota := int64(10_000 + 1000*(i%97))
	dailyQuota, burst := &quota, 2*rps
	if i == 0 {
		// The propagation client hammers as agency 0: no 429 may blur
		// the moment a suspension is enforced.
		rps, burst, dailyQuota = 100_000, 100_000, nil
	}
	conn := &popv1.AgencyConnection{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: connectionName(i)},
		Spec: popv1.AgencyConnectionSpec{
			AgencyCode:        agencyCode(i),
			DisplayName:       fmt.Sprintf("Agency %d (province office %d)", i, i%63),
			GatewayRef:        popv1.GatewayReference{Name: gatewayName},
			Purpose:           "Identify citizens applying for public services handled by this office.",
			LegalBasis:        "Decree 13/2023/ND-CP Art. 17; Decision 06/QD-TTg (Project 06).",
			AllowedFields:     allowed,
			AllowedOperations: ops,
			RateLimit:         popv1.RateLimit{RequestsPerSecond: rps, Burst: burst, DailyQuota: dailyQuota},
			ClientCertificate: popv1.ClientCertificateSpec{
				IssuerRef: popv1.IssuerReference{Name: issuerName, Kind: "ClusterIssuer"},
			},
		},
	}
	switch i % 3 {
	case 0:
		conn.Spec.Network = &popv1.NetworkSpec{SourceCIDRs: []popv1.CIDR{
			popv1.CIDR(fmt.Sprintf("10.%d.%d.0/24", (i/256)%256, i%256)),
		}}
	case 1:
		conn.Spec.Network = &popv1.NetworkSpec{NamespaceSelector: &metav1.LabelSelector{
			MatchLabels: map[string]string{"popconnect.io/agency": fmt.Sprintf("ag-%05d", i)},
		}}
	}
	if i%2 == 1 {
		vu := metav1.NewTime(time.Date(2030, 1+time.Month(i%12), 1, 0, 0, 0, 0, time.UTC))
		conn.Spec.ValidUntil = &vu
	}
	return conn
}

// catalogFields are the names of the catalog's fields.
func catalogFields(fc *popv1.FieldCatalog) []popv1.FieldPath {
	out := make([]popv1.FieldPath, 0, len(fc.Spec.Fields))
	for _, f := range fc.Spec.Fields {
		out = append(out, f.Name)
	}
	return out
}

// setupGateway creates the namespace, the client CA Secret, the sample
// catalog and the sample gateway (in ns).
func setupGateway(ctx context.Context, c client.Client, root, ns string, caPEM []byte) (*popv1.FieldCatalog, *popv1.PopulationGateway, error) {
	if err := c.Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}); err != nil {
		return nil, nil, fmt.Errorf("creating namespace %s: %w", ns, err)
	}
	secret := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: clientCASec},
		Data:       map[string][]byte{"ca.crt": caPEM},
	}
	if err := c.Create(ctx, secret); err != nil {
		return nil, nil, fmt.Errorf("creating the client CA Secret: %w", err)
	}
	catalog := &popv1.FieldCatalog{}
	if err := readSample(root, "popconnect_v1alpha1_fieldcatalog.yaml", catalog); err != nil {
		return nil, nil, err
	}
	catalog.Name = ns + "-catalog"
	if err := c.Create(ctx, catalog); err != nil {
		return nil, nil, fmt.Errorf("creating the catalog: %w", err)
	}
	gw := &popv1.PopulationGateway{}
	if err := readSample(root, "popconnect_v1alpha1_populationgateway.yaml", gw); err != nil {
		return nil, nil, err
	}
	gw.Namespace = ns
	gw.Spec.CatalogRef.Name = catalog.Name
	if err := c.Create(ctx, gw); err != nil {
		return nil, nil, fmt.Errorf("creating the gateway: %w", err)
	}
	return catalog, gw, nil
}

// parallel runs fn(0..n-1) on workers goroutines and returns the first error.
func parallel(ctx context.Context, n, workers int, fn func(ctx context.Context, i int) error) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var next atomic.Int64
	var once sync.Once
	var first error
	var wg sync.WaitGroup
	for range max(workers, 1) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				if err := fn(ctx, i); err != nil {
					once.Do(func() { first = err; cancel() })
					return
				}
			}
		})
	}
	wg.Wait()
	return first
}

// createConnections creates connections [from, to) in ns.
func createConnections(ctx context.Context, c client.Client, ns string, from, to, workers int, fields []popv1.FieldPath) error {
	return parallel(ctx, to-from, workers, func(ctx context.Context, i int) error {
		conn := connection(ns, from+i, fields)
		if err := c.Create(ctx, conn); err != nil {
			return fmt.Errorf("creating connection %s: %w", conn.Name, err)
		}
		return nil
	})
}
