package deployer

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/container"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
	"fabu.dev/libs/sshx"
)

// The docker strategy. A docker run's artifact is an image pinned by digest. On every
// server, over SSH with fixed command templates only, the deployer
//
//  1. pulls the image by digest with the project's container CLI (docker or podman), the
//     registry credentials in an auth file sent on stdin to a private temporary directory
//     that is removed when the command ends (never on a command line);
//  2. stops the project's running container (kept, not removed) and starts the new one,
//     named fabu-<project>-<release>, labelled fabu.project and fabu.release, with the
//     project's validated ports, environment, volumes, network and restart policy;
//  3. checks its health: the container must keep running and, with a health port, answer
//     an HTTP GET on the server's loopback (tunnelled through the SSH connection) with a
//     2xx or 3xx status before the health timeout.
//
// Only when every server is healthy are the previous containers removed and images beyond
// the project's last keep_releases releases pruned. When any server fails, the new
// containers are removed and the previous ones started again on every server already
// switched, so the old release keeps serving. Host ports cannot be bound twice, so the old
// container stops before the new one starts: there is a gap of the new container's start
// and health check. Rolling back is deploying an earlier release's image: a run of an
// earlier commit reuses the image its build pushed (build once, deploy many) and this
// strategy starts it like any other.

// healthPoll is how often a health check is tried.
const healthPoll = 500 * time.Millisecond

// settleTime is how long a container without a health port must keep running.
const settleTime = 2 * time.Second

// dockerHost is one server of a docker deploy.
type dockerHost struct {
	*host
	cli      sshx.Arg
	old      []string // the project's containers that were running before, stopped for the new one
	switched bool     // the new container was started
}

// dockerDeploy is one docker deploy across servers.
type dockerDeploy struct {
	s        *Service
	settings container.Settings
	ref      container.Ref
	project  project
	release  string
	name     string // the new container's name
	auth     []byte // the auth file sent to each server
	log      *runlog.Writer
}

