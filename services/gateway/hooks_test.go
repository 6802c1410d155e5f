package gateway

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"testing"
	"time"

	"fabu.dev/libs/forge"
	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/forge/gitlab"
	"fabu.dev/libs/store/storetest"
)

// signedDelivery is a delivery the platform would send with the hook's secret, and the
// verifier the webhook service checks it with.
func signedDelivery(p forge.Platform, secret string, body []byte, now time.Time) (http.Header, forge.Verifier) {
	h := http.Header{}
	switch p {
	case forge.GitLab:
		h.Set(gitlab.HeaderToken, secret)
		return h, gitlab.Verifier{}
	case forge.GitHub:
		m := hmac.New(sha256.New, []byte(secret))
		m.Write(body)
		h.Set(github.HeaderSignature, "sha256="+hex.EncodeToString(m.Sum(nil)))
		return h, github.Verifier{}
	default:
		ts := strconv.FormatInt(now.UnixMilli(), 10)
		h.Set(gitee.HeaderTimestamp, ts)
		h.Set(gitee.HeaderToken, gitee.Sign(secret, ts))
		return h, gitee.Verifier{}
	}
}

func TestHookInstallStateAndDelete(t *testing.T) {
	for _, driver := range storetest.Drivers {
		for _, platform := range []forge.Platform{forge.GitLab, forge.GitHub, forge.Gitee} {
			t.Run(driver+"/"+string(platform), func(t *testing.T) {
				testHook(t, driver, platform)
			})
		}
	}
}

