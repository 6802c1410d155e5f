package execx

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"fabu.dev/libs/apperr"
)

// Build stages are untrusted code: a stage is whatever a project's pipeline or its
// .fabu.yml says, and anyone who can push to the repository can change it. A Sandbox runs
// each stage under bubblewrap (bwrap), as CI runners isolate their jobs:
//
//   - new user, PID, IPC, UTS and cgroup namespaces: the stage sees only its own
//     processes, and /proc is that namespace's;
//   - a file system of its own: the toolchains (/usr, /etc, /opt and the /bin, /lib …
//     links) read-only, a private /tmp, /var/tmp and /dev, and only two writable places —
//     the run's checkout and its HOME, mounted from descriptors the builder opened, so
//     the stage never needs (or gets) a path into fabu's data directory. Paths under the
//     read-only trees that belong to fabu (its data dir, keys, config) are covered;
//   - an unprivileged user: when the builder runs as root, bwrap itself starts as the
//     sandbox's uid and gid, so the stage is not root inside nor outside;
//   - --die-with-parent: the stage's whole tree is killed when the builder dies, even by
//     SIGKILL, and the PID namespace ends every process left when the stage's command exits;
//   - optionally no network (a namespace with only loopback).

// DefaultSandboxUID is the uid (and gid) stages run as when the builder runs as root and
// no other is configured: the traditional unprivileged "nobody".
const DefaultSandboxUID = 65534

// DefaultReadOnly are the host trees a sandboxed stage sees, read-only, at the same paths:
// the toolchains (the JDK, Maven and Node.js of a Debian system live under /usr, others
// often under /opt) and /etc for users, certificates and resolver configuration. Those
// that are symbolic links (merged /usr: /bin → usr/bin) are recreated as links.
var DefaultReadOnly = []string{"/usr", "/etc", "/opt", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32"}

// Sandbox isolates stages. The zero value is not usable; build one with NewSandbox.
type Sandbox struct {
	bwrap    string
	uid, gid int      // credentials bwrap runs with; -1 keeps the builder's
	readOnly []string // host trees bound read-only
	hide     []string // paths under them covered with an empty tmpfs or file
}

// SandboxConfig configures NewSandbox.
type SandboxConfig struct {
	// Bwrap is the bubblewrap binary: a name looked up in PATH or an absolute path;
	// default "bwrap".
	Bwrap string
	// UID and GID are what stages run as when the builder runs as root; 0 means
	// DefaultSandboxUID. A builder that is not root runs stages as itself (unprivileged
	// already), in a user namespace.
	UID, GID int
	// ReadOnly replaces DefaultReadOnly when not nil; ExtraReadOnly adds to it (a JDK or
	// Node.js installed elsewhere).
	ReadOnly      []string
	ExtraReadOnly []string
	// Hide lists paths that stages must never see: fabu's data dir, its config and key
	// files, the workspace and artifact dirs. Only those under a read-only tree need
	// covering; the others are not in the sandbox at all.
	Hide []string
}

// ErrNoBwrap is returned by NewSandbox when bubblewrap is not installed.
var ErrNoBwrap = errors.New("bubblewrap (bwrap) is not installed: install it (Debian/Ubuntu: apt-get install bubblewrap) or, knowing that builds then see everything the builder can, run the builder with --build-sandbox=none")

// NewSandbox checks that bubblewrap is there and works, and returns the sandbox.
func NewSandbox(cfg SandboxConfig) (*Sandbox, error) {
	name := cfg.Bwrap
	if name == "" {
		name = "bwrap"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, ErrNoBwrap
	}
	sb := &Sandbox{bwrap: bin, uid: -1, gid: -1}
	if os.Geteuid() == 0 {
		sb.uid, sb.gid = orInt(cfg.UID, DefaultSandboxUID), orInt(cfg.GID, orInt(cfg.UID, DefaultSandboxUID))
		if sb.uid == 0 || sb.gid == 0 {
			return nil, apperr.Invalid("sandbox: stages must not run as root (uid and gid must not be 0)")
		}
	}
	ro := DefaultReadOnly
	if cfg.ReadOnly != nil {
		ro = cfg.ReadOnly
	}
	for _, p := range append(slices.Clone(ro), cfg.ExtraReadOnly...) {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p || p == "/" {
			return nil, apperr.Invalid("sandbox: read-only path %q must be absolute, clean and not /", p)
		}
		sb.readOnly = append(sb.readOnly, p)
	}
	for _, p := range cfg.Hide {
		if p == "" {
			continue
		}
		if !filepath.IsAbs(p) {
			return nil, apperr.Invalid("sandbox: hidden path %q must be absolute", p)
		}
		sb.hide = append(sb.hide, filepath.Clean(p))
	}
	for _, p := range cfg.ExtraReadOnly {
		if err := sb.Reach(filepath.Join(p, "x")); err != nil {
			return nil, err
		}
	}
	if err := sb.probe(); err != nil {
		return nil, err
	}
	return sb, nil
}

// probe runs `true` in the sandbox: bwrap may exist and still be unable to create
// namespaces (a kernel or container that forbids unprivileged user namespaces).
func (sb *Sandbox) probe() error {
	dir, err := os.MkdirTemp("", "fabu-sandbox-probe-")
	if err != nil {
		return fmt.Errorf("sandbox probe: %w", err)
	}
	defer func() { _ = os.RemoveAll(dir) }()
	if err := sb.Own(dir); err != nil {
		return err
	}
	if err := sb.Reach(dir); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd, closeFDs, err := sb.command(ctx, "/usr/bin/env", []string{"true"}, dir, dir, dir, false)
	if err != nil {
		return err
	}
	defer closeFDs()
	cmd.Env = []string{"PATH=" + DefaultPath}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("sandbox: bubblewrap cannot create a sandbox here (%w: %s); it needs unprivileged user namespaces (sysctl user.max_user_namespaces > 0, and kernel.unprivileged_userns_clone=1 where that exists)", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// UID returns the uid stages run as outside the sandbox, or -1 for the builder's own.
func (sb *Sandbox) UID() int { return sb.uid }

// GID returns the gid stages run as outside the sandbox, or -1 for the builder's own.
func (sb *Sandbox) GID() int { return sb.gid }

// Own gives the sandbox's user the directory trees at paths (the checkout and HOME of a
// run, after the builder wrote them), so its stages can write there. A builder that is
// not root shares its uid with its stages and has nothing to change.
func (sb *Sandbox) Own(paths ...string) error {
	if sb.uid < 0 {
		return nil
	}
	for _, root := range paths {
		err := filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, sb.uid, sb.gid)
		})
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("sandbox: give %s to uid %d: %w", root, sb.uid, err)
		}
	}
	return nil
}

