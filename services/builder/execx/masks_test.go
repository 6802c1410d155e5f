package execx

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func TestMasksIncludeEachLineOfMultiLineValues(t *testing.T) {
	s := Spec{Secrets: map[string]string{
		"KEY":   "-----BEGIN KEY-----\r\nc2VjcmV0LWtleS1ib2R5\r\n-----END KEY-----\n",
		"TOKEN": "tok-123456",
		"EMPTY": "",
		"BLANK": "  \n\n",
	}}
	got := s.Masks()
	want := []string{
		"-----BEGIN KEY-----\r\nc2VjcmV0LWtleS1ib2R5\r\n-----END KEY-----\n",
		"c2VjcmV0LWtleS1ib2R5", "-----BEGIN KEY-----", "-----END KEY-----", "tok-123456",
	}
	if len(got) != len(want) {
		t.Fatalf("Masks() = %q, want %q (in some order, longest first)", got, want)
	}
	for _, w := range want {
		if !slices.Contains(got, w) {
			t.Errorf("Masks() = %q lacks %q", got, w)
		}
	}
	for i := 1; i < len(got); i++ {
		if len(got[i]) > len(got[i-1]) {
			t.Errorf("Masks() not longest first: %q before %q", got[i-1], got[i])
		}
	}
}

// pieces records each Write separately: the run log masks each line it is given, so a
// secret is safe only if no single piece holds part of it.
type pieces struct {
	mu sync.Mutex
	p  []string
}

func (w *pieces) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.p = append(w.p, string(b))
	return len(b), nil
}

// A line longer than the chunk size is written in pieces; no cut falls inside a secret,
// wherever in the line it is.
func TestLongLinesAreNeverCutInsideASecret(t *testing.T) {
	secret := "s3cr3t-" + strings.Repeat("Zq", 40) // 87 bytes
	for _, offset := range []int{maxLineChunk - 40, maxLineChunk - 1, maxLineChunk - len(secret), maxLineChunk, 2*maxLineChunk - 3} {
		s, _ := spec(t, "long", "cat", "line.txt")
		line := strings.Repeat("x", offset) + secret + strings.Repeat("y", 100) + "\n"
		if err := os.WriteFile(filepath.Join(s.Root, "line.txt"), []byte(line+"short "+secret+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		out := &pieces{}
		s.Stdout, s.Secrets = out, map[string]string{"TOKEN": secret}
		if _, err := Run(context.Background(), s); err != nil {
			t.Fatal(err)
		}
		var masked strings.Builder
		total := 0
		for _, p := range out.p {
			total += len(strings.TrimSuffix(p, "\n"))
			masked.WriteString(mask(p, s.Masks()))
		}
		if want := len(line) - 1 + len("short ") + len(secret); total != want {
			t.Errorf("offset %d: %d bytes written, want %d: output lost or duplicated", offset, total, want)
		}
		for _, part := range []string{secret[:30], secret[30:60], secret[len(secret)-30:]} {
			if strings.Contains(masked.String(), part) {
				t.Errorf("offset %d: part of the secret %q survives masking in %d pieces", offset, part, len(out.p))
			}
		}
		if strings.Count(masked.String(), "****") != 2 {
			t.Errorf("offset %d: %d masks in the output, want 2", offset, strings.Count(masked.String(), "****"))
		}
	}
}

// The last stderr line goes into the run's error; it is masked before it is shortened, so
// a secret crossing the cut leaves nothing behind.
func TestExitErrorLastLineIsMaskedBeforeItIsCut(t *testing.T) {
	secret := "tok-" + strings.Repeat("9", 60)
	s, _ := spec(t, "fail", "sh", "fail.sh")
	script := "printf '%s' '" + strings.Repeat("e", 280) + secret + " tail' >&2\nexit 3\n"
	if err := os.WriteFile(filepath.Join(s.Root, "fail.sh"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	s.Secrets = map[string]string{"TOKEN": secret}
	_, err := Run(context.Background(), s)
	var xe *ExitError
	if !errors.As(err, &xe) || xe.Code != 3 {
		t.Fatalf("Run = %v, want exit status 3", err)
	}
	if strings.Contains(xe.Last, secret[:10]) || strings.Contains(err.Error(), "tok-999") {
		t.Errorf("error %q holds part of the secret", err)
	}
	if !strings.Contains(xe.Last, "****") {
		t.Errorf("last line %q does not show the mask", xe.Last)
	}
}

func TestStageReceivesItsSecretsAsEnvironment(t *testing.T) {
	s, out := spec(t, "env", "printenv", "TOKEN")
	s.Secrets = map[string]string{"TOKEN": "multi\nline value"}
	if _, err := Run(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	if got := out.String(); got != "multi\nline value\n" {
		t.Errorf("stage saw TOKEN=%q", got)
	}
}
