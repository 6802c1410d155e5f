package gitlab

import (
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/forge"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/testenv"
)

func hdr(event string) http.Header {
	h := http.Header{}
	if event != "" {
		h.Set(HeaderEvent, event)
	}
	return h
}

type wantPush struct {
	repo, ref, name, before, after, head, pusher string
	kind                                         forge.RefKind
	created, deleted                             bool
	commits, total                               int
	clone                                        []string
}

func TestParseFixtures(t *testing.T) {
	const zero = "0000000000000000000000000000000000000000"
	helloClone := []string{"https://gitlab.com/gitlab-org/hello-world.git", "git@gitlab.com:gitlab-org/hello-world.git"}
	type fixtureCase struct {
		file  string
		event string
		push  *wantPush // nil: EventOther
	}
	tests := []fixtureCase{
		{"push_hook.go-gitlab.json", "Push Hook", &wantPush{
			repo: "mike/diaspora", ref: "refs/heads/master", kind: forge.Branch, name: "master",
			before: "95790bf891e76fee5e1747ab589903a6a1f80f22", after: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
			head: "da1560886d4f094c3e6c9ef40349f7d38b5d27d7", pusher: "jsmith", commits: 2, total: 4,
			clone: []string{"http://example.com/mike/diaspora.git", "git@example.com:mike/diaspora.git"}}},
		{"push_hook.go-scm.json", "Push Hook", &wantPush{
			repo: "gitlab-org/hello-world", ref: "refs/heads/master", kind: forge.Branch, name: "master",
			before: "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866", after: "2adc9465c4edfc33834e173fe89436a7cb899a1d",
			head: "2adc9465c4edfc33834e173fe89436a7cb899a1d", pusher: "sytses", commits: 1, total: 1, clone: helloClone}},
		{"push_hook_branch_created.go-scm.json", "Push Hook", &wantPush{
			repo: "gitlab-org/hello-world", ref: "refs/heads/feature", kind: forge.Branch, name: "feature",
			before: zero, after: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", created: true,
			head: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", pusher: "sytses", commits: 1, total: 1, clone: helloClone}},
		{"push_hook_branch_deleted.go-scm.json", "Push Hook", &wantPush{
			repo: "gitlab-org/hello-world", ref: "refs/heads/feature", kind: forge.Branch, name: "feature",
			before: "c4c79227ed610f1151f05bbc5be33b4f340d39c8", after: zero, deleted: true,
			pusher: "sytses", commits: 0, total: 0, clone: helloClone}},
		{"push_hook_subgroup.go-scm.json", "Push Hook", &wantPush{
			repo: "group1/group2/group3/grp2repo", ref: "refs/heads/master", kind: forge.Branch, name: "master",
			before: "9217710ce8c7e1eae7a5d1c45f6e43e1c769f866", after: "2adc9465c4edfc33834e173fe89436a7cb899a1d",
			head: "2adc9465c4edfc33834e173fe89436a7cb899a1d", pusher: "sytses", commits: 1, total: 1,
			clone: []string{"https://gitlab.com/group1/group2/group3/grp2repo.git", "git@gitlab.com:group1/group2/group3/grp2repo.git"}}},
		{"tag_push_hook.go-gitlab.json", "Tag Push Hook", &wantPush{
			repo: "jsmith/example", ref: "refs/tags/v1.0.0", kind: forge.Tag, name: "v1.0.0",
			before: zero, after: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", created: true,
			head: "82b3d5ae55f7080f1e6022629cdb57bfae7cccc7", pusher: "jsmith", commits: 1, total: 1,
			clone: []string{"http://example.com/jsmith/example.git", "git@example.com:jsmith/example.git"}}},
		{"tag_push_hook_created.go-scm.json", "Tag Push Hook", &wantPush{
			repo: "gitlab-org/hello-world", ref: "refs/tags/v1.0.0", kind: forge.Tag, name: "v1.0.0",
			before: zero, after: "2adc9465c4edfc33834e173fe89436a7cb899a1d", created: true,
			head: "2adc9465c4edfc33834e173fe89436a7cb899a1d", pusher: "sytses", commits: 1, total: 1, clone: helloClone}},
		{"tag_push_hook_deleted.go-scm.json", "Tag Push Hook", &wantPush{
			repo: "gitlab-org/hello-world", ref: "refs/tags/v1.0.0", kind: forge.Tag, name: "v1.0.0",
			before: "2adc9465c4edfc33834e173fe89436a7cb899a1d", after: zero, deleted: true,
			pusher: "sytses", commits: 0, total: 0, clone: helloClone}},
		{"merge_request_hook.go-gitlab.json", "Merge Request Hook", nil},
		{"merge_request_hook_open.go-scm.json", "Merge Request Hook", nil},
		{"merge_request_hook_merge.go-scm.json", "Merge Request Hook", nil},
		{"merge_request_hook_close.go-scm.json", "Merge Request Hook", nil},
		{"pipeline_hook.go-gitlab.json", "Pipeline Hook", nil},
		{"pipeline_hook.go-scm.json", "Pipeline Hook", nil},
		{"job_hook.go-gitlab.json", "Job Hook", nil},
		{"release_hook.go-gitlab.json", "Release Hook", nil},
		{"deployment_hook.go-gitlab.json", "Deployment Hook", nil},
	}
	// Every JSON sample in the directory must be in the table, so a new one is not skipped.
	files, err := filepath.Glob(filepath.Join(testenv.FixturesDir(t), "gitlab", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no fixtures under %s (set FABU_FIXTURES): %v", testenv.FixturesDir(t), err)
	}
	for _, f := range files {
		if !slices.ContainsFunc(tests, func(tc fixtureCase) bool { return tc.file == filepath.Base(f) }) {
			t.Errorf("fixture %s is not in the table", filepath.Base(f))
		}
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			body := testenv.Fixture(t, "gitlab/"+tc.file)
			h := hdr(tc.event)
			h.Set(HeaderIdempotencyKey, "key-"+tc.file)
			d, err := Verifier{}.Parse(h, body)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Platform != forge.GitLab || d.Event != tc.event || d.Key != "key-"+tc.file {
				t.Errorf("delivery = %+v, want platform gitlab, event %q, key from Idempotency-Key", d, tc.event)
			}
			if tc.push == nil {
				if d.Kind != forge.EventOther || d.Push != nil {
					t.Errorf("Kind = %q, Push = %+v, want other and no push", d.Kind, d.Push)
				}
				return
			}
			if d.Kind != forge.EventPush || d.Push == nil {
				t.Fatalf("Kind = %q, want push", d.Kind)
			}
			checkPush(t, d.Push, tc.push)
		})
	}
}

func checkPush(t *testing.T, p *forge.Push, w *wantPush) {
	t.Helper()
	if p.Platform != forge.GitLab || p.Repository != w.repo || p.Ref != w.ref || p.Kind != w.kind || p.Name != w.name {
		t.Errorf("push = %s %s %s %s %s, want gitlab %s %s %s %s", p.Platform, p.Repository, p.Ref, p.Kind, p.Name, w.repo, w.ref, w.kind, w.name)
	}
	if p.Before != w.before || p.After != w.after || p.Created != w.created || p.Deleted != w.deleted {
		t.Errorf("before/after/created/deleted = %s %s %v %v, want %s %s %v %v", p.Before, p.After, p.Created, p.Deleted, w.before, w.after, w.created, w.deleted)
	}
	if len(p.Commits) != w.commits || p.TotalCommits != w.total {
		t.Errorf("commits = %d, total = %d, want %d, %d", len(p.Commits), p.TotalCommits, w.commits, w.total)
	}
	if p.Pusher != w.pusher {
		t.Errorf("Pusher = %q, want %q", p.Pusher, w.pusher)
	}
	if !slices.Equal(p.CloneURLs, w.clone) {
		t.Errorf("CloneURLs = %q, want %q", p.CloneURLs, w.clone)
	}
	switch {
	case w.head == "" && p.HeadCommit != nil:
		t.Errorf("HeadCommit = %+v, want none", p.HeadCommit)
	case w.head != "" && (p.HeadCommit == nil || p.HeadCommit.SHA != w.head):
		t.Errorf("HeadCommit = %+v, want %s", p.HeadCommit, w.head)
	}
	for _, c := range p.Commits {
		if c.SHA == "" || c.Author == "" || c.URL == "" || c.Time.IsZero() || c.Message == "" {
			t.Errorf("commit %+v has an empty field", c)
		}
	}
}

func TestParseCommitFields(t *testing.T) {
	d, err := Verifier{}.Parse(hdr(EventPushHook), testenv.Fixture(t, "gitlab/push_hook.go-gitlab.json"))
	if err != nil {
		t.Fatal(err)
	}
	want := forge.Commit{
		SHA:     "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
		Message: "fixed readme\n",
		Author:  "GitLab dev user",
		Time:    time.Date(2012, 1, 3, 21, 36, 29, 0, time.UTC),
		URL:     "http://example.com/mike/diaspora/commit/da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
	}
	got := *d.Push.HeadCommit
	if got.SHA != want.SHA || got.Message != want.Message || got.Author != want.Author || !got.Time.Equal(want.Time) || got.URL != want.URL {
		t.Errorf("HeadCommit = %+v, want %+v", got, want)
	}
	if d.Push.Commits[1] != got {
		t.Errorf("HeadCommit %+v is not the commit with id == after (%+v)", got, d.Push.Commits[1])
	}
}

// GitLab sends at most the newest 20 commits; total_commits_count says how many there were.
func TestParseCommitLimit(t *testing.T) {
	var m map[string]any
	if err := json.Unmarshal(testenv.Fixture(t, "gitlab/push_hook.go-gitlab.json"), &m); err != nil {
		t.Fatal(err)
	}
	sample := m["commits"].([]any)[0].(map[string]any)
	var commits []any
	for i := range 20 {
		c := map[string]any{}
		for k, v := range sample {
			c[k] = v
		}
		c["id"] = strings.Repeat(string(rune('a'+i%6)), 39) + string(rune('0'+i%10))
		commits = append(commits, c)
	}
	m["commits"], m["total_commits_count"], m["after"] = commits, 57, commits[19].(map[string]any)["id"]
	body, _ := json.Marshal(m)
	d, err := Verifier{}.Parse(hdr(EventPushHook), body)
	if err != nil {
		t.Fatal(err)
	}
	if len(d.Push.Commits) != 20 || d.Push.TotalCommits != 57 {
		t.Errorf("commits = %d, total = %d, want 20 and 57", len(d.Push.Commits), d.Push.TotalCommits)
	}
	if d.Push.HeadCommit == nil || d.Push.HeadCommit.SHA != m["after"] {
		t.Errorf("HeadCommit = %+v, want %v", d.Push.HeadCommit, m["after"])
	}
}

func TestParseKey(t *testing.T) {
	base := testenv.FixtureHeaders(t, "gitlab/push_hook.docs-hook-events-api.headers.txt")
	body := testenv.Fixture(t, "gitlab/push_hook.go-gitlab.json")
	tests := []struct {
		name string
		drop []string
		want string
	}{
		{"idempotency key", nil, "a5461c4d-9c7f-4af9-add6-cddebe3c426f"},
		{"before 17.4: event uuid", []string{HeaderIdempotencyKey}, "event-uuid:9cebe914-4827-408f-b014-cfa23a47a35f"},
		{"neither: no key", []string{HeaderIdempotencyKey, HeaderEventUUID}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := base.Clone()
			for _, k := range tc.drop {
				h.Del(k)
			}
			d, err := Verifier{}.Parse(h, body)
			if err != nil {
				t.Fatal(err)
			}
			if d.Key != tc.want {
				t.Errorf("Key = %q, want %q", d.Key, tc.want)
			}
			// The per-attempt webhook UUID never becomes the key.
			if strings.Contains(d.Key, base.Get("X-Gitlab-Webhook-UUID")) {
				t.Errorf("Key %q uses X-Gitlab-Webhook-UUID", d.Key)
			}
		})
	}
}

