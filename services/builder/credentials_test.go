package builder

import (
	"crypto/subtle"
	"net/http"
	"net/http/cgi"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"fabu.dev/libs/secret"
)

// TestFetchWithSealedCredentials: a project's repository credentials live sealed apart
// from its URL (projects.git_credentials_sealed); the builder opens them and fetches from a
// repository behind HTTP basic auth, and neither the run log nor the builder's own log
// shows them.
func TestFetchWithSealedCredentials(t *testing.T) {
	const password = "s3cret-fetch-t0ken"
	e := newEnv(t, backends[0])
	keys := testKeyring(t)
	e.repo.commit("main", map[string]string{"site/index.html": "v1"})
	execPath := gitTest(t, e.dir, "--exec-path")
	backend := &cgi.Handler{Path: filepath.Join(execPath, "git-http-backend"), Root: "/",
		Env: []string{"GIT_PROJECT_ROOT=" + filepath.Dir(e.repo.bare), "GIT_HTTP_EXPORT_ALL=1", "GIT_CONFIG_NOSYSTEM=1", "HOME=" + t.TempDir()}}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		u, p, ok := r.BasicAuth()
		if !ok || u != "deploy" || subtle.ConstantTimeCompare([]byte(p), []byte(password)) != 1 {
			w.Header().Set("WWW-Authenticate", `Basic realm="git"`)
			http.Error(w, "authentication required", http.StatusUnauthorized)
			return
		}
		backend.ServeHTTP(w, r)
	}))
	defer srv.Close()

	e.project("p1", "site", "s1")
	sealed, err := keys.Seal([]byte("deploy:"+password), secret.GitCredentialsPlace("p1"))
	if err != nil {
		t.Fatal(err)
	}
	e.exec(`UPDATE projects SET git_url = ?, git_credentials_sealed = ? WHERE id = 'p1'`, srv.URL+"/"+filepath.Base(e.repo.bare), sealed)
	cfg := e.config("")
	cfg.Secrets = keys
	_, slogOut := e.startLogged(cfg, e.co)

	id, r := e.buildAndDeploy("p1", "main")
	for where, text := range map[string]string{"run log": e.logOf(id), "builder log": slogOut.String(), "run error": r.Error} {
		if strings.Contains(text, password) {
			t.Errorf("%s shows the repository password:\n%s", where, text)
		}
	}
}
