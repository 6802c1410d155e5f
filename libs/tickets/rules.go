package tickets

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
	_ "time/tzdata" // deploy windows name IANA zones; hosts without zoneinfo still know them

	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/runs"
)

// Approval policies.
const (
	ApprovalNone      = "none"                // deploys need no ticket (deploy windows aside)
	ApprovalRequired  = "required"            // every deploy needs an approved ticket
	ApprovalBelowRole = "required_below_role" // callers below Rules.ApprovalRole need one
)

// Rules are a project's environment rules beyond its deploy role, as stored in
// environment_rules. A project without a row has DefaultRules.
type Rules struct {
	ProjectID       string `gorm:"primaryKey"`
	Approval        string
	ApprovalRole    string // for ApprovalBelowRole: the least role that deploys without a ticket
	ApproverRole    string // the least project role that approves; "" for none
	ApproverGroupID *string
	ApprovalsNeeded int
	DeployWindows   string // JSON []Window; "" for none (always open)
	TimeZone        string
	TicketTTLHours  int `gorm:"column:ticket_ttl_hours"`
	// LinkConfirm: the bookmarkable deploy link asks for a confirmation before it starts a
	// run (true, the default) or starts it once the page is shown (false).
	LinkConfirm bool
	UpdatedBy   string
	UpdatedAt   time.Time
}

// TableName tells GORM the table.
func (Rules) TableName() string { return "environment_rules" }

// DefaultTTL is how long a ticket waits to be started unless the project says otherwise.
const DefaultTTL = 7 * 24 * time.Hour

// DefaultRules are the rules of a project without a row: no approval; maintainers approve
// tickets that are asked for anyway; one approval; tickets live a week; deploy links ask
// for a confirmation.
func DefaultRules(projectID string) Rules {
	return Rules{ProjectID: projectID, Approval: ApprovalNone, ApprovalRole: "maintainer", ApproverRole: "maintainer",
		ApprovalsNeeded: 1, TicketTTLHours: int(DefaultTTL / time.Hour), LinkConfirm: true}
}

// LoadRules returns project pid's rules (DefaultRules when it has none).
func LoadRules(tx *gorm.DB, pid string) (Rules, error) {
	var r Rules
	err := tx.Where("project_id = ?", pid).Take(&r).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return DefaultRules(pid), nil
	}
	if err != nil {
		return r, fmt.Errorf("load environment rules of %s: %w", pid, err)
	}
	return r, nil
}

// TTL is how long a ticket of the project may wait to be started.
func (r Rules) TTL() time.Duration {
	if r.TicketTTLHours <= 0 {
		return DefaultTTL
	}
	return time.Duration(r.TicketTTLHours) * time.Hour
}

// Window is a weekly time range in which deploys need no ticket for the window's sake: on
// Days (ISO weekdays, Monday = 1 … Sunday = 7) from Start to End ("HH:MM", 24 h). An End
// not after Start runs past midnight into the next day.
type Window struct {
	Days  []int  `json:"days"`
	Start string `json:"start"`
	End   string `json:"end"`
}

// ParseWindows reads stored windows ("" for none).
func ParseWindows(raw string) ([]Window, error) {
	if strings.TrimSpace(raw) == "" {
		return nil, nil
	}
	var ws []Window
	if err := json.Unmarshal([]byte(raw), &ws); err != nil {
		return nil, fmt.Errorf("stored deploy windows: %w", err)
	}
	return ws, nil
}

