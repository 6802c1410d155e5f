package e2e

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/store"
)

// BenchmarkBuild measures what building costs in fabu against running the same commands by
// hand, for two realistic projects whose builds use caches:
//
//   - frontend-npm: a frontend (recipe "frontend": npm ci, npm run build) whose two
//     dependencies are npm tarballs vendored in the repository (file: dependencies, no
//     registry), with a package-lock.json; node_modules and ~/.npm are cached;
//   - java-jar: a jar built by the stages of its .fabu.yml (a shell script resolving two
//     library jars pinned in deps.lock from a Maven-layout directory into ~/.m2/repository,
//     javac, jar); ~/.m2/repository is cached.
//
// fabu is `fabu up` with its real workspace, mirrors, caches and artifact store, deploying to
// a real sshd. For each project it repeats BENCH_BUILD_N times (default 5), each time with a
// new repository and project:
//
//   - cold: the first build (no mirror, no cache, no artifact);
//   - reuse: a run of the same commit again (build once by fingerprint and commit);
//   - warm: a run of a new commit that changes a source file, not the lockfile (warm mirror,
//     caches restored);
//   - by hand, cold: git clone, the same commands with an empty HOME, tar of the artifact;
//   - by hand, warm: git pull in that clone, the same commands with the now warm HOME, tar.
//
// A fabu build is timed from the run's created_at (the run requested) to the log line that
// hands the stored artifact to the deployer, and broken down by the builder's log lines and
// run_stages; the deploy that follows is not timed. It measures; nothing asserts on speed,
// but a failed build or command fails the benchmark. With BENCH_BUILD_REPORT set it writes
// its tables as Markdown to that file (scripts/bench.sh puts them in bench/REPORT.md); with
// BENCH_BUILD_DEBUG set it prints every timed run's log lines with their timestamps, and
// every measurement's phases, to stderr.
func BenchmarkBuild(b *testing.B) {
	n := benchEnvInt(b, "BENCH_BUILD_N", 5)
	loadBefore := loadAvg()
	began := time.Now()
	data := b.TempDir()
	_, a := upIn(b, data)
	db, err := store.Open(context.Background(), store.Config{Driver: store.SQLite, DSN: filepath.Join(data, "fabu.db")})
	if err != nil {
		b.Fatalf("open fabu's database: %v", err)
	}
	b.Cleanup(func() { _ = db.Close() })
	tg := newTarget(b)
	tg.sshd.Authorize(b, deployKey(b, a))
	depsRepo := b.TempDir()

	var report strings.Builder
	for _, pt := range []buildProject{frontendProject(b), javaProject(b, depsRepo)} {
		b.Run(pt.name, func(b *testing.B) {
			res := benchBuilds(b, a, db, tg, pt, n)
			b.ReportMetric(0, "ns/op")
			for _, c := range []struct {
				name string
				xs   []time.Duration
			}{{"cold-ms", res.total("fabu", "cold")}, {"reuse-ms", res.total("fabu", "reuse")}, {"warm-ms", res.total("fabu", "warm")},
				{"hand-cold-ms", res.total("hand", "cold")}, {"hand-warm-ms", res.total("hand", "warm")}} {
				b.ReportMetric(ms(median(c.xs)), c.name)
			}
			res.markdown(&report)
		})
	}
	loadAfter := loadAvg()
	fmt.Fprintf(&report, "Load average (1, 5, 15 min) before: %s; after: %s; %d cores; %d repetitions; the whole benchmark took %s.\n",
		loadBefore, loadAfter, runtime.NumCPU(), n, time.Since(began).Round(time.Second))
	if busy(loadBefore, loadAfter) {
		fmt.Fprintf(&report, "The load was above the core count: other processes competed for the CPU while this ran, so the figures are noisy — compare medians, not single runs.\n")
	}
	b.Log("\n" + report.String())
	if path := os.Getenv("BENCH_BUILD_REPORT"); path != "" {
		if err := os.WriteFile(path, []byte(report.String()), 0o644); err != nil {
			b.Fatal(err)
		}
	}
}

// buildProject is a project the build benchmark builds.
type buildProject struct {
	name     string
	about    string            // one sentence for the report
	typ      string            // the project's type (its recipe)
	env      map[string]string // build_env, also set for the commands by hand
	files    func(rep int) map[string]string
	change   func(rep int) map[string]string // a source change that keeps the lockfile
	stages   []string                        // the names of the build's stages
	commands [][]string                      // their commands, run by hand in the clone
	dist     string                          // what the artifact holds: a directory, or a file
	deployed string                          // a file current/ holds after a deploy
}

// benchResult holds every measurement of one project: who ("fabu" or "hand") and case →
// one phase map per repetition.
type benchResult struct {
	pt  buildProject
	obs map[string][]phaseTimes
}

type phaseTimes struct {
	total    time.Duration
	commands time.Duration // the build's own commands: fabu's stages (run_stages), or the same commands by hand
	phases   map[string]time.Duration
	restored int // fabu: how many caches the build restored
}

func (r *benchResult) add(who, kind string, p phaseTimes) {
	if os.Getenv("BENCH_BUILD_DEBUG") != "" {
		fmt.Fprintf(os.Stderr, "%s %s %s: total %s, commands %s, %v\n", r.pt.name, who, kind, p.total, p.commands, p.phases)
	}
	r.obs[who+"/"+kind] = append(r.obs[who+"/"+kind], p)
}

