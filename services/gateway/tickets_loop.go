package gateway

import (
	"context"
	"sync"
	"time"

	"gorm.io/gorm"

	"fabu.dev/libs/audit"
	"fabu.dev/libs/tickets"
)

// TicketConfig configures the loop that starts approved release tickets at their scheduled
// time and expires tickets nobody started in time.
type TicketConfig struct {
	TicketPoll time.Duration // how often; default 10s
}

// ticketBatch bounds the tickets one pass starts or expires.
const ticketBatch = 100

// startTickets runs the ticket loop until ctx ends; the returned function waits for it to
// stop. Every gateway runs one: each ticket is claimed by a conditional UPDATE
// (tickets.Start), so a ticket due at the same moment for several gateways starts one run.
func (s *Service) startTickets(ctx context.Context) func() {
	every := s.cfg.TicketPoll
	if every <= 0 {
		every = 10 * time.Second
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			s.ticketPass(ctx, time.Now())
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return wg.Wait
}

// ticketPass expires overdue tickets, then starts the approved ones that are due. Failures
// are logged and retried on the next pass.
func (s *Service) ticketPass(ctx context.Context, now time.Time) {
	if ctx.Err() != nil {
		return
	}
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		expired, err := tickets.Expire(tx, now, ticketBatch)
		for _, t := range expired {
			if err := audit.Record(tx, audit.Entry{At: now, Actor: "system", ActorID: "ticket-loop", Action: "ticket.expire",
				Target: "ticket", TargetID: t.ID, Outcome: audit.OK,
				Detail: map[string]any{"project_id": t.ProjectID, "expires_at": t.ExpiresAt.UTC(), "requested_by": t.RequestedBy}}); err != nil {
				return err
			}
		}
		return err
	})
	if err != nil {
		s.log.Error("expire release tickets", "err", err)
	}
	due, err := tickets.Due(s.db.WithContext(ctx), now, ticketBatch)
	if err != nil {
		s.log.Error("list due release tickets", "err", err)
		return
	}
	for _, id := range due {
		if _, err := s.startTicket(ctx, id, "system", "ticket-loop", "", "", now); err != nil {
			s.log.Error("start release ticket", "ticket", id, "err", err)
		}
	}
}

// startTicket starts ticket id's run when it is approved and due, recording who started it
// (the approver whose approval completed it, or the loop) in the audit log in the same
// transaction. It reports whether it started a run.
func (s *Service) startTicket(ctx context.Context, id, actor, actorID, ip, userAgent string, now time.Time) (bool, error) {
	var started bool
	err := s.db.Tx(ctx, func(tx *gorm.DB) error {
		var err error
		started, err = s.startTicketTx(tx, id, actor, actorID, ip, userAgent, now)
		return err
	})
	if started {
		s.kick()
	}
	return started, err
}

func (s *Service) startTicketTx(tx *gorm.DB, id, actor, actorID, ip, userAgent string, now time.Time) (bool, error) {
	t, r, ok, err := tickets.Start(tx, id, actor, now)
	if err != nil || !ok {
		return false, err
	}
	var approvers []string
	if err := tx.Model(&tickets.Review{}).Where("ticket_id = ? AND decision = ?", id, tickets.DecisionApprove).
		Order("created_at").Pluck("reviewer", &approvers).Error; err != nil {
		return false, err
	}
	return true, audit.Record(tx, audit.Entry{At: now, Actor: actor, ActorID: actorID, Action: "ticket.start", Target: "ticket",
		TargetID: t.ID, Outcome: audit.OK, IP: ip, UserAgent: userAgent,
		Detail: map[string]any{"project_id": t.ProjectID, "run_id": r.ID, "ref": t.Ref, "commit": t.CommitSHA,
			"requested_by": t.RequestedBy, "approved_by": approvers}})
}
