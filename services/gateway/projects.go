package gateway

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/gin-gonic/gin"
	"gorm.io/gorm"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/cmdline"
	"fabu.dev/libs/container"
	"fabu.dev/libs/gitref"
	"fabu.dev/libs/httpx"
	"fabu.dev/libs/ids"
	"fabu.dev/libs/sshx"
)

// Project is a deployable project as stored in the projects table.
type Project struct {
	ID     string `gorm:"primaryKey"`
	Name   string
	GitURL string // without user info: credentials are in GitCredentialsSealed
	// GitCredentialsSealed is the user info (user:token) of the repository URL, sealed for
	// secret.GitCredentialsPlace (gitcreds.go); "" for none.
	GitCredentialsSealed string
	Platform             string
	Namespace            string
	Type                 string
	SourceDir            string
	Branch               string
	DeployPath           string
	KeepReleases         int
	WebhookSecretSealed  string
	WebhookMode          string // "" (the platform's default) or "password" (Gitee's password mode)
	TriggerBranches      string // newline-separated globs; empty: the project's branch
	TriggerTags          string // newline-separated globs; empty: tags never deploy
	TriggerKeyword       string // a commit message must contain it; empty: no keyword needed
	TriggerKeywordScope  string // "head" (the pushed head commit) or "any" (any commit pushed)
	// Build settings: strings so that a Project stays comparable (apply compares them).
	// BuildEnv is a JSON object of plain variables, Pipeline compact JSON in the form of
	// .fabu.yml; both "" when unset.
	BuildProfile   string
	BuildScript    string
	BuildOutputDir string
	BuildImage     string
	BuildEnv       string
	Pipeline       string
	// BuildOffline takes the network away from the build stages (see builder).
	BuildOffline bool
	// Docker projects: container settings as JSON (libs/container.Settings) and the
	// registry password, sealed for container.PasswordPlace.
	DockerSettings       string
	DockerPasswordSealed string
	// Git features (gitactions.go): MergeRefs a JSON list of refs merged before building,
	// GitActions a JSON object of post-success actions; both "" when unset.
	MergeRefs  string
	GitActions string
	// The project's repository on a forge connection and fabu's hook there; read-only
	// here, written through /projects/:id/source and /projects/:id/hook.
	ConnectionID string `gorm:"->"`
	RepoPath     string `gorm:"->"`
	HookID       string `gorm:"->"`
	CreatedAt    time.Time
	UpdatedAt    time.Time
	// credentials is the user info split from a URL given to save, until it is sealed
	// (gitcreds.go); never stored as such.
	credentials string
}

// TableName tells GORM the table.
func (Project) TableName() string { return "projects" }

type projectServer struct {
	ProjectID string `gorm:"primaryKey"`
	ServerID  string `gorm:"primaryKey"`
}

func (projectServer) TableName() string { return "project_servers" }

