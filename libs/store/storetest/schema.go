package storetest

import (
	"context"
	"strings"
	"testing"

	"fabu.dev/libs/store"
)

// schema is docs/architecture.md's "Database schema": every table with its columns.
var schema = map[string][]string{
	"users":               {"id", "username", "password_hash", "role", "created_at", "disabled_at"},
	"auth_tokens":         {"id", "user_id", "token_hash", "expires_at", "created_at", "name", "scopes", "last_used_at"},
	"auth_signing_keys":   {"kid", "public_key", "private_key_sealed", "created_at", "retired_at", "verify_until"},
	"auth_sessions":       {"id", "user_id", "created_at", "expires_at", "revoked_at", "revoke_reason"},
	"auth_refresh_tokens": {"id", "session_id", "token_hash", "expires_at", "used_at", "created_at"},
	"auth_revoked_tokens": {"jti", "expires_at", "created_at"},
	"auth_login_failures": {"username", "failures", "window_start", "locked_until", "last_failure_at"},
	"auth_login_throttle": {"username", "address", "failures", "last_failure_at", "blocked_until"},
	"servers":             {"id", "name", "host", "port", "ssh_user", "host_key", "created_at", "updated_at", "server_group_id"},
	"projects": {"id", "name", "git_url", "platform", "namespace", "type", "source_dir", "branch",
		"deploy_path", "keep_releases", "webhook_secret_sealed", "trigger_branches", "trigger_tags",
		"trigger_keyword", "trigger_keyword_scope", "created_at", "updated_at",
		"trigger_token_hash", "connection_id", "repo_path", "hook_id",
		"build_profile", "build_script", "build_output_dir", "build_image", "build_env", "pipeline",
		"project_group_id", "deploy_role", "docker_settings", "docker_password_sealed",
		"merge_refs", "git_actions", "webhook_mode", "trigger_token_created_by", "build_offline", "git_credentials_sealed"},
	"project_servers": {"project_id", "server_id"},
	"runs": {"id", "project_id", "ref", "commit_sha", "status", "trigger", "triggered_by", "progress",
		"error", "artifact_path", "artifact_sha256", "release_id", "lock_token", "heartbeat_at",
		"created_at", "started_at", "finished_at", "updated_at", "cancel_requested_at", "cancel_requested_by",
		"logs_pruned_at", "artifact_manifest", "rollback_of"},
	"run_logs":         {"run_id", "line", "ts", "stream", "text"},
	"run_git":          {"run_id", "base_commit", "merged_commit", "merged_refs", "actions_state", "actions", "updated_at"},
	"project_secrets":  {"id", "project_id", "name", "value_sealed", "created_at", "updated_at", "updated_by"},
	"run_stages":       {"run_id", "seq", "name", "status", "started_at", "finished_at", "duration_ms", "exit_code"},
	"artifacts":        {"fingerprint", "commit_sha", "path", "sha256", "size", "kind", "created_at", "last_used_at"},
	"outbox":           {"seq", "id", "topic", "msg_key", "payload", "headers", "created_at", "published_at"},
	"processed_events": {"consumer", "event_id", "processed_at"},
	"webhook_deliveries": {"id", "platform", "event", "project_id", "verdict", "reason", "delivery_key",
		"run_id", "received_at", "ref", "commit_sha", "body_sha256"},
	"webhook_rejections":      {"project_id", "platform", "reason", "period_start", "rejected", "sampled", "last_at"},
	"notification_deliveries": {"id", "event_id", "run_id", "channel", "status", "detail", "created_at"},
	"settings":                {"key", "value", "updated_at"},
	"audit_log": {"id", "at", "actor", "actor_id", "action", "target", "target_id", "outcome", "ip",
		"user_agent", "detail"},
	"forge_connections": {"id", "name", "platform", "base_url", "token_sealed", "sync_state", "sync_error",
		"synced_at", "created_at", "updated_at"},
	"user_groups":           {"id", "name", "created_at"},
	"user_group_members":    {"group_id", "user_id"},
	"project_groups":        {"id", "name", "created_at"},
	"project_group_members": {"id", "project_group_id", "user_id", "user_group_id", "role", "created_at"},
	"server_groups":         {"id", "name", "created_at"},
	"server_group_rules":    {"id", "server_group_id", "user_id", "user_group_id", "may_deploy", "may_terminal"},
	"environment_rules": {"project_id", "approval", "approval_role", "approver_role", "approver_group_id", "approvals_needed",
		"deploy_windows", "time_zone", "ticket_ttl_hours", "link_confirm", "updated_by", "updated_at"},
	"release_tickets": {"id", "project_id", "ref", "commit_sha", "title", "description", "status", "source", "requested_by",
		"requester_id", "approvals_needed", "scheduled_at", "expires_at", "run_id", "delivery_id", "decided_at", "started_at",
		"created_at", "updated_at"},
	"release_ticket_reviews": {"id", "ticket_id", "reviewer_id", "reviewer", "decision", "comment", "created_at"},
	"forge_repos": {"id", "connection_id", "remote_id", "path", "name", "namespace", "default_branch",
		"http_url", "ssh_url", "web_url", "archived", "gone", "removed", "first_seen_at", "last_seen_at"},
	"user_identities": {"provider", "subject", "user_id", "email", "login", "linked_at", "last_login_at"},
	"auth_oauth_flows": {"id", "handle_hash", "provider", "purpose", "state", "nonce", "redirect", "user_id", "session_id",
		"expires_at", "callback_at", "code_hash", "code_expires_at", "exchanged_at", "created_at"},
}

