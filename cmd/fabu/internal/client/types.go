package client

import "time"

// Run statuses as the API reports them.
const (
	StatusRequested = "requested"
	StatusQueued    = "queued"
	StatusBuilding  = "building"
	StatusDeploying = "deploying"
	StatusSucceeded = "succeeded"
	StatusFailed    = "failed"
	StatusCancelled = "cancelled"
)

// Run is one deploy of one project revision, as GET /api/v1/runs/:id answers it.
type Run struct {
	ID        string `json:"id"`
	ProjectID string `json:"project_id"`
	Project   string `json:"project"`
	Ref       string `json:"ref"`
	Commit    string `json:"commit"`
	Status    string `json:"status"`
	Progress  int    `json:"progress"` // percent, 0–100
	Error     string `json:"error"`
	Trigger   string `json:"trigger"`
	// ReleaseID is the release a succeeded run left on its servers, which a rollback can
	// return to; RollbackOf is the run a rollback returns to.
	ReleaseID  string     `json:"release_id,omitempty"`
	RollbackOf string     `json:"rollback_of,omitempty"`
	CreatedAt  time.Time  `json:"created_at"`
	StartedAt  *time.Time `json:"started_at"`
	FinishedAt *time.Time `json:"finished_at"`
	// EstimatedFinishAt is when a run under way is expected to end, learnt from the
	// project's earlier runs; nil without such history or once the run has ended.
	EstimatedFinishAt *time.Time `json:"estimated_finish_at,omitempty"`
}

// Finished reports whether the run has reached a final status.
func (r Run) Finished() bool {
	switch r.Status {
	case StatusSucceeded, StatusFailed, StatusCancelled:
		return true
	}
	return false
}

// Line is one numbered line of a run's log. N starts at 1 and grows by one per line.
type Line struct {
	N      int64     `json:"n"`
	TS     time.Time `json:"ts"`
	Stream string    `json:"stream"` // "stdout" or "stderr"
	Text   string    `json:"text"`
}

// LogPage is one page of a run's log, as GET /api/v1/runs/:id/logs answers it.
type LogPage struct {
	Lines  []Line `json:"lines"`
	Status string `json:"status"`
	Done   bool   `json:"done"` // the run is finished and no line follows the page
}

// Project is a project as GET /api/v1/projects answers it.
type Project struct {
	ID               string   `json:"id"`
	Name             string   `json:"name"`
	GitURL           string   `json:"git_url"`         // without user info
	HasCredentials   bool     `json:"has_credentials"` // the repository's credentials are stored, sealed
	Type             string   `json:"type"`
	SourceDir        string   `json:"source_dir"`
	Branch           string   `json:"branch"`
	DeployPath       string   `json:"deploy_path"`
	KeepReleases     int      `json:"keep_releases"`
	ServerIDs        []string `json:"server_ids"`
	HasWebhookSecret bool     `json:"has_webhook_secret"`
}

// ApplyDoc is the desired configuration sent to POST /api/v1/apply. It is also the shape of
// the file `fabu apply` reads, hence the YAML tags.
type ApplyDoc struct {
	Connections []ConnectionSpec `json:"connections,omitempty" yaml:"connections"`
	Servers     []ServerSpec     `json:"servers" yaml:"servers"`
	Projects    []ProjectSpec    `json:"projects" yaml:"projects"`
}

// ConnectionSpec describes one git platform connection by its unique name. The token is
// write-only: leave it out to keep the stored one.
type ConnectionSpec struct {
	Name     string `json:"name" yaml:"name"`
	Platform string `json:"platform" yaml:"platform"`
	BaseURL  string `json:"base_url,omitempty" yaml:"base_url"`
	Token    string `json:"token,omitempty" yaml:"token"`
}

// ServerSpec describes one target host by its unique name.
type ServerSpec struct {
	Name    string `json:"name" yaml:"name"`
	Host    string `json:"host" yaml:"host"`
	Port    int    `json:"port,omitempty" yaml:"port"`
	User    string `json:"user" yaml:"user"`
	HostKey string `json:"host_key" yaml:"host_key"` // known_hosts line
}