// ProjectBody is a project as the API reads and shows it. WebhookSecret is write-only: it
// is stored sealed and never shown; HasWebhookSecret tells whether one is set.
// TriggerKeyword is a pointer so that leaving it out keeps the default ("devops") while
// "" switches the keyword off.
type ProjectBody struct {
	ID     string `json:"id,omitempty"`
	Name   string `json:"name"`
	GitURL string `json:"git_url"`
	// HasCredentials tells whether the repository's credentials are stored: the user info
	// of a URL given with one (https://user:token@host/…) is sealed apart from it and never
	// shown. RemoveCredentials (write-only) drops them; a URL without user info on the same
	// host keeps them.
	HasCredentials    bool     `json:"has_credentials"`
	RemoveCredentials bool     `json:"remove_credentials,omitempty"`
	Type              string   `json:"type"`
	SourceDir         string   `json:"source_dir"`
	Branch            string   `json:"branch"`
	DeployPath        string   `json:"deploy_path"`
	KeepReleases      int      `json:"keep_releases,omitempty"`
	ServerIDs         []string `json:"server_ids"`
	WebhookSecret     string   `json:"webhook_secret,omitempty"`
	HasWebhookSecret  bool     `json:"has_webhook_secret"`
	// WebhookMode is how the project's hook proves the secret, for platforms with a choice:
	// "signature" (Gitee's signed timestamp, the mode fabu installs hooks in) or "password"
	// (Gitee's password mode, for a hook made by hand with a password). Shown as
	// "signature" on Gitee projects, omitted elsewhere.
	WebhookMode     string   `json:"webhook_mode,omitempty"`
	Platform        string   `json:"platform,omitempty"`
	Namespace       string   `json:"namespace,omitempty"`
	TriggerBranches []string `json:"trigger_branches"`
	TriggerTags     []string `json:"trigger_tags"`
	TriggerKeyword  *string  `json:"trigger_keyword,omitempty"`
	KeywordScope    string   `json:"trigger_keyword_scope,omitempty"`
	// Build settings; see builds.go.
	BuildProfile   string            `json:"build_profile,omitempty"`
	BuildScript    string            `json:"build_script,omitempty"`
	BuildOutputDir string            `json:"build_output_dir,omitempty"`
	BuildImage     string            `json:"build_image,omitempty"`
	BuildEnv       map[string]string `json:"build_env,omitempty"`
	Pipeline       json.RawMessage   `json:"pipeline,omitempty"`
	// BuildOffline runs the build stages without a network (only loopback).
	BuildOffline bool `json:"build_offline"`
	// Docker projects: the container settings; DockerPassword is write-only (sealed, never
	// shown; kept when omitted, dropped with the username), HasDockerPassword tells whether
	// one is set.
	Docker            *container.Settings `json:"docker,omitempty"`
	DockerPassword    string              `json:"docker_password,omitempty"`
	HasDockerPassword bool                `json:"has_docker_password"`
	// Git features (gitactions.go): refs merged, in order, into each run's commit before
	// building, and the opt-in actions after a successful deploy.
	MergeRefs  []string        `json:"merge_refs"`
	GitActions *GitActionsBody `json:"git_actions,omitempty"`
	// Read-only: set through /projects/:id/source and /projects/:id/hook.
	ConnectionID  string `json:"connection_id,omitempty"`
	RepoPath      string `json:"repo_path,omitempty"`
	HookInstalled bool   `json:"hook_installed,omitempty"`
}

// DefaultKeyword is the commit-message keyword a push needs to deploy unless the project
// says otherwise, as in the tool fabu replaces.
const DefaultKeyword = "devops"

var platforms = map[string]bool{"gitlab": true, "github": true, "gitee": true}

// validTriggers checks trigger globs (path.Match syntax, each a valid ref pattern) and
// joins them for storage.
func validTriggers(project, kind string, globs []string) (string, error) {
	for _, g := range globs {
		if _, err := path.Match(g, ""); err != nil || g == "" || len(g) > 200 ||
			gitref.Valid(strings.NewReplacer("*", "x", "?", "x", "[", "x", "]", "x").Replace(g)) != nil {
			return "", apperr.Invalid("project %s: %s pattern %q is not a valid glob of ref names", project, kind, g)
		}
	}
	return strings.Join(sortedCopy(globs), "\n"), nil
}

func splitLines(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, "\n")
}

// projectTypes are the project types the builder can build and the deployer can ship.
var projectTypes = map[string]bool{"static": true, "java-jar": true, "java-war": true, "frontend": true, "nodejs": true, "docker": true}

var scpURL = regexp.MustCompile(`^[A-Za-z0-9._-]+@[A-Za-z0-9.-]+:[A-Za-z0-9._/~-]+$`)

