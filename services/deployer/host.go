package deployer

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"sort"
	"strings"

	"fabu.dev/libs/sshx"
)

// layout is the release layout under one deploy path (DESIGN.md "On a target host").
type layout struct {
	root     string // the deploy path
	releases string // <root>/releases
	release  string // <root>/releases/<id>
	id       string
	tarball  string // <root>/releases/<id>.tar.gz while uploading
	current  string // <root>/current
	tmpLink  string // <root>/current.fabu-tmp, renamed over current
	shared   string
	meta     string
	run      string
}

func newLayout(root, id string) (layout, error) {
	if err := sshx.ValidPath(root); err != nil {
		return layout{}, fmt.Errorf("deploy path: %w", err)
	}
	if root == "/" {
		return layout{}, errors.New("deploy path must not be /")
	}
	if err := sshx.ValidName(id); err != nil {
		return layout{}, fmt.Errorf("release id: %w", err)
	}
	rel := path.Join(root, "releases")
	return layout{
		root: root, releases: rel, release: path.Join(rel, id), id: id, tarball: path.Join(rel, id+".tar.gz"),
		current: path.Join(root, "current"), tmpLink: path.Join(root, "current.fabu-tmp"),
		shared: path.Join(root, "shared"), meta: path.Join(root, ".fabu"), run: path.Join(root, "run"),
	}, nil
}

// host is one connected target server.
type host struct {
	name string
	c    *sshx.Client
	out  io.Writer
	errw io.Writer
}

func (h *host) close() { _ = h.c.Close() }

// run builds the fixed template with args and runs it, its output going to the run log.
func (h *host) run(ctx context.Context, tmpl sshx.Template, args ...sshx.Arg) error {
	cmd, err := sshx.NewCommand(tmpl, args...)
	if err != nil {
		return err
	}
	return h.c.Run(ctx, cmd, nil, h.out, h.errw)
}

// output runs a fixed template and returns its standard output.
func (h *host) output(ctx context.Context, tmpl sshx.Template, args ...sshx.Arg) (string, error) {
	cmd, err := sshx.NewCommand(tmpl, args...)
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := h.c.Run(ctx, cmd, nil, &out, h.errw); err != nil {
		return "", err
	}
	return out.String(), nil
}

// stage uploads the artifact as the release's tarball, prints the sha256 of the bytes that
// arrived and unpacks them into the release directory, in one session: each SSH session
// costs a round trip and a login shell. Nothing points at the release yet, so a checksum
// the caller rejects costs only the removal of the directory.
func (h *host) stage(ctx context.Context, l layout, artifact io.Reader) (string, error) {
	cmd, err := sshx.NewCommand(
		"mkdir -p -- %s %s %s %s && rm -rf -- %s && umask 022 && cat > %s && sha256sum < %s && "+
			"mkdir -- %s && tar -xzf %s -C %s && rm -f -- %s",
		sshx.PathArg(l.releases), sshx.PathArg(l.shared), sshx.PathArg(l.meta), sshx.PathArg(l.run),
		sshx.PathArg(l.release), sshx.PathArg(l.tarball), sshx.PathArg(l.tarball),
		sshx.PathArg(l.release), sshx.PathArg(l.tarball), sshx.PathArg(l.release), sshx.PathArg(l.tarball))
	if err != nil {
		return "", err
	}
	var out bytes.Buffer
	if err := h.c.Run(ctx, cmd, artifact, &out, h.errw); err != nil {
		return "", err
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(out.String()), " ")
	return sum, nil
}

func (h *host) remove(ctx context.Context, l layout) error {
	return h.run(ctx, "rm -rf -- %s %s", sshx.PathArg(l.release), sshx.PathArg(l.tarball))
}

// switchCurrent points current at the release atomically: a new symlink is renamed over the
// old one, so current is never missing or half-written.
func (h *host) switchCurrent(ctx context.Context, l layout) error {
	return h.run(ctx, "ln -sfn -- %s %s && mv -T -- %s %s",
		sshx.PathArg(l.release), sshx.PathArg(l.tmpLink), sshx.PathArg(l.tmpLink), sshx.PathArg(l.current))
}

// prune removes the oldest releases beyond keep, never the one current points at. Release
// IDs sort by time, so the oldest sort first.
func (h *host) prune(ctx context.Context, l layout, keep int) ([]string, error) {
	listing, err := h.output(ctx, "readlink -- %s || true; echo :fabu:; ls -1 -- %s",
		sshx.PathArg(l.current), sshx.PathArg(l.releases))
	if err != nil {
		return nil, fmt.Errorf("list releases: %w", err)
	}
	// readlink's line (absent without a current), the marker, then one release per line.
	cur, names, _ := strings.Cut("\n"+listing, "\n:fabu:\n")
	live := path.Base(strings.TrimSpace(cur))
	var ids []string
	sc := bufio.NewScanner(strings.NewReader(names))
	for sc.Scan() {
		name := strings.TrimSpace(sc.Text())
		if sshx.ValidName(name) != nil || strings.HasSuffix(name, ".tar.gz") {
			continue // not a release directory fabu made
		}
		ids = append(ids, name)
	}
	sort.Strings(ids)
	var old []string
	var args []sshx.Arg
	for i := 0; i < len(ids)-keep; i++ {
		if ids[i] != live {
			old = append(old, ids[i])
			args = append(args, sshx.PathArg(path.Join(l.releases, ids[i])))
		}
	}
	if len(old) == 0 {
		return nil, nil
	}
	// One placeholder per release; the template is built from constant pieces only.
	if err := h.run(ctx, sshx.Template("rm -rf --"+strings.Repeat(" %s", len(args))), args...); err != nil {
		return nil, fmt.Errorf("remove old releases: %w", err)
	}
	return old, nil
}
