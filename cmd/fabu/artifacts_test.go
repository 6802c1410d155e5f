package main

import "testing"

func TestArtifactSettings(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		wantURL   string
		wantDays  int
		wantError bool
	}{
		{name: "defaults", args: []string{"--addr", "0.0.0.0:7002"}, wantURL: "http://localhost:7002", wantDays: 30},
		{name: "flags", args: []string{"--artifact-url", "http://builder-1.internal:8080/", "--artifact-retention", "7"}, wantURL: "http://builder-1.internal:8080", wantDays: 7},
		{name: "environment", env: map[string]string{"FABU_ARTIFACT_URL": "https://b.example.com", "FABU_ARTIFACT_RETENTION": "0"}, wantURL: "https://b.example.com", wantDays: 0},
		{name: "negative retention", args: []string{"--artifact-retention", "-1"}, wantError: true},
		{name: "URL with a query", args: []string{"--artifact-url", "http://b:8080/?x=1"}, wantError: true},
		{name: "not http", args: []string{"--artifact-url", "b:8080"}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := resolveArgs(t, true, tt.args...)
			if tt.wantError {
				if err == nil {
					t.Errorf("resolve %v: %q %d, want an error", tt.args, cfg.ArtifactURL, cfg.ArtifactRetention)
				}
				return
			}
			if err != nil || cfg.ArtifactURL != tt.wantURL || cfg.ArtifactRetention != tt.wantDays {
				t.Errorf("artifact URL %q, retention %d, %v; want %q, %d", cfg.ArtifactURL, cfg.ArtifactRetention, err, tt.wantURL, tt.wantDays)
			}
		})
	}
}