// validGitURL accepts the URL forms git clones from, without whitespace or control
// characters, and returns the repository's namespace (its path without the last part).
func validGitURL(raw string) (string, error) {
	shown := gitref.RedactURL(raw) // errors never repeat a token
	if raw == "" || len(raw) > 2048 || strings.ContainsAny(raw, " \t\r\n\x00") || strings.HasPrefix(raw, "-") {
		return "", apperr.Invalid("git_url %q is not a repository URL", shown)
	}
	var p string
	switch {
	case scpURL.MatchString(raw):
		p = raw[strings.Index(raw, ":")+1:]
	case strings.HasPrefix(raw, "/"):
		if err := sshx.ValidPath(raw); err != nil {
			return "", apperr.Invalid("git_url %q: %v", shown, gitref.RedactURL(err.Error()))
		}
		return "local", nil
	default:
		u, err := url.Parse(raw)
		if err != nil {
			return "", apperr.Invalid("git_url %q: %v", shown, gitref.RedactURL(err.Error()))
		}
		switch u.Scheme {
		case "https", "http", "ssh", "git":
			p = u.Path
		case "file":
			return "local", nil
		default:
			return "", apperr.Invalid("git_url %q: scheme %q is not one of https, http, ssh, git, file", shown, u.Scheme)
		}
	}
	ns := strings.Trim(path.Dir(strings.Trim(p, "/")), "/.")
	if ns == "" {
		ns = "default"
	}
	for _, part := range strings.Split(ns, "/") {
		if sshx.ValidName(part) != nil {
			return "", apperr.Invalid("git_url %q: namespace part %q has unexpected characters", shown, part)
		}
	}
	return ns, nil
}

// toModel validates b into a Project, by the rules that need no configuration; see
// projectModel.
func (b ProjectBody) toModel() (Project, error) {
	if b.KeepReleases == 0 {
		b.KeepReleases = 5
	}
	if b.Type == "" {
		b.Type = "static"
	}
	if err := validName("project", b.Name); err != nil {
		return Project{}, err
	}
	ns, err := validGitURL(b.GitURL)
	if err != nil {
		return Project{}, err
	}
	if !projectTypes[b.Type] {
		return Project{}, apperr.Invalid("project %s: type %q is not supported (supported: static, java-jar, java-war, frontend, nodejs, docker)", b.Name, b.Type)
	}
	src := path.Clean(strings.TrimSpace(b.SourceDir))
	if b.SourceDir == "" {
		src = "."
	}
	if path.IsAbs(src) || src == ".." || strings.HasPrefix(src, "../") || strings.ContainsAny(src, "\x00\r\n") {
		return Project{}, apperr.Invalid("project %s: source_dir %q must be relative and inside the repository", b.Name, b.SourceDir)
	}
	if err := gitref.Valid(b.Branch); err != nil {
		return Project{}, apperr.Invalid("project %s: branch: %v", b.Name, err)
	}
	if err := sshx.ValidPath(b.DeployPath); err != nil || b.DeployPath == "/" {
		return Project{}, apperr.Invalid("project %s: deploy_path %q must be an absolute, normalized path other than /", b.Name, b.DeployPath)
	}
	if dir := systemDir(b.DeployPath); dir != "" {
		return Project{}, apperr.Invalid("project %s: deploy_path %q is in %s, a system directory; deploy under /srv, /opt, /var/www or a service user's home", b.Name, b.DeployPath, dir)
	}
	if b.KeepReleases < 1 || b.KeepReleases > 100 {
		return Project{}, apperr.Invalid("project %s: keep_releases %d is not 1-100", b.Name, b.KeepReleases)
	}
	if b.WebhookSecret != "" && (len(b.WebhookSecret) < 16 || len(b.WebhookSecret) > 256) {
		return Project{}, apperr.Invalid("project %s: webhook_secret must have 16-256 characters", b.Name)
	}
	if b.Platform != "" && !platforms[b.Platform] {
		return Project{}, apperr.Invalid("project %s: platform %q is not gitlab, github or gitee", b.Name, b.Platform)
	}
	switch b.WebhookMode {
	case "", "signature":
	case "password":
	default:
		return Project{}, apperr.Invalid("project %s: webhook_mode %q is not signature or password", b.Name, b.WebhookMode)
	}
	bare, creds := gitref.SplitUserinfo(b.GitURL)
	m := Project{Name: b.Name, GitURL: bare, credentials: creds, Platform: b.Platform, Namespace: ns, Type: b.Type, SourceDir: src,
		Branch: b.Branch, DeployPath: b.DeployPath, KeepReleases: b.KeepReleases, TriggerKeyword: DefaultKeyword,
		TriggerKeywordScope: "head", WebhookMode: strings.TrimPrefix(b.WebhookMode, "signature")}
	if err := b.buildSettings(&m); err != nil {
		return Project{}, err
	}
	if err := b.dockerSettings(&m); err != nil {
		return Project{}, err
	}
	if err := b.gitSettings(&m); err != nil {
		return Project{}, err
	}
	var err2 error
	if m.TriggerBranches, err2 = validTriggers(b.Name, "branch", b.TriggerBranches); err2 != nil {
		return Project{}, err2
	}
	if m.TriggerTags, err2 = validTriggers(b.Name, "tag", b.TriggerTags); err2 != nil {
		return Project{}, err2
	}
	if b.TriggerKeyword != nil {
		m.TriggerKeyword = strings.TrimSpace(*b.TriggerKeyword)
		if len(m.TriggerKeyword) > 100 || strings.ContainsAny(m.TriggerKeyword, "\n\r\x00") {
			return Project{}, apperr.Invalid("project %s: trigger_keyword must be one line of at most 100 bytes", b.Name)
		}
	}
	switch b.KeywordScope {
	case "", "head":
	case "any":
		m.TriggerKeywordScope = "any"
	default:
		return Project{}, apperr.Invalid("project %s: trigger_keyword_scope %q is not head or any", b.Name, b.KeywordScope)
	}
	return m, nil
}

