package audit

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"gorm.io/gorm"
)

// Filter selects entries. Empty fields select everything.
type Filter struct {
	Actor   string    // user name or actor id, exactly
	Action  string    // an action exactly, or a prefix ending in "." or "*" ("project.", "auth.*")
	Target  string    // a target kind or target id exactly, or "kind:id"
	Outcome string    // OK, Refused or Failed
	Q       string    // case-insensitive text anywhere in actor, action, target, ip, user agent or detail
	Since   time.Time // at or after
	Until   time.Time // before
	Before  int64     // keyset cursor: only entries with a smaller id (older)
	Limit   int       // page size; 0 means DefaultLimit, at most MaxLimit
}

// Page sizes.
const (
	DefaultLimit = 50
	MaxLimit     = 500
)

// Page is one page of entries, newest first. Next is the Before of the following page, 0
// when this is the last one.
type Page struct {
	Entries []Entry `json:"entries"`
	Next    int64   `json:"next,omitempty"`
}

// Query returns a page of the entries f selects, newest first. Paging by Before is keyset
// paging on the serial id, so entries recorded meanwhile never shift a page: following Next
// visits every older entry exactly once.
func Query(db *gorm.DB, f Filter) (Page, error) {
	limit := f.Limit
	if limit <= 0 {
		limit = DefaultLimit
	}
	if limit > MaxLimit {
		limit = MaxLimit
	}
	q := where(db.Model(&row{}), f)
	var rows []row
	if err := q.Order("id DESC").Limit(limit + 1).Find(&rows).Error; err != nil {
		return Page{}, fmt.Errorf("audit: query: %w", err)
	}
	p := Page{Entries: make([]Entry, 0, min(len(rows), limit))}
	if len(rows) > limit {
		rows = rows[:limit]
		p.Next = rows[limit-1].ID
	}
	for _, r := range rows {
		p.Entries = append(p.Entries, r.entry())
	}
	return p, nil
}

// Each calls fn for every entry f selects, newest first, reading a page at a time and
// ignoring f.Limit. It stops at fn's first error, or after max entries when max > 0.
func Each(db *gorm.DB, f Filter, max int, fn func(Entry) error) error {
	f.Limit = MaxLimit
	n := 0
	for {
		p, err := Query(db, f)
		if err != nil {
			return err
		}
		for _, e := range p.Entries {
			if max > 0 && n >= max {
				return nil
			}
			if err := fn(e); err != nil {
				return err
			}
			n++
		}
		if p.Next == 0 {
			return nil
		}
		f.Before = p.Next
	}
}

func where(q *gorm.DB, f Filter) *gorm.DB {
	if f.Actor != "" {
		q = q.Where("(actor = ? OR actor_id = ?)", f.Actor, f.Actor)
	}
	if a := f.Action; a != "" {
		if p, ok := strings.CutSuffix(a, "*"); ok {
			q = q.Where("action LIKE ? ESCAPE '\\'", likeEscape(p)+"%")
		} else if strings.HasSuffix(a, ".") {
			q = q.Where("action LIKE ? ESCAPE '\\'", likeEscape(a)+"%")
		} else {
			q = q.Where("action = ?", a)
		}
	}
	if t := f.Target; t != "" {
		if kind, id, ok := strings.Cut(t, ":"); ok && kind != "" && id != "" {
			q = q.Where("target = ? AND target_id = ?", kind, id)
		} else {
			q = q.Where("(target = ? OR target_id = ?)", t, t)
		}
	}
	if f.Outcome != "" {
		q = q.Where("outcome = ?", f.Outcome)
	}
	if s := strings.TrimSpace(f.Q); s != "" {
		pat := "%" + likeEscape(strings.ToLower(s)) + "%"
		q = q.Where(`(LOWER(actor) LIKE ? ESCAPE '\' OR LOWER(action) LIKE ? ESCAPE '\' OR LOWER(target) LIKE ? ESCAPE '\'
			OR LOWER(target_id) LIKE ? ESCAPE '\' OR LOWER(ip) LIKE ? ESCAPE '\' OR LOWER(user_agent) LIKE ? ESCAPE '\'
			OR LOWER(detail) LIKE ? ESCAPE '\')`, pat, pat, pat, pat, pat, pat, pat)
	}
	if !f.Since.IsZero() {
		q = q.Where("at >= ?", f.Since.UTC())
	}
	if !f.Until.IsZero() {
		q = q.Where("at < ?", f.Until.UTC())
	}
	if f.Before > 0 {
		q = q.Where("id < ?", f.Before)
	}
	return q
}

// likeEscape escapes LIKE's wildcards in s, for ESCAPE '\'.
func likeEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `%`, `\%`, `_`, `\_`).Replace(s)
}

func (r row) entry() Entry {
	e := Entry{ID: r.ID, At: r.At.UTC(), Actor: r.Actor, ActorID: r.ActorID, Action: r.Action, Target: r.Target,
		TargetID: r.TargetID, Outcome: r.Outcome, IP: r.IP, UserAgent: r.UserAgent, Detail: map[string]any{}}
	if r.Detail != "" {
		if err := json.Unmarshal([]byte(r.Detail), &e.Detail); err != nil {
			e.Detail = map[string]any{"unreadable": true}
		}
	}
	return e
}