func TestParseRejects(t *testing.T) {
	push := string(testenv.Fixture(t, "gitlab/push_hook.go-gitlab.json"))
	tag := string(testenv.Fixture(t, "gitlab/tag_push_hook.go-gitlab.json"))
	tests := []struct {
		name, event, body string
	}{
		{"not json", EventPushHook, "{not json"},
		{"empty body", EventPushHook, ""},
		{"json array", EventPushHook, "[]"},
		{"trailing data", EventPushHook, push + "{}"},
		{"wrong object kind", EventTagPushHook, push},
		{"tag payload as push", EventPushHook, tag},
		{"merge request ref", EventPushHook, strings.Replace(push, `"refs/heads/master"`, `"refs/merge-requests/1/head"`, 1)},
		{"tag ref in push hook", EventPushHook, strings.Replace(push, `"refs/heads/master"`, `"refs/tags/v1"`, 1)},
		{"bare name", EventPushHook, strings.Replace(push, `"refs/heads/master"`, `"master"`, 1)},
		{"empty name", EventPushHook, strings.Replace(push, `"refs/heads/master"`, `"refs/heads/"`, 1)},
		{"no project path", EventPushHook, strings.Replace(push, `"path_with_namespace": "mike/diaspora"`, `"path_with_namespace": ""`, 1)},
		{"ref not a string", EventPushHook, strings.Replace(push, `"refs/heads/master"`, `42`, 1)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Verifier{}.Parse(hdr(tc.event), []byte(tc.body))
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Errorf("Parse error = %v, want an invalid error", err)
			}
		})
	}
}

