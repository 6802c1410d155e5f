package github

import (
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/testenv"
)

const zero = "0000000000000000000000000000000000000000"

func deliveryHeader(event, id string) http.Header {
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	if event != "" {
		h.Set(HeaderEvent, event)
	}
	if id != "" {
		h.Set(HeaderDelivery, id)
	}
	return h
}

// TestParseFixtures parses every github/*.json capture with the event GitHub sent it as.
func TestParseFixtures(t *testing.T) {
	type want struct {
		event   string
		kind    forge.EventKind
		ref     string
		refKind forge.RefKind
		name    string
		created bool
		deleted bool
		head    bool // head_commit present
		commits int
	}
	cases := map[string]want{
		"push.go-scm.json":               {EventPush, forge.EventPush, "refs/heads/master", forge.Branch, "master", false, false, true, 1},
		"push_branch_create.go-scm.json": {EventPush, forge.EventPush, "refs/heads/feature-branch", forge.Branch, "feature-branch", true, false, true, 0},
		"push_branch_delete.go-scm.json": {EventPush, forge.EventPush, "refs/heads/feature-branch", forge.Branch, "feature-branch", false, true, false, 0},
		"push_tag.go-scm.json":           {EventPush, forge.EventPush, "refs/tags/v0.0.1", forge.Tag, "v0.0.1", true, false, true, 0},
		"push_tag_delete.go-scm.json":    {EventPush, forge.EventPush, "refs/tags/v0.0.1", forge.Tag, "v0.0.1", false, true, false, 0},
		"create_branch.go-scm.json":      {event: "create", kind: forge.EventOther},
		"create_tag.go-scm.json":         {event: "create", kind: forge.EventOther},
		"delete_branch.go-scm.json":      {event: "delete", kind: forge.EventOther},
		"delete_tag.go-scm.json":         {event: "delete", kind: forge.EventOther},
		"release_created.go-scm.json":    {event: "release", kind: forge.EventOther},
		"release_published.go-scm.json":  {event: "release", kind: forge.EventOther},
	}
	files, err := filepath.Glob(filepath.Join(testenv.FixturesDir(t), "github", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no github/*.json fixtures under %s (set FABU_FIXTURES): %v", testenv.FixturesDir(t), err)
	}
	for _, f := range files {
		name := filepath.Base(f)
		w, ok := cases[name]
		if !ok {
			t.Errorf("fixture %s has no expectation here; add one", name)
			continue
		}
		delete(cases, name)
		t.Run(name, func(t *testing.T) {
			body, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			d, err := Verifier{}.Parse(deliveryHeader(w.event, "id-"+name), body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Platform != forge.GitHub || d.Kind != w.kind || d.Event != w.event || d.Key != "id-"+name {
				t.Fatalf("delivery = %+v, want platform github, kind %s, event %s, key id-%s", d, w.kind, w.event, name)
			}
			if w.kind != forge.EventPush {
				if d.Push != nil {
					t.Errorf("Push = %+v, want nil for %s", d.Push, w.event)
				}
				return
			}
			p := d.Push
			if p == nil {
				t.Fatal("Push is nil")
			}
			if p.Ref != w.ref || p.Kind != w.refKind || p.Name != w.name || p.Created != w.created || p.Deleted != w.deleted {
				t.Errorf("push = ref %q kind %s name %q created %v deleted %v; want %q %s %q %v %v",
					p.Ref, p.Kind, p.Name, p.Created, p.Deleted, w.ref, w.refKind, w.name, w.created, w.deleted)
			}
			if (p.HeadCommit != nil) != w.head || len(p.Commits) != w.commits {
				t.Errorf("head commit present %v, %d commits; want %v, %d", p.HeadCommit != nil, len(p.Commits), w.head, w.commits)
			}
			if w.deleted && p.After != zero {
				t.Errorf("After = %q on a deletion, want zeros", p.After)
			}
			if w.created && p.Before != zero {
				t.Errorf("Before = %q on a creation, want zeros", p.Before)
			}
			if p.Platform != forge.GitHub || p.Repository == "" || len(p.CloneURLs) != 2 || p.Pusher == "" {
				t.Errorf("push = %+v, want platform, repository, two clone URLs and pusher", p)
			}
		})
	}
	for name := range cases {
		t.Errorf("expected fixture github/%s is missing", name)
	}
}

func TestParsePushDetails(t *testing.T) {
	body := testenv.Fixture(t, "github/push.go-scm.json")
	d, err := Verifier{}.Parse(deliveryHeader("push", "ee8d97b4-1479-43f1-9cac-fbbd1b80da55"), body)
	if err != nil {
		t.Fatal(err)
	}
	commit := forge.Commit{
		SHA:     "199eddf46df50de8d02e99bf1c5fdb4101338224",
		Message: "Update README",
		Author:  "Codertocat",
		Time:    time.Date(2018, 6, 15, 20, 1, 51, 0, time.UTC),
		URL:     "https://github.com/Codertocat/Hello-World/compare/199eddf46df50de8d02e99bf1c5fdb4101338224",
	}
	want := &forge.Push{
		Platform:   forge.GitHub,
		Repository: "Codertocat/Hello-World",
		CloneURLs:  []string{"https://github.com/Codertocat/Hello-World.git", "git@github.com:Codertocat/Hello-World.git"},
		Ref:        "refs/heads/master",
		Kind:       forge.Branch,
		Name:       "master",
		Before:     "a10867b14bb761a232cd80139fbd4c0d33264240",
		After:      "199eddf46df50de8d02e99bf1c5fdb4101338224",
		Commits:    []forge.Commit{commit},
		HeadCommit: &commit,
		Pusher:     "Codertocat",
	}
	got := d.Push
	if got == nil || !got.Commits[0].Time.Equal(commit.Time) || !got.HeadCommit.Time.Equal(commit.Time) {
		t.Fatalf("push = %+v, want commit time %s", got, commit.Time)
	}
	// Times compare by instant above; normalize the location for DeepEqual.
	got.Commits[0].Time, got.HeadCommit.Time = commit.Time, commit.Time
	if !reflect.DeepEqual(got, want) {
		t.Errorf("push =\n%+v\nwant\n%+v", got, want)
	}
}

func TestParseFormEncoded(t *testing.T) {
	raw := testenv.Fixture(t, "github/push_tag.go-scm.json")
	h := deliveryHeader("push", "form-1")
	h.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	form := url.Values{"payload": {string(raw)}}.Encode()

	fromForm, err := Verifier{}.Parse(h, []byte(form))
	if err != nil {
		t.Fatalf("Parse(form): %v", err)
	}
	fromJSON, err := Verifier{}.Parse(deliveryHeader("push", "form-1"), raw)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(fromForm, fromJSON) {
		t.Errorf("form delivery = %+v, want the JSON one %+v", fromForm, fromJSON)
	}

	// V5's body, a ping: the form's payload is {"yo":true}.
	h.Set(HeaderEvent, "ping")
	d, err := Verifier{}.Parse(h, []byte(v5Body))
	if err != nil || d.Kind != forge.EventPing {
		t.Errorf("Parse(V5 as ping) = %+v, %v; want a ping", d, err)
	}
}

func TestParsePingAndKey(t *testing.T) {
	body := []byte(`{"zen":"Keep it logically awesome.","hook_id":1,"hook":{"type":"Repository","id":1,"name":"web","active":true,"events":["push"],"config":{"content_type":"json","url":"https://fabu.example/hooks/github","insecure_ssl":"0"}}}`)
	d, err := Verifier{}.Parse(deliveryHeader("ping", "abc"), body)
	if err != nil || d.Kind != forge.EventPing || d.Event != "ping" || d.Key != "abc" || d.Push != nil {
		t.Fatalf("Parse(ping) = %+v, %v", d, err)
	}
	// Without X-GitHub-Delivery the key is the body's hash: stable across redeliveries.
	a, err1 := Verifier{}.Parse(deliveryHeader("ping", ""), body)
	b, err2 := Verifier{}.Parse(deliveryHeader("ping", ""), body)
	c, err3 := Verifier{}.Parse(deliveryHeader("ping", ""), append([]byte(" "), body...))
	if err1 != nil || err2 != nil || err3 != nil || a.Key == "" || a.Key != b.Key || a.Key == c.Key {
		t.Errorf("fallback keys %q %q %q (errors %v %v %v): want equal for equal bodies only", a.Key, b.Key, c.Key, err1, err2, err3)
	}
}

func TestParseInvalid(t *testing.T) {
	push := func(ref string) string {
		return `{"ref":"` + ref + `","before":"a","after":"b","repository":{"full_name":"o/r"}}`
	}
	form := http.Header{}
	form.Set(HeaderEvent, "push")
	form.Set("Content-Type", contentTypeForm)
	tests := []struct {
		name   string
		header http.Header
		body   string
	}{
		{"no event header", deliveryHeader("", "x"), push("refs/heads/main")},
		{"malformed JSON", deliveryHeader("push", "x"), `{"ref":`},
		{"malformed JSON on another event", deliveryHeader("release", "x"), `not json`},
		{"empty body", deliveryHeader("push", "x"), ``},
		{"wrong field type", deliveryHeader("push", "x"), `{"ref":"refs/heads/main","created":"yes"}`},
		{"JSON array", deliveryHeader("push", "x"), `[1,2]`},
		{"short ref", deliveryHeader("push", "x"), push("main")},
		{"pull ref", deliveryHeader("push", "x"), push("refs/pull/1/head")},
		{"notes ref", deliveryHeader("push", "x"), push("refs/notes/commits")},
		{"empty branch name", deliveryHeader("push", "x"), push("refs/heads/")},
		{"no ref", deliveryHeader("push", "x"), `{"repository":{"full_name":"o/r"}}`},
		{"no repository", deliveryHeader("push", "x"), `{"ref":"refs/heads/main"}`},
		{"form without payload", form, `other=1`},
		{"form with bad payload", form, `payload=%7B`},
		{"malformed form", form, `payload=%zz`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Verifier{}.Parse(tt.header, []byte(tt.body))
			if got := apperr.CodeOf(err); err == nil || got != apperr.CodeInvalid {
				t.Fatalf("Parse = %+v, %v (code %s); want an invalid error", d, err, got)
			}
		})
	}
}

// TestParseHostileRefs checks refs no branch should have pass through unchanged for the
// caller's validation, and that a ref that is not UTF-8 is not repaired on the way.
func TestParseHostileRefs(t *testing.T) {
	tests := []struct {
		name     string
		jsonRef  string // as written in the JSON string
		wantName string
	}{
		{"not UTF-8", "refs/heads/\xff\xfe", "\xff\xfe"},
		{"shell metacharacters", "refs/heads/main;id", "main;id"},
		{"command substitution", "refs/tags/$(id)", "$(id)"},
		{"escaped NUL", `refs/heads/a\u0000b`, "a\x00b"},
		{"option-like", "refs/heads/--upload-pack=x", "--upload-pack=x"},
		{"dot-dot", "refs/heads/../../etc", "../../etc"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := `{"ref":"` + tt.jsonRef + `","repository":{"full_name":"o/r"},"head_commit":null}`
			d, err := Verifier{}.Parse(deliveryHeader("push", "x"), []byte(body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Push.Name != tt.wantName {
				t.Fatalf("Name = %q, want %q", d.Push.Name, tt.wantName)
			}
			if gitref.Valid(d.Push.Name) == nil {
				t.Errorf("gitref.Valid(%q) accepted a hostile name; the caller's check would not catch it", d.Push.Name)
			}
		})
	}
	// A JSON string with raw control bytes is not JSON at all.
	if _, err := (Verifier{}).Parse(deliveryHeader("push", "x"), []byte("{\"ref\":\"refs/heads/a\nb\"}")); !apperr.Is(err, apperr.CodeInvalid) {
		t.Errorf("raw newline in ref: err = %v, want invalid", err)
	}
}
