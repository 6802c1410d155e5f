package audit_test

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/store/storetest"
)

func TestAudit(t *testing.T) {
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Run("RecordAndRead", func(t *testing.T) { testRecord(t, driver) })
			t.Run("Filters", func(t *testing.T) { testFilters(t, driver) })
			t.Run("KeysetPaging", func(t *testing.T) { testPaging(t, driver) })
			t.Run("RecordInRolledBackTx", func(t *testing.T) { testTx(t, driver) })
		})
	}
}

func testRecord(t *testing.T, driver string) {
	db := storetest.Open(t, driver)
	at := time.Date(2026, 5, 1, 10, 0, 0, 0, time.FixedZone("CST", 8*3600))
	in := audit.Entry{At: at, Actor: "alice", ActorID: "u1", Action: "project.update", Target: "project", TargetID: "p1",
		Outcome: audit.OK, IP: "10.0.0.7", UserAgent: "curl/8", Detail: map[string]any{
			"name": "shop", "webhook_secret": "s3cr3t-value", "nested": map[string]any{"Password": "hunter2", "port": float64(22)},
			"git_url": "https://oauth2:glpat-abcdef@gitlab.example.com/g/shop.git", "note": "used fabu_abcdefghijklmnopqrstuvwxyz012345",
		}}
	if err := audit.Record(db.DB, in); err != nil {
		t.Fatalf("Record: %v", err)
	}
	p, err := audit.Query(db.DB, audit.Filter{})
	if err != nil {
		t.Fatalf("Query: %v", err)
	}
	if len(p.Entries) != 1 || p.Next != 0 {
		t.Fatalf("Query = %d entries, next %d; want 1, 0", len(p.Entries), p.Next)
	}
	got := p.Entries[0]
	if got.ID == 0 || !got.At.Equal(at) || got.Actor != "alice" || got.ActorID != "u1" || got.Action != "project.update" ||
		got.Target != "project" || got.TargetID != "p1" || got.Outcome != audit.OK || got.IP != "10.0.0.7" || got.UserAgent != "curl/8" {
		t.Errorf("entry = %+v, want the recorded fields", got)
	}
	if got.Detail["name"] != "shop" {
		t.Errorf("detail name = %v, want shop", got.Detail["name"])
	}
	if got.Detail["webhook_secret"] != audit.Redacted {
		t.Errorf("detail webhook_secret = %v, want %q", got.Detail["webhook_secret"], audit.Redacted)
	}
	nested, _ := got.Detail["nested"].(map[string]any)
	if nested["Password"] != audit.Redacted || nested["port"] != float64(22) {
		t.Errorf("nested detail = %v, want Password redacted and port 22", nested)
	}
	raw, _ := json.Marshal(got)
	for _, secret := range []string{"s3cr3t-value", "hunter2", "glpat-abcdef", "fabu_abcdefghijklmnopqrstuvwxyz012345"} {
		if bytes.Contains(raw, []byte(secret)) {
			t.Errorf("stored entry contains secret %q: %s", secret, raw)
		}
	}
	if !strings.Contains(fmt.Sprint(got.Detail["git_url"]), "gitlab.example.com/g/shop.git") {
		t.Errorf("git_url = %v, want the URL without its password", got.Detail["git_url"])
	}

	for name, e := range map[string]audit.Entry{
		"no action":       {Outcome: audit.OK},
		"unknown outcome": {Action: "x", Outcome: "maybe"},
	} {
		if err := audit.Record(db.DB, e); err == nil {
			t.Errorf("Record(%s) = nil, want an error", name)
		}
	}
}

func TestRedact(t *testing.T) {
	cases := []struct {
		name string
		in   any
		want string // JSON of the result
	}{
		{"secret keys", map[string]any{"token": "abc", "api_key": "k", "private_key": "pk", "has_token": true, "name": "n"},
			`{"api_key":"[redacted]","has_token":"[redacted]","name":"n","private_key":"[redacted]","token":"[redacted]"}`},
		{"cleared secret stays empty", map[string]any{"webhook_secret": ""}, `{"webhook_secret":""}`},
		{"list of objects", []any{map[string]any{"password": "p", "user": "u"}}, `[{"password":"[redacted]","user":"u"}]`},
		{"bearer in text", "header was Bearer abc.def.ghi", `"header was Bearer [redacted]"`},
		{"jwt in text", "tok eyJhbGciOiJFZERTQSJ9.eyJzdWIiOiJ1MSJ9.c2lnbmF0dXJl end", `"tok [redacted] end"`},
		{"token as url user", "https://ghp_abcdef@github.com/o/r.git", `"https://xxxxx@github.com/o/r.git"`},
		{"struct by json names", struct {
			Name   string `json:"name"`
			Secret string `json:"secret"`
		}{"a", "b"}, `{"name":"a","secret":"[redacted]"}`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			b, err := json.Marshal(audit.Redact(c.in))
			if err != nil {
				t.Fatal(err)
			}
			if string(b) != c.want {
				t.Errorf("Redact = %s, want %s", b, c.want)
			}
		})
	}
}