// shipImage deploys run r's image to servers.
func (s *Service) shipImage(ctx context.Context, r runs.Run, p project, servers []server, ev events.RunBuilt, logw *runlog.Writer) (string, error) {
	settings, err := container.Parse(p.DockerSettings)
	if err != nil {
		return "", err
	}
	ref, err := container.ParseRef(ev.ArtifactPath)
	if err != nil {
		return "", err
	}
	if strings.TrimPrefix(ref.Digest, "sha256:") != ev.ArtifactSHA256 {
		return "", fmt.Errorf("image %s does not match the built digest %s", ref, ev.ArtifactSHA256)
	}
	name := "fabu-" + p.Name + "-" + strings.ToLower(r.ID)
	if err := sshx.ValidName(name); err != nil {
		return "", fmt.Errorf("container name: %w", err)
	}
	auth := []byte(`{"auths":{}}`)
	if settings.Username != "" {
		password, err := s.registryPassword(p)
		if err != nil {
			return "", err
		}
		if password != "" { // a user without a password: anonymous
			auth = container.AuthFile(ref.Registry(), settings.Username, password)
		}
	}
	d := &dockerDeploy{s: s, settings: settings, ref: ref, project: p, release: r.ID, name: name, auth: auth, log: logw}
	cli := settings.CLIName()
	cliArg := sshx.NameArg(cli)
	if strings.HasPrefix(cli, "/") {
		cliArg = sshx.PathArg(cli)
	}
	logw.Printf("deploying image %s as container %s to %d server(s) with %s", ref, name, len(servers), cli)

	hosts := make([]*dockerHost, len(servers))
	defer func() {
		for _, h := range hosts {
			if h != nil {
				h.close()
			}
		}
	}()
	// Phase 1, in parallel: connect and pull. Nothing is switched yet.
	g, gctx := errgroup.WithContext(ctx)
	for i, sv := range servers {
		g.Go(func() error {
			cl, err := sshx.Dial(gctx, sv.target(), s.signer, s.cfg.DialTimeout)
			if err != nil {
				return fmt.Errorf("%s: %w", sv.Name, err)
			}
			h := &dockerHost{host: &host{name: sv.Name, c: cl, out: logw.Stream(runlog.StreamStdout), errw: logw.Stream(runlog.StreamStderr)}, cli: cliArg}
			hosts[i] = h
			logw.Printf("%s: connected to %s@%s (host key verified)", sv.Name, sv.SSHUser, sv.target().Addr())
			if err := d.pull(gctx, h); err != nil {
				return fmt.Errorf("%s: pull %s: %w", sv.Name, ref, err)
			}
			logw.Printf("%s: pulled %s", sv.Name, ref)
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	s.progress(r.ID, 70)
	// Phase 2, one server after the other: replace the container and check its health.
	for _, h := range hosts {
		if err := d.replace(ctx, h); err != nil {
			d.restore(hosts)
			return "", fmt.Errorf("%s: %w; the previous release keeps running", h.name, err)
		}
		logw.Printf("%s: container %s is healthy", h.name, name)
	}
	s.progress(r.ID, 90)
	// Phase 3: every server runs the new release; the old containers and images go.
	keep, err := s.keptImages(ctx, p, ref)
	if err != nil {
		logw.Printf("not pruning images: %v", err)
	}
	for _, h := range hosts {
		d.cleanup(ctx, h, keep)
	}
	return r.ID, nil
}

// registryPassword opens project p's sealed registry password.
func (s *Service) registryPassword(p project) (string, error) {
	if p.DockerPasswordSealed == "" {
		return "", nil
	}
	if s.cfg.Secrets == nil {
		return "", apperr.Unavailable("project %s has a registry password, but this deployer has no master key to open it (set FABU_MASTER_KEY or --master-key-file)", p.Name)
	}
	b, err := s.cfg.Secrets.Open(p.DockerPasswordSealed, container.PasswordPlace(p.ID))
	if err != nil {
		return "", fmt.Errorf("open the registry password of %s: %w", p.Name, err)
	}
	return string(b), nil
}

// pull fetches the image by digest, logged in through a temporary auth file.
func (d *dockerDeploy) pull(ctx context.Context, h *dockerHost) error {
	tmpl := sshx.Template(`d=$(mktemp -d) && trap 'rm -rf -- "$d"' EXIT && umask 077 && cat > "$d/config.json" && ` +
		`DOCKER_CONFIG="$d" REGISTRY_AUTH_FILE="$d/config.json" %s pull`)
	if d.settings.Podman() && d.settings.Insecure {
		tmpl += " --tls-verify=false"
	}
	cmd, err := sshx.NewCommand(tmpl+" %s", h.cli, sshx.TextArg(d.ref.String()))
	if err != nil {
		return err
	}
	return h.c.Run(ctx, cmd, bytes.NewReader(d.auth), h.out, h.errw)
}

// replace stops the project's running containers on h, starts the new one and checks its
// health.
func (d *dockerDeploy) replace(ctx context.Context, h *dockerHost) error {
	running, err := d.running(ctx, h)
	if err != nil {
		return fmt.Errorf("list containers: %w", err)
	}
	for _, c := range running {
		if c == d.name {
			continue
		}
		if err := h.run(ctx, "%s stop -t %s %s >/dev/null", h.cli, sshx.TextArg(strconv.Itoa(d.settings.StopSeconds())), sshx.NameArg(c)); err != nil {
			return fmt.Errorf("stop the previous container %s: %w", c, err)
		}
		h.old = append(h.old, c)
		d.log.Printf("%s: stopped the previous container %s", h.name, c)
	}
	tmpl, args := d.runCommand(h.cli)
	h.switched = true
	if err := h.run(ctx, tmpl, args...); err != nil {
		return fmt.Errorf("start container %s: %w", d.name, err)
	}
	d.log.Printf("%s: started container %s", h.name, d.name)
	if err := d.health(ctx, h); err != nil {
		d.tailLogs(h)
		return fmt.Errorf("health check of %s failed: %w", d.name, err)
	}
	return nil
}

// runCommand is the template and arguments of `run`: constant pieces, one placeholder per
// validated value.
func (d *dockerDeploy) runCommand(cli sshx.Arg) (sshx.Template, []sshx.Arg) {
	st := d.settings
	tmpl := "%s run -d --name %s --label %s --label %s --restart %s"
	args := []sshx.Arg{cli, sshx.NameArg(d.name), sshx.TextArg("fabu.project=" + d.project.ID),
		sshx.TextArg("fabu.release=" + d.release), sshx.TextArg(st.RestartPolicy())}
	if st.Network != "" {
		tmpl += " --network %s"
		args = append(args, sshx.NameArg(st.Network))
	}
	for _, p := range st.Ports {
		tmpl += " -p %s"
		args = append(args, sshx.TextArg(p))
	}
	for _, e := range st.SortedEnv() {
		tmpl += " -e %s"
		args = append(args, sshx.TextArg(e))
	}
	for _, v := range st.Volumes {
		tmpl += " -v %s"
		args = append(args, sshx.TextArg(v))
	}
	tmpl += " %s >/dev/null"
	args = append(args, sshx.TextArg(d.ref.String()))
	return sshx.Template(tmpl), args
}

// running lists the project's containers that are running on h.
func (d *dockerDeploy) running(ctx context.Context, h *dockerHost) ([]string, error) {
	out, err := h.output(ctx, "%s ps --filter %s --format '{{.Names}}'", h.cli, sshx.TextArg("label=fabu.project="+d.project.ID))
	if err != nil {
		return nil, err
	}
	var names []string
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		if n := strings.TrimSpace(sc.Text()); sshx.ValidName(n) == nil {
			names = append(names, n)
		}
	}
	return names, nil
}

// health waits until the container is healthy or the health timeout passes. The container
// must be running at every try; with a health port, an HTTP GET of the health path on the
// server's loopback must answer 2xx or 3xx.
func (d *dockerDeploy) health(ctx context.Context, h *dockerHost) error {
	st := d.settings
	timeout := time.Duration(st.HealthSeconds()) * time.Second
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	client := &http.Client{
		Transport: &http.Transport{
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				return h.c.DialLoopback(ctx, st.HealthPort)
			},
			DisableKeepAlives: true,
		},
		Timeout:       5 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	url := fmt.Sprintf("http://127.0.0.1:%d%s", st.HealthPort, st.HealthURLPath())
	started := time.Now()
	var last error
	for {
		state, err := h.output(ctx, "%s inspect --format '{{.State.Status}}' %s", h.cli, sshx.NameArg(d.name))
		state = strings.TrimSpace(state)
		switch {
		case err != nil && ctx.Err() == nil:
			return fmt.Errorf("inspect: %w", err)
		case err == nil && state != "running":
			return fmt.Errorf("the container is %s, not running", state)
		}
		if st.HealthPort == 0 {
			if time.Since(started) >= settleTime {
				return nil
			}
		} else if err == nil {
			last = httpCheck(ctx, client, url)
			if last == nil {
				d.log.Printf("%s: %s answered", h.name, url)
				return nil
			}
		}
		select {
		case <-ctx.Done():
			if last == nil {
				last = ctx.Err()
			}
			return fmt.Errorf("no healthy answer from %s within %s: %w", url, timeout, last)
		case <-time.After(healthPoll):
		}
	}
}

func httpCheck(ctx context.Context, client *http.Client, url string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	_ = resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode >= 400 {
		return fmt.Errorf("status %d", resp.StatusCode)
	}
	return nil
}

// tailLogs copies the last lines of the failed container's output to the run log.
func (d *dockerDeploy) tailLogs(h *dockerHost) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	d.log.Printf("%s: last output of %s:", h.name, d.name)
	if err := h.run(ctx, "%s logs --tail 20 %s", h.cli, sshx.NameArg(d.name)); err != nil {
		d.log.Printf("%s: could not read its logs: %v", h.name, err)
	}
}

// restore undoes a failed deploy on every server it switched: the new container goes, the
// previous ones start again.
func (d *dockerDeploy) restore(hosts []*dockerHost) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, h := range hosts {
		if h == nil || (!h.switched && len(h.old) == 0) {
			continue
		}
		if h.switched {
			if err := h.run(ctx, "%s rm -f -t %s %s >/dev/null", h.cli, sshx.TextArg(strconv.Itoa(d.settings.StopSeconds())), sshx.NameArg(d.name)); err != nil {
				d.log.Printf("%s: could not remove the new container %s: %v", h.name, d.name, err)
			} else {
				d.log.Printf("%s: removed the new container %s", h.name, d.name)
			}
		}
		for _, c := range h.old {
			if err := h.run(ctx, "%s start %s >/dev/null", h.cli, sshx.NameArg(c)); err != nil {
				d.log.Printf("%s: could not start the previous container %s again: %v", h.name, c, err)
				continue
			}
			d.log.Printf("%s: the previous container %s is running again", h.name, c)
		}
	}
}