// CheckWindows validates windows and a time zone and returns the zone.
func CheckWindows(ws []Window, zone string) (*time.Location, error) {
	if len(ws) > 20 {
		return nil, apperr.Invalid("deploy_windows: at most 20 windows")
	}
	loc := time.UTC
	if zone != "" {
		var err error
		if loc, err = time.LoadLocation(zone); err != nil || len(zone) > 64 {
			return nil, apperr.Invalid("time_zone %q is not an IANA time zone such as Asia/Shanghai", zone)
		}
	}
	for i, w := range ws {
		if len(w.Days) == 0 || len(w.Days) > 7 {
			return nil, apperr.Invalid("deploy_windows[%d]: give 1-7 days (Monday = 1 … Sunday = 7)", i)
		}
		for _, d := range w.Days {
			if d < 1 || d > 7 {
				return nil, apperr.Invalid("deploy_windows[%d]: day %d is not 1-7 (Monday = 1 … Sunday = 7)", i, d)
			}
		}
		s, errS := clock(w.Start)
		e, errE := clock(w.End)
		if errS != nil || errE != nil {
			return nil, apperr.Invalid("deploy_windows[%d]: start and end are HH:MM (00:00-24:00)", i)
		}
		if s == e {
			return nil, apperr.Invalid("deploy_windows[%d]: start and end are the same time", i)
		}
	}
	return loc, nil
}

// clock parses "HH:MM" into minutes after midnight; "24:00" is the end of the day.
func clock(s string) (int, error) {
	t, err := time.Parse("15:04", s)
	if s == "24:00" {
		return 24 * 60, nil
	}
	if err != nil || len(s) != 5 {
		return 0, fmt.Errorf("bad clock %q", s)
	}
	return t.Hour()*60 + t.Minute(), nil
}

// isoDay is t's ISO weekday: Monday = 1 … Sunday = 7.
func isoDay(t time.Time) int {
	if d := int(t.Weekday()); d != 0 {
		return d
	}
	return 7
}

// InWindow reports whether now falls in one of the rules' deploy windows; without windows
// it is always true.
func (r Rules) InWindow(now time.Time) (bool, error) {
	if strings.TrimSpace(r.DeployWindows) == "" {
		return true, nil
	}
	ws, err := ParseWindows(r.DeployWindows)
	if err != nil {
		return false, err
	}
	loc, err := CheckWindows(ws, r.TimeZone)
	if err != nil {
		return false, err
	}
	return inWindows(ws, now.In(loc)), nil
}

func inWindows(ws []Window, local time.Time) bool {
	minute := local.Hour()*60 + local.Minute()
	today, yesterday := isoDay(local), isoDay(local.AddDate(0, 0, -1))
	for _, w := range ws {
		s, _ := clock(w.Start)
		e, _ := clock(w.End)
		has := func(d int) bool {
			for _, x := range w.Days {
				if x == d {
					return true
				}
			}
			return false
		}
		switch {
		case s < e && has(today) && minute >= s && minute < e:
			return true
		case e < s && has(today) && minute >= s: // the evening part of an overnight window
			return true
		case e < s && has(yesterday) && minute < e: // its morning part
			return true
		}
	}
	return false
}

// SystemNeedsTicket reports whether a run that no person asked for (a push, a trigger URL,
// a schedule) needs an approved ticket on a project with rules r at now, and why. The system
// holds no role, so "required below a role" always applies to it.
func (r Rules) SystemNeedsTicket(now time.Time) (bool, string, error) {
	switch r.Approval {
	case ApprovalRequired:
		return true, "every deploy of this project needs an approved release ticket", nil
	case ApprovalBelowRole:
		return true, "deploys not started by a " + r.ApprovalRole + " need an approved release ticket", nil
	}
	in, err := r.InWindow(now)
	if err != nil {
		return false, "", err
	}
	if !in {
		return true, "outside the project's deploy windows a deploy needs an approved release ticket", nil
	}
	return false, "", nil
}

