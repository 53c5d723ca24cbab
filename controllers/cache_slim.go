package controllers

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"reflect"

	cmapi "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	networkingv1 "k8s.io/api/networking/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"sigs.k8s.io/controller-runtime/pkg/client"
)

// Every connection has a NetworkPolicy and a client Certificate: 20,000
// cached objects at 10,000 connections, about a third of the manager's live
// heap when cached whole. No reconciler reads their specs, except to
// compare them with what it would write and for a Certificate's secretName
// and issuerRef. So the cache keeps them slim: metadata, status, the few
// fields read, and in place of the spec a digest of it, in a label that
// exists only in the manager's memory (labelCachedSpec). A change of the
// spec by anyone still comes as a watch event with a new digest, so drift
// is still seen and corrected.

// labelCachedSpec holds, on an object of the cache only, the digest of the
// spec the transform removed. It is never written to the API server:
// children are applied from their desired objects, and the patches made
// from cached objects (a Certificate's status) are computed between two
// copies that both carry it. A label rather than an annotation: every
// cached object of these kinds has labels (the cache selects them by
// label), and a Go map of up to 8 entries costs the same with one more,
// while a Certificate's annotations would be a new map (about 300 bytes).
const labelCachedSpec = "popconnect.io/cached-spec-sha256"

// slim makes the cache transform of a kind cached slim: it records the
// digest of the object's spec, then keep reduces the spec to what is read.
func slim[T client.Object](keep func(T)) func(any) (any, error) {
	return func(in any) (any, error) {
		in, err := dropUnread(in)
		obj, ok := in.(T)
		if err != nil || !ok {
			return in, err
		}
		if _, done := slimCached(obj); done {
			return obj, nil
		}
		digest, err := specDigest(obj)
		if err != nil {
			return obj, err
		}
		l := obj.GetLabels()
		if l == nil {
			l = make(map[string]string, 1)
		}
		l[labelCachedSpec] = digest
		obj.SetLabels(l)
		keep(obj)
		compactMeta(obj)
		return obj, nil
	}
}

// slimNetworkPolicy is the NetworkPolicy cache's transform: no reconciler
// reads a NetworkPolicy's spec.
var slimNetworkPolicy = slim(func(np *networkingv1.NetworkPolicy) { np.Spec = networkingv1.NetworkPolicySpec{} })

// slimCertificate is the Certificate cache's transform: of the spec it keeps
// what the reconcilers read (secretName, issuerRef), and the whole status.
var slimCertificate = slim(func(cert *cmapi.Certificate) {
	issuer := cert.Spec.IssuerRef
	issuer.Name, issuer.Kind, issuer.Group = intern(issuer.Name), intern(issuer.Kind), intern(issuer.Group)
	cert.Spec = cmapi.CertificateSpec{SecretName: cert.Spec.SecretName, IssuerRef: issuer}
})

// specDigest is a digest of the spec of a NetworkPolicy or Certificate: the
// same for a desired object and a live one when their specs are equal
// field by field (the JSON encoding of a Go value is deterministic).
func specDigest(obj client.Object) (string, error) {
	var spec any
	switch o := obj.(type) {
	case *networkingv1.NetworkPolicy:
		spec = &o.Spec
	case *cmapi.Certificate:
		spec = &o.Spec
	default:
		return "", fmt.Errorf("no spec digest for %T", obj)
	}
	data, err := json.Marshal(spec)
	if err != nil {
		return "", fmt.Errorf("encoding the spec of %T %s/%s: %w", obj, obj.GetNamespace(), obj.GetName(), err)
	}
	sum := sha256.Sum256(data)
	return hex.EncodeToString(sum[:16]), nil
}

// slimCached reports whether obj came from a cache that keeps only its
// spec's digest.
func slimCached(obj client.Object) (digest string, ok bool) {
	digest, ok = obj.GetLabels()[labelCachedSpec]
	return digest, ok
}

// current reports whether existing (cached) already is as desired. A slim
// object whose digest differs is read whole from the API server and
// compared field by field, as upToDate compares: a field the server
// defaults, and desired leaves unset, changes the digest but must not
// cause a write at every reconcile. A real change costs that one read
// before its write.
func current(ctx context.Context, apiReader client.Reader, desired, existing client.Object) (bool, error) {
	if upToDate(desired, existing) {
		return true, nil
	}
	if _, slim := slimCached(existing); !slim {
		return false, nil
	}
	// A zero object: decoding into a copy of desired would keep the fields
	// the server's object lacks.
	full := reflect.New(reflect.TypeOf(desired).Elem()).Interface().(client.Object)
	if err := apiReader.Get(ctx, client.ObjectKeyFromObject(desired), full); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("reading %T %s/%s: %w", desired, desired.GetNamespace(), desired.GetName(), err)
	}
	return upToDate(desired, full), nil
}