// cleanup removes the project's other containers on h and its images beyond keep, best
// effort: the release is live already.
func (d *dockerDeploy) cleanup(ctx context.Context, h *dockerHost, keep map[string]bool) {
	out, err := h.output(ctx, "%s ps -a --filter %s --format '{{.Names}}'", h.cli, sshx.TextArg("label=fabu.project="+d.project.ID))
	if err != nil {
		d.log.Printf("%s: listing old containers failed: %v", h.name, err)
		return
	}
	for _, c := range strings.Fields(out) {
		if c == d.name || sshx.ValidName(c) != nil {
			continue
		}
		if err := h.run(ctx, "%s rm -f %s >/dev/null", h.cli, sshx.NameArg(c)); err != nil { // stopped already
			d.log.Printf("%s: removing the old container %s failed: %v", h.name, c, err)
			continue
		}
		d.log.Printf("%s: removed the previous container %s", h.name, c)
	}
	if keep == nil {
		return
	}
	out, err = h.output(ctx, "%s images --digests --no-trunc --format '{{.ID}} {{.Digest}}' %s", h.cli, sshx.TextArg(d.ref.Repository))
	if err != nil {
		d.log.Printf("%s: listing images failed: %v", h.name, err)
		return
	}
	var old []sshx.Arg
	var names []string
	seen := map[string]bool{}
	sc := bufio.NewScanner(strings.NewReader(out))
	for sc.Scan() {
		id, digest, _ := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		id = strings.TrimPrefix(id, "sha256:")
		if keep[digest] || seen[id] || sshx.ValidName(id) != nil || container.ValidDigest(digest) != nil {
			continue
		}
		seen[id] = true
		old = append(old, sshx.NameArg(id))
		names = append(names, digest)
	}
	if len(old) == 0 {
		return
	}
	// One placeholder per image; the template is built from constant pieces only.
	tmpl := sshx.Template("%s rmi" + strings.Repeat(" %s", len(old)) + " >/dev/null")
	if err := h.run(ctx, tmpl, append([]sshx.Arg{h.cli}, old...)...); err != nil {
		d.log.Printf("%s: pruning old images failed: %v", h.name, err)
		return
	}
	d.log.Printf("%s: removed old images %s", h.name, strings.Join(names, ", "))
}

// keptImages is the digests of the images of the project's last keep_releases successful
// releases, this one included: what a rollback may start again.
func (s *Service) keptImages(ctx context.Context, p project, current container.Ref) (map[string]bool, error) {
	keep := p.KeepReleases
	if keep < 1 {
		keep = 5
	}
	var paths []string
	err := s.db.WithContext(ctx).Model(&runs.Run{}).Where("project_id = ? AND status = ? AND artifact_path LIKE ?",
		p.ID, runs.StatusSucceeded, current.Repository+"@%").Order("finished_at DESC").Limit(keep*4).Pluck("artifact_path", &paths).Error
	if err != nil {
		return nil, fmt.Errorf("read earlier releases: %w", err)
	}
	out := map[string]bool{current.Digest: true}
	for _, ap := range paths {
		if len(out) >= keep {
			break
		}
		if ref, err := container.ParseRef(ap); err == nil {
			out[ref.Digest] = true
		}
	}
	return out, nil
}
