package gateway

import (
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"testing"
	"time"

	"fabu.dev/libs/store/storetest"
)

// deliveryRecord is a row of webhook_deliveries as the webhook service writes it.
type deliveryRecord struct {
	ID          string `gorm:"primaryKey"`
	Platform    string
	Event       string
	ProjectID   *string
	Verdict     string
	Reason      string
	DeliveryKey string
	RunID       string
	Ref         string
	CommitSHA   string `gorm:"column:commit_sha"`
	ReceivedAt  time.Time
}

func (deliveryRecord) TableName() string { return "webhook_deliveries" }

// seedDeliveries records n deliveries spread over projects (two real ones, a deleted one and
// none), platforms and verdicts. Every third delivery shares its received_at with the one
// before it, and IDs do not follow time, so the order needs the ID as tie-breaker.
func seedDeliveries(t *testing.T, e *env, n int, projectIDs []string) []deliveryRecord {
	t.Helper()
	gone := "01DELETEDPROJECT"
	owners := []*string{&projectIDs[0], &projectIDs[1], &gone, nil}
	platformsList := []string{"gitlab", "github", "gitee"}
	verdicts := []string{"triggered", "ignored", "rejected", "duplicate", "rejected"}
	base := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	at := base
	out := make([]deliveryRecord, 0, n)
	for i := 0; i < n; i++ {
		if i%3 != 2 {
			at = base.Add(time.Duration(i) * 1500 * time.Millisecond)
		}
		d := deliveryRecord{
			ID:       fmt.Sprintf("D%03d", (i*37)%n), // a permutation of 0..n-1 when n is not a multiple of 37
			Platform: platformsList[i%3], Event: "Push Hook", ProjectID: owners[i%4], Verdict: verdicts[i%5],
			Reason: fmt.Sprintf("reason %d", i), DeliveryKey: fmt.Sprintf("key-%d", i), Ref: "refs/heads/main",
			CommitSHA: fmt.Sprintf("%040d", i), ReceivedAt: at,
		}
		if d.Verdict == "triggered" {
			d.RunID = fmt.Sprintf("RUN%03d", i)
		}
		if err := e.db.Create(&d).Error; err != nil {
			t.Fatal(err)
		}
		out = append(out, d)
	}
	return out
}

// newestFirst is the order the API promises.
func newestFirst(ds []deliveryRecord) []string {
	ds = append([]deliveryRecord(nil), ds...)
	sort.Slice(ds, func(i, j int) bool {
		if !ds[i].ReceivedAt.Equal(ds[j].ReceivedAt) {
			return ds[i].ReceivedAt.After(ds[j].ReceivedAt)
		}
		return ds[i].ID > ds[j].ID
	})
	ids := make([]string, len(ds))
	for i, d := range ds {
		ids[i] = d.ID
	}
	return ids
}

// pageAll follows before= through every page of query, failing on a repeated row.
func pageAll(t *testing.T, e *env, query url.Values, limit int) []string {
	t.Helper()
	var all []string
	seen := map[string]bool{}
	before := ""
	for pages := 0; ; pages++ {
		if pages > 100 {
			t.Fatal("paging does not end")
		}
		q := url.Values{}
		for k, v := range query {
			q[k] = v
		}
		q.Set("limit", fmt.Sprint(limit))
		if before != "" {
			q.Set("before", before)
		}
		var page []DeliveryBody
		if s := e.call("GET", "/api/v1/deliveries?"+q.Encode(), nil, &page); s != http.StatusOK {
			t.Fatalf("GET deliveries?%s = %d", q.Encode(), s)
		}
		if len(page) > limit {
			t.Fatalf("page of %d rows with limit %d", len(page), limit)
		}
		for _, d := range page {
			if seen[d.ID] {
				t.Fatalf("delivery %s appears on two pages (query %v)", d.ID, query)
			}
			seen[d.ID] = true
			all = append(all, d.ID)
		}
		if len(page) < limit {
			return all
		}
		before = page[len(page)-1].ID
	}
}