// command returns the command running prog with args in the sandbox, in dir, with root
// and home writable, and a function that closes the descriptors passed to bwrap (call it
// once the command started or failed to).
func (sb *Sandbox) command(ctx context.Context, prog string, args []string, root, home, dir string, network bool) (*exec.Cmd, func(), error) {
	var files []*os.File
	closeFDs := func() {
		for _, f := range files {
			_ = f.Close()
		}
	}
	bind := func(p string) (string, error) {
		if err := sb.Reach(p); err != nil {
			return "", err
		}
		fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("sandbox: open %s: %w", p, err)
		}
		files = append(files, os.NewFile(uintptr(fd), p))
		return fmt.Sprint(2 + len(files)), nil // ExtraFiles[i] is descriptor 3+i in bwrap
	}
	a := []string{"--die-with-parent", "--unshare-user", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
		"--unshare-cgroup-try", "--disable-userns", "--hostname", "fabu-build"}
	if !network {
		a = append(a, "--unshare-net")
	}
	a = append(a, "--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp", "--dir", "/var", "--tmpfs", "/var/tmp")
	for _, p := range sb.readOnly {
		fi, err := os.Lstat(p)
		switch {
		case err != nil:
			continue
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				continue
			}
			a = append(a, "--symlink", target, p)
		default:
			a = append(a, "--ro-bind", p, p)
		}
	}
	// /etc/resolv.conf is often a link into /run, which the sandbox does not have.
	if real, err := filepath.EvalSymlinks("/etc/resolv.conf"); err == nil && real != "/etc/resolv.conf" && !sb.underReadOnly(real) {
		a = append(a, "--ro-bind", real, real)
	}
	for _, p := range sb.hide {
		if !sb.underReadOnly(p) {
			continue
		}
		fi, err := os.Stat(p)
		switch {
		case err != nil:
			continue
		case fi.IsDir():
			a = append(a, "--tmpfs", p)
		default:
			a = append(a, "--ro-bind", "/dev/null", p)
		}
	}
	uid, gid := sb.runAs()
	ids, err := identity(uid, gid, home)
	if err != nil {
		closeFDs()
		return nil, nil, err
	}
	files = append(files, ids...)
	a = append(a, "--ro-bind-data", fmt.Sprint(2+len(files)-1), "/etc/passwd", "--ro-bind-data", fmt.Sprint(2+len(files)), "/etc/group")
	rootFD, err := bind(root)
	if err != nil {
		closeFDs()
		return nil, nil, err
	}
	a = append(a, "--bind-fd", rootFD, root)
	if home != root {
		homeFD, err := bind(home)
		if err != nil {
			closeFDs()
			return nil, nil, err
		}
		a = append(a, "--bind-fd", homeFD, home)
	}
	a = append(a, "--chdir", dir, "--", prog)
	a = append(a, args...)
	cmd := exec.CommandContext(ctx, sb.bwrap, a...)
	cmd.ExtraFiles = files
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if sb.uid >= 0 {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(sb.uid), Gid: uint32(sb.gid), Groups: []uint32{}}
	}
	return cmd, closeFDs, nil
}