func TestParseOtherEvents(t *testing.T) {
	for _, event := range []string{"", "System Hook", "Note Hook", "push"} {
		d, err := Verifier{}.Parse(hdr(event), []byte("not even json"))
		if err != nil || d.Kind != forge.EventOther || d.Event != event {
			t.Errorf("Parse(%q) = %+v, %v; want EventOther and no error", event, d, err)
		}
	}
}

// Refs with bytes git or gitref would refuse come back as they were sent, for the caller
// to validate; nothing panics and invalid UTF-8 is not papered over with U+FFFD.
func TestParseHostileRefs(t *testing.T) {
	push := string(testenv.Fixture(t, "gitlab/push_hook.go-gitlab.json"))
	tests := []struct {
		name, jsonRef, wantRef string
	}{
		{"invalid utf-8", "\"refs/heads/ma\xffster\"", "refs/heads/ma\xffster"},
		{"escaped control", `"refs/heads/a\u0001b"`, "refs/heads/a\x01b"},
		{"escaped nul", `"refs/heads/a\u0000"`, "refs/heads/a\x00"},
		{"newline", `"refs/heads/a\nb"`, "refs/heads/a\nb"},
		{"shell", `"refs/heads/$(id)"`, "refs/heads/$(id)"},
		{"unicode", `"refs/heads/功能"`, "refs/heads/功能"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			body := strings.Replace(push, `"refs/heads/master"`, tc.jsonRef, 1)
			d, err := Verifier{}.Parse(hdr(EventPushHook), []byte(body))
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if d.Push.Ref != tc.wantRef || d.Push.Name != strings.TrimPrefix(tc.wantRef, "refs/heads/") {
				t.Errorf("Ref, Name = %q, %q; want %q", d.Push.Ref, d.Push.Name, tc.wantRef)
			}
			if tc.name != "unicode" && gitref.Valid(d.Push.Name) == nil {
				t.Errorf("gitref.Valid(%q) accepted a hostile name", d.Push.Name)
			}
		})
	}
}

