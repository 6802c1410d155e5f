package runlog_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"fabu.dev/libs/runlog"
	"fabu.dev/libs/store"
	"fabu.dev/libs/store/storetest"
)

// forEachDB runs f against a fresh SQLite and a fresh PostgreSQL database holding run r1.
func forEachDB(t *testing.T, f func(t *testing.T, db *store.DB)) {
	t.Helper()
	for _, driver := range storetest.Drivers {
		t.Run(driver, func(t *testing.T) {
			t.Parallel()
			db := storetest.Open(t, driver)
			for _, sql := range []string{
				`INSERT INTO projects (id, name, git_url, type, deploy_path) VALUES ('p1', 'shop', '/tmp/x.git', 'static', '/srv/shop')`,
				`INSERT INTO runs (id, project_id, status) VALUES ('r1', 'p1', 'building')`,
				`INSERT INTO runs (id, project_id, status) VALUES ('r2', 'p1', 'building')`,
			} {
				if err := db.Exec(sql).Error; err != nil {
					t.Fatal(err)
				}
			}
			f(t, db)
		})
	}
}

func newWriter(t *testing.T, db *store.DB, run string, mask []string) *runlog.Writer {
	t.Helper()
	w, err := runlog.NewWriter(context.Background(), db.DB, run, mask)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

func read(t *testing.T, db *store.DB, run string, after, limit int) []runlog.Line {
	t.Helper()
	ls, err := runlog.Read(context.Background(), db.DB, run, after, limit)
	if err != nil {
		t.Fatal(err)
	}
	return ls
}

// texts returns "n stream text" of each line.
func texts(ls []runlog.Line) []string {
	var out []string
	for _, l := range ls {
		out = append(out, fmt.Sprintf("%d %s %s", l.Line, l.Stream, l.Text))
	}
	return out
}

func equal(t *testing.T, what string, got, want []string) {
	t.Helper()
	g, w := strings.Join(got, "\n"), strings.Join(want, "\n")
	if g == w {
		return
	}
	if len(g)+len(w) > 400 { // a long line: say where they differ rather than print both
		i := 0
		for i < len(g) && i < len(w) && g[i] == w[i] {
			i++
		}
		t.Errorf("%s: %d bytes, want %d; first difference at byte %d: got %q, want %q",
			what, len(g), len(w), i, g[i:min(len(g), i+40)], w[i:min(len(w), i+40)])
		return
	}
	t.Errorf("%s:\n got %q\nwant %q", what, got, want)
}

// The builder and then the deployer write one numbered log: a second writer continues
// after the first one's lines, and other runs' lines do not count.
func TestSecondWriterContinuesNumbering(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		other := newWriter(t, db, "r2", nil)
		other.Printf("other run")
		if err := other.Close(); err != nil {
			t.Fatal(err)
		}
		w := newWriter(t, db, "r1", nil)
		w.Printf("admitted")
		if _, err := w.Stream(runlog.StreamStdout).Write([]byte("cloning\nchecked out\n")); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		w2 := newWriter(t, db, "r1", nil)
		if _, err := w2.Stream(runlog.StreamStderr).Write([]byte("uploading\n")); err != nil {
			t.Fatal(err)
		}
		w2.Printf("switched")
		if err := w2.Close(); err != nil {
			t.Fatal(err)
		}
		equal(t, "log of r1", texts(read(t, db, "r1", 0, 0)), []string{
			"1 system admitted", "2 stdout cloning", "3 stdout checked out", "4 stderr uploading", "5 system switched"})
		equal(t, "log of r2", texts(read(t, db, "r2", 0, 0)), []string{"1 system other run"})
	})
}

