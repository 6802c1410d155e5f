package webhook

import (
	"context"
	"testing"
	"time"

	"fabu.dev/libs/forge/gitee"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// A flood of unverified deliveries is counted per project and reason, and only a sample of
// them is stored as delivery rows (issue 10 item 13: 3,685 rows in 5 s from one client).
func TestRejectionsAreCountedAndSampled(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			body := push(t, "refs/heads/master", "x")
			const flood = 3 * rejectionSamples
			for range flood {
				status, _ := e.post(t, "/hooks/gitlab/shop", body, map[string]string{"X-Gitlab-Event": "Push Hook", "X-Gitlab-Token": "wrong"})
				if status != 401 {
					t.Fatalf("forged delivery = %d, want 401", status)
				}
			}
			for range 3 {
				e.post(t, "/hooks/gitlab/no-such-project", body, nil)
			}
			if n := e.count(t, "webhook_deliveries", "1 = 1"); n > rejectionSamples+3 {
				t.Errorf("delivery rows = %d after %d rejections, want at most %d", n, flood+3, rejectionSamples+3)
			}
			if n := e.count(t, "webhook_deliveries", "project_id = ?", "p1"); n == 0 {
				t.Error("no sample of the rejections kept")
			}
			for _, c := range []struct {
				project, reason string
				want            int64
			}{{"p1", RejectSignature, flood}, {"", RejectNoProject, 3}} {
				var got int64
				err := e.db.Table("webhook_rejections").Select("COALESCE(SUM(rejected), 0)").
					Where("project_id = ? AND platform = ? AND reason = ?", c.project, "gitlab", c.reason).Scan(&got).Error
				if err != nil {
					t.Fatal(err)
				}
				if got != c.want {
					t.Errorf("rejections of %q for %s = %d, want %d", c.project, c.reason, got, c.want)
				}
			}
		})
	}
}

// Delivery rows and rejection counts fall under retention like the audit log.
func TestDeliveryRetention(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver, rules{})
			old := time.Now().UTC().Add(-48 * time.Hour)
			if err := e.db.Exec(`INSERT INTO webhook_deliveries (id, platform, verdict, received_at) VALUES ('old', 'gitlab', 'ignored', ?), ('new', 'gitlab', 'ignored', ?)`,
				old, time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
			if err := e.db.Exec(`INSERT INTO webhook_rejections (project_id, platform, reason, period_start, rejected, sampled, last_at)
				VALUES ('p1', 'gitlab', 'signature', ?, 5, 1, ?), ('p1', 'gitlab', 'signature', ?, 2, 1, ?)`,
				old.Truncate(time.Hour), old, time.Now().UTC().Truncate(time.Hour), time.Now().UTC()).Error; err != nil {
				t.Fatal(err)
			}
			n, err := e.svc.prune(context.Background(), time.Now(), 24*time.Hour)
			if err != nil {
				t.Fatal(err)
			}
			if n != 2 {
				t.Errorf("pruned %d rows, want 2", n)
			}
			if got := e.count(t, "webhook_deliveries", "1 = 1"); got != 1 {
				t.Errorf("deliveries left = %d, want 1", got)
			}
			if got := e.count(t, "webhook_rejections", "1 = 1"); got != 1 {
				t.Errorf("rejection counts left = %d, want 1", got)
			}
		})
	}
}

// Refusals of verified deliveries are counted but always recorded: Gitee's replay defence
// needs the key of every verified delivery, or headers past the sample would be replayable
// with another body.
func TestVerifiedRefusalsAreAllRecorded(t *testing.T) {
	e := newEnv(t, store.SQLite, rules{platform: "gitee", branches: "*"})
	var last map[string]string
	for i := range rejectionSamples + 2 {
		last = giteeHeaders(gitee.EventPushHook, time.Now().Add(time.Duration(i)*time.Millisecond), hookSecret)
		bad := giteePush(t, "refs/heads/a..b", "a ref fabu never deploys")
		if status, out := e.post(t, "/hooks/gitee/shop", bad, last); status != 400 {
			t.Fatalf("push %d of a refused ref = %d %v, want 400", i, status, out)
		}
	}
	status, out := e.post(t, "/hooks/gitee/shop", giteePush(t, "refs/heads/master", "x"), last)
	if status != 200 || out["verdict"] != VerdictDuplicate {
		t.Errorf("the last one's headers with a readable body = %d %v, want 200 duplicate", status, out)
	}
}
