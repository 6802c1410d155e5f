package gitee

import (
	"errors"
	"net/http"
	"strings"
	"testing"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/testenv"
)

func eventHeader(event string) http.Header {
	h := signed("1633686799688", "OyjGt7PDU9xXl5khawx5APOUmODD+SaulKYnS/Nifew=")
	h.Set(HeaderEvent, event)
	return h
}

func TestParseFixtures(t *testing.T) {
	const repo = "kit101/drone-yml-test"
	clone := []string{"https://gitee.com/kit101/drone-yml-test.git", "git@gitee.com:kit101/drone-yml-test.git"}
	tests := []struct {
		file, event string
		kind        forge.EventKind
		want        *forge.Push
		commits     int
		head        string
	}{
		{"push_hook.go-scm.json", EventPushHook, forge.EventPush, &forge.Push{
			Ref: "refs/heads/feat-2-1", Kind: forge.Branch, Name: "feat-2-1",
			Before: "6168d9dae737b47f00c59fafca10c913a6850c3a", After: "9921e45e570db8e57e544650baf837932fb2100f",
			TotalCommits: 1, Pusher: "kit101",
		}, 1, "9921e45e570db8e57e544650baf837932fb2100f"},
		{"push_hook_branch_created.go-scm.json", EventPushHook, forge.EventPush, &forge.Push{
			Ref: "refs/heads/feat-2-1", Kind: forge.Branch, Name: "feat-2-1", Created: true,
			Before: "0000000000000000000000000000000000000000", After: "6168d9dae737b47f00c59fafca10c913a6850c3a",
			TotalCommits: 13, Pusher: "kit101",
		}, 0, "6168d9dae737b47f00c59fafca10c913a6850c3a"},
		{"push_hook_branch_deleted.go-scm.json", EventPushHook, forge.EventPush, &forge.Push{
			Ref: "refs/heads/feat-3", Kind: forge.Branch, Name: "feat-3", Deleted: true,
			Before: "dc8fa2ebe050d63f639c5b834311e96bc2303523", After: "0000000000000000000000000000000000000000",
			Pusher: "kit101",
		}, 0, ""},
		{"tag_push_hook_created.go-scm.json", EventTagPushHook, forge.EventPush, &forge.Push{
			Ref: "refs/tags/1.3", Kind: forge.Tag, Name: "1.3", Created: true,
			Before: "0000000000000000000000000000000000000000", After: "aa9d11518a64dcd0d591a2a4eb35dfb4d91d49d5",
			Pusher: "kit101",
		}, 0, "aa9d11518a64dcd0d591a2a4eb35dfb4d91d49d5"},
		{"tag_push_hook_deleted.go-scm.json", EventTagPushHook, forge.EventPush, &forge.Push{
			Ref: "refs/tags/1.3", Kind: forge.Tag, Name: "1.3", Deleted: true,
			Before: "aa9d11518a64dcd0d591a2a4eb35dfb4d91d49d5", After: "0000000000000000000000000000000000000000",
			Pusher: "kit101",
		}, 0, ""},
		{"merge_request_hook_open.go-scm.json", "Merge Request Hook", forge.EventOther, nil, 0, ""},
		{"merge_request_hook_merge.go-scm.json", "Merge Request Hook", forge.EventOther, nil, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			h := eventHeader(tt.event)
			d, err := Verifier{}.Parse(h, testenv.Fixture(t, "gitee/"+tt.file))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Kind != tt.kind || d.Event != tt.event || d.Platform != forge.Gitee {
				t.Fatalf("got kind %q event %q platform %q, want %q %q gitee", d.Kind, d.Event, d.Platform, tt.kind, tt.event)
			}
			if want := h.Get(HeaderTimestamp) + ":" + h.Get(HeaderToken); d.Key != want {
				t.Errorf("Key = %q, want %q", d.Key, want)
			}
			if !d.BodyUnsigned {
				t.Error("BodyUnsigned = false: Gitee's proof never covers the body")
			}
			if tt.want == nil {
				if d.Push != nil {
					t.Errorf("Push = %+v, want nil", d.Push)
				}
				return
			}
			p := d.Push
			if p == nil {
				t.Fatal("Push is nil")
			}
			w := tt.want
			if p.Platform != forge.Gitee || p.Repository != repo || p.Ref != w.Ref || p.Kind != w.Kind ||
				p.Name != w.Name || p.Before != w.Before || p.After != w.After || p.Created != w.Created ||
				p.Deleted != w.Deleted || p.TotalCommits != w.TotalCommits || p.Pusher != w.Pusher {
				t.Errorf("got  %+v\nwant %+v", *p, *w)
			}
			if strings.Join(p.CloneURLs, " ") != strings.Join(clone, " ") {
				t.Errorf("CloneURLs = %q, want %q", p.CloneURLs, clone)
			}
			if len(p.Commits) != tt.commits {
				t.Errorf("%d commits, want %d", len(p.Commits), tt.commits)
			}
			switch {
			case tt.head == "" && p.HeadCommit != nil:
				t.Errorf("HeadCommit = %+v, want nil", p.HeadCommit)
			case tt.head != "" && (p.HeadCommit == nil || p.HeadCommit.SHA != tt.head):
				t.Errorf("HeadCommit = %+v, want %s", p.HeadCommit, tt.head)
			}
		})
	}
}