// runAs returns the uid and gid a stage runs as.
func (sb *Sandbox) runAs() (int, int) {
	if sb.uid >= 0 {
		return sb.uid, sb.gid
	}
	return os.Getuid(), os.Getgid()
}

// identity returns pipes holding the sandbox's /etc/passwd and /etc/group: root, and the
// stage's user "build" whose home is the run's HOME, so that tools asking the user
// database for the home directory (Java's user.home, Node's os.userInfo) find the run's
// and never fail on a uid without a name.
func identity(uid, gid int, home string) ([]*os.File, error) {
	docs := []string{
		fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nbuild:x:%d:%d:fabu build:%s:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n", uid, gid, home),
		fmt.Sprintf("root:x:0:\nbuild:x:%d:\nnogroup:x:65534:\n", gid),
	}
	if uid == 65534 {
		docs[0] = fmt.Sprintf("root:x:0:0:root:/root:/usr/sbin/nologin\nbuild:x:%d:%d:fabu build:%s:/bin/sh\n", uid, gid, home)
	}
	if gid == 65534 {
		docs[1] = fmt.Sprintf("root:x:0:\nbuild:x:%d:\n", gid)
	}
	var files []*os.File
	for _, doc := range docs {
		r, w, err := os.Pipe()
		if err != nil {
			closeAll(files...)
			return nil, fmt.Errorf("sandbox: %w", err)
		}
		_, err = w.WriteString(doc) // far below a pipe's buffer
		_ = w.Close()
		files = append(files, r)
		if err != nil {
			closeAll(files...)
			return nil, fmt.Errorf("sandbox: %w", err)
		}
	}
	return files, nil
}

// Reach makes sure the sandbox's user can pass through every directory above dir, which
// bubblewrap needs to mount dir: a directory of the builder's that grants its group
// nothing (a data dir of mode 0700) is given to the sandbox's group with search
// permission only (0710), so nobody else gains anything. Any other directory in the way is
// an error that says what to change.
func (sb *Sandbox) Reach(dir string) error {
	if sb.uid < 0 {
		return nil
	}
	for p := filepath.Dir(filepath.Clean(dir)); ; p = filepath.Dir(p) {
		fi, err := os.Stat(p)
		if err != nil {
			return fmt.Errorf("sandbox: %w", err)
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := fi.Mode().Perm()
		switch {
		case mode&0o001 != 0, int(st.Gid) == sb.gid && mode&0o010 != 0, int(st.Uid) == sb.uid && mode&0o100 != 0:
		case int(st.Uid) == os.Geteuid() && mode&0o070 == 0:
			if err := os.Chown(p, -1, sb.gid); err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
			if err := os.Chmod(p, mode|0o010); err != nil {
				return fmt.Errorf("sandbox: %w", err)
			}
		default:
			return fmt.Errorf("sandbox: uid %d cannot pass through %s to mount %s into a build's sandbox: allow it (chmod o+x %s, or setfacl -m g:%d:x %s)", sb.uid, p, dir, p, sb.gid, p)
		}
		if p == "/" {
			return nil
		}
	}
}

// underReadOnly reports whether p is inside one of the read-only trees.
func (sb *Sandbox) underReadOnly(p string) bool {
	for _, ro := range sb.readOnly {
		if p == ro || strings.HasPrefix(p, ro+"/") {
			return true
		}
	}
	return false
}

func orInt(v, def int) int {
	if v == 0 {
		return def
	}
	return v
}