func testFilters(t *testing.T, driver string) {
	db := storetest.Open(t, driver)
	base := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC)
	entries := []audit.Entry{
		{Actor: "alice", ActorID: "u1", Action: "project.create", Target: "project", TargetID: "p1", Outcome: audit.OK, Detail: map[string]any{"name": "Shop_Front"}},
		{Actor: "alice", ActorID: "u1", Action: "project.update", Target: "project", TargetID: "p2", Outcome: audit.Refused},
		{Actor: "bob", ActorID: "u2", Action: "run.start", Target: "project", TargetID: "p1", Outcome: audit.OK, IP: "192.0.2.9"},
		{Actor: "bob", ActorID: "u2", Action: "server.delete", Target: "server", TargetID: "s1", Outcome: audit.Failed},
		{Actor: "", ActorID: "", Action: "auth.login", Target: "user", TargetID: "mallory", Outcome: audit.Refused, UserAgent: "Evil/1.0"},
	}
	for i, e := range entries {
		e.At = base.Add(time.Duration(i) * time.Hour)
		if err := audit.Record(db.DB, e); err != nil {
			t.Fatalf("Record #%d: %v", i, err)
		}
	}
	cases := []struct {
		name string
		f    audit.Filter
		want []string // actions, newest first
	}{
		{"all", audit.Filter{}, []string{"auth.login", "server.delete", "run.start", "project.update", "project.create"}},
		{"actor name", audit.Filter{Actor: "alice"}, []string{"project.update", "project.create"}},
		{"actor id", audit.Filter{Actor: "u2"}, []string{"server.delete", "run.start"}},
		{"action exact", audit.Filter{Action: "project.update"}, []string{"project.update"}},
		{"action prefix dot", audit.Filter{Action: "project."}, []string{"project.update", "project.create"}},
		{"action prefix star", audit.Filter{Action: "auth.*"}, []string{"auth.login"}},
		{"action is not a prefix", audit.Filter{Action: "project"}, nil},
		{"target id", audit.Filter{Target: "p1"}, []string{"run.start", "project.create"}},
		{"target kind", audit.Filter{Target: "server"}, []string{"server.delete"}},
		{"target kind:id", audit.Filter{Target: "project:p2"}, []string{"project.update"}},
		{"outcome", audit.Filter{Outcome: audit.Refused}, []string{"auth.login", "project.update"}},
		{"q in detail, any case", audit.Filter{Q: "shop_front"}, []string{"project.create"}},
		{"q underscore is literal", audit.Filter{Q: "shop%front"}, nil},
		{"q in ip", audit.Filter{Q: "192.0.2"}, []string{"run.start"}},
		{"q in user agent", audit.Filter{Q: "evil"}, []string{"auth.login"}},
		{"since", audit.Filter{Since: base.Add(3 * time.Hour)}, []string{"auth.login", "server.delete"}},
		{"until", audit.Filter{Until: base.Add(time.Hour)}, []string{"project.create"}},
		{"since and until", audit.Filter{Since: base.Add(time.Hour), Until: base.Add(3 * time.Hour)}, []string{"run.start", "project.update"}},
		{"combined", audit.Filter{Actor: "bob", Outcome: audit.OK}, []string{"run.start"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p, err := audit.Query(db.DB, c.f)
			if err != nil {
				t.Fatalf("Query: %v", err)
			}
			var got []string
			for _, e := range p.Entries {
				got = append(got, e.Action)
			}
			if strings.Join(got, ",") != strings.Join(c.want, ",") {
				t.Errorf("Query(%+v) = %v, want %v", c.f, got, c.want)
			}
		})
	}
}

