package workspace

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"fabu.dev/libs/apperr"
)

func TestMirrorClonesThenFetchesIncrementally(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	first := o.commit("main", map[string]string{"a.txt": "one"})
	o.commit("feature", map[string]string{"f.txt": "feature"})
	w := &Workspace{Base: t.TempDir()}

	var log bytes.Buffer
	dir, err := w.Mirror(ctx, "gitlab", "group/sub", "app", o.bare, &log)
	if err != nil {
		t.Fatalf("first Mirror: %v\nlog:\n%s", err, log.String())
	}
	if want := filepath.Join(w.Base, "gitlab", "group", "sub", "app", "mirror.git"); dir != want {
		t.Fatalf("mirror dir = %q, want %q", dir, want)
	}
	if got, err := w.Resolve(ctx, dir, "main"); err != nil || got != first {
		t.Fatalf("Resolve(main) after clone = %q, %v; want %q", got, err, first)
	}
	// A marker inside the mirror survives the second call only if it fetches in place.
	marker := filepath.Join(dir, "fabu-test-marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}

	second := o.commit("main", map[string]string{"a.txt": "two"})
	git(t, o.work, "push", "--quiet", "origin", "--delete", "feature")
	dir2, err := w.Mirror(ctx, "gitlab", "group/sub", "app", o.bare, &log)
	if err != nil {
		t.Fatalf("second Mirror: %v\nlog:\n%s", err, log.String())
	}
	if dir2 != dir {
		t.Fatalf("second Mirror dir = %q, want %q", dir2, dir)
	}
	if _, err := os.Stat(marker); err != nil {
		t.Fatalf("mirror was recreated instead of fetched: %v", err)
	}
	if got, err := w.Resolve(ctx, dir, "main"); err != nil || got != second {
		t.Fatalf("Resolve(main) after fetch = %q, %v; want %q", got, err, second)
	}
	if got, err := w.Resolve(ctx, dir, first); err != nil || got != first {
		t.Fatalf("Resolve(old commit) = %q, %v; want %q", got, err, first)
	}
	if _, err := w.Resolve(ctx, dir, "feature"); !apperr.Is(err, apperr.CodeNotFound) {
		t.Fatalf("Resolve(deleted branch) error = %v, want not_found (fetch must prune)", err)
	}
}

func TestMirrorFollowsChangedURL(t *testing.T) {
	ctx := context.Background()
	a, b := newOrigin(t), newOrigin(t)
	a.commit("main", map[string]string{"x": "a"})
	fromB := b.commit("main", map[string]string{"x": "b"})
	w := &Workspace{Base: t.TempDir()}
	if _, err := w.Mirror(ctx, "github", "org", "app", a.bare, nil); err != nil {
		t.Fatal(err)
	}
	dir, err := w.Mirror(ctx, "github", "org", "app", b.bare, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := w.Resolve(ctx, dir, "main"); err != nil || got != fromB {
		t.Fatalf("Resolve(main) after URL change = %q, %v; want %q", got, err, fromB)
	}
}

// Concurrent first calls for one repository would race to rename their clones into place;
// the mirror lock makes one clone and the others fetch.
func TestMirrorConcurrentCallsShareOneMirror(t *testing.T) {
	ctx := context.Background()
	o := newOrigin(t)
	want := o.commit("main", map[string]string{"a": "1"})
	w := &Workspace{Base: t.TempDir()}
	const n = 4
	var wg sync.WaitGroup
	dirs, errs := make([]string, n), make([]error, n)
	for i := range n {
		wg.Go(func() { dirs[i], errs[i] = w.Mirror(ctx, "gitee", "ns", "app", o.bare, nil) })
	}
	wg.Wait()
	for i := range n {
		if errs[i] != nil {
			t.Fatalf("Mirror #%d: %v", i, errs[i])
		}
		if got, err := w.Resolve(ctx, dirs[i], "main"); err != nil || got != want {
			t.Fatalf("Resolve via mirror #%d = %q, %v; want %q", i, got, err, want)
		}
	}
}

func TestMirrorWaitsForLockUntilContextEnds(t *testing.T) {
	w := &Workspace{Base: t.TempDir()}
	dir, err := w.Dir("gitlab", "ns", "app")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	unlock, err := lockFile(context.Background(), filepath.Join(dir, "mirror.lock"))
	if err != nil {
		t.Fatal(err)
	}
	defer unlock()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := w.Mirror(ctx, "gitlab", "ns", "app", "/nonexistent", nil); !errors.Is(err, context.Canceled) {
		t.Fatalf("Mirror while the lock is held elsewhere and ctx is done: error = %v, want context.Canceled", err)
	}
}
