package sshx

import (
	"bytes"
	"testing"
)

func TestPIDFilter(t *testing.T) {
	tests := []struct {
		name    string
		writes  []string
		wantPID int
		wantOut string
	}{
		{"marker then output", []string{"fabu-pid:4242\nboom\n"}, 4242, "boom\n"},
		{"split across writes", []string{"fabu-p", "id:42", "42\nbo", "om"}, 4242, "boom"},
		{"login chatter first", []string{"welcome\nfabu-pid:7\nerr"}, 7, "welcome\nerr"},
		{"marker-like output later passes", []string{"fabu-pid:7\nfabu-pid:8\n"}, 7, "fabu-pid:8\n"},
		{"no marker", []string{"plain", " stderr"}, 0, "plain stderr"},
		{"bad pid is output", []string{"fabu-pid:x\nfabu-pid:1\n"}, 0, "fabu-pid:x\nfabu-pid:1\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			f := newPIDFilter(&out)
			for _, w := range tt.writes {
				if n, err := f.Write([]byte(w)); n != len(w) || err != nil {
					t.Fatalf("Write(%q) = %d, %v", w, n, err)
				}
			}
			f.flush()
			if got := f.PID(); got != tt.wantPID {
				t.Errorf("PID() = %d, want %d", got, tt.wantPID)
			}
			if got := out.String(); got != tt.wantOut {
				t.Errorf("passed on %q, want %q", got, tt.wantOut)
			}
			select {
			case <-f.found:
				if tt.wantPID == 0 {
					t.Error("found closed without a PID")
				}
			default:
				if tt.wantPID != 0 {
					t.Error("found not closed after the PID arrived")
				}
			}
		})
	}
}

func TestWrapQuotesCommand(t *testing.T) {
	cmd, err := NewCommand("printf %%s %s", TextArg("it's"))
	if err != nil {
		t.Fatal(err)
	}
	want := `printf 'fabu-pid:%s\n' "$$" >&2 && exec /bin/sh -c 'printf %s '\''it'\''\'\'''\''s'\'''`
	if got := wrap(cmd); got != want {
		t.Errorf("wrap() = %s\nwant      %s", got, want)
	}
}