func (r *benchResult) total(who, kind string) []time.Duration {
	var xs []time.Duration
	for _, p := range r.obs[who+"/"+kind] {
		xs = append(xs, p.total)
	}
	return xs
}

// commandsOf is, per repetition, the time of the build's commands.
func (r *benchResult) commandsOf(who, kind string) []time.Duration {
	var xs []time.Duration
	for _, p := range r.obs[who+"/"+kind] {
		xs = append(xs, p.commands)
	}
	return xs
}

// outside is, per repetition, the time spent outside the build's commands.
func (r *benchResult) outside(who, kind string) []time.Duration {
	var xs []time.Duration
	for _, p := range r.obs[who+"/"+kind] {
		xs = append(xs, p.total-p.commands)
	}
	return xs
}

func (r *benchResult) phase(who, kind, name string) ([]time.Duration, bool) {
	var xs []time.Duration
	found := false
	for _, p := range r.obs[who+"/"+kind] {
		d, ok := p.phases[name]
		found = found || ok
		xs = append(xs, d)
	}
	return xs, found
}

// benchBuilds runs the repetitions of project pt and returns what they measured.
func benchBuilds(b *testing.B, a *api, db *store.DB, tg *target, pt buildProject, n int) *benchResult {
	res := &benchResult{pt: pt, obs: map[string][]phaseTimes{}}
	for rep := range n {
		r := newRepo(b)
		r.commit(pt.files(rep))
		name := fmt.Sprintf("bench-%s-%d", pt.name, rep)
		id := benchApply(b, a, tg, r, name, pt)
		home := b.TempDir()
		clone := filepath.Join(b.TempDir(), "clone")

		// Alternate which goes first, so neither always finds the other's files in the page cache.
		handCold := func() { res.add("hand", "cold", byHand(b, pt, home, clone, r.bare, false)) }
		fabuCold := func() {
			cold := fabuBuild(b, a, db, id, "build plan:")
			if cold.restored != 0 {
				b.Fatalf("%s: the first build restored %d caches", name, cold.restored)
			}
			res.add("fabu", "cold", cold)
		}
		if rep%2 == 0 {
			handCold()
			fabuCold()
		} else {
			fabuCold()
			handCold()
		}
		res.add("fabu", "reuse", fabuBuild(b, a, db, id, "reusing the artifact"))
		r.commit(pt.change(rep))
		handWarm := func() { res.add("hand", "warm", byHand(b, pt, home, clone, r.bare, true)) }
		if rep%2 == 1 {
			handWarm()
		}
		warm := fabuBuild(b, a, db, id, "build plan:")
		if warm.restored == 0 {
			b.Fatalf("%s: the build of a new commit with the same lockfile restored no cache", name)
		}
		res.add("fabu", "warm", warm)
		if rep%2 == 0 {
			handWarm()
		}
		if _, err := os.Stat(filepath.Join(tg.path, name, "current", pt.deployed)); err != nil {
			b.Fatalf("%s: after the warm build's deploy: %v", name, err)
		}
	}
	return res
}

// upIn starts `fabu up` on data directory dir and signs in.
func upIn(tb testing.TB, dir string) (*proc, *api) {
	tb.Helper()
	addr := freeAddr(tb)
	p := startFabu(tb, "fabu up", addr, []string{"FABU_ADMIN_PASSWORD=" + adminPassword},
		"up", "--addr", addr, "--data-dir", dir, "--lock-ttl", "6s")
	return p, login(tb, p.url, adminPassword)
}

// benchApply declares project name building repository r and deploying to its own
// directory on tg, and returns its ID.
func benchApply(tb testing.TB, a *api, tg *target, r *repo, name string, pt buildProject) string {
	tb.Helper()
	doc := map[string]any{
		"servers": []map[string]any{{"name": "bench-web", "host": "127.0.0.1", "port": tg.sshd.Port, "user": "root",
			"host_key": tg.sshd.HostKeyLine}},
		"projects": []map[string]any{{"name": name, "git_url": r.bare, "branch": "main", "type": pt.typ,
			"deploy_path": filepath.Join(tg.path, name), "servers": []string{"bench-web"}, "build_env": pt.env}},
	}
	a.must(http.StatusOK, "POST", "/api/v1/apply", doc, nil)
	var list []struct{ ID, Name string }
	a.must(http.StatusOK, "GET", "/api/v1/projects", nil, &list)
	for _, p := range list {
		if p.Name == name {
			return p.ID
		}
	}
	tb.Fatalf("project %s not found after apply", name)
	return ""
}