func TestParsePushCommit(t *testing.T) {
	d, err := Verifier{}.Parse(eventHeader(EventPushHook), testenv.Fixture(t, "gitee/push_hook.go-scm.json"))
	if err != nil {
		t.Fatal(err)
	}
	c := d.Push.Commits[0]
	if c.SHA != "9921e45e570db8e57e544650baf837932fb2100f" || c.Message != "feat-2-1\n" || c.Author != "kit101" ||
		c.URL != "https://gitee.com/kit101/drone-yml-test/commit/9921e45e570db8e57e544650baf837932fb2100f" ||
		c.Time.Unix() != 1633686792 {
		t.Errorf("commit = %+v", c)
	}
}

func TestParseEvents(t *testing.T) {
	push := testenv.Fixture(t, "gitee/push_hook.go-scm.json")
	tests := []struct {
		name     string
		h        http.Header
		body     []byte
		wantKind forge.EventKind
		wantCode apperr.Code // "" when no error
	}{
		{"ping with hook name as event", func() http.Header {
			h := eventHeader("push_hooks")
			h.Set(HeaderPing, "true")
			return h
		}(), push, forge.EventPing, ""},
		{"ping with Push Hook and no body", func() http.Header {
			h := eventHeader(EventPushHook)
			h.Set(HeaderPing, "true")
			return h
		}(), nil, forge.EventPing, ""},
		{"not a ping", func() http.Header {
			h := eventHeader(EventPushHook)
			h.Set(HeaderPing, "false")
			return h
		}(), push, forge.EventPush, ""},
		{"legacy event header", func() http.Header {
			h := eventHeader("")
			h.Del(HeaderEvent)
			h.Set("X-Git-Oschina-Event", EventPushHook)
			return h
		}(), push, forge.EventPush, ""},
		{"issue", eventHeader("Issue Hook"), []byte(`{}`), forge.EventOther, ""},
		{"note", eventHeader("Note Hook"), []byte(`not json`), forge.EventOther, ""},
		{"no event", func() http.Header { h := eventHeader(""); h.Del(HeaderEvent); return h }(), push, "", apperr.CodeInvalid},
		{"malformed JSON", eventHeader(EventPushHook), []byte(`{"ref":`), "", apperr.CodeInvalid},
		{"JSON array", eventHeader(EventPushHook), []byte(`[]`), "", apperr.CodeInvalid},
		{"no ref", eventHeader(EventPushHook), []byte(`{"repository":{"full_name":"a/b"}}`), "", apperr.CodeInvalid},
		{"ref outside heads and tags", eventHeader(EventPushHook), []byte(`{"ref":"refs/merge-requests/1/head","repository":{"full_name":"a/b"}}`), "", apperr.CodeInvalid},
		{"short branch name", eventHeader(EventPushHook), []byte(`{"ref":"main","repository":{"full_name":"a/b"}}`), "", apperr.CodeInvalid},
		{"empty branch name", eventHeader(EventPushHook), []byte(`{"ref":"refs/heads/","repository":{"full_name":"a/b"}}`), "", apperr.CodeInvalid},
		{"no repository", eventHeader(EventPushHook), []byte(`{"ref":"refs/heads/main"}`), "", apperr.CodeInvalid},
		{"full_name when no path_with_namespace", eventHeader(EventTagPushHook), []byte(`{"ref":"refs/tags/v1","repository":{"full_name":"a/b"},"commits":null,"total_commits_count":null}`), forge.EventPush, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := Verifier{}.Parse(tt.h, tt.body)
			if tt.wantCode != "" {
				if !apperr.Is(err, tt.wantCode) {
					t.Fatalf("Parse err = %v, want code %s", err, tt.wantCode)
				}
				return
			}
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Kind != tt.wantKind {
				t.Errorf("Kind = %q, want %q", d.Kind, tt.wantKind)
			}
			if (d.Kind == forge.EventPush) != (d.Push != nil) {
				t.Errorf("Push = %v for kind %q", d.Push, d.Kind)
			}
		})
	}
}