func TestVerify(t *testing.T) {
	const secret = "s3cret-token"
	tests := []struct {
		name   string
		tokens []string
		secret string
		ok     bool
	}{
		{"right", []string{secret}, secret, true},
		{"wrong", []string{"other-token!"}, secret, false},
		{"missing header", nil, secret, false},
		{"empty header", []string{""}, secret, false},
		{"empty secret", []string{""}, "", false},
		{"empty secret, any header", []string{"x"}, "", false},
		{"prefix", []string{secret[:len(secret)-1]}, secret, false},
		{"longer", []string{secret + "x"}, secret, false},
		{"case", []string{strings.ToUpper(secret)}, secret, false},
		{"surrounding space", []string{" " + secret}, secret, false},
		{"two headers", []string{secret, secret}, secret, false},
		{"redacted sample", []string{"[REDACTED]"}, secret, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			h := hdr(EventPushHook)
			for _, v := range tc.tokens {
				h.Add(HeaderToken, v)
			}
			err := Verifier{}.Verify(h, []byte("{}"), tc.secret, time.Now())
			if tc.ok && err != nil {
				t.Errorf("Verify = %v, want nil", err)
			}
			if !tc.ok && !errors.Is(err, forge.ErrSignature) {
				t.Errorf("Verify = %v, want ErrSignature", err)
			}
		})
	}
}