// fabuBuild requests a run of the project's branch, waits until it is deployed, and times
// its build from the builder's log and run_stages. want is the line that shows the build
// took the expected path ("build plan:" builds, "reusing the artifact" reuses).
func fabuBuild(tb testing.TB, a *api, db *store.DB, projectID, want string) phaseTimes {
	tb.Helper()
	var run struct {
		ID        string    `json:"id"`
		Status    string    `json:"status"`
		CreatedAt time.Time `json:"created_at"`
	}
	a.must(http.StatusCreated, "POST", "/api/v1/projects/"+projectID+"/runs", nil, &run)
	if got := a.awaitRun(run.ID, 3*defaultWait); got.Status != "succeeded" {
		tb.Fatalf("run %s = %+v\nlog:\n%s", run.ID, got, a.logText(run.ID))
	}
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+run.ID, nil, &run)

	var page struct {
		Lines []struct {
			TS     time.Time `json:"ts"`
			Stream string    `json:"stream"`
			Text   string    `json:"text"`
		} `json:"lines"`
	}
	a.must(http.StatusOK, "GET", "/api/v1/runs/"+run.ID+"/logs?limit=5000", nil, &page)
	if os.Getenv("BENCH_BUILD_DEBUG") != "" {
		for _, l := range page.Lines {
			fmt.Fprintf(os.Stderr, "%s %s %s\n", l.TS.Format("15:04:05.000"), l.Stream, l.Text)
		}
	}
	// at finds the first system line starting with prefix; last the last one.
	find := func(prefix string, last bool) (time.Time, bool) {
		var ts time.Time
		found := false
		for _, l := range page.Lines {
			if l.Stream == "system" && strings.HasPrefix(l.Text, prefix) {
				ts, found = l.TS, true
				if !last {
					break
				}
			}
		}
		return ts, found
	}
	at := func(prefix string, last bool) time.Time {
		ts, ok := find(prefix, last)
		if !ok {
			tb.Fatalf("the log of run %s has no line starting with %q; the benchmark reads the builder's log lines:\n%s",
				run.ID, prefix, a.logText(run.ID))
		}
		return ts
	}
	admitted := at("admitted:", false)
	checkout := at("checking out ", false)
	decided := at(want, false)
	ready := at("artifact ready", false)
	p := phaseTimes{total: ready.Sub(run.CreatedAt), phases: map[string]time.Duration{
		"queued → admitted":     admitted.Sub(run.CreatedAt),
		"fetch mirror, resolve": checkout.Sub(admitted),
	}}
	if want != "build plan:" {
		// The artifact is looked up, linked and its sha256 checked before the line that says so.
		p.phases["checkout, plan, reuse artifact"] = decided.Sub(checkout)
		p.phases["clean up, hand over"] = ready.Sub(decided)
		return p
	}
	p.phases["checkout, plan"] = decided.Sub(checkout)

	var stages []struct {
		Seq        int
		Name       string
		Status     string
		DurationMS int64 `gorm:"column:duration_ms"`
	}
	if err := db.Raw("SELECT seq, name, status, duration_ms FROM run_stages WHERE run_id = ? ORDER BY seq", run.ID).
		Scan(&stages).Error; err != nil {
		tb.Fatalf("read run_stages of %s: %v", run.ID, err)
	}
	if len(stages) == 0 {
		tb.Fatalf("run %s built without stages in run_stages", run.ID)
	}
	for _, s := range stages {
		if s.Status != "succeeded" {
			tb.Fatalf("run %s: stage %s is %s", run.ID, s.Name, s.Status)
		}
		d := time.Duration(s.DurationMS) * time.Millisecond
		p.phases["stage "+s.Name] = d
		p.commands += d
	}
	first, last := at("▶ stage ", false), at("✔ stage ", true)
	packaged := at("packaged ", false)
	// Caches are saved after packaging, one "cache …: saved" line each; without any, the
	// last cache line is a restore before the stages.
	saved, _ := find("cache ", true)
	if saved.Before(packaged) {
		saved = packaged
	}
	p.phases["restore caches"] = first.Sub(decided)
	for _, l := range page.Lines {
		if l.Stream == "system" && strings.HasPrefix(l.Text, "cache ") && strings.Contains(l.Text, ": restored ") {
			p.restored++
		}
	}
	p.phases["stage bookkeeping"] = last.Sub(first) - p.commands
	p.phases["package artifact"] = packaged.Sub(last)
	p.phases["save caches"] = saved.Sub(packaged)
	p.phases["clean up, hand over"] = ready.Sub(saved)
	return p
}

// byHand builds the project's branch as a person would: git clone (or git pull when warm),
// the stages' commands in the clone with HOME set to home, and a tar.gz of the artifact.
func byHand(tb testing.TB, pt buildProject, home, clone, url string, warm bool) phaseTimes {
	tb.Helper()
	// The environment fabu gives its stages (execx): PATH, LANG, CI, HOME and the build_env;
	// nothing else of the benchmark's (NODE_EXTRA_CA_CERTS, say, slows every node start).
	env := []string{"PATH=" + os.Getenv("PATH"), "LANG=C.UTF-8", "CI=true", "HOME=" + home}
	for k, v := range pt.env {
		env = append(env, k+"="+v)
	}
	p := phaseTimes{phases: map[string]time.Duration{}}
	timed := func(phase, dir string, argv ...string) {
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Dir, cmd.Env = dir, env
		start := time.Now()
		out, err := cmd.CombinedOutput()
		d := time.Since(start)
		if err != nil {
			tb.Fatalf("by hand, %s: %v: %v\n%s", pt.name, argv, err, out)
		}
		p.phases[phase] += d
		p.total += d
	}
	if warm {
		timed("get the source", clone, "git", "pull", "-q", "--ff-only")
	} else {
		// The builder's mirror is a clone without hard links; so is this one.
		timed("get the source", filepath.Dir(clone), "git", "clone", "-q", "--no-hardlinks", url, clone)
	}
	before := p.total
	for i, argv := range pt.commands {
		timed("stage "+pt.stages[i], clone, argv...)
	}
	p.commands = p.total - before
	out := filepath.Join(filepath.Dir(clone), "artifact.tar.gz")
	dir, what := pt.dist, "."
	if !strings.HasSuffix(pt.dist, "/") {
		dir, what = filepath.Dir(pt.dist), filepath.Base(pt.dist)
	}
	timed("package artifact", clone, "tar", "-czf", out, "-C", dir, what)
	return p
}