// webhookModeOf names project m's webhook mode for the API: Gitee projects have one,
// the others none.
func webhookModeOf(m Project) string {
	if m.Platform != "gitee" {
		return ""
	}
	return cmp.Or(m.WebhookMode, "signature")
}

// SecretPlace is where a project's webhook secret is sealed for: the additional data that
// binds the sealed value to the project's row. The webhook service opens it with the same.
func SecretPlace(projectID string) string { return "projects/" + projectID + "/webhook_secret" }

// sealSecret seals a new webhook secret for project m.
func (s *Service) sealSecret(m *Project, plain string) error {
	sealed, err := s.cfg.Secrets.Seal([]byte(plain), SecretPlace(m.ID))
	if err != nil {
		return fmt.Errorf("seal webhook secret of %s: %w", m.Name, err)
	}
	m.WebhookSecretSealed = sealed
	return nil
}

func projectBody(m Project, serverIDs []string) ProjectBody {
	if serverIDs == nil {
		serverIDs = []string{}
	}
	return ProjectBody{ID: m.ID, Name: m.Name, GitURL: m.GitURL, HasCredentials: m.GitCredentialsSealed != "", Type: m.Type, SourceDir: m.SourceDir, Branch: m.Branch,
		DeployPath: m.DeployPath, KeepReleases: m.KeepReleases, ServerIDs: serverIDs,
		HasWebhookSecret: m.WebhookSecretSealed != "", Platform: m.Platform, Namespace: m.Namespace,
		TriggerBranches: splitLines(m.TriggerBranches), TriggerTags: splitLines(m.TriggerTags),
		TriggerKeyword: &m.TriggerKeyword, KeywordScope: m.TriggerKeywordScope, WebhookMode: webhookModeOf(m),
		ConnectionID: m.ConnectionID, RepoPath: m.RepoPath, HookInstalled: m.HookID != "",
		BuildProfile: m.BuildProfile, BuildScript: m.BuildScript, BuildOutputDir: m.BuildOutputDir,
		BuildImage: m.BuildImage, BuildEnv: buildEnvOf(m), Pipeline: pipelineOf(m), BuildOffline: m.BuildOffline,
		Docker: dockerOf(m), HasDockerPassword: m.DockerPasswordSealed != "",
		MergeRefs: mergeRefsOf(m), GitActions: gitActionsOf(m)}
}

func (s *Service) serverIDsOf(tx *gorm.DB, projectIDs ...string) (map[string][]string, error) {
	var rows []projectServer
	if err := tx.Where("project_id IN ?", projectIDs).Order("server_id").Find(&rows).Error; err != nil {
		return nil, fmt.Errorf("load project servers: %w", err)
	}
	out := map[string][]string{}
	for _, r := range rows {
		out[r.ProjectID] = append(out[r.ProjectID], r.ServerID)
	}
	return out, nil
}

