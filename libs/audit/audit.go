// Package audit is fabu's audit log: who did what, to what, when, from where and how it
// ended. Services write entries with Record (inside the transaction of the change when they
// have one); the gateway reads them with Query and exports them with CSVWriter.
//
// Nothing secret may enter the log. Record redacts the detail before storing it: values under
// keys named like a secret (token, secret, password, private key, …) are replaced, passwords
// in URLs are removed, and strings that look like fabu API tokens or JWTs are replaced
// wherever they appear.
package audit

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"regexp"
	"time"
	"unicode/utf8"

	"gorm.io/gorm"
)

// Outcomes of an audited action.
const (
	OK      = "ok"      // it was done
	Refused = "refused" // the caller was refused: bad input, not allowed, not signed in, locked
	Failed  = "failed"  // fabu failed to do it
)

// Entry is one row of the audit log.
type Entry struct {
	ID        int64          `json:"id"`
	At        time.Time      `json:"at"`
	Actor     string         `json:"actor"`    // user name as shown; "" when nobody was signed in
	ActorID   string         `json:"actor_id"` // user id, or a non-user actor such as "trigger-url"
	Action    string         `json:"action"`   // e.g. project.update, run.start, auth.login
	Target    string         `json:"target"`   // kind of thing acted on: project, server, run, user …
	TargetID  string         `json:"target_id"`
	Outcome   string         `json:"outcome"` // OK, Refused or Failed
	IP        string         `json:"ip"`
	UserAgent string         `json:"user_agent"`
	Detail    map[string]any `json:"detail"` // redacted; never secrets
}

// Redacted replaces a secret value.
const Redacted = "[redacted]"

// Limits of stored fields, so a hostile client cannot fill the log with one request.
const (
	maxField     = 256  // actor, action, target, ids, ip
	maxUserAgent = 512  // user agent
	maxString    = 1024 // one string inside detail
	maxDetail    = 16 << 10
	maxDepth     = 8
)

// row is the stored form of an Entry.
type row struct {
	ID        int64 `gorm:"primaryKey;autoIncrement"`
	At        time.Time
	Actor     string
	ActorID   string
	Action    string
	Target    string
	TargetID  string
	Outcome   string
	IP        string
	UserAgent string
	Detail    string
}

func (row) TableName() string { return "audit_log" }

// Record appends e to the audit log through db, which may be a transaction: an entry
// written with the change it describes commits or rolls back with it. A zero At is now;
// Action and Outcome are required. The detail is redacted (see Redact) and bounded.
func Record(db *gorm.DB, e Entry) error {
	if e.Action == "" {
		return errors.New("audit: an entry needs an action")
	}
	switch e.Outcome {
	case OK, Refused, Failed:
	default:
		return fmt.Errorf("audit: unknown outcome %q", e.Outcome)
	}
	if e.At.IsZero() {
		e.At = time.Now()
	}
	detail, err := encodeDetail(e.Detail)
	if err != nil {
		return err
	}
	r := row{
		At:        e.At.UTC(),
		Actor:     clip(scrubString(e.Actor), maxField),
		ActorID:   clip(scrubString(e.ActorID), maxField),
		Action:    clip(e.Action, maxField),
		Target:    clip(e.Target, maxField),
		TargetID:  clip(scrubString(e.TargetID), maxField),
		Outcome:   e.Outcome,
		IP:        clip(e.IP, maxField),
		UserAgent: clip(scrubString(e.UserAgent), maxUserAgent),
		Detail:    detail,
	}
	if err := db.Create(&r).Error; err != nil {
		return fmt.Errorf("audit: record %s: %w", e.Action, err)
	}
	return nil
}

// encodeDetail redacts d and encodes it as a JSON object of at most maxDetail bytes; a
// larger detail keeps only its (redacted) top-level keys.
func encodeDetail(d map[string]any) (string, error) {
	if len(d) == 0 {
		return "{}", nil
	}
	red, _ := Redact(d).(map[string]any)
	b, err := json.Marshal(red)
	if err != nil {
		return "", fmt.Errorf("audit: encode detail: %w", err)
	}
	if len(b) <= maxDetail {
		return string(b), nil
	}
	keys := make([]string, 0, len(red))
	for k := range red {
		keys = append(keys, clip(k, 64))
	}
	b, err = json.Marshal(map[string]any{"truncated": true, "keys": keys})
	if err != nil {
		return "", fmt.Errorf("audit: encode detail: %w", err)
	}
	return string(b), nil
}

