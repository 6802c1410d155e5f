package tickets

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
)

func TestDeployWindows(t *testing.T) {
	shanghai, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	weekdays := []Window{{Days: []int{1, 2, 3, 4, 5}, Start: "09:00", End: "18:00"}}
	overnight := []Window{{Days: []int{5}, Start: "22:00", End: "02:00"}} // Friday night into Saturday
	// 2026-11-23 is a Monday.
	at := func(day int, clock string) time.Time {
		c, _ := time.Parse("15:04", clock)
		return time.Date(2026, 11, 22+day, c.Hour(), c.Minute(), 0, 0, shanghai)
	}
	tests := []struct {
		name string
		ws   []Window
		at   time.Time
		want bool
	}{
		{"no windows: always open", nil, at(7, "03:00"), true},
		{"Monday 09:00 opens", weekdays, at(1, "09:00"), true},
		{"Monday 17:59", weekdays, at(1, "17:59"), true},
		{"Monday 18:00 is closed", weekdays, at(1, "18:00"), false},
		{"Monday 08:59", weekdays, at(1, "08:59"), false},
		{"Saturday noon", weekdays, at(6, "12:00"), false},
		{"Friday 23:00 overnight", overnight, at(5, "23:00"), true},
		{"Saturday 01:30 overnight", overnight, at(6, "01:30"), true},
		{"Saturday 02:00 overnight ended", overnight, at(6, "02:00"), false},
		{"Thursday 23:00 not its day", overnight, at(4, "23:00"), false},
		{"Friday 01:00 is Thursday's night", overnight, at(5, "01:00"), false},
		{"in UTC, the zone's clock counts", weekdays, at(1, "10:00").UTC(), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := DefaultRules("p")
			if tt.ws != nil {
				b, _ := json.Marshal(tt.ws)
				r.DeployWindows, r.TimeZone = string(b), "Asia/Shanghai"
			}
			got, err := r.InWindow(tt.at)
			if err != nil || got != tt.want {
				t.Errorf("InWindow(%s) = %v, %v; want %v", tt.at, got, err, tt.want)
			}
			need, why, err := r.SystemNeedsTicket(tt.at)
			if err != nil || need == tt.want || (need && why == "") {
				t.Errorf("SystemNeedsTicket = %v %q %v; want %v with a reason", need, why, err, !tt.want)
			}
		})
	}
}

func TestCheckWindowsRefusesBadInput(t *testing.T) {
	for _, tc := range []struct {
		name string
		ws   []Window
		zone string
	}{
		{"unknown zone", nil, "Mars/Olympus"},
		{"no days", []Window{{Start: "09:00", End: "10:00"}}, ""},
		{"day 0", []Window{{Days: []int{0}, Start: "09:00", End: "10:00"}}, ""},
		{"bad clock", []Window{{Days: []int{1}, Start: "9:00", End: "10:00"}}, ""},
		{"25:00", []Window{{Days: []int{1}, Start: "09:00", End: "25:00"}}, ""},
		{"empty range", []Window{{Days: []int{1}, Start: "09:00", End: "09:00"}}, ""},
	} {
		if _, err := CheckWindows(tc.ws, tc.zone); !apperr.Is(err, apperr.CodeInvalid) {
			t.Errorf("%s: CheckWindows = %v, want invalid", tc.name, err)
		}
	}
	if _, err := CheckWindows([]Window{{Days: []int{7}, Start: "00:00", End: "24:00"}}, "Europe/Berlin"); err != nil {
		t.Errorf("a whole Sunday in Berlin: %v", err)
	}
}

func TestPoliciesForRunsNobodyAskedFor(t *testing.T) {
	for _, tc := range []struct {
		approval string
		want     bool
	}{{ApprovalNone, false}, {ApprovalRequired, true}, {ApprovalBelowRole, true}} {
		r := DefaultRules("p")
		r.Approval = tc.approval
		if got, _, err := r.SystemNeedsTicket(time.Now()); err != nil || got != tc.want {
			t.Errorf("%s: SystemNeedsTicket = %v %v, want %v", tc.approval, got, err, tc.want)
		}
	}
}

// ResolveRemote asks a real repository: a branch, a tag peeled to its commit, a full commit
// id as is; an abbreviated id, a missing ref and a hostile ref are refused before or after
// asking, never run as options.
func TestResolveRemote(t *testing.T) {
	dir := t.TempDir()
	git := func(args ...string) string {
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	git("init", "-q", "-b", "main")
	if err := os.WriteFile(filepath.Join(dir, "a"), []byte("1"), 0o644); err != nil {
		t.Fatal(err)
	}
	git("add", ".")
	git("commit", "-q", "-m", "one")
	first := git("rev-parse", "HEAD")
	git("tag", "-a", "v1", "-m", "v1")
	git("commit", "-q", "--allow-empty", "-m", "two")
	second := git("rev-parse", "HEAD")
	ctx := context.Background()
	for _, tc := range []struct{ ref, want string }{
		{"main", second}, {"v1", first}, {"refs/tags/v1", first}, {strings.ToUpper(first), first},
	} {
		if got, err := ResolveRemote(ctx, dir, tc.ref); err != nil || got != tc.want {
			t.Errorf("ResolveRemote(%q) = %q, %v; want %q", tc.ref, got, err, tc.want)
		}
	}
	for _, tc := range []struct {
		ref  string
		code apperr.Code
	}{{first[:10], apperr.CodeNotFound}, {"nope", apperr.CodeNotFound}, {"--upload-pack=touch /tmp/x", apperr.CodeInvalid}, {"a b", apperr.CodeInvalid}} {
		if _, err := ResolveRemote(ctx, dir, tc.ref); !apperr.Is(err, tc.code) {
			t.Errorf("ResolveRemote(%q) = %v, want %s", tc.ref, err, tc.code)
		}
	}
	if _, err := ResolveRemote(ctx, filepath.Join(dir, "missing"), "main"); !apperr.Is(err, apperr.CodeUnavailable) {
		t.Errorf("missing repository: %v, want unavailable", err)
	}
}
