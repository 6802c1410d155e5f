package main

import "testing"

func TestPublicURL(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		args    []string
		want    string
		wantErr bool
	}{
		{name: "default is http://addr", want: "http://127.0.0.1:8080"},
		{name: "addr without host", args: []string{"--addr", ":9000"}, want: "http://localhost:9000"},
		{name: "flag, trailing slash dropped", args: []string{"--public-url", "https://fabu.example.com/"}, want: "https://fabu.example.com"},
		{name: "environment", env: map[string]string{"FABU_PUBLIC_URL": "https://ci.example.com/fabu"}, want: "https://ci.example.com/fabu"},
		{name: "not http", args: []string{"--public-url", "ftp://fabu.example.com"}, wantErr: true},
		{name: "credentials", args: []string{"--public-url", "https://u:p@fabu.example.com"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := resolveArgs(t, false, tt.args...)
			if tt.wantErr {
				if err == nil {
					t.Errorf("resolve %v: PublicURL %q, want an error", tt.args, cfg.PublicURL)
				}
				return
			}
			if err != nil || cfg.PublicURL != tt.want {
				t.Errorf("PublicURL = %q, %v; want %q", cfg.PublicURL, err, tt.want)
			}
		})
	}
}