// secretKey matches the names of fields that hold secrets. host_key (a public SSH host key)
// and has_* flags are not secrets but are redacted too when they match; that costs nothing.
var secretKey = regexp.MustCompile(`(?i)token|secret|passw|passphrase|private|credential|authorization|cookie|sealed|api[_-]?key|signature|^sig$|access[_-]?key`)

// IsSecretKey reports whether a field named k holds a secret and is therefore redacted.
func IsSecretKey(k string) bool { return secretKey.MatchString(k) }

// Patterns of secrets that may hide in free text: fabu API tokens, JWTs, bearer headers.
var (
	apiTokenText = regexp.MustCompile(`fabu_[A-Za-z0-9_-]{16,}`)
	jwtText      = regexp.MustCompile(`eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*`)
	bearerText   = regexp.MustCompile(`(?i)bearer\s+[A-Za-z0-9._~+/=-]+`)
	urlText      = regexp.MustCompile(`[A-Za-z][A-Za-z0-9+.-]*://[^\s"'<>]+`)
)

// Redact returns a copy of v (the result of decoding JSON, or maps and slices of strings,
// numbers and booleans) without secrets: values under secret-like keys become Redacted,
// URLs lose their passwords, and token-like strings are replaced. Strings are cut to a
// bounded length and nesting is bounded.
func Redact(v any) any { return redact(v, 0) }

func redact(v any, depth int) any {
	if depth > maxDepth {
		return "…"
	}
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, val := range x {
			if IsSecretKey(k) {
				if val == nil || val == "" {
					out[k] = val // saying that a secret was cleared reveals nothing
				} else {
					out[k] = Redacted
				}
				continue
			}
			out[k] = redact(val, depth+1)
		}
		return out
	case map[string]string:
		m := make(map[string]any, len(x))
		for k, s := range x {
			m[k] = s
		}
		return redact(m, depth)
	case []any:
		out := make([]any, len(x))
		for i, val := range x {
			out[i] = redact(val, depth+1)
		}
		return out
	case []string:
		out := make([]any, len(x))
		for i, s := range x {
			out[i] = redact(s, depth+1)
		}
		return out
	case string:
		return clip(scrubString(x), maxString)
	case nil, bool, float64, float32, int, int64, int32, uint, uint64, uint32, json.Number:
		return x
	default:
		// Anything else goes through JSON, so structs are redacted by their field names.
		b, err := json.Marshal(x)
		if err != nil {
			return fmt.Sprintf("%T", x)
		}
		var decoded any
		if err := json.Unmarshal(b, &decoded); err != nil {
			return fmt.Sprintf("%T", x)
		}
		return redact(decoded, depth)
	}
}

// scrubString removes secrets that free text may carry: passwords in URLs, API tokens,
// JWTs and bearer credentials.
func scrubString(s string) string {
	if s == "" {
		return s
	}
	s = urlText.ReplaceAllStringFunc(s, func(raw string) string {
		u, err := url.Parse(raw)
		if err != nil || u.User == nil {
			return raw
		}
		if _, has := u.User.Password(); has {
			u.User = url.UserPassword(u.User.Username(), "xxxxx")
		} else if u.Scheme == "http" || u.Scheme == "https" {
			u.User = url.User("xxxxx") // https://<token>@host: the user name is the credential
		}
		if q := u.Query(); len(q) > 0 {
			for k := range q {
				if IsSecretKey(k) {
					q.Set(k, "xxxxx")
				}
			}
			u.RawQuery = q.Encode()
		}
		return u.String()
	})
	s = apiTokenText.ReplaceAllString(s, Redacted)
	s = jwtText.ReplaceAllString(s, Redacted)
	s = bearerText.ReplaceAllString(s, "Bearer "+Redacted)
	return s
}

// clip cuts s to at most n bytes on a rune boundary.
func clip(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "…"
}

// Outcome maps an HTTP status to an outcome: below 400 OK, 4xx Refused, otherwise Failed.
func Outcome(status int) string {
	switch {
	case status < 400:
		return OK
	case status < 500:
		return Refused
	default:
		return Failed
	}
}
