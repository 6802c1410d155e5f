package builder

import (
	"context"
	"strings"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/container"
	"fabu.dev/libs/events"
	"fabu.dev/libs/runlog"
	"fabu.dev/libs/runs"
)

// A rollback (runs.Run.RollbackOf) builds nothing: it is admitted under the project's target
// lock like any run, so it queues behind a deploy in progress and nothing deploys over it
// while it runs, and it hands the deployer the release an earlier succeeded run deployed.
// A file release is switched back to where it still lies under releases/ on the targets
// (the deployer checks every target before switching any); an image is started again by
// the digest that run deployed, which the registry and the deployer's kept images hold.

// rollbackTo describes to the deployer the release rollback run r puts back.
func (s *Service) rollbackTo(ctx context.Context, r runs.Run, logw *runlog.Writer) (events.RunBuilt, error) {
	old, err := runs.Get(s.db.WithContext(ctx), r.RollbackOf)
	if err != nil {
		return events.RunBuilt{}, err
	}
	// The gateway checked these when it requested the rollback; the run may have been
	// removed or the request forged on the bus since, so they are checked again here.
	switch {
	case old.ProjectID != r.ProjectID:
		return events.RunBuilt{}, apperr.Invalid("run %s belongs to another project", old.ID)
	case old.Status != runs.StatusSucceeded || old.ReleaseID == "":
		return events.RunBuilt{}, apperr.Conflict("run %s did not deploy a release (it %s)", old.ID, old.Status)
	}
	built := events.RunBuilt{RunID: r.ID, ProjectID: r.ProjectID, Commit: old.CommitSHA, ArtifactSHA256: old.ArtifactSHA256}
	if ref, err := container.ParseRef(old.ArtifactPath); err == nil && strings.Contains(old.ArtifactPath, "@sha256:") {
		built.ArtifactKind, built.ArtifactPath = events.ArtifactImage, old.ArtifactPath
		logw.Printf("rolling back to the image run %s deployed: %s (commit %s); nothing to build", old.ID, ref, shortSHA(old.CommitSHA))
		return built, nil
	}
	built.RollbackRelease = old.ReleaseID
	logw.Printf("rolling back to release %s, deployed by run %s (commit %s); nothing to build", old.ReleaseID, old.ID, shortSHA(old.CommitSHA))
	return built, nil
}

func shortSHA(sha string) string {
	if len(sha) > 12 {
		return sha[:12]
	}
	return sha
}