// offlineBuildEnv keeps npm away from any registry, as the other build tests do.
func offlineBuildEnv() map[string]string {
	return map[string]string{"npm_config_offline": "true", "npm_config_registry": "http://127.0.0.1:9/",
		"npm_config_update_notifier": "false"}
}

// frontendProject is a shop's frontend: 40 source modules and a build script that bundles
// them with a component library (300 modules) into a hashed app.js and app.css, renders 30
// pages and copies the icons they use from an icon set (800 SVGs). The library and the icon
// set are npm tarballs under vendor/, locked in package-lock.json.
func frontendProject(tb testing.TB) buildProject {
	tb.Helper()
	rng := rand.New(rand.NewPCG(1, 2)) // the same project every time
	kit := map[string]string{"package.json": `{"name":"ui-kit","version":"1.0.0","main":"index.js"}` + "\n",
		"lib/escape.js": "module.exports = (s) => String(s).replace(/[&<>\"]/g, (c) => ({\"&\": \"&amp;\", \"<\": \"&lt;\", \">\": \"&gt;\", '\"': \"&quot;\"})[c]);\n"}
	var index strings.Builder
	index.WriteString("\"use strict\";\nmodule.exports = {\n")
	for i := range 300 {
		c := fmt.Sprintf("c%03d", i)
		fmt.Fprintf(&index, "  %s: require(\"./lib/%s\"),\n", c, c)
		kit["lib/"+c+".js"] = kitComponent(c, rng)
	}
	index.WriteString("};\n")
	kit["index.js"] = index.String()
	icons := map[string]string{"package.json": `{"name":"icons","version":"2.1.0"}` + "\n"}
	for i := range 800 {
		var d strings.Builder
		for j := range 24 {
			fmt.Fprintf(&d, "L%d %d ", (i*7+j*13)%24, (i*11+j*5)%24)
		}
		icons[fmt.Sprintf("svg/i%04d.svg", i)] = fmt.Sprintf(`<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24"><path d="M0 0 %sZ"/></svg>`+"\n", d.String())
	}
	files := map[string]string{
		"package.json": `{"name":"shop-web","version":"1.0.0","private":true,
  "scripts":{"build":"node build.js"},
  "dependencies":{"ui-kit":"file:vendor/ui-kit-1.0.0.tgz","icons":"file:vendor/icons-2.1.0.tgz"}}
`,
		"vendor/ui-kit-1.0.0.tgz": npmTarball(tb, kit),
		"vendor/icons-2.1.0.tgz":  npmTarball(tb, icons),
		"build.js":                frontendBuildScript,
		"src/app.js":              "module.exports = { release: \"1\" };\n",
	}
	var pages strings.Builder
	pages.WriteString("\"use strict\";\nmodule.exports = [\n")
	for i := range 30 {
		fmt.Fprintf(&pages, "  { slug: %q, title: \"Page %d\", sections: [", map[bool]string{true: "index", false: fmt.Sprintf("p%02d", i)}[i == 0], i)
		for range 10 {
			fmt.Fprintf(&pages, "[\"c%03d\", { title: \"Section %d\", icon: \"i%04d\", items: [\"a\", \"b\", \"c\"] }], ", rng.IntN(300), rng.IntN(100), rng.IntN(800))
		}
		pages.WriteString("] },\n")
	}
	pages.WriteString("];\n")
	files["src/pages.js"] = pages.String()
	for i := range 40 {
		files[fmt.Sprintf("src/widgets/w%02d.js", i)] = kitComponent(fmt.Sprintf("w%02d", i), rng)
	}
	files["package-lock.json"] = npmLock(tb, files)
	install := []string{"npm", "ci", "--no-audit", "--no-fund"}
	return buildProject{
		name: "frontend-npm", typ: "frontend", env: offlineBuildEnv(),
		about: "recipe `frontend` (`npm ci`, `npm run build`); 2 vendored npm tarballs (300-module component library, " +
			"800-icon set) locked in package-lock.json; the build bundles 345 modules and renders 30 pages; caches ~/.npm (npm ci removes node_modules, so it is not cached)",
		files: func(rep int) map[string]string {
			f := copyFiles(files)
			f["src/version.js"] = fmt.Sprintf("module.exports = %q;\n", fmt.Sprint("rep ", rep))
			return f
		},
		change: func(rep int) map[string]string {
			return map[string]string{"src/app.js": fmt.Sprintf("module.exports = { release: \"2\", rep: %d };\n", rep)}
		},
		stages:   []string{"install", "build"},
		commands: [][]string{install, {"npm", "run", "build"}},
		dist:     "dist/",
		deployed: "index.html",
	}
}

