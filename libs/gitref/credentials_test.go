package gitref

import "testing"

func TestSplitUserinfo(t *testing.T) {
	tests := []struct {
		name, raw, bare, info string
	}{
		{"https token", "https://oauth2:glpat-x@gitlab.example.com/g/app.git", "https://gitlab.example.com/g/app.git", "oauth2:glpat-x"},
		{"https user only is a token too", "https://ghp_abc@github.com/o/r.git", "https://github.com/o/r.git", "ghp_abc"},
		{"http with port", "http://u:p%40ss@127.0.0.1:3000/a.git", "http://127.0.0.1:3000/a.git", "u:p%40ss"},
		{"at sign in the path stays", "https://host/a@b.git", "https://host/a@b.git", ""},
		{"no user info", "https://gitlab.example.com/g/app.git", "https://gitlab.example.com/g/app.git", ""},
		{"ssh user is no secret", "ssh://git@host:22/g/app.git", "ssh://git@host:22/g/app.git", ""},
		{"ssh password is", "ssh://git:pw@host/g/app.git", "ssh://host/g/app.git", "git:pw"},
		{"scp-like", "git@gitlab.example.com:g/app.git", "git@gitlab.example.com:g/app.git", ""},
		{"local path", "/srv/git/app.git", "/srv/git/app.git", ""},
		{"upper-case scheme", "HTTPS://u:t@host/a.git", "HTTPS://host/a.git", "u:t"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			bare, info := SplitUserinfo(tt.raw)
			if bare != tt.bare || info != tt.info {
				t.Errorf("SplitUserinfo(%q) = %q, %q; want %q, %q", tt.raw, bare, info, tt.bare, tt.info)
			}
			if got := JoinUserinfo(bare, info); info != "" && got != tt.raw {
				t.Errorf("JoinUserinfo(%q, %q) = %q, want %q", bare, info, got, tt.raw)
			}
		})
	}
}

func TestSameOrigin(t *testing.T) {
	tests := []struct {
		a, b string
		want bool
	}{
		{"https://gitlab.example.com/g/a.git", "https://gitlab.example.com/h/b.git", true},
		{"https://gitlab.example.com/g/a.git", "HTTPS://GitLab.example.com/g/a.git", true},
		{"https://gitlab.example.com/g/a.git", "https://evil.example.com/g/a.git", false},
		{"https://gitlab.example.com/g/a.git", "http://gitlab.example.com/g/a.git", false},
		{"https://gitlab.example.com/g/a.git", "https://gitlab.example.com:8443/g/a.git", false},
		{"https://gitlab.example.com/g/a.git", "git@gitlab.example.com:g/a.git", false},
		{"/srv/a.git", "/srv/a.git", false},
	}
	for _, tt := range tests {
		if got := SameOrigin(tt.a, tt.b); got != tt.want {
			t.Errorf("SameOrigin(%q, %q) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func FuzzSplitUserinfo(f *testing.F) {
	for _, s := range []string{"https://u:p@h/a.git", "ssh://git@h/a", "/x", "a://@", "http://@/"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, raw string) {
		bare, info := SplitUserinfo(raw)
		if info == "" && bare != raw {
			t.Fatalf("SplitUserinfo(%q) changed the URL without user info: %q", raw, bare)
		}
		if info != "" && JoinUserinfo(bare, info) != raw {
			t.Fatalf("JoinUserinfo(SplitUserinfo(%q)) = %q", raw, JoinUserinfo(bare, info))
		}
		if info != "" && RedactURL(raw) == raw {
			t.Fatalf("RedactURL(%q) hid nothing though it has user info %q", raw, info)
		}
	})
}
