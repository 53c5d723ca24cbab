// Package loader feeds the gateway its policy, from a file (standalone) or
// from policy shard ConfigMaps (Kubernetes). Both keep the last good policy
// when a new one cannot be read.
package loader

import "github.com/popconnect/popconnect/gateway/policy"

// Target receives policies and reports problems.
type Target struct {
	// Apply installs a merged policy.
	Apply func(policy.Merged) error
	// LoadError counts a document that failed to load, or an agency
	// conflict between documents.
	LoadError func()
}