func testHook(t *testing.T, driver string, platform forge.Platform) {
	e := newForgeEnv(t, driver, ForgeConfig{PublicURL: "https://fabu.example.com/"})
	f := newFakeForge(t, platform, 1)
	p, _ := e.linkedProject(f, "shop")
	repo := platformAPI[platform].ns + "/repo-01"
	// Someone else's hook is already on the repository.
	f.mu.Lock()
	other := f.newHook("https://ci.example.com/hook")
	f.mu.Unlock()
	otherID := strconv.Itoa(other["id"].(int))

	var st HookState
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if st.Installed || st.LastDelivery != nil || st.Rejected24h != 0 {
		t.Errorf("state before install = %+v", st)
	}
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	wantURL := "https://fabu.example.com/hooks/" + string(platform) + "/shop"
	f.mu.Lock()
	created := slices.Clone(f.created)
	f.mu.Unlock()
	if len(created) != 1 || created[0].URL != wantURL {
		t.Fatalf("hooks created on the platform = %+v, want one posting to %s", created, wantURL)
	}
	if !st.Installed || st.HookID == "" || st.HookID == otherID || st.URL != wantURL || !st.HasSecret {
		t.Errorf("state after install = %+v", st)
	}
	received := created[0].Secret
	if len(received) != 43 {
		t.Errorf("secret the platform received has %d characters, want 43 (32 bytes, base64url)", len(received))
	}
	var row struct {
		HookID              string
		WebhookSecretSealed string
		Platform            string
	}
	if err := e.db.Raw(`SELECT hook_id, webhook_secret_sealed, platform FROM projects WHERE id = ?`, p.ID).Scan(&row).Error; err != nil {
		t.Fatal(err)
	}
	plain, err := e.keys.Open(row.WebhookSecretSealed, SecretPlace(p.ID))
	if err != nil || string(plain) != received {
		t.Fatalf("sealed secret opens to %q, %v; want what the platform received", plain, err)
	}
	if row.HookID != st.HookID || row.Platform != string(platform) {
		t.Errorf("stored hook %q platform %q, want %q %q", row.HookID, row.Platform, st.HookID, platform)
	}
	// A delivery the platform signs with what it received passes the webhook service's check.
	body := []byte(`{"ref":"refs/heads/main"}`)
	now := time.Now()
	h, v := signedDelivery(platform, received, body, now)
	if err := v.Verify(h, body, string(plain), now); err != nil {
		t.Errorf("a delivery signed with the installed secret does not verify: %v", err)
	}

	// The state shows the latest delivery and counts rejections of the last 24 hours.
	for i, d := range []struct {
		verdict, reason string
		ago             time.Duration
	}{
		{"rejected", "signature", 48 * time.Hour},
		{"rejected", "signature", time.Hour},
		{"rejected", "signature", 30 * time.Minute},
		{"triggered", "push to main", time.Minute},
	} {
		if err := e.db.Exec(`INSERT INTO webhook_deliveries (id, platform, event, project_id, verdict, reason, received_at) VALUES (?, ?, 'push', ?, ?, ?, ?)`,
			"d"+strconv.Itoa(i), string(platform), p.ID, d.verdict, d.reason, time.Now().UTC().Add(-d.ago)).Error; err != nil {
			t.Fatal(err)
		}
	}
	// The webhook service counts refusals per hour and keeps only a sample as rows.
	hour := time.Now().UTC().Truncate(time.Hour)
	for _, c := range []struct {
		ago time.Duration
		n   int
	}{{48 * time.Hour, 5}, {time.Hour, 7}, {0, 3}} {
		if err := e.db.Exec(`INSERT INTO webhook_rejections (project_id, platform, reason, period_start, rejected, sampled, last_at) VALUES (?, ?, 'signature', ?, ?, 1, ?)`,
			p.ID, string(platform), hour.Add(-c.ago), c.n, hour.Add(-c.ago)).Error; err != nil {
			t.Fatal(err)
		}
	}
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if st.LastDelivery == nil || st.LastDelivery.Verdict != "triggered" || st.LastDelivery.Reason != "push to main" || st.Rejected24h != 10 {
		t.Errorf("state with deliveries = %+v last %+v, want last triggered and 10 rejected", st, st.LastDelivery)
	}
	if time.Since(st.LastDelivery.ReceivedAt) > 2*time.Minute {
		t.Errorf("last delivery received at %v, want about a minute ago", st.LastDelivery.ReceivedAt)
	}

	// The platform's own view of fabu's hook: how it saw the latest delivery.
	f.mu.Lock()
	for _, h := range f.hooks {
		if fmt.Sprint(h["id"]) != st.HookID {
			continue
		}
		switch platform {
		case forge.GitLab:
			h["alert_status"], h["disabled_until"] = "temporarily_disabled", "2026-12-06T11:00:00Z"
		case forge.GitHub:
			h["last_response"] = map[string]any{"code": 502, "status": "active", "message": "Bad Gateway"}
		case forge.Gitee:
			h["result_code"], h["result"] = 502, "Bad Gateway"
		}
	}
	f.mu.Unlock()
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	want := map[forge.Platform]PlatformHook{
		forge.GitLab: {Found: true, Active: false, LastResult: "temporarily disabled"},
		forge.GitHub: {Found: true, Active: true, LastStatus: 502, LastResult: "active: Bad Gateway"},
		forge.Gitee:  {Found: true, Active: true, LastStatus: 502, LastResult: "Bad Gateway"},
	}[platform]
	if got := st.Platform; got == nil || got.Found != want.Found || got.Active != want.Active || got.LastStatus != want.LastStatus ||
		got.LastResult != want.LastResult || st.PlatformError != "" {
		t.Errorf("platform's view = %+v (error %q), want %+v", got, st.PlatformError, want)
	} else if platform == forge.GitLab && (got.DisabledUntil == nil || got.DisabledUntil.UTC().Hour() != 11) {
		t.Errorf("disabled until %v, want 11:00", got.DisabledUntil)
	}

	// Installing again replaces fabu's hook and its secret, and only that hook.
	first := st.HookID
	var again HookState
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+p.ID+"/hook", nil, &again)
	if again.HookID == first || !slices.Equal(f.hookIDs(), []string{otherID, again.HookID}) {
		t.Errorf("after reinstall: hook %s (was %s), platform has %v, want [%s %s]", again.HookID, first, f.hookIDs(), otherID, again.HookID)
	}

	// Removing deletes fabu's hook only; the other one stays.
	e.must(http.StatusNoContent, "DELETE", "/api/v1/projects/"+p.ID+"/hook", nil, nil)
	if !slices.Equal(f.hookIDs(), []string{otherID}) {
		t.Errorf("hooks left on the platform = %v, want only %s", f.hookIDs(), otherID)
	}
	f.mu.Lock()
	deleted, repos := slices.Clone(f.deleted), slices.Clone(f.hookRepo)
	f.mu.Unlock()
	if !slices.Equal(deleted, []string{first, again.HookID}) {
		t.Errorf("hooks deleted = %v, want [%s %s]", deleted, first, again.HookID)
	}
	for _, r := range repos {
		if r != repo && r != "team%2Frepo-01" {
			t.Errorf("a hook call went to repository %q, want %q", r, repo)
		}
	}
	var after HookState
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &after)
	if after.Installed || after.HookID != "" || after.Rejected24h != 10 {
		t.Errorf("state after delete = %+v", after)
	}
	if got := e.do("DELETE", "/api/v1/projects/"+p.ID+"/hook", nil, nil); got != http.StatusNotFound {
		t.Errorf("delete without a hook: status %d, want 404", got)
	}
	// Only the project's source may be cleared once fabu's hook is gone.
	e.must(http.StatusNoContent, "DELETE", "/api/v1/projects/"+p.ID+"/source", nil, nil)
}