// frontendBuildScript bundles, hashes, renders and copies, with nothing but node.
const frontendBuildScript = `"use strict";
const fs = require("fs");
const path = require("path");
const crypto = require("crypto");
const kit = require("ui-kit");
const pages = require("./src/pages");
const kitDir = path.dirname(require.resolve("ui-kit/package.json"));
const iconDir = path.join(path.dirname(require.resolve("icons/package.json")), "svg");

const files = (dir) => fs.readdirSync(dir, { withFileTypes: true })
  .flatMap((e) => e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)])
  .filter((f) => f.endsWith(".js")).sort();
const minify = (src) => src.replace(/\/\*[\s\S]*?\*\//g, "").split("\n")
  .map((l) => l.replace(/^\s*\/\/.*$/, "").trim()).filter(Boolean).join("\n");
const hash = (s) => crypto.createHash("sha256").update(s).digest("hex").slice(0, 10);

fs.rmSync("dist", { recursive: true, force: true });
fs.mkdirSync(path.join("dist", "icons"), { recursive: true });
const modules = [...files(kitDir), ...files("src")];
let bundle = "";
for (const f of modules) bundle += "/* " + path.relative(".", f) + " */\n" + minify(fs.readFileSync(f, "utf8")) + "\n";
const css = Object.values(kit).map((c) => c.styles).join("\n");
const js = "app." + hash(bundle) + ".js", sheet = "app." + hash(css) + ".css";
fs.writeFileSync(path.join("dist", js), bundle);
fs.writeFileSync(path.join("dist", sheet), css);
const used = new Set();
for (const p of pages) {
  const body = p.sections.map(([name, props]) => { used.add(props.icon); return kit[name](props); }).join("\n");
  fs.writeFileSync(path.join("dist", p.slug + ".html"), "<!doctype html><html><head><title>" + p.title +
    "</title><link rel=\"stylesheet\" href=\"" + sheet + "\"></head><body>" + body + "<script src=\"" + js + "\"></script></body></html>\n");
}
for (const icon of used) fs.copyFileSync(path.join(iconDir, icon + ".svg"), path.join("dist", "icons", icon + ".svg"));
console.log("built " + pages.length + " pages from " + modules.length + " modules with " + used.size + " icons");
`

// kitComponent is one UI component module of about 2.5 KB: a render function and its styles.
func kitComponent(name string, rng *rand.Rand) string {
	var css strings.Builder
	for i := range 24 {
		fmt.Fprintf(&css, ".%s-part%d{margin:%dpx;padding:%dpx %dpx;color:#%06x;border-radius:%dpx}", name, i, rng.IntN(16), rng.IntN(12), rng.IntN(20), rng.IntN(1<<24), rng.IntN(8))
	}
	return fmt.Sprintf(`"use strict";
/**
 * %[1]s renders a card with a title, an icon and a list of items.
 * props: { title, icon, items, variant }
 */
const escape = require("%[2]s");

// render builds the card's markup; every value is escaped.
module.exports = function %[1]s(props) {
  const items = (props.items || []).map((it, i) =>
    "<li class=\"%[1]s-item %[1]s-item-" + i + "\">" + escape(it) + "</li>").join("");
  return "<section class=\"%[1]s " + (props.variant || "plain") + "\">" +
    "<img src=\"icons/" + escape(props.icon) + ".svg\" alt=\"\">" +
    "<h2>" + escape(props.title) + "</h2><ul>" + items + "</ul></section>";
};
module.exports.styles = %[3]q;
`, name, map[bool]string{true: "ui-kit/lib/escape", false: "./escape"}[strings.HasPrefix(name, "w")], css.String())
}

// npmTarball packs files as an npm package tarball (every entry under package/).
func npmTarball(tb testing.TB, files map[string]string) string {
	tb.Helper()
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	slices.Sort(names)
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, name := range names {
		body := files[name]
		if err := tw.WriteHeader(&tar.Header{Name: "package/" + name, Mode: 0o644, Size: int64(len(body)), ModTime: mtime, Typeflag: tar.TypeReg}); err != nil {
			tb.Fatal(err)
		}
		if _, err := tw.Write([]byte(body)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		tb.Fatal(err)
	}
	if err := gz.Close(); err != nil {
		tb.Fatal(err)
	}
	return buf.String()
}

// npmLock writes the project's files to a scratch directory and returns the
// package-lock.json npm makes for them, without a registry.
func npmLock(tb testing.TB, files map[string]string) string {
	tb.Helper()
	dir := tb.TempDir()
	writeTree(tb, dir, files)
	cmd := exec.Command("npm", "install", "--package-lock-only", "--no-audit", "--no-fund")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "HOME="+tb.TempDir())
	for k, v := range offlineBuildEnv() {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		tb.Fatalf("npm install --package-lock-only: %v\n%s", err, out)
	}
	lock, err := os.ReadFile(filepath.Join(dir, "package-lock.json"))
	if err != nil {
		tb.Fatal(err)
	}
	return string(lock)
}

