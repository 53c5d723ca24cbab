package loader

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"

	"github.com/popconnect/popconnect/gateway/policy"
)

// Kube loads the policy from the shard ConfigMaps of one namespace that
// match a label selector, through an informer (list and watch only). The
// policy is the union of every document in every shard, each decoded by
// policy.DecodeShardValue, the decoder the operator uses too:
//   - each data value is a JSON or YAML policy document;
//   - each binaryData value whose key ends in .gz is a gzip-compressed JSON
//     document.
//
// A document that fails to parse keeps its last good version (or is left
// out if it never had one) and is counted as a load error, so a corrupt
// shard does not wipe the agencies it held, and the other shards still
// update. An agency in two documents with different entries is denied.
// When the API server is unreachable the informer keeps its cache and the
// gateway keeps serving the last policy.
type Kube struct {
	client    kubernetes.Interface
	namespace string
	selector  labels.Selector
	target    Target
	log       *slog.Logger

	// good holds the last good parse of each document, keyed by
	// namespace/name/key; rv remembers the resourceVersion it came from.
	good map[string]*policy.Document
	rv   map[string]string
	// failed remembers the resourceVersion a document failed to parse at,
	// so it is reported once, not at every later event.
	failed map[string]string
}

// NewKube returns a shard loader. selector is a label selector string such
// as popconnect.io/gateway=gw1.
func NewKube(client kubernetes.Interface, namespace, selector string, target Target, log *slog.Logger) (*Kube, error) {
	sel, err := labels.Parse(selector)
	if err != nil {
		return nil, fmt.Errorf("parsing --policy-selector: %w", err)
	}
	if namespace == "" {
		return nil, errors.New("the policy namespace is required")
	}
	return &Kube{client: client, namespace: namespace, selector: sel, target: target, log: log,
		good: map[string]*policy.Document{}, rv: map[string]string{}, failed: map[string]string{}}, nil
}

// Run watches the shards until ctx ends. synced is closed after the first
// policy has been applied (which happens once the informer's first list is
// in, even if it found no shard).
func (k *Kube) Run(ctx context.Context, synced chan<- struct{}) error {
	factory := informers.NewSharedInformerFactoryWithOptions(k.client, 0,
		informers.WithNamespace(k.namespace),
		informers.WithTweakListOptions(func(o *metav1.ListOptions) { o.LabelSelector = k.selector.String() }))
	cms := factory.Core().V1().ConfigMaps()
	informer, lister := cms.Informer(), cms.Lister()

	kick := make(chan struct{}, 1)
	notify := func() {
		select {
		case kick <- struct{}{}:
		default:
		}
	}
	_, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(any) { notify() },
		UpdateFunc: func(any, any) { notify() },
		DeleteFunc: func(any) { notify() },
	})
	if err != nil {
		return fmt.Errorf("watching policy shards: %w", err)
	}
	factory.Start(ctx.Done())
	defer factory.Shutdown()
	if !cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
		return fmt.Errorf("policy shards: informer did not sync: %w", ctx.Err())
	}
	list := func() ([]*corev1.ConfigMap, error) { return lister.ConfigMaps(k.namespace).List(k.selector) }
	if err := k.reload(list); err != nil {
		return err
	}
	close(synced)
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-kick:
			if err := k.reload(list); err != nil {
				k.log.Error("applying policy failed; keeping the last good policy", "error", err)
			}
		}
	}
}

// reload rebuilds the union from the informer's cache. Only documents whose
// ConfigMap changed are parsed again.
func (k *Kube) reload(list func() ([]*corev1.ConfigMap, error)) error {
	start := time.Now()
	cms, err := list()
	if err != nil {
		return fmt.Errorf("listing policy shards: %w", err)
	}
	docs := map[string]*policy.Document{}
	rv := map[string]string{}
	failed := map[string]string{}
	for _, cm := range cms {
		prefix := cm.Namespace + "/" + cm.Name + "/"
		for key, value := range cm.Data {
			k.take(docs, rv, failed, prefix+key, cm.ResourceVersion, func() (*policy.Document, error) {
				return policy.DecodeShardValue(key, []byte(value), false)
			})
		}
		for key, value := range cm.BinaryData {
			k.take(docs, rv, failed, prefix+key, cm.ResourceVersion, func() (*policy.Document, error) {
				return policy.DecodeShardValue(key, value, true)
			})
		}
	}
	k.good, k.rv, k.failed = docs, rv, failed
	merged := policy.Merge(docs)
	for _, code := range merged.Conflicts {
		k.target.LoadError()
		k.log.Error("agency appears in several shards with different entries; it is denied", "agency", code)
	}
	if err := k.target.Apply(merged); err != nil {
		return err
	}
	k.log.Info("policy shards applied", "shards", len(cms), "documents", len(docs), "took", time.Since(start))
	return nil
}

// take puts document name into docs: the cached parse when its ConfigMap is
// unchanged, a fresh parse otherwise, the last good parse when the fresh one
// fails.
func (k *Kube) take(docs map[string]*policy.Document, rv, failed map[string]string, name, version string, decode func() (*policy.Document, error)) {
	if prev, ok := k.good[name]; ok && k.rv[name] == version {
		docs[name], rv[name] = prev, version
		return
	}
	if k.failed[name] == version { // already reported
		failed[name] = version
		if prev, ok := k.good[name]; ok {
			docs[name], rv[name] = prev, k.rv[name]
		}
		return
	}
	doc, err := decode()
	if err != nil {
		k.target.LoadError()
		failed[name] = version
		if prev, ok := k.good[name]; ok {
			k.log.Error("policy shard is invalid; keeping its last good version", "shard", name, "error", err)
			docs[name], rv[name] = prev, k.rv[name]
		} else {
			k.log.Error("policy shard is invalid and has no good version; its agencies are denied", "shard", name, "error", err)
		}
		return
	}
	docs[name], rv[name] = doc, version
}
