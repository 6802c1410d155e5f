package main

import "testing"

func TestRetentionSettings(t *testing.T) {
	tests := []struct {
		name      string
		env       map[string]string
		args      []string
		audit     int
		logs      int
		wantError bool
	}{
		{name: "defaults", audit: 365, logs: 30},
		{name: "flags", args: []string{"--audit-retention", "730", "--log-retention", "7"}, audit: 730, logs: 7},
		{name: "environment keeps all", env: map[string]string{"FABU_AUDIT_RETENTION": "0", "FABU_LOG_RETENTION": "0"}},
		{name: "negative audit", args: []string{"--audit-retention", "-1"}, wantError: true},
		{name: "negative logs", args: []string{"--log-retention", "-30"}, wantError: true},
		{name: "negative deliveries", args: []string{"--delivery-retention", "-1"}, wantError: true},
		{name: "not a number", env: map[string]string{"FABU_LOG_RETENTION": "30d"}, wantError: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			cfg, err := resolveArgs(t, false, tt.args...)
			if tt.wantError {
				if err == nil {
					t.Errorf("resolve %v: audit %d, logs %d, want an error", tt.args, cfg.AuditRetention, cfg.LogRetention)
				}
				return
			}
			if err != nil || cfg.AuditRetention != tt.audit || cfg.LogRetention != tt.logs {
				t.Errorf("audit %d, logs %d, %v; want %d, %d", cfg.AuditRetention, cfg.LogRetention, err, tt.audit, tt.logs)
			}
			if want := 365; len(tt.args) == 0 && len(tt.env) == 0 && cfg.DeliveryRetention != want {
				t.Errorf("delivery retention %d, want %d by default", cfg.DeliveryRetention, want)
			}
			if days(cfg.LogRetention).Hours() != float64(24*tt.logs) {
				t.Errorf("days(%d) = %v", cfg.LogRetention, days(cfg.LogRetention))
			}
		})
	}
}