func testMigrate(t *testing.T, db *store.DB) {
	ctx := context.Background()
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus before Migrate: %v", err)
	}
	if len(st) == 0 {
		t.Fatal("MigrationStatus lists no migrations")
	}
	for _, m := range st {
		if m.Applied {
			t.Errorf("before Migrate: %s applied, want pending", m.Name)
		}
	}
	for i := range 2 {
		if err := db.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d: %v", i+1, err)
		}
	}
	st, err = db.MigrationStatus(ctx)
	if err != nil {
		t.Fatalf("MigrationStatus: %v", err)
	}
	for _, m := range st {
		if !m.Applied || m.AppliedAt.IsZero() {
			t.Errorf("after Migrate: %s applied=%v at %v, want applied with a time", m.Name, m.Applied, m.AppliedAt)
		}
	}
	if st[0].Version != 1 || st[0].Name != "00001_initial.sql" {
		t.Errorf("first migration = %d %q, want 1 00001_initial.sql", st[0].Version, st[0].Name)
	}
}

func testSchema(t *testing.T, db *store.DB) {
	m := db.Migrator()
	for table, cols := range schema {
		if !m.HasTable(table) {
			t.Errorf("table %s missing", table)
			continue
		}
		for _, c := range cols {
			if !m.HasColumn(table, c) {
				t.Errorf("column %s.%s missing", table, c)
			}
		}
		got, err := m.ColumnTypes(table)
		if err != nil {
			t.Fatalf("column types of %s: %v", table, err)
		}
		if len(got) != len(cols) {
			t.Errorf("table %s has %d columns, want %d (%v)", table, len(got), len(cols), cols)
		}
	}
}

// columns lists every table.column of the database's schema, except goose's own table.
func columns(t *testing.T, db *store.DB) []string {
	t.Helper()
	q := `SELECT table_name || '.' || column_name FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'goose_db_version' ORDER BY 1`
	if db.Driver == store.SQLite {
		q = `SELECT m.name || '.' || p.name FROM sqlite_master m JOIN pragma_table_info(m.name) p
			WHERE m.type = 'table' AND m.name NOT IN ('goose_db_version', 'sqlite_sequence') ORDER BY 1`
	}
	var cols []string
	if err := db.Raw(q).Scan(&cols).Error; err != nil {
		t.Fatalf("list columns: %v", err)
	}
	return cols
}

// testDownAndUp: every migration's Down part runs on both databases and undoes its Up part,
// so rolling back to version 0 leaves no table of fabu's, and migrating again rebuilds the
// same schema. A broken Down part would otherwise only be found by an operator downgrading.
func testDownAndUp(t *testing.T, db *store.DB) {
	ctx := context.Background()
	want := columns(t, db)
	if len(want) == 0 {
		t.Fatal("migrated database has no columns")
	}
	if err := db.MigrateDown(ctx, 0); err != nil {
		t.Fatalf("MigrateDown to 0: %v", err)
	}
	if left := columns(t, db); len(left) != 0 {
		t.Errorf("after rolling every migration back, columns remain: %v", left)
	}
	st, err := db.MigrationStatus(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range st {
		if m.Applied {
			t.Errorf("after MigrateDown to 0: %s still applied", m.Name)
		}
	}
	if err := db.Migrate(ctx); err != nil {
		t.Fatalf("Migrate after rolling back: %v", err)
	}
	got := columns(t, db)
	if strings.Join(got, " ") != strings.Join(want, " ") {
		t.Errorf("schema after down and up differs:\n got %v\nwant %v", got, want)
	}
	if err := db.MigrateDown(ctx, st[len(st)-1].Version+1); err == nil {
		t.Error("MigrateDown to a version above the newest: no error")
	}
}
