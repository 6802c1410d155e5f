package gitref

import (
	"os"
	"os/exec"
	"strings"
	"testing"
	"unicode/utf8"

	"fabu.dev/libs/apperr"
)

// refCorpus seeds both the comparison with git and FuzzValid.
var refCorpus = []string{
	"main", "feature/login", "release-1.2.3", "v1.0", "refs/heads/main", "a/b/c", "功能/登录",
	"fix#12", "x+y", "a=b", "under_score", "@", "@a", "a@b", "a@{b", "HEAD", "head", "HEADER",
	"", "-x", "x-", "/x", "x/", "a//b", "a..b", "a.", ".a", "a/.b", "a.lock", "a.lock/b",
	"a/b.lock", "a.lockx", "a b", "a\tb", "a\nb", "a\x7fb", "a~1", "a^", "a:b", "a?", "a*",
	"a[b", `a\b`, "a/./b", "a/../b", "..", ".", "a..", "main;id", "$(id)", "`id`", "a|b",
	"a&b", "a>b", "a<b", "a'b", `a"b`, "(a)", "{a}", "a!", "\xff\xfe", "x\x00y",
	"--upload-pack=touch /tmp/pwned", "--end-of-options",
}

// stricterThanGit reports whether ref breaks one of ValidRef's rules that git does not have.
func stricterThanGit(ref string) bool {
	return ref == "@" || strings.ContainsAny(ref, shellMeta) || !utf8.ValidString(ref) || len(ref) > maxRefLen
}

func TestValidAgreesWithGit(t *testing.T) {
	for _, ref := range refCorpus {
		if strings.IndexByte(ref, 0) >= 0 {
			continue // cannot be passed as an argument to git
		}
		cmd := exec.Command("git", "check-ref-format", "--branch", ref)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "HOME=" + t.TempDir(), "GIT_CONFIG_NOSYSTEM=1"}
		cmd.Dir = t.TempDir() // outside any repository, so "@{-1}" forms are not expanded
		gitOK := cmd.Run() == nil
		err := Valid(ref)
		switch {
		case err == nil && !gitOK:
			t.Errorf("Valid(%q) accepts what git check-ref-format --branch rejects", ref)
		case err != nil && gitOK && !stricterThanGit(ref):
			t.Errorf("Valid(%q) = %v, but git accepts it and no stricter rule applies", ref, err)
		case err != nil && !apperr.Is(err, apperr.CodeInvalid):
			t.Errorf("Valid(%q) error code = %s, want invalid", ref, apperr.CodeOf(err))
		}
	}
}

// FuzzValid checks that no accepted ref breaks any of the rules, restated independently.
func FuzzValid(f *testing.F) {
	for _, ref := range refCorpus {
		f.Add(ref)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		if Valid(ref) != nil {
			return
		}
		for i := 0; i < len(ref); i++ {
			if c := ref[i]; c < 0x20 || c == 0x7f || strings.IndexByte(" ~^:?*[\\"+shellMeta, c) >= 0 {
				t.Fatalf("accepted %q with forbidden byte %q", ref, c)
			}
		}
		for _, bad := range []string{"..", "//", "@{"} {
			if strings.Contains(ref, bad) {
				t.Fatalf("accepted %q containing %q", ref, bad)
			}
		}
		if ref == "" || ref == "@" || ref == "HEAD" || ref[0] == '-' || ref[0] == '/' ||
			strings.HasSuffix(ref, "/") || strings.HasSuffix(ref, ".") || !utf8.ValidString(ref) {
			t.Fatalf("accepted %q", ref)
		}
		for comp := range strings.SplitSeq(ref, "/") {
			if comp == "" || comp[0] == '.' || strings.HasSuffix(comp, ".lock") {
				t.Fatalf("accepted %q with component %q", ref, comp)
			}
		}
	})
}

func TestValidCommit(t *testing.T) {
	tests := []struct {
		sha string
		ok  bool
	}{
		{"abcdef0", true},
		{"ABCDEF0123", true},
		{strings.Repeat("a", 40), true},
		{strings.Repeat("0", 64), true},
		{"abcdef", false},
		{strings.Repeat("a", 65), false},
		{"abcdefg", false},
		{"main;id", false},
		{"", false},
		{"-abcdef0", false},
	}
	for _, tt := range tests {
		err := ValidCommit(tt.sha)
		if (err == nil) != tt.ok {
			t.Errorf("ValidCommit(%q) = %v, want ok=%v", tt.sha, err, tt.ok)
		}
		if err != nil && !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("ValidCommit(%q) error code = %s, want invalid", tt.sha, apperr.CodeOf(err))
		}
	}
}