func (s *Service) listProjects(c *gin.Context) {
	tx := s.db.WithContext(c.Request.Context())
	var ms []Project
	if err := s.viewableProjects(c, tx.Order("name"), "id").Find(&ms).Error; err != nil {
		httpx.Fail(c, s.log, fmt.Errorf("list projects: %w", err))
		return
	}
	idList := make([]string, len(ms))
	for i, m := range ms {
		idList[i] = m.ID
	}
	servers, err := s.serverIDsOf(tx, idList...)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	out := make([]ProjectBody, len(ms))
	for i, m := range ms {
		out[i] = projectBody(m, servers[m.ID])
	}
	c.JSON(http.StatusOK, out)
}

func (s *Service) findProject(ctx context.Context, id string) (Project, error) {
	var m Project
	err := s.db.WithContext(ctx).Where("id = ?", id).Take(&m).Error
	if errors.Is(err, gorm.ErrRecordNotFound) {
		return m, apperr.NotFound("project %s not found", id)
	}
	return m, err
}

func (s *Service) getProject(c *gin.Context) {
	m, err := s.findProject(c.Request.Context(), c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	servers, err := s.serverIDsOf(s.db.WithContext(c.Request.Context()), m.ID)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(http.StatusOK, projectBody(m, servers[m.ID]))
}

func (s *Service) createProject(c *gin.Context) { s.saveProject(c, "") }

func (s *Service) updateProject(c *gin.Context) { s.saveProject(c, c.Param("id")) }

// saveProject creates (id "") or replaces project id from the request body.
func (s *Service) saveProject(c *gin.Context, id string) {
	var b ProjectBody
	if err := httpx.Bind(c, &b); err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	m, err := s.projectModel(b)
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	status := http.StatusCreated
	cl := currentCaller(c)
	if b.WebhookSecret != "" && id != "" {
		// A webhook deploys on every matching push: setting its secret is deploying.
		if err := s.mayDeploy(c.Request.Context(), cl, id); err != nil {
			httpx.Fail(c, s.log, err)
			return
		}
	}
	err = s.db.Tx(c.Request.Context(), func(tx *gorm.DB) error {
		if err := needDeployOnTargets(tx, cl, id, b); err != nil {
			return err
		}
		now := time.Now().UTC()
		m.UpdatedAt = now
		var old Project
		if id == "" {
			m.ID, m.CreatedAt = ids.New(), now
			m.Platform = cmp.Or(m.Platform, "gitlab")
		} else {
			if err := tx.Where("id = ?", id).Take(&old).Error; err != nil {
				if errors.Is(err, gorm.ErrRecordNotFound) {
					return apperr.NotFound("project %s not found", id)
				}
				return err
			}
			if err := keepForgeLink(&m, old); err != nil {
				return err
			}
			m.ID, m.CreatedAt, m.WebhookSecretSealed = old.ID, old.CreatedAt, old.WebhookSecretSealed
			if m.Type == "docker" && b.Docker != nil && b.Docker.Username != "" {
				m.DockerPasswordSealed = old.DockerPasswordSealed // kept unless replaced (docker.go)
			}
			status = http.StatusOK
		}
		if b.WebhookSecret != "" {
			if err := s.sealSecret(&m, b.WebhookSecret); err != nil {
				return err
			}
		}
		if err := s.sealDockerPassword(&m, b); err != nil {
			return err
		}
		if err := s.sealGitCredentials(&m, old, b.RemoveCredentials); err != nil { // gitcreds.go
			return err
		}
		return saveProjectTx(tx, &m, b.ServerIDs)
	})
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	c.JSON(status, projectBody(m, sortedCopy(b.ServerIDs)))
}

// needDeployOnTargets applies the server-group rules to a project save: a server added to
// project id's targets (every one, for a new project) needs may_deploy on it, and so does
// every target when the save sets a webhook secret, which lets pushes deploy.
func needDeployOnTargets(tx *gorm.DB, cl caller, id string, b ProjectBody) error {
	if b.WebhookSecret != "" {
		return needDeployOn(tx, cl, b.ServerIDs, "setting a webhook secret")
	}
	var old []string
	if id != "" {
		if err := tx.Table("project_servers").Where("project_id = ?", id).Pluck("server_id", &old).Error; err != nil {
			return fmt.Errorf("load servers of project %s: %w", id, err)
		}
	}
	var added []string
	for _, sid := range b.ServerIDs {
		if !slices.Contains(old, sid) {
			added = append(added, sid)
		}
	}
	return needDeployOn(tx, cl, added, "adding a server to a project's targets")
}

// saveProjectTx writes m and replaces its target servers, which must exist.
func saveProjectTx(tx *gorm.DB, m *Project, serverIDs []string) error {
	if m.WebhookMode != "" && m.Platform != "gitee" {
		return apperr.Invalid("project %s: webhook_mode %s is Gitee's; %s hooks have one way to prove the secret", m.Name, m.WebhookMode, m.Platform)
	}
	if m.WebhookMode != "" && m.HookID != "" {
		return apperr.Invalid("project %s: fabu installed its hook in signature mode; remove the hook before choosing %s mode", m.Name, m.WebhookMode)
	}
	serverIDs = sortedCopy(serverIDs)
	if len(serverIDs) > 0 {
		var n int64
		if err := tx.Model(&Server{}).Where("id IN ?", serverIDs).Count(&n).Error; err != nil {
			return fmt.Errorf("check servers: %w", err)
		}
		if int(n) != len(serverIDs) {
			return apperr.Invalid("project %s: some server_ids do not exist", m.Name)
		}
	}
	if err := tx.Save(m).Error; err != nil {
		return dbError(err, "project %q already exists", m.Name)
	}
	if err := tx.Where("project_id = ?", m.ID).Delete(&projectServer{}).Error; err != nil {
		return fmt.Errorf("replace project servers: %w", err)
	}
	for _, sid := range serverIDs {
		if err := tx.Create(&projectServer{ProjectID: m.ID, ServerID: sid}).Error; err != nil {
			return fmt.Errorf("link server %s: %w", sid, err)
		}
	}
	return nil
}

// deleteProject deletes a project and its runs. fabu's hook on the project's repository is
// removed first, so the platform stops sending deliveries to a project that is gone; when
// the platform cannot be reached, ?keep_hook=true deletes the project anyway.
func (s *Service) deleteProject(c *gin.Context) {
	ctx := c.Request.Context()
	p, err := s.findProjectForge(ctx, c.Param("id"))
	if err != nil {
		httpx.Fail(c, s.log, err)
		return
	}
	if p.HookID != "" && c.Query("keep_hook") != "true" {
		client, conn, err := s.projectClient(ctx, p)
		if err == nil {
			err = client.DeleteHook(ctx, p.RepoPath, p.HookID)
		}
		if err != nil && !apperr.Is(err, apperr.CodeNotFound) {
			httpx.Fail(c, s.log, apperr.Wrap(err, apperr.CodeUnavailable,
				"could not remove fabu's hook from %s (%v); retry, or delete with ?keep_hook=true and remove it on the platform",
				conn.Name, apperr.CodeOf(err)))
			return
		}
	}
	s.deleteByID(c, &Project{}, "project")
}

// keepForgeLink carries project old's forge link (repository and hook) over to its new
// version m. A linked project's platform is its connection's: changing it would send the
// platform's deliveries to the wrong verifier.
func keepForgeLink(m *Project, old Project) error {
	if m.Platform == "" { // not given: unchanged
		m.Platform = old.Platform
	}
	if old.ConnectionID != "" && m.Platform != old.Platform {
		return apperr.Conflict("project %s: platform comes from its linked repository (%s); unlink it first (DELETE /projects/%s/source)",
			old.Name, old.Platform, old.ID)
	}
	m.ConnectionID, m.RepoPath, m.HookID = old.ConnectionID, old.RepoPath, old.HookID
	return nil
}

// Build settings. The gateway checks their form; the builder's pipeline package (which the
// gateway must not import: services never import each other) applies every rule of a plan
// when a run starts, and a run with a pipeline it refuses fails at once with the field and
// the reason. The rules an attempt would go through — shell syntax in commands, sh -c,
// variables fabu sets or that change how programs load — are libs/cmdline's, which both
// apply, so they are refused here at save time already. The other checks are the ones a
// form can get wrong — names, paths, the shape of the pipeline's JSON — and keep the stored
// values canonical, so that apply sees an unchanged project as unchanged.
var (
	profileRE   = regexp.MustCompile(`^[A-Za-z0-9._][A-Za-z0-9._,-]{0,127}$`)
	scriptRE    = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,64}$`)
	imageNameRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9._-]*[a-z0-9])?(:[0-9]{1,5})?(/[a-z0-9]([a-z0-9._-]*[a-z0-9])?)*$`)
	stageNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
)

