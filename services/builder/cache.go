package builder

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/runlog"
	"fabu.dev/services/builder/pipeline"
)

// Caches keep what builds download (~/.m2, ~/.npm, node_modules) between runs of a project.
// A cache is saved once per key — the hash of the lockfile that decides its content — as a
// directory <workspace>/caches/<project id>/<key>/ holding one tar.gz per cache path
// (0.tar.gz, 1.tar.gz … in the order of the plan's paths). It is written under a temporary
// name and renamed into place, so a reader sees a whole cache or none, and two runs saving
// one key at once keep the first. The project ID rather than its name keeps a renamed
// project's caches. A cache is an optimisation: failing to restore or save one is logged
// and never fails a run.

// cacheDir is the directory of project's cache key.
func (s *Service) cacheDir(projectID, key string) string {
	return filepath.Join(s.cfg.WorkspaceDir, "caches", projectID, key)
}

// cachePath resolves a plan's cache path: "~/…" under home, anything else in the checkout.
func cachePath(root, home, p string) string {
	if rest, ok := strings.CutPrefix(p, "~/"); ok {
		return filepath.Join(home, filepath.FromSlash(rest))
	}
	return filepath.Join(root, filepath.FromSlash(p))
}

// restoreCaches unpacks every saved cache of plan into its paths before the stages run.
func (s *Service) restoreCaches(ctx context.Context, projectID, root, home string, plan pipeline.Plan, logw *runlog.Writer) {
	for _, c := range plan.Caches {
		dir := s.cacheDir(projectID, c.Key)
		if _, err := os.Stat(dir); err != nil {
			logw.Printf("cache %s: none yet for key %s", strings.Join(c.Paths, ", "), c.Key[:12])
			continue
		}
		restored := 0
		for i, p := range c.Paths {
			f, err := os.Open(filepath.Join(dir, strconv.Itoa(i)+".tar.gz"))
			if errors.Is(err, fs.ErrNotExist) {
				continue // the build had not made this path
			}
			if err == nil {
				err = artifact.Unpack(ctx, f, cachePath(root, home, p))
				_ = f.Close()
			}
			if err != nil {
				logw.Printf("cache %s: not restored: %v", p, err)
				continue
			}
			restored++
		}
		logw.Printf("cache %s: restored %d of %d paths (key %s)", strings.Join(c.Paths, ", "), restored, len(c.Paths), c.Key[:12])
	}
}

// saveCaches saves plan's caches whose key has none saved yet, after a successful build.
func (s *Service) saveCaches(ctx context.Context, projectID, root, home string, plan pipeline.Plan, logw *runlog.Writer) {
	for _, c := range plan.Caches {
		dir := s.cacheDir(projectID, c.Key)
		if _, err := os.Stat(dir); err == nil {
			continue
		}
		n, err := s.saveCache(ctx, dir, root, home, c)
		switch {
		case err != nil:
			logw.Printf("cache %s: not saved: %v", strings.Join(c.Paths, ", "), err)
		case n > 0:
			logw.Printf("cache %s: saved %d paths (key %s)", strings.Join(c.Paths, ", "), n, c.Key[:12])
		}
	}
}

// saveCache packs cache c's existing paths into dir and reports how many it saved.
func (s *Service) saveCache(ctx context.Context, dir, root, home string, c pipeline.Cache) (int, error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o750); err != nil {
		return 0, err
	}
	tmp := dir + ".tmp-" + ids.New()
	if err := os.Mkdir(tmp, 0o750); err != nil {
		return 0, err
	}
	defer func() { _ = os.RemoveAll(tmp) }()
	n := 0
	for i, p := range c.Paths {
		src := cachePath(root, home, p)
		if fi, err := os.Lstat(src); err != nil || !fi.IsDir() {
			continue
		}
		if _, err := artifact.Pack(ctx, src, filepath.Join(tmp, strconv.Itoa(i)+".tar.gz")); err != nil {
			return 0, fmt.Errorf("pack %s: %w", p, err)
		}
		n++
	}
	if n == 0 {
		return 0, nil // nothing to keep; a later build may make the paths
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(dir); serr == nil {
			return n, nil // another run saved this key first
		}
		return 0, err
	}
	return n, nil
}
