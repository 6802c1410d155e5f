package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkWebhookToCurrent measures the walking skeleton's path end to end: from the moment
// a GitLab push for a new commit of a 1 MiB static site is accepted by the webhook service
// until `current` on the sshd target points at the new release. One op is one deploy.
func BenchmarkWebhookToCurrent(b *testing.B) {
	for _, setup := range []struct {
		name  string
		start func(testing.TB) (*proc, *api)
	}{{"six-processes", six}, {"fabu-up", up}} {
		b.Run(setup.name, func(b *testing.B) {
			_, a := setup.start(b)
			r := newRepo(b)
			tg := newTarget(b)
			prev := r.commit(site("0", 1<<20))
			configure(b, a, tg, r, "bench")
			// One warm-up deploy fills the mirror, as on any installation after its first run.
			a.awaitRun(pushHook(b, a, "bench", gitlabPush(b, r, strings.Repeat("0", 40), prev)), defaultWait)
			var total time.Duration
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				b.StopTimer()
				next := r.commit(site(fmt.Sprint(i+1), 1<<20))
				payload := gitlabPush(b, r, prev, next)
				b.StartTimer()
				start := time.Now()
				id := pushHook(b, a, "bench", payload)
				awaitCurrent(b, tg, id)
				total += time.Since(start)
				b.StopTimer()
				if got := a.awaitRun(id, defaultWait); got.Status != "succeeded" {
					b.Fatalf("run %s = %+v", id, got)
				}
				prev = next
				b.StartTimer()
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms/deploy")
		})
	}
}

// awaitCurrent polls until the target's current symlink points at release id.
func awaitCurrent(tb testing.TB, tg *target, id string) {
	tb.Helper()
	link := filepath.Join(tg.path, "current")
	deadline := time.Now().Add(defaultWait)
	for time.Now().Before(deadline) {
		if dest, err := os.Readlink(link); err == nil && filepath.Base(dest) == id {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	tb.Fatalf("current never pointed at %s", id)
}
