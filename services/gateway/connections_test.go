package gateway

import (
	"net/http"
	"testing"

	"fabu.dev/libs/store"
)

func TestConnectionsCRUD(t *testing.T) {
	e := newForgeEnv(t, store.SQLite, ForgeConfig{})
	conn := map[string]any{"name": "corp-gitlab", "platform": "gitlab", "base_url": "https://gitlab.example.com/", "token": forgeToken}
	bad := func(over map[string]any) map[string]any {
		b := map[string]any{}
		for k, v := range conn {
			b[k] = v
		}
		for k, v := range over {
			b[k] = v
		}
		return b
	}
	for _, tt := range []struct {
		name string
		body map[string]any
		want int
	}{
		{"unknown platform", bad(map[string]any{"platform": "gitea"}), 400},
		{"no platform", bad(map[string]any{"platform": ""}), 400},
		{"ftp base URL", bad(map[string]any{"base_url": "ftp://gitlab.example.com"}), 400},
		{"credentials in base URL", bad(map[string]any{"base_url": "https://root:pw@gitlab.example.com"}), 400},
		{"query in base URL", bad(map[string]any{"base_url": "https://gitlab.example.com/?x=1"}), 400},
		{"relative base URL", bad(map[string]any{"base_url": "gitlab.example.com"}), 400},
		{"no token", bad(map[string]any{"token": ""}), 400},
		{"token with a line break", bad(map[string]any{"token": "a\nb"}), 400},
		{"bad name", bad(map[string]any{"name": "a b"}), 400},
		{"unknown field", bad(map[string]any{"password": "x"}), 400},
	} {
		t.Run(tt.name, func(t *testing.T) {
			var out map[string]any
			if got := e.do("POST", "/api/v1/connections", tt.body, &out); got != tt.want {
				t.Errorf("status = %d %v, want %d", got, out, tt.want)
			}
		})
	}

	var c ConnectionBody
	e.must(http.StatusCreated, "POST", "/api/v1/connections", conn, &c)
	if c.ID == "" || !c.HasToken || c.Token != "" || c.SyncState != SyncNever || c.BaseURL != "https://gitlab.example.com" {
		t.Errorf("created = %+v, want an id, has_token, no token, sync_state never, base URL without the slash", c)
	}
	if got := e.do("POST", "/api/v1/connections", conn, nil); got != http.StatusConflict {
		t.Errorf("duplicate name: status %d, want 409", got)
	}
	var sealed string
	if err := e.db.Raw(`SELECT token_sealed FROM forge_connections WHERE id = ?`, c.ID).Scan(&sealed).Error; err != nil {
		t.Fatal(err)
	}
	if plain, err := e.keys.Open(sealed, TokenPlace(c.ID)); err != nil || string(plain) != forgeToken {
		t.Errorf("sealed token opens to %q, %v; want the token", plain, err)
	}
	if _, err := e.keys.Open(sealed, TokenPlace("other")); err == nil {
		t.Error("the sealed token opens for another connection's place")
	}

	// An update without a token keeps the stored one; the platform cannot change.
	var up ConnectionBody
	e.must(http.StatusOK, "PUT", "/api/v1/connections/"+c.ID, map[string]any{"name": "corp", "platform": "gitlab", "base_url": "http://10.0.0.5:8929"}, &up)
	if up.Name != "corp" || !up.HasToken || up.BaseURL != "http://10.0.0.5:8929" {
		t.Errorf("updated = %+v", up)
	}
	if got := e.do("PUT", "/api/v1/connections/"+c.ID, map[string]any{"name": "corp", "platform": "github"}, nil); got != http.StatusBadRequest {
		t.Errorf("platform change: status %d, want 400", got)
	}
	// No base URL means the platform's public service.
	var gh ConnectionBody
	e.must(http.StatusCreated, "POST", "/api/v1/connections", map[string]any{"name": "gh", "platform": "github", "token": forgeToken}, &gh)
	if gh.BaseURL != "https://github.com" {
		t.Errorf("github base URL = %q, want https://github.com", gh.BaseURL)
	}
	var list []ConnectionBody
	e.must(http.StatusOK, "GET", "/api/v1/connections", nil, &list)
	if len(list) != 2 || list[0].Name != "corp" || list[1].Name != "gh" {
		t.Errorf("list = %+v", list)
	}
	var got ConnectionBody
	e.must(http.StatusOK, "GET", "/api/v1/connections/"+c.ID, nil, &got)
	if got.Name != "corp" || !got.HasToken {
		t.Errorf("get = %+v", got)
	}
	e.must(http.StatusNoContent, "DELETE", "/api/v1/connections/"+gh.ID, nil, nil)
	if got := e.do("GET", "/api/v1/connections/"+gh.ID, nil, nil); got != http.StatusNotFound {
		t.Errorf("deleted connection: status %d, want 404", got)
	}
	if got := e.do("DELETE", "/api/v1/connections/"+gh.ID, nil, nil); got != http.StatusNotFound {
		t.Errorf("delete again: status %d, want 404", got)
	}
}