func TestParseHostileRefs(t *testing.T) {
	tests := []struct {
		name, ref, wantName string
	}{
		{"shell metacharacters", "refs/heads/main;$(id)", "main;$(id)"},
		{"dot-dot", "refs/heads/../../etc/passwd", "../../etc/passwd"},
		{"chinese", "refs/heads/功能/登录", "功能/登录"},
		{"invalid UTF-8 kept byte for byte, for gitref to refuse", "refs/tags/v\xff1", "v\xff1"},
		{"control characters", "refs/heads/a\u0000b\u001b[31m", "a\u0000b\u001b[31m"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := []byte(`{"ref":` + jsonString(tt.ref) + `,"repository":{"path_with_namespace":"a/b"}}`)
			d, err := Verifier{}.Parse(eventHeader(EventPushHook), body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Push.Name != tt.wantName {
				t.Errorf("Name = %q, want %q", d.Push.Name, tt.wantName)
			}
		})
	}
}

// jsonString quotes s as JSON would, but keeps invalid UTF-8 bytes raw, as a hostile
// sender could.
func jsonString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20:
			b.WriteString(`\u00`)
			b.WriteByte("0123456789abcdef"[c>>4])
			b.WriteByte("0123456789abcdef"[c&15])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func TestParseKey(t *testing.T) {
	body := testenv.Fixture(t, "gitee/push_hook.go-scm.json")
	const pw = "123asdas123"
	pwHeader := func(ts string) http.Header {
		h := eventHeader(EventPushHook)
		h.Set(HeaderTimestamp, ts)
		h.Set(HeaderToken, pw)
		return h
	}
	a, _ := Verifier{Mode: ModePassword}.Parse(pwHeader("1633686799688"), body)
	b, _ := Verifier{Mode: ModePassword}.Parse(pwHeader("1633686799688"), []byte(`{"ref":"refs/heads/other","repository":{"full_name":"x/y"}}`))
	c, _ := Verifier{Mode: ModePassword}.Parse(pwHeader("1633686799689"), body)
	if strings.Contains(a.Key, pw) {
		t.Errorf("password-mode Key %q holds the password", a.Key)
	}
	if a.Key == "" || a.Key != b.Key {
		t.Errorf("same timestamp and token, different bodies: keys %q and %q, want equal", a.Key, b.Key)
	}
	if a.Key == c.Key {
		t.Errorf("different timestamps share key %q", a.Key)
	}
	// A replayed signature with another body keeps the original's key.
	s1, _ := Verifier{}.Parse(eventHeader(EventPushHook), body)
	s2, _ := Verifier{}.Parse(eventHeader(EventPushHook), testenv.Fixture(t, "gitee/push_hook_branch_deleted.go-scm.json"))
	if s1.Key != s2.Key {
		t.Errorf("signature-mode keys differ for the same headers: %q, %q", s1.Key, s2.Key)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"push_hook.go-scm.json", "push_hook_branch_created.go-scm.json",
		"tag_push_hook_deleted.go-scm.json", "merge_request_hook_open.go-scm.json"} {
		f.Add(EventPushHook, "false", testenv.Fixture(f, "gitee/"+name))
	}
	f.Add(EventTagPushHook, "", []byte(`{"ref":"refs/tags/\xff","commits":null,"head_commit":null,"repository":{"full_name":"a/b"}}`))
	f.Add("push_hooks", "true", []byte(`{`))
	f.Add(EventPushHook, "", []byte(`{"ref":"refs/heads/x","repository":null,"project":{"full_name":"a/b"},"commits":[null,{"author":null}]}`))
	f.Fuzz(func(t *testing.T, event, ping string, body []byte) {
		h := http.Header{}
		h.Set(HeaderEvent, event)
		h.Set(HeaderPing, ping)
		h.Set(HeaderTimestamp, "1")
		h.Set(HeaderToken, "t")
		for _, v := range []Verifier{{}, {Mode: ModePassword}} {
			d, err := v.Parse(h, body)
			if err != nil {
				var ae *apperr.Error
				if !errors.As(err, &ae) || ae.Code != apperr.CodeInvalid {
					t.Fatalf("error %v is not an invalid apperr", err)
				}
				continue
			}
			if d.Kind == forge.EventPush {
				p := d.Push
				if p == nil || p.Repository == "" || p.Name == "" || !strings.HasSuffix(p.Ref, p.Name) ||
					(p.Kind != forge.Branch && p.Kind != forge.Tag) {
					t.Fatalf("inconsistent push %+v", p)
				}
			}
		}
	})
}
