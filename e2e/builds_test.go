package e2e

import (
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// offlineNPM keeps npm away from any registry: the builds here need none, and a request
// would fail the test instead of hanging on the network.
var offlineNPM = map[string]string{"npm_config_offline": "true", "npm_config_registry": "http://127.0.0.1:9/"}

// applyProject authorizes fabu's deploy key on tg and declares it with project p (fields of
// the apply document), deploying to tg's path from repository r.
func applyProject(t *testing.T, a *api, tg *target, r *repo, server string, p map[string]any) {
	t.Helper()
	tg.sshd.Authorize(t, deployKey(t, a))
	p["git_url"], p["branch"], p["deploy_path"], p["servers"] = r.bare, "main", tg.path, []string{server}
	doc := map[string]any{
		"servers": []map[string]any{{"name": server, "host": "127.0.0.1", "port": tg.sshd.Port, "user": "root",
			"host_key": tg.sshd.HostKeyLine}},
		"projects": []map[string]any{p},
	}
	a.must(http.StatusOK, "POST", "/api/v1/apply", doc, nil)
}

// A frontend project is built by its recipe (npm install, npm run build) with no registry
// and its dist/ deployed; a java-jar project is built by the stages of its .fabu.yml (javac,
// jar) and its jar deployed into the release; a second run of the same commit reuses the
// jar without building.
func TestUpBuildsFrontendAndJavaJar(t *testing.T) {
	_, a := up(t)

	web := newRepo(t)
	web.commit(map[string]string{
		"package.json": `{"name":"site","version":"1.0.0","private":true,"scripts":{"build":"node build.js"}}`,
		"build.js": `const fs = require("fs");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", "<h1>built by " + process.env.FABU_COMMIT + "</h1>\n");
`,
	})
	webTarget := newTarget(t)
	applyProject(t, a, webTarget, web, "web-1", map[string]any{"name": "spa", "type": "frontend", "build_env": offlineNPM})
	run := startRun(t, a, projectIDOf(t, a, "spa"))
	if run.Status != "succeeded" {
		t.Fatalf("frontend run = %+v\nlog:\n%s", run, a.logText(run.ID))
	}
	if got, want := webTarget.current(t, "index.html"), "<h1>built by "+run.Commit+"</h1>\n"; got != want {
		t.Errorf("current/index.html = %q, want %q", got, want)
	}
	log := a.logText(run.ID)
	for _, want := range []string{"▶ stage install: npm install", "✔ stage install", "▶ stage build: npm run build", "✔ stage build", "packaged"} {
		if !strings.Contains(log, want) {
			t.Errorf("frontend log lacks %q:\n%s", want, log)
		}
	}

	java := newRepo(t)
	java.commit(map[string]string{
		".fabu.yml": `stages:
  - name: compile
    run: javac -d classes src/demo/Main.java
  - name: package
    run: [jar, --create, --file, app.jar, --main-class, demo.Main, -C, classes, .]
artifact:
  file: "*.jar"
`,
		"src/demo/Main.java": `package demo;

public class Main {
    public static void main(String[] args) {
        System.out.println("hello from fabu");
    }
}
`,
	})
	javaTarget := newTarget(t)
	applyProject(t, a, javaTarget, java, "app-1", map[string]any{"name": "api", "type": "java-jar"})
	id := projectIDOf(t, a, "api")
	run = startRun(t, a, id)
	if run.Status != "succeeded" {
		t.Fatalf("java run = %+v\nlog:\n%s", run, a.logText(run.ID))
	}
	jar := filepath.Join(javaTarget.path, "current", "app.jar")
	out, err := exec.Command("java", "-jar", jar).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello from fabu" {
		t.Errorf("java -jar current/app.jar = %q, %v", out, err)
	}
	if log := a.logText(run.ID); !strings.Contains(log, "▶ stage compile: javac -d classes src/demo/Main.java") || !strings.Contains(log, "✔ stage package") {
		t.Errorf("java log lacks the stage markers:\n%s", log)
	}

	again := startRun(t, a, id)
	if again.Status != "succeeded" || again.Commit != run.Commit {
		t.Fatalf("second java run = %+v\nlog:\n%s", again, a.logText(again.ID))
	}
	if log := a.logText(again.ID); !strings.Contains(log, "reusing the artifact built for "+run.Commit) || strings.Contains(log, "▶ stage") {
		t.Errorf("second run of the same commit should reuse the jar, not build:\n%s", log)
	}
	if rel := javaTarget.currentRelease(t); rel != again.ID {
		t.Errorf("current points at %s, want the second run's release %s", rel, again.ID)
	}
	if _, err := os.Stat(jar); err != nil {
		t.Errorf("current/app.jar after the reused deploy: %v", err)
	}
}