// javaProject is a service built into a jar: 40 classes using two libraries pinned in
// deps.lock, which a script resolves from depsRepo (a directory in Maven's layout standing
// in for a Maven repository) into ~/.m2/repository, then javac and jar. The libraries (120
// and 60 classes) are compiled into depsRepo first.
func javaProject(tb testing.TB, depsRepo string) buildProject {
	tb.Helper()
	libClasses, appClasses := [2]int{120, 60}, 40
	libs := []struct{ group, name, version, pkg, prefix string }{
		{"demo", "demo-util", "1.4.2", "demo.util", "U"},
		{"demo", "demo-json", "0.9.1", "demo.json", "J"},
	}
	var lock strings.Builder
	var classpath []string
	for i, l := range libs {
		src := map[string]string{}
		for c := range libClasses[i] {
			src[fmt.Sprintf("%s/%s%03d.java", strings.ReplaceAll(l.pkg, ".", "/"), l.prefix, c)] = libClass(l.pkg, fmt.Sprintf("%s%03d", l.prefix, c))
		}
		jar := filepath.Join(depsRepo, l.group, l.name, l.version, l.name+"-"+l.version+".jar")
		compileJar(tb, src, jar)
		b, err := os.ReadFile(jar)
		if err != nil {
			tb.Fatal(err)
		}
		sum := sha256.Sum256(b)
		fmt.Fprintf(&lock, "%s:%s:%s %s\n", l.group, l.name, l.version, hex.EncodeToString(sum[:]))
		classpath = append(classpath, "lib/"+l.name+"-"+l.version+".jar")
	}
	files := map[string]string{"deps.lock": lock.String(), "tools/deps.sh": javaDepsScript}
	var sources, mains strings.Builder
	for c := range appClasses {
		name := fmt.Sprintf("S%03d", c)
		path := "src/shop/" + name + ".java"
		files[path] = appClass(name, c, 0, libClasses)
		sources.WriteString(path + "\n")
		fmt.Fprintf(&mains, "        total += new %s(args.length + %d).render().length();\n", name, c)
	}
	sources.WriteString("src/shop/Main.java\n")
	files["sources.txt"] = sources.String()
	stages := []string{"deps", "compile", "package"}
	commands := [][]string{
		{"sh", "tools/deps.sh"},
		{"javac", "-d", "build/classes", "-cp", strings.Join(classpath, ":"), "@sources.txt"},
		{"jar", "--create", "--file", "build/app.jar", "--main-class", "shop.Main", "-C", "build/classes", "."},
	}
	yml := "stages:\n"
	for i, argv := range commands {
		q := make([]string, len(argv))
		for j, s := range argv {
			q[j] = fmt.Sprintf("%q", s)
		}
		yml += fmt.Sprintf("  - name: %s\n    run: [%s]\n", stages[i], strings.Join(q, ", "))
	}
	yml += "artifact:\n  file: build/app.jar\ncaches:\n  - key: deps.lock\n    paths: [\"~/.m2/repository\"]\n"
	files[".fabu.yml"] = yml
	return buildProject{
		name: "java-jar", typ: "java-jar", env: map[string]string{"DEPS_REPO": depsRepo},
		about: fmt.Sprintf("stages of its .fabu.yml: a script resolving 2 library jars (%d and %d classes) pinned in deps.lock "+
			"from a local directory in Maven's layout into ~/.m2/repository, javac of %d classes, jar; caches ~/.m2/repository",
			libClasses[0], libClasses[1], appClasses+1),
		files: func(rep int) map[string]string {
			f := copyFiles(files)
			f["src/shop/Main.java"] = fmt.Sprintf(`package shop;

public final class Main {
    public static final String BUILD = "rep %d";

    public static void main(String[] args) {
        long total = 0;
%s        System.out.println(BUILD + ": " + total);
    }
}
`, rep, mains.String())
			return f
		},
		change: func(rep int) map[string]string {
			return map[string]string{"src/shop/S007.java": appClass("S007", 7, rep+1, libClasses)}
		},
		stages:   stages,
		commands: commands,
		dist:     "build/app.jar",
		deployed: "app.jar",
	}
}

// javaDepsScript resolves deps.lock: each line is group:name:version and the jar's sha256.
const javaDepsScript = `#!/bin/sh
# Resolves the jars deps.lock pins from the repository at $DEPS_REPO into ~/.m2/repository,
# the cache fabu keeps between builds, checks them and copies them to lib/ for javac.
set -eu
: "${DEPS_REPO:?DEPS_REPO is not set}"
mkdir -p lib
while read -r coord sum; do
  [ -n "$coord" ] || continue
  group=${coord%%:*}; rest=${coord#*:}; name=${rest%%:*}; version=${rest#*:}
  dir="$HOME/.m2/repository/$group/$name/$version"
  jar="$dir/$name-$version.jar"
  if [ ! -f "$jar" ]; then
    echo "downloading $coord"
    mkdir -p "$dir"
    cp "$DEPS_REPO/$group/$name/$version/$name-$version.jar" "$jar.part"
    mv "$jar.part" "$jar"
  fi
  echo "$sum  $jar" | sha256sum -c --status -
  cp "$jar" lib/
done < deps.lock
`

