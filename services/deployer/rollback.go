package deployer

import (
	"context"
	"fmt"
	"path"
	"strings"

	"golang.org/x/sync/errgroup"

	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/sshx"
)

// switchBack is a rollback of a file release: current goes back to ev.RollbackRelease,
// which an earlier run left under releases/ on every target. Every target is checked
// before any is switched, so a release pruned from one of them fails the rollback with
// every target still on its current release. Nothing is uploaded and nothing is pruned.
func (s *Service) switchBack(ctx context.Context, r runs.Run, p project, servers []server, ev events.RunBuilt, logw *runlog.Writer) (string, error) {
	l, err := newLayout(p.DeployPath, ev.RollbackRelease)
	if err != nil {
		return "", err
	}
	logw.Printf("rolling back %d server(s) under %s to release %s", len(servers), p.DeployPath, l.id)
	hosts := make([]*host, len(servers))
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.close()
			}
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	for i, sv := range servers {
		g.Go(func() error {
			h, err := s.connect(gctx, sv, logw)
			if err != nil {
				return err
			}
			hosts[i] = h
			return h.hasRelease(gctx, l, logw)
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	s.progress(r.ID, 80)
	for _, h := range hosts {
		if err := h.switchCurrent(ctx, l); err != nil {
			return "", fmt.Errorf("%s: switch current: %w", h.name, err)
		}
		logw.Printf("%s: switched current back to releases/%s", h.name, l.id)
	}
	return l.id, nil
}

// hasRelease checks that release l is a directory under releases/ (not a link fabu did not
// make) and says which release is live now.
func (h *host) hasRelease(ctx context.Context, l layout, logw *runlog.Writer) error {
	out, err := h.output(ctx, "readlink -- %s || true; echo :fabu:; if [ -d %s ] && [ ! -L %s ]; then echo present; fi",
		sshx.PathArg(l.current), sshx.PathArg(l.release), sshx.PathArg(l.release))
	if err != nil {
		return fmt.Errorf("%s: look for release %s: %w", h.name, l.id, err)
	}
	cur, found, _ := strings.Cut("\n"+out, "\n:fabu:\n")
	if strings.TrimSpace(found) != "present" {
		return fmt.Errorf("%s: release %s is no longer under %s (pruned by keep_releases?); deploy its commit instead",
			h.name, l.id, l.releases)
	}
	if live := strings.TrimSpace(cur); live != "" {
		logw.Printf("%s: release %s found; current is releases/%s", h.name, l.id, path.Base(live))
	}
	return nil
}