// The gateway refuses build settings it can tell are wrong, and docker projects, whose
// images fabu cannot deploy yet, and shows the settings it keeps.
func TestUpBuildSettings(t *testing.T) {
	_, a := up(t)
	r := newRepo(t)
	base := func(extra map[string]any) map[string]any {
		p := map[string]any{"name": "svc", "git_url": r.bare, "branch": "main", "deploy_path": "/srv/svc", "type": "nodejs"}
		for k, v := range extra {
			p[k] = v
		}
		return p
	}
	bad := []struct {
		name  string
		extra map[string]any
		want  string
	}{
		{"docker port with a shell", map[string]any{"type": "docker", "build_image": "registry.example.com/team/svc",
			"docker": map[string]any{"ports": []string{"8080:80;reboot"}}}, "port"},
		{"unknown type", map[string]any{"type": "cobol"}, `type "cobol" is not supported`},
		{"fabu variable", map[string]any{"build_env": map[string]string{"FABU_COMMIT": "x"}}, "set by fabu"},
		{"bad variable name", map[string]any{"build_env": map[string]string{"1X": "x"}}, `variable name "1X"`},
		{"home", map[string]any{"build_env": map[string]string{"HOME": "/root"}}, "variable HOME"},
		{"pipeline field", map[string]any{"pipeline": map[string]any{"steps": []any{}}}, `unknown field "steps"`},
		{"pipeline stage name", map[string]any{"pipeline": map[string]any{"stages": []any{map[string]any{"name": "a b", "run": "make"}}}}, `name "a b"`},
		{"pipeline run", map[string]any{"pipeline": map[string]any{"stages": []any{map[string]any{"name": "x", "run": 3}}}}, "string or a list of strings"},
		{"output dir", map[string]any{"type": "frontend", "build_output_dir": "../out"}, "build_output_dir"},
		{"pipeline image option", map[string]any{"pipeline": map[string]any{"stages": []any{map[string]any{"name": "x", "run": "make", "image": "--privileged"}}}}, "stages[0].image"},
	}
	for _, tt := range bad {
		status, body := a.do("POST", "/api/v1/projects", base(tt.extra))
		wantInvalid(t, tt.name, status, body)
		var e struct{ Message string }
		if err := json.Unmarshal(body, &e); err != nil || !strings.Contains(e.Message, tt.want) {
			t.Errorf("%s: answer %s, want a message mentioning %q", tt.name, body, tt.want)
		}
	}

	pipeline := map[string]any{"stages": []any{map[string]any{"name": "install"}, map[string]any{"name": "test", "run": []string{"npm", "test"}, "image": "node:20"}}}
	var got struct {
		ID       string            `json:"id"`
		Type     string            `json:"type"`
		Profile  string            `json:"build_profile"`
		Env      map[string]string `json:"build_env"`
		Pipeline json.RawMessage   `json:"pipeline"`
		Offline  bool              `json:"build_offline"`
	}
	a.must(http.StatusCreated, "POST", "/api/v1/projects", base(map[string]any{"build_env": map[string]string{"NODE_ENV": "production"},
		"build_profile": "prod", "pipeline": pipeline, "build_offline": true}), &got)
	a.must(http.StatusOK, "GET", "/api/v1/projects/"+got.ID, nil, &got)
	if got.Type != "nodejs" || got.Profile != "prod" || got.Env["NODE_ENV"] != "production" || !got.Offline ||
		string(got.Pipeline) != `{"stages":[{"name":"install"},{"image":"node:20","name":"test","run":["npm","test"]}]}` {
		t.Errorf("stored project = %+v pipeline %s", got, got.Pipeline)
	}
}