// Limits of build settings.
const (
	maxBuildEnv      = 100
	maxEnvValue      = 4096
	maxPipelineBytes = 256 << 10
)

// pipelineShape is the JSON form of .fabu.yml, as far as the gateway checks it.
type pipelineShape struct {
	Recipe  string            `json:"recipe"`
	Profile string            `json:"profile"`
	Env     map[string]string `json:"env"`
	Stages  []struct {
		Name    string            `json:"name"`
		Run     json.RawMessage   `json:"run"`
		Dir     string            `json:"dir"`
		Env     map[string]string `json:"env"`
		Timeout string            `json:"timeout"`
		Secrets []string          `json:"secrets"` // names of build secrets (secrets_api.go)
		Image   string            `json:"image"`   // the stage runs in this container image
	} `json:"stages"`
	Artifact *struct {
		Dir  string `json:"dir"`
		File string `json:"file"`
	} `json:"artifact"`
	Caches []struct {
		Key   string   `json:"key"`
		Paths []string `json:"paths"`
	} `json:"caches"`
}

// buildSettings checks b's build settings and stores them in m.
func (b ProjectBody) buildSettings(m *Project) error {
	if b.BuildProfile != "" && !profileRE.MatchString(b.BuildProfile) {
		return apperr.Invalid("project %s: build_profile %q: use letters, digits and . _ , -", b.Name, b.BuildProfile)
	}
	if b.BuildScript != "" && !scriptRE.MatchString(b.BuildScript) {
		return apperr.Invalid("project %s: build_script %q is not a package.json script name", b.Name, b.BuildScript)
	}
	if d := b.BuildOutputDir; d != "" {
		if path.Clean(d) != d || path.IsAbs(d) || d == "." || d == ".." || strings.HasPrefix(d, "../") || strings.ContainsAny(d, "\x00\r\n") {
			return apperr.Invalid("project %s: build_output_dir %q must be a normalized relative path inside the source dir", b.Name, d)
		}
	}
	if b.BuildImage != "" && (!imageNameRE.MatchString(b.BuildImage) || len(b.BuildImage) > 200) {
		return apperr.Invalid("project %s: build_image %q: give a repository such as registry.example.com/team/app, without a tag", b.Name, b.BuildImage)
	}
	if err := checkBuildEnv(b.Name, "build_env", b.BuildEnv); err != nil {
		return err
	}
	m.BuildProfile, m.BuildScript, m.BuildOutputDir, m.BuildImage = b.BuildProfile, b.BuildScript, b.BuildOutputDir, b.BuildImage
	m.BuildOffline = b.BuildOffline
	if len(b.BuildEnv) > 0 {
		env, err := json.Marshal(b.BuildEnv) // sorted keys: canonical
		if err != nil {
			return fmt.Errorf("encode build_env: %w", err)
		}
		m.BuildEnv = string(env)
	}
	p, err := checkPipeline(b.Name, b.Pipeline)
	if err != nil {
		return err
	}
	m.Pipeline = p
	return nil
}

