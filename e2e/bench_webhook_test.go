package e2e

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha1"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"fabu.dev/libs/events"
	"fabu.dev/libs/forge/github"
	"fabu.dev/libs/testenv"
)

// BenchmarkWebhookDeliveries measures how many verified GitHub push deliveries per second
// `fabu serve webhook` takes, and their latency, under a fixed load of BENCH_DELIVERIES
// requests (default 2000) from BENCH_CONCURRENCY goroutines (default 8) sharing one
// keep-alive http.Client:
//   - webhook-only: pushes to a branch outside the project's triggers; each is verified
//     (HMAC-SHA256), parsed, decided and recorded as an ignored delivery, and requests no run;
//   - to-run-row: pushes to main whose head commit carries "devops", with distinct after SHAs
//     and X-GitHub-Delivery ids; each inserts a run, its outbox event and the delivery row in
//     one PostgreSQL transaction.
//
// Only the webhook process serves the load (the gateway that declared the project is stopped
// first; no builder runs, so the runs stay requested). Run it with -benchtime 1x: each
// sub-benchmark then sends its load once. The load stops by itself after the fixed count or
// BENCH_TIMEOUT (default 5m). It measures; nothing asserts on speed. After the timed part
// it checks that PostgreSQL holds exactly one run, delivery row and outbox event per 202.
func BenchmarkWebhookDeliveries(b *testing.B) {
	n := benchEnvInt(b, "BENCH_DELIVERIES", 2000)
	conc := benchEnvInt(b, "BENCH_CONCURRENCY", 8)
	limit := 5 * time.Minute
	if v := os.Getenv("BENCH_TIMEOUT"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d <= 0 {
			b.Fatalf("BENCH_TIMEOUT=%q is not a positive duration", v)
		}
		limit = d
	}
	wh := startWebhookAlone(b)
	client := &http.Client{
		Timeout: 30 * time.Second,
		Transport: &http.Transport{
			MaxIdleConns: conc, MaxIdleConnsPerHost: conc, MaxConnsPerHost: conc,
			IdleConnTimeout: time.Minute, DisableCompression: true,
		},
	}
	b.Cleanup(client.CloseIdleConnections)
	tmpl := benchPushTemplate(b)
	nonce := make([]byte, 4)
	_, _ = rand.Read(nonce)
	tag := hex.EncodeToString(nonce)

	// Warm-up, not measured: opens the keep-alive connections and the service's database
	// pool with ignored deliveries.
	warm := benchDeliveries(b, tmpl, "warm-"+tag, "refs/heads/bench/warm-up", "warm up", 4*conc)
	if res := sendLoad(context.Background(), client, wh.url, warm, conc); res.sent != len(warm) || res.verdicts["202 ignored"] != len(warm) {
		b.Fatalf("warm-up: %d of %d sent, answers %v, errors %v", res.sent, len(warm), res.verdicts, res.errs)
	}

	for _, sc := range []struct {
		name, ref, message, verdict string
	}{
		{"webhook-only", "refs/heads/feature/bench", "change site (devops)", "ignored"},
		{"to-run-row", "refs/heads/main", "change site (devops)", "triggered"},
	} {
		b.Run(sc.name, func(b *testing.B) {
			var all []time.Duration
			var elapsed time.Duration
			accepted, sent := 0, 0
			runsBefore := countRows(b, wh.dsn, "SELECT count(*) FROM runs")
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				prefix := fmt.Sprintf("%s-%s-%d", sc.name, tag, i)
				ds := benchDeliveries(b, tmpl, prefix, sc.ref, sc.message, n)
				ctx, cancel := context.WithTimeout(context.Background(), limit)
				b.StartTimer()
				res := sendLoad(ctx, client, wh.url, ds, conc)
				b.StopTimer()
				cancel()
				if res.sent < len(ds) {
					b.Logf("stopped at the %s bound after %d of %d deliveries", limit, res.sent, len(ds))
				}
				if len(res.errs) > 0 || res.verdicts["202 "+sc.verdict] != res.sent {
					b.Fatalf("%s: %d sent, answers %v, want all 202 %s; errors (first 5): %v\nwebhook output tail:\n%s",
						sc.name, res.sent, res.verdicts, sc.verdict, first(res.errs, 5), tail(wh.proc.out.String(), 3000))
				}
				all = append(all, res.latencies...)
				elapsed += res.elapsed
				sent += res.sent
				accepted += res.verdicts["202 "+sc.verdict]
				// Outside the timed part: PostgreSQL holds what each 202 answer claims.
				rows := countRows(b, wh.dsn, "SELECT count(*) FROM webhook_deliveries WHERE delivery_key LIKE $1 AND verdict = $2",
					prefix+"-%", sc.verdict)
				if rows != int64(res.sent) {
					b.Errorf("%s: %d delivery rows with verdict %s, want one per 202 answer (%d)", sc.name, rows, sc.verdict, res.sent)
				}
			}
			runs := countRows(b, wh.dsn, "SELECT count(*) FROM runs") - runsBefore
			wantRuns := int64(0)
			if sc.verdict == "triggered" {
				wantRuns = int64(accepted)
				requested := countRows(b, wh.dsn, "SELECT count(*) FROM runs WHERE status = 'requested'")
				outboxRows := countRows(b, wh.dsn, "SELECT count(*) FROM outbox WHERE topic = $1", events.TopicRunRequested)
				published := countRows(b, wh.dsn, "SELECT count(*) FROM outbox WHERE topic = $1 AND published_at IS NOT NULL", events.TopicRunRequested)
				if requested != wantRuns || outboxRows != wantRuns {
					b.Errorf("%d runs requested and %d run.requested outbox events, want %d each (one per 202)", requested, outboxRows, wantRuns)
				}
				b.Logf("PostgreSQL: %d runs (all requested: no builder runs), %d run.requested outbox events, %d of them published to Kafka by the end of the check",
					requested, outboxRows, published)
			}
			if runs != wantRuns {
				b.Errorf("%s: PostgreSQL has %d new runs, want %d (the 202 %s answers)", sc.name, runs, wantRuns, sc.verdict)
			}
			slices.Sort(all)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(float64(sent), "deliveries")
			b.ReportMetric(float64(conc), "concurrency")
			b.ReportMetric(float64(sent)/elapsed.Seconds(), "deliveries/s")
			b.ReportMetric(ms(percentile(all, 0.50)), "p50-ms")
			b.ReportMetric(ms(percentile(all, 0.99)), "p99-ms")
			b.ReportMetric(ms(all[len(all)-1]), "max-ms")
		})
	}
}

