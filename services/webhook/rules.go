package webhook

import (
	"fmt"
	"path"
	"regexp"
	"strings"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/runs"
)

var shaPattern = regexp.MustCompile(`^[0-9a-f]{40}([0-9a-f]{24})?$`)

// decision is what a push means for a project: a run to request and why, or a verdict
// saying why not.
type decision struct {
	run     *runs.Run
	reason  string
	verdict verdict
}

func ignore(format string, args ...any) decision {
	return decision{verdict: verdict{status: 202, verdict: VerdictIgnored, reason: fmt.Sprintf(format, args...)}}
}

func reject(format string, args ...any) decision {
	return decision{verdict: verdict{status: 400, verdict: VerdictRejected, code: RejectRef, reason: fmt.Sprintf(format, args...)}}
}

// decide applies project p's trigger rules to push: the branch globs (default: the project's
// branch) or tag globs (default: none) and the commit-message keyword (default "devops"),
// looked for in the head commit or in any pushed commit. Deletions never deploy.
func decide(p project, push *forge.Push) decision {
	if push.Deleted || forge.ZeroSHA(push.After) {
		return ignore("%s %q was deleted; deletions never deploy", push.Kind, truncate(push.Name, 200))
	}
	if err := gitref.Valid(push.Name); err != nil {
		return reject("ref name refused: %v", err)
	}
	if !shaPattern.MatchString(push.After) {
		return reject("after %q is not a commit id", truncate(push.After, 80))
	}
	var globs []string
	switch push.Kind {
	case forge.Branch:
		globs = lines(p.TriggerBranches)
		if len(globs) == 0 {
			globs = []string{p.Branch}
		}
	case forge.Tag:
		globs = lines(p.TriggerTags)
		if len(globs) == 0 {
			return ignore("tag %q: tag pushes do not deploy this project (no tag triggers)", push.Name)
		}
	default:
		return reject("ref %q is neither a branch nor a tag", truncate(push.Ref, 200))
	}
	matched := ""
	for _, g := range globs {
		if ok, _ := path.Match(g, push.Name); ok {
			matched = g
			break
		}
	}
	if matched == "" {
		return ignore("%s %q matches none of %s", push.Kind, push.Name, strings.Join(globs, ", "))
	}
	why := fmt.Sprintf("%s %q matches %q", push.Kind, push.Name, matched)
	if kw := p.TriggerKeyword; kw != "" {
		msgs, where := keywordMessages(p, push)
		if len(msgs) == 0 {
			return ignore("%s, but the push carries no commit message to find keyword %q in", why, kw)
		}
		if !anyContains(msgs, kw) {
			if p.TriggerKeywordScope == "any" {
				return ignore("%s, but none of the pushed commit messages contains keyword %q", why, kw)
			}
			return ignore("%s, but %s lacks keyword %q", why, where, kw)
		}
		why += fmt.Sprintf(" and %s contains keyword %q", where, kw)
	}
	return decision{reason: why, run: &runs.Run{ProjectID: p.ID, Ref: push.Name, CommitSHA: push.After,
		Trigger: "webhook:" + string(push.Platform), TriggeredBy: truncate(push.Pusher, 100)}}
}

// keywordMessages returns the commit messages the keyword is looked for in, and how to name
// them in a reason.
func keywordMessages(p project, push *forge.Push) ([]string, string) {
	if p.TriggerKeywordScope == "any" {
		var msgs []string
		for _, c := range push.Commits {
			msgs = append(msgs, c.Message)
		}
		if push.HeadCommit != nil {
			msgs = append(msgs, push.HeadCommit.Message)
		}
		return msgs, "a pushed commit message"
	}
	if push.HeadCommit != nil {
		return []string{push.HeadCommit.Message}, "the head commit message"
	}
	for _, c := range push.Commits {
		if c.SHA == push.After {
			return []string{c.Message}, "the head commit message"
		}
	}
	return nil, ""
}

func anyContains(msgs []string, kw string) bool {
	kw = strings.ToLower(kw)
	for _, m := range msgs {
		if strings.Contains(strings.ToLower(m), kw) {
			return true
		}
	}
	return false
}

func lines(s string) []string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}