// checkBuildEnv checks plain build variables by the builder's rule (cmdline.CheckEnvName:
// names a shell would accept, none that fabu sets itself — HOME, PATH, FABU_* — or that
// changes how every program is loaded — LD_*), values without NUL.
func checkBuildEnv(project, field string, env map[string]string) error {
	if len(env) > maxBuildEnv {
		return apperr.Invalid("project %s: %s has %d variables, at most %d allowed", project, field, len(env), maxBuildEnv)
	}
	for _, k := range slices.Sorted(maps.Keys(env)) { // the same variable named every time
		v := env[k]
		if err := cmdline.CheckEnvName(k); err != nil {
			return apperr.Invalid("project %s: %s: %v", project, field, err)
		}
		if len(v) > maxEnvValue || strings.ContainsRune(v, 0) {
			return apperr.Invalid("project %s: %s: variable %s: value must have at most %d bytes and no NUL", project, field, k, maxEnvValue)
		}
	}
	return nil
}

// checkPipeline checks the shape of a project's pipeline and returns it as compact JSON;
// "" for none (absent, null or {}).
func checkPipeline(project string, raw json.RawMessage) (string, error) {
	trimmed := strings.TrimSpace(string(raw))
	if trimmed == "" || trimmed == "null" {
		return "", nil
	}
	if len(raw) > maxPipelineBytes {
		return "", apperr.Invalid("project %s: pipeline is %d bytes, at most %d allowed", project, len(raw), maxPipelineBytes)
	}
	dec := json.NewDecoder(strings.NewReader(trimmed))
	dec.DisallowUnknownFields()
	var p pipelineShape
	if err := dec.Decode(&p); err != nil {
		return "", apperr.Invalid("project %s: pipeline: %v (want the fields of .fabu.yml: recipe, profile, env, stages, artifact, caches)", project, err)
	}
	if p.Recipe != "" && !projectTypes[p.Recipe] {
		return "", apperr.Invalid("project %s: pipeline: unknown recipe %q", project, p.Recipe)
	}
	if p.Profile != "" && !profileRE.MatchString(p.Profile) {
		return "", apperr.Invalid("project %s: pipeline: profile %q: use letters, digits and . _ , -", project, p.Profile)
	}
	if err := checkBuildEnv(project, "pipeline env", p.Env); err != nil {
		return "", err
	}
	seen := map[string]bool{}
	for i, st := range p.Stages {
		where := fmt.Sprintf("pipeline stages[%d]", i)
		if !stageNameRE.MatchString(st.Name) {
			return "", apperr.Invalid("project %s: %s: name %q: use 1-64 of A-Z a-z 0-9 . _ -", project, where, st.Name)
		}
		if seen[st.Name] {
			return "", apperr.Invalid("project %s: %s: duplicate stage name %q", project, where, st.Name)
		}
		seen[st.Name] = true
		if err := checkRun(st.Run); err != nil {
			return "", apperr.Invalid("project %s: %s.run: %v", project, where, err)
		}
		if err := checkBuildEnv(project, where+".env", st.Env); err != nil {
			return "", err
		}
		if err := checkStageSecrets(st.Secrets, st.Env); err != nil {
			return "", apperr.Invalid("project %s: %s.secrets: %v", project, where, err)
		}
		if st.Image != "" {
			if err := container.ValidImageRef(st.Image); err != nil {
				return "", apperr.Invalid("project %s: %s.image: %v", project, where, err)
			}
		}
	}
	if a := p.Artifact; a != nil && (a.Dir == "") == (a.File == "") {
		return "", apperr.Invalid("project %s: pipeline artifact: give exactly one of dir and file", project)
	}
	var out bytes.Buffer
	if err := json.Compact(&out, []byte(trimmed)); err != nil {
		return "", apperr.Invalid("project %s: pipeline: %v", project, err)
	}
	if out.String() == "{}" {
		return "", nil
	}
	return out.String(), nil
}

// checkRun accepts a stage's command as the builder does: absent, a string split like a
// shell splits words and refusing everything else a shell would do (cmdline.Split), or a
// list of strings; either way not a shell asked to run a string (cmdline.Check).
func checkRun(raw json.RawMessage) error {
	if len(raw) == 0 || string(raw) == "null" {
		return nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		argv, err := cmdline.Split(s)
		if err != nil {
			return err
		}
		return cmdline.Check(argv)
	}
	var argv []string
	if err := json.Unmarshal(raw, &argv); err != nil {
		return errors.New("want a string or a list of strings")
	}
	return cmdline.Check(argv)
}

// buildEnvOf returns m's build variables for the API.
func buildEnvOf(m Project) map[string]string {
	if m.BuildEnv == "" {
		return nil
	}
	var env map[string]string
	if err := json.Unmarshal([]byte(m.BuildEnv), &env); err != nil {
		return nil // written by buildSettings, so always an object; never fail a read on it
	}
	return env
}

// pipelineOf returns m's pipeline for the API.
func pipelineOf(m Project) json.RawMessage {
	if m.Pipeline == "" {
		return nil
	}
	return json.RawMessage(m.Pipeline)
}