func libClass(pkg, name string) string {
	return fmt.Sprintf(`package %[1]s;

import java.util.ArrayList;
import java.util.List;
import java.util.function.IntUnaryOperator;

/** %[2]s is one class of the library: a few pure functions. */
public final class %[2]s {
    private %[2]s() {}

    public static int mix(int x) {
        int h = x * 31 + %[3]d;
        for (int i = 0; i < 8; i++) {
            h ^= (h << 5) + (h >>> 2) + i;
        }
        return h;
    }

    public static String tag(String s) {
        return "[" + s + ":%[3]d]";
    }

    public static List<Integer> series(int n, IntUnaryOperator f) {
        List<Integer> out = new ArrayList<>();
        for (int i = 0; i < n; i++) {
            out.add(f.applyAsInt(mix(i)));
        }
        return out;
    }

    public static String object(String kind, String tag, int value) {
        StringBuilder b = new StringBuilder("{");
        b.append("\"kind\":\"").append(kind).append("\",");
        b.append("\"tag\":\"").append(tag).append("\",");
        b.append("\"value\":").append(value).append('}');
        return b.toString();
    }
}
`, pkg, name, len(name)*7)
}

// appClass is one class of the service, using both libraries; release varies its body.
func appClass(name string, c, release int, libClasses [2]int) string {
	return fmt.Sprintf(`package shop;

import demo.json.J%03[2]d;
import demo.util.U%03[3]d;
import java.util.List;
import java.util.stream.Collectors;

/** %[1]s is one resource of the shop service (release %[4]d). */
public final class %[1]s {
    private final int id;

    public %[1]s(int id) {
        this.id = id;
    }

    public List<Integer> figures() {
        return U%03[3]d.series(%[5]d, x -> x %% 97 + id);
    }

    public String render() {
        String figures = figures().stream().map(String::valueOf).collect(Collectors.joining(","));
        return J%03[2]d.object("%[1]s", U%03[3]d.tag(figures), U%03[3]d.mix(id + %[4]d));
    }
}
`, name, c%libClasses[1], c%libClasses[0], release, 10+c%7)
}

// compileJar compiles the Java sources src into the jar at path.
func compileJar(tb testing.TB, src map[string]string, jar string) {
	tb.Helper()
	dir := tb.TempDir()
	writeTree(tb, filepath.Join(dir, "src"), src)
	args := []string{"-d", filepath.Join(dir, "classes")}
	for name := range src {
		args = append(args, filepath.Join(dir, "src", name))
	}
	for _, argv := range [][]string{append([]string{"javac"}, args...),
		{"jar", "--create", "--file", jar, "-C", filepath.Join(dir, "classes"), "."}} {
		if err := os.MkdirAll(filepath.Dir(jar), 0o755); err != nil {
			tb.Fatal(err)
		}
		if out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput(); err != nil {
			tb.Fatalf("%s: %v\n%s", argv[0], err, out)
		}
	}
}

func writeTree(tb testing.TB, root string, files map[string]string) {
	tb.Helper()
	for name, content := range files {
		p := filepath.Join(root, filepath.FromSlash(name))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			tb.Fatal(err)
		}
	}
}

func copyFiles(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

func median(xs []time.Duration) time.Duration {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// spread is "median (min–max)" in milliseconds.
func spread(xs []time.Duration) string {
	if len(xs) == 0 {
		return "—"
	}
	return fmt.Sprintf("%d (%d–%d)", median(xs).Milliseconds(), slices.Min(xs).Milliseconds(), slices.Max(xs).Milliseconds())
}

func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "unknown"
	}
	return strings.Join(f[:3], " ")
}

// busy reports whether either 1-minute load average exceeded the number of cores.
func busy(loads ...string) bool {
	for _, l := range loads {
		var one float64
		if _, err := fmt.Sscan(l, &one); err == nil && one > float64(runtime.NumCPU()) {
			return true
		}
	}
	return false
}

// phaseOrder is the order of the breakdown's rows; stage rows go where "stages" is.
var phaseOrder = []string{"queued → admitted", "fetch mirror, resolve", "get the source", "checkout, plan",
	"checkout, plan, reuse artifact", "restore caches", "stages", "stage bookkeeping", "package artifact", "save caches",
	"clean up, hand over"}