// OpenInstead opens a pending ticket for run r, which no person asked for, when the
// project's rules need one at now: source and requestedBy say who asked (the pusher, "trigger
// URL"), deliveryID the delivery that asked. It returns nil and changes nothing when no
// ticket is needed, so the caller requests the run. The run's commit must be pinned
// (r.CommitSHA): approvers approve exactly that commit.
func OpenInstead(tx *gorm.DB, r *runs.Run, source, requestedBy, deliveryID string, now time.Time) (*Ticket, string, error) {
	rules, err := LoadRules(tx, r.ProjectID)
	if err != nil {
		return nil, "", err
	}
	need, why, err := rules.SystemNeedsTicket(now)
	if err != nil || !need {
		return nil, "", err
	}
	if !gitref.IsFullCommit(r.CommitSHA) {
		return nil, why, apperr.Invalid("%s, which pins a full commit id; %q does not name one", why, r.Ref)
	}
	t := &Ticket{ProjectID: r.ProjectID, Ref: r.Ref, CommitSHA: r.CommitSHA, Source: source,
		Title:       fmt.Sprintf("Deploy %s (%.12s) requested by %s", r.Ref, r.CommitSHA, requestedBy),
		Description: why, RequestedBy: requestedBy, ApprovalsNeeded: rules.ApprovalsNeeded,
		ExpiresAt: now.UTC().Add(rules.TTL()), DeliveryID: deliveryID}
	if err := Open(tx, t, now); err != nil {
		return nil, why, err
	}
	return t, why, nil
}

// ResolveRemote returns the full commit id that ref names in the repository at gitURL, asking
// it with `git ls-remote` (argv only; no terminal prompt, no user configuration): a full
// commit id is itself; otherwise the branch refs/heads/<ref>, then the tag refs/tags/<ref>
// peeled to its commit. An abbreviated commit id cannot be resolved remotely and is refused.
func ResolveRemote(ctx context.Context, gitURL, ref string) (string, error) {
	if gitref.IsFullCommit(ref) {
		return strings.ToLower(ref), nil
	}
	if err := gitref.Valid(ref); err != nil {
		if gitref.ValidCommit(ref) == nil {
			return "", apperr.Invalid("%q is an abbreviated commit id; give the full one so the ticket pins it", ref)
		}
		return "", err
	}
	if gitURL == "" || strings.HasPrefix(gitURL, "-") {
		return "", apperr.Invalid("the project has no repository URL")
	}
	candidates := []string{"refs/heads/" + ref, "refs/tags/" + ref + "^{}", "refs/tags/" + ref}
	if strings.HasPrefix(ref, "refs/") {
		candidates = []string{ref + "^{}", ref}
	}
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	home, err := os.MkdirTemp("", "fabu-ls-remote-")
	if err != nil {
		return "", fmt.Errorf("ls-remote home: %w", err)
	}
	defer func() { _ = os.RemoveAll(home) }()
	// Credentials in the URL go to git through its environment, never its argv.
	bare, creds, err := gitref.SplitCredentials(gitURL, home)
	if err != nil {
		return "", apperr.Invalid("%v", err)
	}
	cmd := exec.CommandContext(ctx, "git", append([]string{"ls-remote", "--", bare}, candidates...)...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + home, "GIT_CONFIG_NOSYSTEM=1", "GIT_TERMINAL_PROMPT=0",
		"GIT_ASKPASS=", "SSH_ASKPASS=", "LC_ALL=C"}, creds...) // a later GIT_ASKPASS wins
	out, err := cmd.Output()
	if err != nil {
		return "", apperr.Wrap(err, apperr.CodeUnavailable, "could not ask the repository for %q; give the commit id instead", ref)
	}
	found := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		sha, name, ok := strings.Cut(strings.TrimSpace(line), "\t")
		if ok && gitref.IsFullCommit(sha) {
			found[name] = strings.ToLower(sha)
		}
	}
	for _, c := range candidates {
		if sha := found[c]; sha != "" {
			return sha, nil
		}
	}
	if gitref.ValidCommit(ref) == nil {
		return "", apperr.NotFound("the repository has no branch or tag %q; if it is an abbreviated commit id, give the full one", ref)
	}
	return "", apperr.NotFound("the repository has no branch or tag %q", ref)
}