// The go-scm header sample carries the token "topsecret" as GitLab sent it.
func TestVerifyHeaderSample(t *testing.T) {
	h := testenv.FixtureHeaders(t, "gitlab/push_hook.go-scm.headers.txt")
	body := testenv.Fixture(t, "gitlab/push_hook.go-scm.json")
	if err := (Verifier{}).Verify(h, body, "topsecret", time.Now()); err != nil {
		t.Errorf("Verify(topsecret) = %v, want nil", err)
	}
	if err := (Verifier{}).Verify(h, body, "topsecreT", time.Now()); !errors.Is(err, forge.ErrSignature) {
		t.Errorf("Verify(wrong) = %v, want ErrSignature", err)
	}
	d, err := Verifier{}.Parse(h, body)
	if err != nil || d.Kind != forge.EventPush || d.Push.Repository != "gitlab-org/hello-world" {
		t.Errorf("Parse = %+v, %v", d, err)
	}
}

func FuzzParse(f *testing.F) {
	dir := filepath.Join(testenv.FixturesDir(f), "gitlab")
	files, _ := filepath.Glob(filepath.Join(dir, "*.json"))
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(EventPushHook, b)
		f.Add(EventTagPushHook, b)
	}
	f.Add(EventPushHook, []byte(`{"object_kind":"push","ref":"refs/heads/\xff","project":{"path_with_namespace":"a/b"}}`))
	f.Add(EventPushHook, []byte(`{"object_kind":"push","ref":null,"commits":null}`))
	f.Fuzz(func(t *testing.T, event string, body []byte) {
		d, err := Verifier{}.Parse(hdr(event), body)
		if err != nil {
			if !apperr.Is(err, apperr.CodeInvalid) {
				t.Fatalf("Parse error %v is not invalid", err)
			}
			return
		}
		if d.Kind == forge.EventPush {
			p := d.Push
			if p == nil || p.Repository == "" || !strings.HasPrefix(p.Ref, "refs/") || p.Name == "" || !strings.HasSuffix(p.Ref, "/"+p.Name) {
				t.Fatalf("inconsistent push %+v", p)
			}
			if p.HeadCommit != nil && p.HeadCommit.SHA != p.After {
				t.Fatalf("HeadCommit %s is not after %s", p.HeadCommit.SHA, p.After)
			}
		}
	})
}

func FuzzVerify(f *testing.F) {
	f.Add("topsecret", "topsecret")
	f.Add("topsecret", "topsecre")
	f.Add("", "")
	f.Add("a\nb", "ab")
	f.Add("\xff", "\xff")
	f.Fuzz(func(t *testing.T, secret, token string) {
		h := http.Header{}
		h.Set(HeaderToken, token)
		err := Verifier{}.Verify(h, nil, secret, time.Time{})
		if err == nil && (token != secret || secret == "") {
			t.Fatalf("Verify accepted token %q for secret %q", token, secret)
		}
		if err != nil && !errors.Is(err, forge.ErrSignature) {
			t.Fatalf("Verify error %v is not ErrSignature", err)
		}
		if secret != "" && token == secret && err != nil {
			t.Fatalf("Verify refused the right token %q: %v", token, err)
		}
	})
}