func TestLineContent(t *testing.T) {
	long := strings.Repeat("x", 9000)
	// 'a' then two-byte runes: the 8 KiB cut falls inside a rune.
	longMultibyte := "a" + strings.Repeat("é", 5000)
	tests := []struct {
		name   string
		mask   []string
		writes []string // to stdout, in separate Write calls
		want   []string // stored texts
	}{
		{"secrets masked", []string{"hunter2-token", "s3cr3t"}, []string{"login hunter2-token ok s3cr3t\n"},
			[]string{"login **** ok ****"}},
		{"secret split across writes", []string{"hunter2-token"}, []string{"token hunt", "er2-token end\n"},
			[]string{"token **** end"}},
		{"secret across the cut of a long line without newline", []string{"hunter2-token"},
			[]string{strings.Repeat("x", 8<<10-5) + "hunter2", "-token tail"},
			[]string{strings.Repeat("x", 8<<10-5), "**** tail"}},
		{"tiny mask strings ignored", []string{"ab", ""}, []string{"abc\n"}, []string{"abc"}},
		{"CRLF trimmed", nil, []string{"one\r\ntwo\r\n"}, []string{"one", "two"}},
		{"partial line flushed on Close", nil, []string{"done\nno newline"}, []string{"done", "no newline"}},
		{"invalid UTF-8 made valid", nil, []string{"bad \xff\xfe byte\n"}, []string{"bad \uFFFD byte"}},
		{"long line cut", nil, []string{long + "\n"}, []string{strings.Repeat("x", 8<<10) + " …[line truncated]"}},
		{"long multibyte line cut on a rune boundary", nil, []string{longMultibyte + "\n"},
			[]string{"a" + strings.Repeat("é", (8<<10-1)/2) + " …[line truncated]"}},
	}
	forEachDB(t, func(t *testing.T, db *store.DB) {
		for i, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				run := fmt.Sprintf("run%d", i)
				if err := db.Exec(`INSERT INTO runs (id, project_id, status) VALUES (?, 'p1', 'building')`, run).Error; err != nil {
					t.Fatal(err)
				}
				w := newWriter(t, db, run, tt.mask)
				s := w.Stream(runlog.StreamStdout)
				for _, p := range tt.writes {
					if _, err := s.Write([]byte(p)); err != nil {
						t.Fatal(err)
					}
				}
				if err := w.Close(); err != nil {
					t.Fatalf("Close: %v", err)
				}
				var got []string
				for _, l := range read(t, db, run, 0, 0) {
					if !utf8.ValidString(l.Text) {
						t.Errorf("line %d is not valid UTF-8", l.Line)
					}
					got = append(got, l.Text)
				}
				equal(t, "lines", got, tt.want)
			})
		}
	})
}

// A line written before a quiet spell reaches readers without further writes or Close.
func TestBackgroundFlush(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		w := newWriter(t, db, "r1", nil)
		defer w.Close()
		w.Printf("first")
		w.Printf("second, then silence")
		deadline := time.Now().Add(5 * time.Second)
		for {
			ls := read(t, db, "r1", 0, 0)
			if len(ls) == 2 {
				equal(t, "lines", texts(ls), []string{"1 system first", "2 system second, then silence"})
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("after 5s readers see %q", texts(ls))
			}
			time.Sleep(20 * time.Millisecond) // poll interval
		}
	})
}

func TestReadPaging(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		w := newWriter(t, db, "r1", nil)
		s := w.Stream(runlog.StreamStdout)
		for i := 1; i <= 25; i++ {
			fmt.Fprintf(s, "line %d\n", i)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		tests := []struct {
			name         string
			after, limit int
			first, count int
		}{
			{"first page", 0, 10, 1, 10},
			{"next page", 10, 10, 11, 10},
			{"last partial page", 20, 10, 21, 5},
			{"past the end", 25, 10, 0, 0},
			{"no limit means all", 0, 0, 1, 25},
			{"negative limit means all", 3, -1, 4, 22},
		}
		for _, tt := range tests {
			ls := read(t, db, "r1", tt.after, tt.limit)
			if len(ls) != tt.count {
				t.Errorf("%s: %d lines, want %d", tt.name, len(ls), tt.count)
				continue
			}
			for i, l := range ls {
				if l.Line != tt.first+i || l.Text != fmt.Sprintf("line %d", tt.first+i) {
					t.Errorf("%s: line %d = %d %q", tt.name, i, l.Line, l.Text)
					break
				}
			}
		}
	})
}

// A writer batches: many lines written at once all arrive, numbered without gaps.
func TestManyLines(t *testing.T) {
	forEachDB(t, func(t *testing.T, db *store.DB) {
		w := newWriter(t, db, "r1", nil)
		var b strings.Builder
		for i := 1; i <= 1000; i++ {
			fmt.Fprintf(&b, "l%d\n", i)
		}
		if _, err := w.Stream(runlog.StreamStdout).Write([]byte(b.String())); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		ls := read(t, db, "r1", 0, 0)
		if len(ls) != 1000 || ls[0].Text != "l1" || ls[999].Line != 1000 || ls[999].Text != "l1000" {
			t.Errorf("got %d lines, last %+v", len(ls), ls[len(ls)-1])
		}
	})
}
