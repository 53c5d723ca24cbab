package loader

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"

	"github.com/popconnect/popconnect/gateway/policy"
	"github.com/popconnect/popconnect/gateway/watch"
)

// File loads a --policy-file and reloads it when it changes.
type File struct {
	path   string
	target Target
	log    *slog.Logger

	mu   sync.Mutex
	last []byte // content of the policy in force, to skip no-op reloads
}

// NewFile returns a loader for path.
func NewFile(path string, target Target, log *slog.Logger) *File {
	return &File{path: path, target: target, log: log}
}

// Load reads, parses and applies the file. On error the policy in force is
// kept and the error counted.
func (f *File) Load() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	data, err := os.ReadFile(f.path)
	if err != nil {
		f.target.LoadError()
		return fmt.Errorf("reading policy file: %w", err)
	}
	if f.last != nil && bytes.Equal(data, f.last) {
		return nil
	}
	doc, err := policy.Parse(data)
	if err != nil {
		f.target.LoadError()
		return fmt.Errorf("policy file %s: %w", f.path, err)
	}
	merged := policy.Merge(map[string]*policy.Document{f.path: doc})
	for range merged.Conflicts {
		f.target.LoadError()
	}
	if err := f.target.Apply(merged); err != nil {
		return err
	}
	f.last = data
	return nil
}

// Watch reloads the file on every change until ctx ends.
func (f *File) Watch(ctx context.Context) error {
	return watch.Files(ctx, []string{f.path}, func() {
		if err := f.Load(); err != nil {
			f.log.Error("policy reload failed; keeping the last good policy", "error", err)
		}
	}, func(err error) { f.log.Error("policy file watcher", "error", err) })
}