func TestListDeliveries(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			var shop, blog ProjectBody
			for name, out := range map[string]*ProjectBody{"shop": &shop, "blog": &blog} {
				p := project(name)
				delete(p, "servers")
				if s := e.call("POST", "/api/v1/projects", p, out); s != http.StatusCreated {
					t.Fatalf("create project %s: %d", name, s)
				}
			}
			all := seedDeliveries(t, e, 61, []string{shop.ID, blog.ID})

			// Without parameters: the newest 50, in order, with every field.
			var page []DeliveryBody
			if s := e.call("GET", "/api/v1/deliveries", nil, &page); s != http.StatusOK {
				t.Fatalf("GET deliveries = %d", s)
			}
			want := newestFirst(all)
			if len(page) != 50 {
				t.Fatalf("default page has %d rows, want 50", len(page))
			}
			for i, d := range page {
				if d.ID != want[i] {
					t.Fatalf("row %d is %s, want %s (order newest first, then id)", i, d.ID, want[i])
				}
			}
			byID := map[string]deliveryRecord{}
			for _, d := range all {
				byID[d.ID] = d
			}
			names := map[string]string{shop.ID: "shop", blog.ID: "blog"}
			for _, d := range page {
				r := byID[d.ID]
				wantPID, wantName := "", ""
				if r.ProjectID != nil {
					wantPID, wantName = *r.ProjectID, names[*r.ProjectID]
				}
				if d.Platform != r.Platform || d.Event != r.Event || d.ProjectID != wantPID || d.Project != wantName ||
					d.Verdict != r.Verdict || d.Reason != r.Reason || d.DeliveryKey != r.DeliveryKey || d.RunID != r.RunID ||
					d.Ref != r.Ref || d.Commit != r.CommitSHA || !d.ReceivedAt.Equal(r.ReceivedAt) {
					t.Errorf("delivery %s shown as %+v, stored %+v", d.ID, d, r)
				}
			}

			// Every filter, paged in small pages, gives exactly the matching rows in order.
			filters := []url.Values{
				{},
				{"project_id": {shop.ID}},
				{"project_id": {"01DELETEDPROJECT"}},
				{"platform": {"github"}},
				{"verdict": {"rejected"}},
				{"project_id": {blog.ID}, "verdict": {"ignored"}},
				{"project_id": {shop.ID}, "platform": {"gitee"}, "verdict": {"triggered"}},
				{"verdict": {"duplicate"}, "platform": {"gitlab"}, "project_id": {""}},
			}
			for _, f := range filters {
				var match []deliveryRecord
				for _, d := range all {
					if (f.Get("project_id") == "" || (d.ProjectID != nil && *d.ProjectID == f.Get("project_id"))) &&
						(f.Get("platform") == "" || d.Platform == f.Get("platform")) &&
						(f.Get("verdict") == "" || d.Verdict == f.Get("verdict")) {
						match = append(match, d)
					}
				}
				if len(match) == 0 {
					t.Fatalf("filter %v matches no seeded delivery; the test data does not exercise it", f)
				}
				for _, limit := range []int{1, 4, 200} {
					got := pageAll(t, e, f, limit)
					if fmt.Sprint(got) != fmt.Sprint(newestFirst(match)) {
						t.Errorf("filter %v limit %d:\n got %v\nwant %v", f, limit, got, newestFirst(match))
					}
				}
			}

			// A delivery recorded while paging shows up on no later page: pages continue from
			// the cursor, not from an offset.
			var first []DeliveryBody
			e.call("GET", "/api/v1/deliveries?limit=10", nil, &first)
			late := deliveryRecord{ID: "ZLATE", Platform: "gitlab", Verdict: "ignored", ReceivedAt: time.Date(2026, 3, 2, 0, 0, 0, 0, time.UTC)}
			if err := e.db.Create(&late).Error; err != nil {
				t.Fatal(err)
			}
			var second []DeliveryBody
			e.call("GET", "/api/v1/deliveries?limit=10&before="+first[9].ID, nil, &second)
			if len(second) != 10 || second[0].ID != want[10] || second[9].ID != want[19] {
				t.Errorf("second page after a new delivery starts %v, want %v", second, want[10:20])
			}
			var newest []DeliveryBody
			e.call("GET", "/api/v1/deliveries?limit=1", nil, &newest)
			if len(newest) != 1 || newest[0].ID != "ZLATE" || newest[0].ProjectID != "" || newest[0].Project != "" {
				t.Errorf("newest delivery %+v, want ZLATE without a project", newest)
			}
		})
	}
}

func TestListDeliveriesRefusesBadParameters(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			e := newEnv(t, driver)
			seedDeliveries(t, e, 3, []string{"P1", "P2"})
			for _, q := range []string{
				"limit=0", "limit=201", "limit=-1", "limit=ten", "limit=1.5",
				"verdict=accepted", "verdict=REJECTED", "platform=bitbucket", "platform=GitLab",
				"before=NOPE", "before=D001%27%20OR%201=1", "before=" + url.QueryEscape("../D001"),
				"project_id=" + url.QueryEscape("a b"), "project_id=" + url.QueryEscape("x' OR '1'='1"),
			} {
				var out map[string]any
				if s := e.call("GET", "/api/v1/deliveries?"+q, nil, &out); s != http.StatusBadRequest || out["code"] != "invalid" || out["message"] == "" {
					t.Errorf("GET deliveries?%s = %d %v, want 400 invalid with a message", q, s, out)
				}
			}
			for _, q := range []string{"limit=1", "limit=200", "before=D001", "verdict=rejected&platform=gitee"} {
				if s := e.call("GET", "/api/v1/deliveries?"+q, nil, nil); s != http.StatusOK {
					t.Errorf("GET deliveries?%s = %d, want 200", q, s)
				}
			}
			// Without a valid token there are no deliveries to see.
			for _, h := range []string{"", "Bearer wrong"} {
				req, _ := http.NewRequest("GET", e.srv.URL+"/api/v1/deliveries", nil)
				if h != "" {
					req.Header.Set("Authorization", h)
				}
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusUnauthorized {
					t.Errorf("Authorization %q: status %d, want 401", h, resp.StatusCode)
				}
			}
		})
	}
}