func TestHookURLDefaultsToTheRequestsHost(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{})
	f := newFakeForge(t, forge.GitHub, 1)
	p, _ := e.linkedProject(f, "shop")
	var st HookState
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if want := e.srv.URL + "/hooks/github/shop"; st.URL != want || f.created[0].URL != want {
		t.Errorf("hook URL = %q (platform got %q), want %q", st.URL, f.created[0].URL, want)
	}
	// A project with fabu's hook keeps its source until the hook is removed.
	if got := e.do("DELETE", "/api/v1/projects/"+p.ID+"/source", nil, nil); got != http.StatusConflict {
		t.Errorf("clear source with a hook: status %d, want 409", got)
	}
}

// TestDeletingAProjectRemovesItsHook: the platform stops posting to a project that is gone;
// when it cannot be reached, the project stays unless keep_hook=true.
func TestDeletingAProjectRemovesItsHook(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{PublicURL: "https://fabu.example.com"})
	f := newFakeForge(t, forge.GitLab, 1)
	p, _ := e.linkedProject(f, "shop")
	f.mu.Lock()
	other := f.newHook("https://ci.example.com/hook")
	f.mu.Unlock()
	otherID := strconv.Itoa(other["id"].(int))
	var st HookState
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	e.must(http.StatusNoContent, "DELETE", "/api/v1/projects/"+p.ID, nil, nil)
	if !slices.Equal(f.hookIDs(), []string{otherID}) {
		t.Errorf("hooks left on the platform = %v, want only the other one %s", f.hookIDs(), otherID)
	}

	q, _ := e.linkedProject(f, "shop2")
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+q.ID+"/hook", nil, &st)
	f.srv.Close() // the platform is down
	if got := e.do("DELETE", "/api/v1/projects/"+q.ID, nil, nil); got != http.StatusServiceUnavailable {
		t.Errorf("delete while the platform is down = %d, want 503", got)
	}
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+q.ID, nil, nil)
	e.must(http.StatusNoContent, "DELETE", "/api/v1/projects/"+q.ID+"?keep_hook=true", nil, nil)
}

// The hook state says when fabu's hook was removed on the platform behind fabu's back, and
// still answers, with the reason, when the platform cannot be asked.
func TestHookStateWhenGoneOrUnreachable(t *testing.T) {
	e := newForgeEnv(t, storetest.Drivers[0], ForgeConfig{PublicURL: "https://fabu.example.com/"})
	f := newFakeForge(t, forge.GitHub, 1)
	p, _ := e.linkedProject(f, "shop")
	var st HookState
	e.must(http.StatusOK, "POST", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if st.Platform != nil {
		t.Errorf("install answered with a platform lookup %+v; it just made the hook", st.Platform)
	}
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if st.Platform == nil || !st.Platform.Found || !st.Platform.Active {
		t.Fatalf("platform's view after install = %+v %q", st.Platform, st.PlatformError)
	}
	f.mu.Lock()
	f.hooks = nil // someone deleted it in GitHub's settings
	f.mu.Unlock()
	st = HookState{}
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if !st.Installed || st.Platform == nil || st.Platform.Found {
		t.Errorf("hook removed on the platform: installed %v, platform %+v; want installed in fabu, not found there", st.Installed, st.Platform)
	}
	f.srv.Close()
	st = HookState{}
	e.must(http.StatusOK, "GET", "/api/v1/projects/"+p.ID+"/hook", nil, &st)
	if st.Platform != nil || st.PlatformError == "" || !st.Installed {
		t.Errorf("platform down: %+v, want the state with a platform_error", st)
	}
}
