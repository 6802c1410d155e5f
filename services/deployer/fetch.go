package deployer

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"fabu.dev/libs/artifact"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
)

// fetchClient downloads artifacts from builders. There is no overall timeout, since
// artifacts can be large; the deploy's context bounds the transfer, and a builder that
// does not answer is given up on quickly. A signed URL is served where it points, so
// redirects are refused.
var fetchClient = &http.Client{
	Transport: &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		IdleConnTimeout:       90 * time.Second,
	},
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// localArtifact returns a file on this machine holding run ev's artifact, verified against
// the sha256 the builder announced, and a function that removes it when it was fetched.
//
// The builder's file (ev.ArtifactPath) is read directly when it is shared with this
// deployer: it lies in Config.ArtifactDir (one host, or a volume both mount at the same
// place), or the builder announced no URL. Otherwise — the builder is another machine, or
// merely has another data directory — the artifact is downloaded from ev.ArtifactURL into a
// temporary file, hashing as it streams. A checksum that does not match fails the run
// before anything reaches a server.
func (s *Service) localArtifact(ctx context.Context, ev events.RunBuilt, logw *runlog.Writer) (string, func(), error) {
	noop := func() {}
	_, statErr := os.Stat(ev.ArtifactPath)
	shared := ev.ArtifactURL == "" || s.cfg.ArtifactDir == "" ||
		filepath.Dir(filepath.Clean(ev.ArtifactPath)) == filepath.Clean(s.cfg.ArtifactDir)
	if ev.ArtifactPath != "" && statErr == nil && shared {
		sum, err := artifact.SHA256File(ev.ArtifactPath)
		if err != nil {
			return "", noop, fmt.Errorf("read artifact: %w", err)
		}
		if sum != ev.ArtifactSHA256 {
			return "", noop, fmt.Errorf("artifact checksum %s does not match the built %s", sum, ev.ArtifactSHA256)
		}
		if err := s.verifyManifest(ctx, ev, ev.ArtifactPath, true, logw); err != nil {
			return "", noop, err
		}
		return ev.ArtifactPath, noop, nil
	}
	if ev.ArtifactURL == "" {
		if statErr == nil {
			statErr = errors.New("no artifact path")
		}
		return "", noop, fmt.Errorf("read artifact: %w (and the builder announced no URL to fetch it from)", statErr)
	}
	if statErr != nil && !errors.Is(statErr, fs.ErrNotExist) && ev.ArtifactPath != "" {
		logw.Printf("cannot read the builder's file %s (%v); fetching the artifact instead", ev.ArtifactPath, statErr)
	}
	where := ev.ArtifactURL
	if u, err := url.Parse(ev.ArtifactURL); err == nil {
		where = u.Scheme + "://" + u.Host + u.Path // the signature stays out of the log
	}
	logw.Printf("artifact is not in a directory shared with the builder; fetching it from the builder at %s", where)
	start := time.Now()
	f, err := os.CreateTemp("", "fabu-artifact-"+ev.RunID+"-*")
	if err != nil {
		return "", noop, fmt.Errorf("fetch artifact: %w", err)
	}
	remove := func() { os.Remove(f.Name()) }
	sum, n, err := artifact.Fetch(ctx, fetchClient, ev.ArtifactURL, f)
	if cerr := f.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("fetch artifact: %w", cerr)
	}
	if err != nil {
		remove()
		return "", noop, err
	}
	if sum != ev.ArtifactSHA256 {
		remove()
		return "", noop, fmt.Errorf("artifact checksum %s of the fetched %d bytes does not match the built %s", sum, n, ev.ArtifactSHA256)
	}
	logw.Printf("fetched %d bytes in %s; sha256 %s verified", n, time.Since(start).Round(time.Millisecond), sum)
	if err := s.verifyManifest(ctx, ev, f.Name(), false, logw); err != nil {
		remove()
		return "", noop, err
	}
	return f.Name(), remove, nil
}

// verifyManifest checks the artifact at local against its manifest before anything ships:
// the manifest must be the one the builder announced (its sha256), name this run, its
// commit and the announced artifact sha256, and list exactly the files the archive holds,
// with their sizes and sha256. The manifest is read beside the builder's file when shared,
// else fetched from its signed URL. A builder older than manifests announces none; its
// artifact is checked by its sha256 alone.
func (s *Service) verifyManifest(ctx context.Context, ev events.RunBuilt, local string, shared bool, logw *runlog.Writer) error {
	if ev.ManifestSHA256 == "" {
		logw.Printf("the builder announced no manifest; the artifact was checked by its sha256 alone")
		return nil
	}
	var data []byte
	if shared {
		f, err := os.Open(artifact.ManifestPath(ev.ArtifactPath))
		if err != nil {
			return fmt.Errorf("read the artifact's manifest: %w", err)
		}
		data, err = io.ReadAll(io.LimitReader(f, maxManifestBytes+1))
		f.Close()
		if err != nil {
			return fmt.Errorf("read the artifact's manifest: %w", err)
		}
	} else {
		if ev.ManifestURL == "" {
			return errors.New("the builder announced a manifest but no URL to fetch it from")
		}
		var buf limitedBuffer
		if _, _, err := artifact.Fetch(ctx, fetchClient, ev.ManifestURL, &buf); err != nil {
			return fmt.Errorf("manifest: %w", err)
		}
		data = buf.Bytes()
	}
	if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != ev.ManifestSHA256 {
		return fmt.Errorf("manifest checksum %s does not match the built %s: the manifest was changed after the build",
			hex.EncodeToString(sum[:]), ev.ManifestSHA256)
	}
	m, err := artifact.ParseManifest(data)
	if err != nil {
		return fmt.Errorf("manifest: %w", err)
	}
	switch {
	case m.RunID != ev.RunID:
		return fmt.Errorf("the manifest is run %s's, not this run's", m.RunID)
	case m.Commit != ev.Commit:
		return fmt.Errorf("the manifest names commit %s, the builder built %s", m.Commit, ev.Commit)
	case m.Artifact.SHA256 != ev.ArtifactSHA256:
		return fmt.Errorf("the manifest names artifact sha256 %s, the builder announced %s", m.Artifact.SHA256, ev.ArtifactSHA256)
	}
	if err := artifact.VerifyArchive(ctx, m, local); err != nil {
		return err // "artifact does not match its manifest: <the first difference>"
	}
	logw.Printf("manifest verified: %d files, %d bytes unpacked, every sha256 matches", m.FileCount, m.TotalSize)
	return nil
}

// maxManifestBytes bounds a manifest the deployer reads.
const maxManifestBytes = 32 << 20

// limitedBuffer holds at most maxManifestBytes; more is an error.
type limitedBuffer struct{ bytes.Buffer }

func (b *limitedBuffer) Write(p []byte) (int, error) {
	if b.Len()+len(p) > maxManifestBytes {
		return 0, fmt.Errorf("manifest larger than %d bytes", maxManifestBytes)
	}
	return b.Buffer.Write(p)
}