func testPaging(t *testing.T, driver string) {
	db := storetest.Open(t, driver)
	at := time.Date(2026, 5, 1, 0, 0, 0, 0, time.UTC) // all at the same instant: the id orders them
	const n = 23
	for i := range n {
		action := "run.start"
		if i%3 == 0 {
			action = "project.update"
		}
		if err := audit.Record(db.DB, audit.Entry{At: at, Action: action, Outcome: audit.OK, TargetID: fmt.Sprint(i)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []audit.Filter{{Limit: 5}, {Limit: 4, Action: "run.start"}} {
		seen := map[string]bool{}
		var order []int64
		pages := 0
		for {
			p, err := audit.Query(db.DB, f)
			if err != nil {
				t.Fatal(err)
			}
			pages++
			if len(p.Entries) > f.Limit {
				t.Fatalf("page of %d entries, limit %d", len(p.Entries), f.Limit)
			}
			for _, e := range p.Entries {
				if seen[e.TargetID] {
					t.Errorf("entry %s repeated", e.TargetID)
				}
				seen[e.TargetID] = true
				order = append(order, e.ID)
			}
			if p.Next == 0 {
				break
			}
			// An entry recorded while paging is newer than every cursor: it shows on no later page.
			if err := audit.Record(db.DB, audit.Entry{At: at, Action: f.Action + "x", Outcome: audit.OK, TargetID: "new"}); err != nil {
				t.Fatal(err)
			}
			f.Before = p.Next
			if pages > n {
				t.Fatal("paging does not end")
			}
		}
		want := n
		if f.Action != "" {
			want = n - (n+2)/3
		}
		if len(seen) != want {
			t.Errorf("filter %+v: paging saw %d entries, want %d", f, len(seen), want)
		}
		for i := 1; i < len(order); i++ {
			if order[i] >= order[i-1] {
				t.Errorf("ids not strictly descending at %d: %v", i, order)
				break
			}
		}
	}
}

func testTx(t *testing.T, driver string) {
	db := storetest.Open(t, driver)
	errBoom := errors.New("boom")
	err := db.Tx(t.Context(), func(tx *gorm.DB) error {
		if err := audit.Record(tx, audit.Entry{Action: "project.delete", Outcome: audit.OK}); err != nil {
			return err
		}
		return errBoom
	})
	if !errors.Is(err, errBoom) {
		t.Fatalf("Tx = %v, want boom", err)
	}
	p, err := audit.Query(db.DB, audit.Filter{})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Entries) != 0 {
		t.Errorf("after rollback %d entries, want none", len(p.Entries))
	}
}

func TestCSV(t *testing.T) {
	var buf bytes.Buffer
	w, err := audit.NewCSVWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 5, 1, 12, 30, 0, 0, time.UTC)
	entries := []audit.Entry{
		{ID: 2, At: at, Actor: "alice, the admin", Action: "project.update", Target: "project", TargetID: "p1", Outcome: audit.OK,
			IP: "10.0.0.1", UserAgent: `Mozilla "quoted"`, Detail: map[string]any{"note": "line one\nline two"}},
		{ID: 1, At: at, Actor: "=HYPERLINK(\"http://evil\")", ActorID: "+1", Action: "-2", Target: "@SUM(A1)", TargetID: "\tx",
			Outcome: audit.Refused, UserAgent: "\rcr"},
	}
	for _, e := range entries {
		if err := w.Write(e); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err := csv.NewReader(bytes.NewReader(buf.Bytes())).ReadAll()
	if err != nil {
		t.Fatalf("read back CSV: %v\n%s", err, buf.String())
	}
	if len(recs) != 3 {
		t.Fatalf("%d records, want header + 2:\n%s", len(recs), buf.String())
	}
	if strings.Join(recs[0], ",") != strings.Join(audit.CSVHeader, ",") {
		t.Errorf("header = %v, want %v", recs[0], audit.CSVHeader)
	}
	r := recs[1]
	if r[0] != "2" || r[1] != "2026-05-01T12:30:00Z" || r[2] != "alice, the admin" || r[9] != `Mozilla "quoted"` ||
		r[10] != `{"note":"line one\nline two"}` {
		t.Errorf("row 1 = %q", r)
	}
	if !strings.Contains(buf.String(), `"alice, the admin"`) || !strings.Contains(buf.String(), `"Mozilla ""quoted"""`) {
		t.Errorf("comma and quote fields not quoted per RFC 4180:\n%s", buf.String())
	}
	r = recs[2]
	want := map[int]string{2: `'=HYPERLINK("http://evil")`, 3: "'+1", 4: "'-2", 5: "'@SUM(A1)", 6: "'\tx", 9: "'\rcr"}
	for i, v := range want {
		if r[i] != v {
			t.Errorf("row 2 column %s = %q, want %q", audit.CSVHeader[i], r[i], v)
		}
	}

	// Embedded line breaks survive a round trip inside one quoted field.
	var nl bytes.Buffer
	w2, _ := audit.NewCSVWriter(&nl)
	if err := w2.Write(audit.Entry{ID: 3, At: at, Action: "x", Outcome: audit.OK, Actor: "a\nb"}); err != nil {
		t.Fatal(err)
	}
	if err := w2.Flush(); err != nil {
		t.Fatal(err)
	}
	recs, err = csv.NewReader(&nl).ReadAll()
	if err != nil || len(recs) != 2 || recs[1][2] != "a\nb" {
		t.Errorf("newline field read back as %q (err %v)", recs, err)
	}
}
