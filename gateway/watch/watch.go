// Package watch calls a function when files change. It watches the files'
// directories, not the files, so atomic renames (write a temporary file,
// rename it over) and Kubernetes volume updates (which swap a ..data
// symlink) are seen.
package watch

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/fsnotify/fsnotify"
)

// Files calls onChange after any change to one of paths, until ctx ends.
// Bursts of events are coalesced: while onChange runs, further events lead
// to exactly one more call. onError receives watcher errors.
func Files(ctx context.Context, paths []string, onChange func(), onError func(error)) error {
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return fmt.Errorf("creating file watcher: %w", err)
	}
	names := map[string]bool{}
	dirs := map[string]bool{}
	for _, p := range paths {
		abs, err := filepath.Abs(p)
		if err != nil {
			w.Close()
			return fmt.Errorf("resolving %s: %w", p, err)
		}
		names[abs] = true
		dir := filepath.Dir(abs)
		if !dirs[dir] {
			if err := w.Add(dir); err != nil {
				w.Close()
				return fmt.Errorf("watching %s: %w", dir, err)
			}
			dirs[dir] = true
		}
	}
	kick := make(chan struct{}, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-kick:
				onChange()
			}
		}
	}()
	go func() {
		defer w.Close()
		for {
			select {
			case <-ctx.Done():
				<-done
				return
			case ev, ok := <-w.Events:
				if !ok {
					return
				}
				// ..data and friends are the Kubernetes atomic writer's.
				if names[ev.Name] || strings.HasPrefix(filepath.Base(ev.Name), "..") {
					select {
					case kick <- struct{}{}:
					default:
					}
				}
			case err, ok := <-w.Errors:
				if !ok {
					return
				}
				onError(err)
			}
		}
	}()
	return nil
}