// markdown writes the project's summary table, its breakdown and a reading of both.
func (r *benchResult) markdown(w *strings.Builder) {
	pt := r.pt
	fmt.Fprintf(w, "### %s\n\n%s.\n\n", pt.name, capitalize(pt.about))
	w.WriteString("| case | fabu | by hand | fabu − by hand | outside the build's commands: fabu | by hand | fabu − by hand |\n" +
		"|---|---|---|---|---|---|---|\n")
	diff := func(f, h []time.Duration) string {
		d := median(f) - median(h)
		return fmt.Sprintf("%+d ms (%+.0f%%)", d.Milliseconds(), 100*float64(d)/float64(median(h)))
	}
	row := func(label, fabuKind, handKind string) {
		f, h := r.total("fabu", fabuKind), r.total("hand", handKind)
		fo, ho := r.outside("fabu", fabuKind), r.outside("hand", handKind)
		fmt.Fprintf(w, "| %s | %s | %s | %s | %s | %s | %+d ms |\n", label, spread(f), spread(h), diff(f, h),
			spread(fo), spread(ho), (median(fo) - median(ho)).Milliseconds())
	}
	row("first build: no mirror, cache or artifact (by hand: clone, empty HOME)", "cold", "cold")
	row("cache hit: new commit, same lockfile (by hand: pull, warm HOME)", "warm", "warm")
	row("same commit again: build-once reuse (by hand: the warm rebuild)", "reuse", "warm")

	var stages []string
	for _, s := range pt.stages {
		stages = append(stages, "stage "+s)
	}
	w.WriteString("\nWhere the time goes: median ms of each phase over the repetitions (a column's medians need not add up to its total's):\n\n")
	w.WriteString("| phase | fabu cold | by hand cold | fabu warm | by hand warm | fabu reuse |\n|---|---|---|---|---|---|\n")
	cols := [][2]string{{"fabu", "cold"}, {"hand", "cold"}, {"fabu", "warm"}, {"hand", "warm"}, {"fabu", "reuse"}}
	for _, ph := range phaseOrder {
		names := []string{ph}
		if ph == "stages" {
			names = stages
		}
		for _, name := range names {
			cells, seen := make([]string, len(cols)), false
			for i, c := range cols {
				cells[i] = "—"
				if xs, ok := r.phase(c[0], c[1], name); ok {
					cells[i], seen = fmt.Sprint(median(xs).Milliseconds()), true
				}
			}
			if seen {
				fmt.Fprintf(w, "| %s | %s |\n", name, strings.Join(cells, " | "))
			}
		}
	}
	totals := make([]string, len(cols))
	for i, c := range cols {
		totals[i] = fmt.Sprint(median(r.total(c[0], c[1])).Milliseconds())
	}
	fmt.Fprintf(w, "| **total** | %s |\n\n", strings.Join(totals, " | "))
	r.reading(w)
}

// reading is a paragraph on the numbers: each case's overhead and the phases it is made of.
func (r *benchResult) reading(w *strings.Builder) {
	med := func(who, kind, phase string) int64 {
		xs, _ := r.phase(who, kind, phase)
		return median(xs).Milliseconds()
	}
	var parts []string
	for _, kind := range []string{"cold", "warm"} {
		f, h := median(r.total("fabu", kind)), median(r.total("hand", kind))
		fo, ho := median(r.outside("fabu", kind)), median(r.outside("hand", kind))
		get := map[string]string{"cold": "git clone", "warm": "git pull"}[kind]
		parts = append(parts, fmt.Sprintf("%s: fabu %d ms, by hand %d ms. The commands themselves took %d ms in fabu's stages and %d ms by hand; "+
			"outside them fabu spent %d ms against %d ms by hand (%s, tar), an overhead of %+d ms: "+
			"%d ms from request to admission, %d ms fetching the mirror and %d ms checking out and planning (%s %d ms), "+
			"%d ms restoring caches, %d ms recording stages, %d ms packaging (tar %d ms), %d ms saving caches "+
			"and %d ms removing the run's directories and handing over",
			map[string]string{"cold": "First build", "warm": "Cache hit"}[kind], f.Milliseconds(), h.Milliseconds(),
			median(r.commandsOf("fabu", kind)).Milliseconds(), median(r.commandsOf("hand", kind)).Milliseconds(),
			fo.Milliseconds(), ho.Milliseconds(), get, (fo-ho).Milliseconds(),
			med("fabu", kind, "queued → admitted"), med("fabu", kind, "fetch mirror, resolve"), med("fabu", kind, "checkout, plan"),
			get, med("hand", kind, "get the source"),
			med("fabu", kind, "restore caches"), med("fabu", kind, "stage bookkeeping"),
			med("fabu", kind, "package artifact"), med("hand", kind, "package artifact"), med("fabu", kind, "save caches"),
			med("fabu", kind, "clean up, hand over")))
	}
	var noisy []string
	for _, kind := range []string{"cold", "warm"} {
		d := median(r.commandsOf("fabu", kind)) - median(r.commandsOf("hand", kind))
		if over := median(r.outside("fabu", kind)) - median(r.outside("hand", kind)); d.Abs() > over.Abs() {
			noisy = append(noisy, fmt.Sprintf("%s %+d ms", map[string]string{"cold": "first build", "warm": "cache hit"}[kind], d.Milliseconds()))
		}
	}
	if len(noisy) > 0 {
		parts = append(parts, fmt.Sprintf("Run by fabu and by the benchmark, the same commands' times differ by more than fabu's overhead "+
			"around them (%s): that is mostly run-to-run noise, so the totals' difference says less than the overhead's",
			strings.Join(noisy, ", ")))
	}
	parts = append(parts, fmt.Sprintf("Running the same commit again costs %d ms (%d ms fetching, %d ms checking the commit out to "+
		"compute the plan's fingerprint and linking the stored artifact, %d ms removing the checkout and handing over) "+
		"where rebuilding by hand takes %d ms",
		median(r.total("fabu", "reuse")).Milliseconds(), med("fabu", "reuse", "fetch mirror, resolve"),
		med("fabu", "reuse", "checkout, plan, reuse artifact"), med("fabu", "reuse", "clean up, hand over"),
		median(r.total("hand", "warm")).Milliseconds()))
	w.WriteString(strings.Join(parts, ". ") + ".\n\n")
}

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
