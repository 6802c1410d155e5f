// Package events holds fabu's versioned event types and their topic names: the facts that
// services publish about runs through the transactional outbox and consume from the bus.
// A payload never changes incompatibly; a new version gets a new topic (".v2").
package events

import (
	"encoding/json"
	"fmt"

	"fabu.dev/libs/bus"
	"fabu.dev/libs/ids"
)

// Topic names. Every topic has a dead-letter twin "<topic>.dlq".
const (
	TopicRunRequested = "fabu.run.requested.v1"
	TopicRunBuilt     = "fabu.run.built.v1"
	TopicRunFinished  = "fabu.run.finished.v1"
	// TopicTicketChanged carries every state change of a release ticket (TicketChanged).
	TopicTicketChanged = "fabu.ticket.changed.v1"
)

// Topics lists every topic fabu uses, for creating them on a broker.
var Topics = []string{TopicRunRequested, TopicRunBuilt, TopicRunFinished, TopicTicketChanged}

// ErrorBody is an error as it travels on the bus.
type ErrorBody struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// RunRequested announces a new run; the builder queues and admits it.
type RunRequested struct {
	RunID     string `json:"run_id"`
	ProjectID string `json:"project_id"`
	Ref       string `json:"ref"`
	Trigger   string `json:"trigger"`
}

// RunBuilt announces that a run's artifact is ready; the deployer ships it.
type RunBuilt struct {
	RunID          string `json:"run_id"`
	ProjectID      string `json:"project_id"`
	Commit         string `json:"commit"`
	ArtifactPath   string `json:"artifact_path"`
	ArtifactSHA256 string `json:"artifact_sha256"`
	LockKey        string `json:"lock_key"`
	LockToken      int64  `json:"lock_token"`
	// ArtifactURL is a signed, expiring URL at which the builder serves the artifact, for a
	// deployer that cannot read ArtifactPath (another machine); empty from older builders.
	ArtifactURL string `json:"artifact_url,omitempty"`
	// ManifestSHA256 is the SHA-256 of the artifact's manifest (libs/artifact
	// BuildManifest), stored beside the artifact; ManifestURL is its signed URL, like
	// ArtifactURL. The deployer checks the manifest against this hash and the artifact
	// against the manifest. Empty from builders older than manifests.
	ManifestSHA256 string `json:"manifest_sha256,omitempty"`
	ManifestURL    string `json:"manifest_url,omitempty"`
	// ArtifactKind is "image" when the artifact is a container image: ArtifactPath is then
	// its reference by digest (registry/repository@sha256:…), ArtifactSHA256 the digest's
	// hex, and there is no file or URL. Empty for a tar.gz.
	ArtifactKind string `json:"artifact_kind,omitempty"`
	// RollbackRelease is set for a rollback of a file release: the id of the release,
	// already under releases/ on every target, that current switches back to. There is
	// no artifact then, and the other artifact fields describe the release's own.
	RollbackRelease string `json:"rollback_release,omitempty"`
}

// ArtifactImage is RunBuilt.ArtifactKind for a container image.
const ArtifactImage = "image"

// RunFinished announces that a run reached a final status.
type RunFinished struct {
	RunID     string     `json:"run_id"`
	ProjectID string     `json:"project_id"`
	Status    string     `json:"status"`
	Error     *ErrorBody `json:"error,omitempty"`
}

// TicketChanged announces that release ticket TicketID reached Status (pending when opened,
// approved, rejected, cancelled, expired, started); Actor is who did it ("system" for the
// expiry and scheduled starts), Approvals how many approvals it holds, RunID the run a started
// ticket requested. Keyed by the ticket ID. The notifier may tell requesters and approvers.
type TicketChanged struct {
	TicketID    string `json:"ticket_id"`
	ProjectID   string `json:"project_id"`
	Status      string `json:"status"`
	Actor       string `json:"actor"`
	RequestedBy string `json:"requested_by"`
	Title       string `json:"title"`
	Ref         string `json:"ref"`
	Commit      string `json:"commit"`
	Approvals   int    `json:"approvals"`
	Needed      int    `json:"approvals_needed"`
	Comment     string `json:"comment,omitempty"`
	RunID       string `json:"run_id,omitempty"`
}

// New encodes v as a message on topic with key (the run ID) and a fresh event ID.
func New(topic, key string, v any) (bus.Message, error) {
	payload, err := json.Marshal(v)
	if err != nil {
		return bus.Message{}, fmt.Errorf("encode %s event: %w", topic, err)
	}
	return bus.Message{ID: ids.New(), Topic: topic, Key: key, Payload: payload}, nil
}

// Decode decodes m's payload into v; a payload that does not decode is a permanent error,
// since redelivering it cannot help.
func Decode(m bus.Message, v any) error {
	if err := json.Unmarshal(m.Payload, v); err != nil {
		return bus.Permanent(fmt.Errorf("decode %s event %s: %w", m.Topic, m.ID, err))
	}
	return nil
}