// webhookAlone is a `fabu serve webhook` process on PostgreSQL and Kafka, with a GitHub
// project declared through a gateway that is stopped again before the load.
type webhookAlone struct {
	proc *proc
	url  string // the hook URL of the declared project
	dsn  string
}

const benchProject = "bench-gh"

func startWebhookAlone(b *testing.B) webhookAlone {
	b.Helper()
	dsn := testenv.PostgresDSN(b)
	brokers := testenv.Kafka(b)
	common := []string{"FABU_POSTGRES=" + dsn, "FABU_KAFKA=" + strings.Join(brokers, ","),
		"FABU_MASTER_KEY=" + masterKey, "FABU_ADMIN_PASSWORD=" + adminPassword}
	if mig := startOnce(b, common, "migrate"); !strings.Contains(mig, "postgres database is up to date") {
		b.Fatalf("migrate = %q", mig)
	}
	gwAddr, whAddr := freeAddr(b), freeAddr(b)
	gw := startFabu(b, "auth+gateway", gwAddr, common, "serve", "auth", "gateway", "--addr", gwAddr)
	a := login(b, gw.url, adminPassword)
	doc := map[string]any{"projects": []map[string]any{{"name": benchProject, "type": "static",
		"git_url": "https://github.example/bench/site.git", "source_dir": "site", "branch": "main",
		"deploy_path": "/srv/bench", "servers": []string{}, "platform": "github", "webhook_secret": webhookSecret}}}
	a.must(http.StatusOK, "POST", "/api/v1/apply", doc, nil)
	gw.stop(b)
	wh := startFabu(b, "webhook", whAddr, common, "serve", "webhook", "--addr", whAddr)
	return webhookAlone{proc: wh, url: wh.url + "/hooks/github/" + benchProject, dsn: dsn}
}

// benchPushTemplate is GitHub's push payload from the fixtures, decoded.
func benchPushTemplate(b *testing.B) map[string]any {
	b.Helper()
	raw, err := os.ReadFile(filepath.Join(fixtures(b), "github", "push.go-scm.json"))
	if err != nil {
		b.Fatal(err)
	}
	var p map[string]any
	if err := json.Unmarshal(raw, &p); err != nil {
		b.Fatal(err)
	}
	return p
}

