package sshx

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// maxStderr bounds how much of a helper command's stderr is kept for its error message.
const maxStderr = 4 << 10

// cleanupTimeout bounds removing a cancelled upload's temporary file.
const cleanupTimeout = 5 * time.Second

// Upload streams r into remotePath on the host and gives it mode's permission bits. The
// data goes to a temporary file beside remotePath (created under umask 077) which is
// chmod-ed and then renamed over remotePath, so the path holds either its old content or
// all of the new, never a part. The parent directory must exist. Verify what landed with
// SHA256.
func (c *Client) Upload(ctx context.Context, r io.Reader, remotePath string, mode os.FileMode) error {
	if err := ValidPath(remotePath); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	if remotePath == "/" {
		return apperr.Invalid("upload: %q names no file", remotePath)
	}
	var suffix [8]byte
	if _, err := rand.Read(suffix[:]); err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	dir, base := path.Split(remotePath)
	tmp := path.Join(dir, "."+base+".fabu-upload-"+hex.EncodeToString(suffix[:]))
	cmd, err := NewCommand(
		`umask 077 && { cat > %s && chmod %s %s && mv -f %s %s; } || { rc=$?; rm -f %s; exit $rc; }`,
		PathArg(tmp), ModeArg(mode.Perm()), PathArg(tmp), PathArg(tmp), PathArg(remotePath), PathArg(tmp))
	if err != nil {
		return fmt.Errorf("upload: %w", err)
	}
	var stderr limitedBuffer
	if err := c.Run(ctx, cmd, r, nil, &stderr); err != nil {
		if ctx.Err() != nil {
			c.removeQuietly(ctx, tmp) // the killed shell could not clean up itself
		}
		return fmt.Errorf("upload to %s on %s: %w%s", remotePath, c.target.label(), err, stderr.suffix())
	}
	return nil
}

// removeQuietly removes the remote file p on a best-effort basis, outliving ctx's
// cancellation by at most cleanupTimeout.
func (c *Client) removeQuietly(ctx context.Context, p string) {
	cmd, err := NewCommand(`rm -f %s`, PathArg(p))
	if err != nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	_ = c.Run(ctx, cmd, nil, nil, nil)
}

// SHA256 returns the lowercase hex SHA-256 of the remote file at remotePath, computed on the
// host with sha256sum.
func (c *Client) SHA256(ctx context.Context, remotePath string) (string, error) {
	// Reading from stdin keeps the path out of sha256sum's output, which escapes unusual
	// file names.
	cmd, err := NewCommand(`sha256sum < %s`, PathArg(remotePath))
	if err != nil {
		return "", fmt.Errorf("sha256: %w", err)
	}
	var stdout, stderr limitedBuffer
	if err := c.Run(ctx, cmd, nil, &stdout, &stderr); err != nil {
		return "", fmt.Errorf("sha256 of %s on %s: %w%s", remotePath, c.target.label(), err, stderr.suffix())
	}
	sum, _, _ := strings.Cut(strings.TrimSpace(stdout.String()), " ")
	if b, err := hex.DecodeString(sum); err != nil || len(b) != 32 {
		return "", fmt.Errorf("sha256 of %s on %s: unexpected output %q", remotePath, c.target.label(), stdout.String())
	}
	return strings.ToLower(sum), nil
}

// limitedBuffer keeps the first maxStderr bytes written to it and drops the rest.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if room := maxStderr - b.Len(); room > 0 {
		b.Buffer.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// suffix formats the buffer for the end of an error message.
func (b *limitedBuffer) suffix() string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return ""
	}
	return " (stderr: " + s + ")"
}
