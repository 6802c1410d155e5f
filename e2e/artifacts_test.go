package e2e

import (
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// Builder and deployer on "different machines": each has its own data directory, so the
// deployer cannot take the artifact from the builder's disk. A push still deploys: the
// deployer downloads the artifact from the builder through the signed URL in RunBuilt and
// checks its sha256 before uploading; the builder serves nothing to unsigned requests.
func TestSixProcessesDeployWithoutSharedArtifacts(t *testing.T) {
	deployerData := t.TempDir()
	_, a, addrs := sixWith(t, sixOptions{deployerDataDir: deployerData})
	r := newRepo(t)
	tg := newTarget(t)
	first := r.commit(site("1", 256<<10))
	configure(t, a, tg, r, "shop")

	id := pushHook(t, a, "shop", gitlabPush(t, r, strings.Repeat("0", 40), first))
	got := a.awaitRun(id, defaultWait)
	if got.Status != "succeeded" || got.Commit != first {
		t.Fatalf("run = %+v, want succeeded at %s\nlog:\n%s", got, first, a.logText(id))
	}
	if html := tg.current(t, "index.html"); html != "<h1>release 1</h1>\n" {
		t.Errorf("current/index.html = %q", html)
	}
	if rel := tg.currentRelease(t); rel != id {
		t.Errorf("current points at %q, want release %s", rel, id)
	}
	log := a.logText(id)
	for _, want := range []string{"packaged", "fetching it from the builder at http://", "sha256", "verified", "switched current"} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %q:\n%s", want, log)
		}
	}
	if strings.Contains(log, "sig=") {
		t.Errorf("the log shows the artifact URL's signature:\n%s", log)
	}
	if ents, _ := os.ReadDir(filepath.Join(deployerData, "artifacts")); len(ents) != 0 {
		t.Errorf("the deployer's data dir holds artifacts: %v", ents)
	}

	// The builder's artifact endpoint exists and refuses whoever has no signed URL.
	base := "http://" + addrs["builder"] + "/internal/artifacts/" + id + ".tar.gz"
	for _, u := range []string{base, base + "?expires=9999999999&sig=" + strings.Repeat("ab", 32)} {
		resp, err := http.Get(u)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("GET %s = %d, want 403", u, resp.StatusCode)
		}
	}

	second := r.commit(map[string]string{"site/index.html": "<h1>release 2</h1>\n"})
	id2 := pushHook(t, a, "shop", gitlabPush(t, r, first, second))
	if got := a.awaitRun(id2, defaultWait); got.Status != "succeeded" || got.Commit != second {
		t.Fatalf("second run = %+v\nlog:\n%s", got, a.logText(id2))
	}
	if html := tg.current(t, "index.html"); html != "<h1>release 2</h1>\n" {
		t.Errorf("after the second push current/index.html = %q", html)
	}
}
