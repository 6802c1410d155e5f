package testenv

import (
	"bufio"
	"bytes"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FixturesDir is the fixtures directory — real webhook payloads, platform API responses and
// chat-service formats — kept in the repository at libs/testenv/testdata/fixtures (a copy of
// the project's shared fixtures, with their sources in SOURCES.tsv), so a bare clone tests
// on its own; $FABU_FIXTURES overrides it.
func FixturesDir(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("FABU_FIXTURES"); d != "" {
		return d
	}
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("fixtures: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return filepath.Join(dir, "libs", "testenv", "testdata", "fixtures")
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatalf("fixtures: no go.work above the test's directory; set FABU_FIXTURES")
		}
		dir = parent
	}
}

// Fixture reads one fixture file, e.g. "github/push.go-scm.json".
func Fixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(FixturesDir(t), filepath.FromSlash(name)))
	if errors.Is(err, os.ErrNotExist) {
		t.Fatalf("fixture %s missing (libs/testenv/testdata/fixtures, or FABU_FIXTURES): %v", name, err)
	}
	if err != nil {
		t.Fatalf("read fixture %s: %v", name, err)
	}
	return b
}

// FixtureHeaders reads a headers fixture ("Name: value" per line) into canonical headers
// as net/http hands them to a handler, skipping lines that are not headers (such as a
// status line).
func FixtureHeaders(t testing.TB, name string) http.Header {
	t.Helper()
	h := http.Header{}
	sc := bufio.NewScanner(bytes.NewReader(Fixture(t, name)))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), ":")
		if !ok || k == "" || strings.ContainsAny(k, " /\t") {
			continue
		}
		h.Add(k, strings.TrimSpace(v))
	}
	if len(h) == 0 {
		t.Fatalf("fixture %s holds no headers", name)
	}
	return h
}