// delivery is one prepared request: its body and headers, signed before the timed part.
type delivery struct {
	body    []byte
	headers http.Header
}

// benchDeliveries prepares n signed push deliveries to ref, each with its own after SHA and
// X-GitHub-Delivery id <prefix>-<i>, whose head commit message is message.
func benchDeliveries(b *testing.B, tmpl map[string]any, prefix, ref, message string, n int) []delivery {
	b.Helper()
	out := make([]delivery, n)
	before := strings.Repeat("0", 40)
	for i := range out {
		id := fmt.Sprintf("%s-%d", prefix, i)
		sum := sha1.Sum([]byte(id))
		after := hex.EncodeToString(sum[:])
		p := make(map[string]any, len(tmpl))
		for k, v := range tmpl {
			p[k] = v
		}
		head := map[string]any{}
		if h, ok := tmpl["head_commit"].(map[string]any); ok {
			for k, v := range h {
				head[k] = v
			}
		}
		head["id"], head["message"] = after, message
		p["head_commit"], p["commits"] = head, []any{head}
		p["ref"], p["before"], p["after"], p["created"], p["deleted"] = ref, before, after, false, false
		body, err := json.Marshal(p)
		if err != nil {
			b.Fatal(err)
		}
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		h.Set("X-GitHub-Event", "push")
		h.Set("X-GitHub-Delivery", id)
		h.Set("X-Hub-Signature-256", github.Sign(webhookSecret, body))
		out[i] = delivery{body: body, headers: h}
	}
	return out
}

// loadResult is what one load of deliveries got back.
type loadResult struct {
	sent      int
	elapsed   time.Duration
	latencies []time.Duration
	verdicts  map[string]int // "<status> <verdict>" → count
	errs      []string
}

// sendLoad posts ds from conc goroutines, each taking the next undelivered one, until all are
// sent or ctx ends. A request's latency runs from before Do until its body has been read.
func sendLoad(ctx context.Context, client *http.Client, url string, ds []delivery, conc int) loadResult {
	var next atomic.Int64
	var mu sync.Mutex
	res := loadResult{verdicts: map[string]int{}, latencies: make([]time.Duration, 0, len(ds))}
	var wg sync.WaitGroup
	start := time.Now()
	for w := 0; w < conc; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= len(ds) {
					return
				}
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(ds[i].body))
				if err != nil {
					panic(err)
				}
				req.Header = ds[i].headers.Clone()
				t0 := time.Now()
				resp, err := client.Do(req)
				var body []byte
				if err == nil {
					body, err = io.ReadAll(resp.Body)
					resp.Body.Close()
				}
				lat := time.Since(t0)
				if ctx.Err() != nil { // cut off by the time bound: not a delivery
					return
				}
				var out struct {
					Verdict string `json:"verdict"`
				}
				key := ""
				if err == nil {
					_ = json.Unmarshal(body, &out)
					key = fmt.Sprintf("%d %s", resp.StatusCode, out.Verdict)
				}
				mu.Lock()
				res.sent++
				res.latencies = append(res.latencies, lat)
				if err != nil {
					res.errs = append(res.errs, err.Error())
				} else {
					res.verdicts[key]++
					if resp.StatusCode != http.StatusAccepted && len(res.errs) < 20 {
						res.errs = append(res.errs, fmt.Sprintf("%d %s", resp.StatusCode, body))
					}
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	return res
}

// percentile is the nearest-rank p-th percentile of sorted.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(math.Ceil(p*float64(len(sorted)))) - 1
	return sorted[max(i, 0)]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func countRows(b *testing.B, dsn, query string, args ...any) int64 {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		b.Fatalf("connect to PostgreSQL: %v", err)
	}
	defer func() { _ = conn.Close(context.Background()) }()
	var n int64
	if err := conn.QueryRow(ctx, query, args...).Scan(&n); err != nil {
		b.Fatalf("%s: %v", query, err)
	}
	return n
}

func benchEnvInt(b *testing.B, key string, def int) int {
	b.Helper()
	v := os.Getenv(key)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 {
		b.Fatalf("%s=%q is not a positive integer", key, v)
	}
	return n
}

func first(s []string, n int) []string { return s[:min(n, len(s))] }

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
