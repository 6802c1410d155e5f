package pipeline

import (
	"archive/zip"
	"bufio"
	"bytes"
	"context"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fabu.dev/services/builder/execx"
)

// build loads the plan for root and runs its stages through execx, as the builder will.
func build(t *testing.T, root string, ps ProjectSettings) (Plan, string) {
	t.Helper()
	p, err := Load(root, ps)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	home := filepath.Join(t.TempDir(), "home")
	for _, st := range p.Stages {
		var log bytes.Buffer
		_, err := execx.Run(context.Background(), execx.Spec{Name: st.Name, Argv: st.Command, Root: root, Dir: st.Dir,
			Home: home, Path: os.Getenv("PATH"), Env: p.StageEnv(st), Timeout: st.Timeout, Stdout: &log, Stderr: &log})
		if err != nil {
			t.Fatalf("%v\n%s", err, log.String())
		}
	}
	art, err := p.Artifact.Resolve(root)
	if err != nil {
		t.Fatalf("Resolve artifact: %v", err)
	}
	return p, art
}

const javaServer = `package demo;

import com.sun.net.httpserver.HttpServer;
import java.net.InetSocketAddress;

public class Main {
    public static void main(String[] args) throws Exception {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", 0), 0);
        s.createContext("/", ex -> {
            byte[] b = "hello from fabu".getBytes();
            ex.sendResponseHeaders(200, b.length);
            ex.getResponseBody().write(b);
            ex.close();
        });
        s.start();
        System.out.println(s.getAddress().getPort());
    }
}
`

func TestRealJavaJarBuild(t *testing.T) {
	root := tree(t, map[string]string{
		"src/main/java/demo/Main.java": javaServer,
		".fabu.yml": `recipe: java-jar
stages:
  - name: compile
    run: javac -d build/classes src/main/java/demo/Main.java
  - name: package
    run: jar --create --file target/app.jar --main-class demo.Main -C build/classes .
artifact:
  file: target/*.jar
`,
	})
	if err := os.MkdirAll(filepath.Join(root, "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, jar := build(t, root, ProjectSettings{Type: "java-jar"})
	if filepath.Base(jar) != "app.jar" {
		t.Fatalf("artifact = %s", jar)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "java", "-jar", jar)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	port, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("server did not print its port: %v", err)
	}
	resp, err := http.Get("http://127.0.0.1:" + strings.TrimSpace(port) + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	_ = resp.Body.Close()
	if string(body) != "hello from fabu" {
		t.Errorf("server answered %q", body)
	}
}

func TestRealJavaWarBuild(t *testing.T) {
	root := tree(t, map[string]string{
		"src/main/java/demo/Main.java":    javaServer,
		"src/main/webapp/WEB-INF/web.xml": `<web-app xmlns="https://jakarta.ee/xml/ns/jakartaee" version="5.0"/>`,
		"src/main/webapp/index.html":      "<h1>fabu</h1>",
		".fabu.yml": `recipe: java-war
stages:
  - name: compile
    run: javac -d src/main/webapp/WEB-INF/classes src/main/java/demo/Main.java
  - name: package
    run: jar cf target/app.war -C src/main/webapp .
artifact:
  file: target/*.war
`,
	})
	if err := os.MkdirAll(filepath.Join(root, "target"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, war := build(t, root, ProjectSettings{Type: "java-war"})
	zr, err := zip.OpenReader(war)
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	have := map[string]bool{}
	for _, f := range zr.File {
		have[f.Name] = true
	}
	for _, want := range []string{"WEB-INF/classes/demo/Main.class", "WEB-INF/web.xml", "index.html"} {
		if !have[want] {
			t.Errorf("%s lacks %s", filepath.Base(war), want)
		}
	}
}

// offline keeps npm away from any registry; a request would fail the test's build.
var offline = map[string]string{"npm_config_offline": "true", "npm_config_registry": "http://127.0.0.1:9/"}

// lock writes package-lock.json for the package in dir without touching a registry.
func lock(t *testing.T, root, dir string) {
	t.Helper()
	var log bytes.Buffer
	_, err := execx.Run(context.Background(), execx.Spec{Name: "lock", Root: root, Dir: dir, Home: t.TempDir(), Path: os.Getenv("PATH"),
		Argv: []string{"npm", "install", "--package-lock-only", "--no-audit", "--no-fund"}, Env: offline, Stdout: &log, Stderr: &log})
	if err != nil {
		t.Fatalf("%v\n%s", err, log.String())
	}
}

func TestRealFrontendBuildWithoutRegistry(t *testing.T) {
	root := tree(t, map[string]string{
		"web/package.json": `{"name":"site","version":"1.0.0","private":true,
  "scripts":{"build":"node build.js"},
  "dependencies":{"greeting":"file:../vendor/greeting"}}`,
		"web/build.js": `const fs = require("fs");
const greet = require("greeting");
fs.mkdirSync("dist", {recursive: true});
fs.writeFileSync("dist/index.html", "<h1>" + greet("fabu") + "</h1>\n");
`,
		"vendor/greeting/package.json": `{"name":"greeting","version":"1.0.0","main":"index.js"}`,
		"vendor/greeting/index.js":     `module.exports = (n) => "hello " + n;`,
	})
	lock(t, root, "web")
	p, dist := build(t, root, ProjectSettings{Type: "frontend", SourceDir: "web", Env: offline})
	if p.Stages[0].Command[1] != "ci" {
		t.Errorf("install stage = %q, want npm ci (lockfile present)", p.Stages[0].Command)
	}
	b, err := os.ReadFile(filepath.Join(dist, "index.html"))
	if err != nil || string(b) != "<h1>hello fabu</h1>\n" {
		t.Errorf("dist/index.html = %q, %v", b, err)
	}
	if len(p.Caches) != 1 || p.Caches[0].Paths[0] != "~/.npm" {
		t.Errorf("caches = %+v, want the npm cache only (npm ci removes node_modules)", p.Caches)
	}
}

func TestRealNodeAppInstallsProductionDependenciesOnly(t *testing.T) {
	root := tree(t, map[string]string{
		"package.json": `{"name":"app","version":"1.0.0","private":true,"main":"server.js",
  "dependencies":{"greeting":"file:vendor/greeting"},
  "devDependencies":{"devtool":"file:vendor/devtool"}}`,
		"server.js":                    `console.log(require("greeting")("fabu"));`,
		"vendor/greeting/package.json": `{"name":"greeting","version":"1.0.0","main":"index.js"}`,
		"vendor/greeting/index.js":     `module.exports = (n) => "hello " + n;`,
		"vendor/devtool/package.json":  `{"name":"devtool","version":"1.0.0"}`,
	})
	lock(t, root, "")
	_, app := build(t, root, ProjectSettings{Type: "nodejs", Env: offline})
	if _, err := os.Stat(filepath.Join(app, "node_modules", "greeting", "index.js")); err != nil {
		t.Errorf("production dependency missing from the artifact: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(app, "node_modules", "devtool")); err == nil {
		t.Errorf("dev dependency shipped in the artifact")
	}
	out, err := exec.Command("node", filepath.Join(app, "server.js")).CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "hello fabu" {
		t.Errorf("node server.js = %q, %v", out, err)
	}
}
