package gateway

import (
	"net/url"
	"path/filepath"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/sshx"
)

// Save-time checks. What a build or a deploy would refuse, or should never be asked to
// do, is refused when a project is saved (through the API, apply or the SPA), so a
// mistake or an attempt is a 400 naming the field rather than a failed run: pipelines
// (cmdline: no shell syntax, no sh -c), build and docker variables (projects.go,
// libs/container), deploy paths (systemDir) and local repositories (checkLocalRepo).

// systemDirs are directories no release is deployed into: the system's configuration,
// the kernel's views, devices, the boot loader and root's home.
var systemDirs = []string{"/etc", "/proc", "/sys", "/dev", "/boot", "/root"}

// systemDir returns the system directory the clean absolute path p is in (or is), or "".
func systemDir(p string) string {
	for _, d := range systemDirs {
		if p == d || strings.HasPrefix(p, d+"/") {
			return d
		}
	}
	return ""
}

// projectModel validates b into a Project by every rule, those of the gateway's
// configuration included.
func (s *Service) projectModel(b ProjectBody) (Project, error) {
	m, err := b.toModel()
	if err != nil {
		return Project{}, err
	}
	if err := s.checkLocalRepo(b.Name, m.GitURL); err != nil {
		return Project{}, err
	}
	return m, nil
}

// checkLocalRepo refuses a repository on the gateway's and builders' own file system (a
// path or a file:// URL) unless it is under a directory an administrator allows
// (Config.AllowedLocalRepos): a project could otherwise build, and publish, any
// repository the builder can read, fabu's own data included.
func (s *Service) checkLocalRepo(project, gitURL string) error {
	p, local, err := localRepoPath(gitURL)
	if err != nil || !local {
		return err
	}
	for _, d := range s.cfg.AllowedLocalRepos {
		if d == "/" || p == d || strings.HasPrefix(p, d+"/") {
			return nil
		}
	}
	return apperr.Invalid("project %s: git_url %q: local repositories are refused unless they lie under a directory the administrator allows (fabu's --allowed-local-repos)", project, gitURL)
}

// localRepoPath returns the path of a local repository URL (an absolute path or a file://
// URL without a host); local is false for remote URLs.
func localRepoPath(gitURL string) (p string, local bool, err error) {
	switch {
	case strings.HasPrefix(gitURL, "/"):
		p = gitURL
	case len(gitURL) > 7 && strings.EqualFold(gitURL[:7], "file://"):
		u, perr := url.Parse(gitURL)
		if perr != nil || (u.Host != "" && u.Host != "localhost") || u.RawQuery != "" || u.Fragment != "" {
			return "", true, apperr.Invalid("git_url %q: a file URL names a path on this machine: file:///path", gitURL)
		}
		p = u.Path
	default:
		return "", false, nil
	}
	if err := sshx.ValidPath(p); err != nil {
		return "", true, apperr.Invalid("git_url %q: %v", gitURL, err)
	}
	return p, true, nil
}

// cleanDirs checks directories given in configuration: absolute, and returned clean.
func cleanDirs(what string, dirs []string) ([]string, error) {
	out := make([]string, 0, len(dirs))
	for _, d := range dirs {
		if d = strings.TrimSpace(d); d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			return nil, apperr.Invalid("%s: %q is not an absolute path", what, d)
		}
		out = append(out, filepath.Clean(d))
	}
	return out, nil
}