// ProjectSpec describes one project by its unique name; Servers names its target servers.
type ProjectSpec struct {
	Name string `json:"name" yaml:"name"`
	// GitURL may carry credentials (https://user:token@host/…): the server seals them apart
	// from the URL and never shows them again; a URL without them on the same host keeps them.
	GitURL        string   `json:"git_url" yaml:"git_url"`
	Type          string   `json:"type,omitempty" yaml:"type"`
	SourceDir     string   `json:"source_dir,omitempty" yaml:"source_dir"`
	Branch        string   `json:"branch,omitempty" yaml:"branch"`
	DeployPath    string   `json:"deploy_path" yaml:"deploy_path"`
	KeepReleases  int      `json:"keep_releases,omitempty" yaml:"keep_releases"`
	Servers       []string `json:"servers" yaml:"servers"`
	WebhookSecret string   `json:"webhook_secret,omitempty" yaml:"webhook_secret"`
	// Platform is gitlab (the default), github or gitee: where the project's webhook comes from.
	Platform string `json:"platform,omitempty" yaml:"platform"`
	// WebhookMode, for Gitee projects only: signature (the default, a signed timestamp) or
	// password (the hook sends the secret itself), as the hook was made in Gitee's settings.
	WebhookMode string `json:"webhook_mode,omitempty" yaml:"webhook_mode"`
	// TriggerBranches and TriggerTags are globs of the refs whose pushes deploy; without
	// branch globs the project's branch does, without tag globs no tag does.
	TriggerBranches []string `json:"trigger_branches,omitempty" yaml:"trigger_branches"`
	TriggerTags     []string `json:"trigger_tags,omitempty" yaml:"trigger_tags"`
	// TriggerKeyword must appear in the pushed commit message (default "devops"; "" turns
	// it off); TriggerKeywordScope says which message: head (default) or any.
	TriggerKeyword      *string `json:"trigger_keyword,omitempty" yaml:"trigger_keyword"`
	TriggerKeywordScope string  `json:"trigger_keyword_scope,omitempty" yaml:"trigger_keyword_scope"`
	// Connection and RepoPath link the project to its repository on a platform connection
	// (live refs, hook management); the platform then comes from the connection.
	Connection string `json:"connection,omitempty" yaml:"connection"`
	RepoPath   string `json:"repo_path,omitempty" yaml:"repo_path"`
	// Docker projects: the repository images are pushed to (registry host required), the
	// container settings and the registry password, which the server seals and never shows.
	BuildImage     string      `json:"build_image,omitempty" yaml:"build_image"`
	Docker         *DockerSpec `json:"docker,omitempty" yaml:"docker"`
	DockerPassword string      `json:"docker_password,omitempty" yaml:"docker_password"`
}

// DockerSpec is a docker project's container settings (the server validates every value;
// README "Docker projects").
type DockerSpec struct {
	CLI           string            `json:"cli,omitempty" yaml:"cli"`
	Insecure      bool              `json:"insecure,omitempty" yaml:"insecure"`
	TagRef        bool              `json:"tag_ref,omitempty" yaml:"tag_ref"`
	Username      string            `json:"username,omitempty" yaml:"username"`
	Ports         []string          `json:"ports,omitempty" yaml:"ports"`
	Env           map[string]string `json:"env,omitempty" yaml:"env"`
	Volumes       []string          `json:"volumes,omitempty" yaml:"volumes"`
	Restart       string            `json:"restart,omitempty" yaml:"restart"`
	Network       string            `json:"network,omitempty" yaml:"network"`
	HealthPort    int               `json:"health_port,omitempty" yaml:"health_port"`
	HealthPath    string            `json:"health_path,omitempty" yaml:"health_path"`
	HealthTimeout int               `json:"health_timeout,omitempty" yaml:"health_timeout"`
	StopTimeout   int               `json:"stop_timeout,omitempty" yaml:"stop_timeout"`
}

// Actions an apply reports per object.
const (
	ActionCreated   = "created"
	ActionUpdated   = "updated"
	ActionUnchanged = "unchanged"
)

// ApplyResult is what POST /api/v1/apply did to each object.
type ApplyResult struct {
	Connections []ApplyItem `json:"connections"`
	Servers     []ApplyItem `json:"servers"`
	Projects    []ApplyItem `json:"projects"`
}

// ApplyItem is the action taken on one named object.
type ApplyItem struct {
	Name   string `json:"name"`
	Action string `json:"action"`
}
