// Package deliver runs a bus handler on one message the way every bus implementation must:
// retries with backoff, panics turned into errors, and a clear verdict on what to do with
// the message afterwards.
package deliver

import (
	"context"
	"fmt"
	"runtime/debug"
	"time"

	"fabu.dev/libs/bus"
)

// Outcome is what the caller does with a message after Handle.
type Outcome int

const (
	// Done: the handler succeeded; commit the message.
	Done Outcome = iota
	// DeadLetter: the handler failed permanently or ran out of attempts; send the message to
	// the dead-letter topic, then commit it.
	DeadLetter
	// Stopped: ctx ended before the handler succeeded; leave the message uncommitted so that
	// it is delivered again.
	Stopped
)

// Handle calls h on m until it succeeds, fails with a permanent error or has failed
// p.MaxAttempts times, waiting p.Delay between attempts. The error is the handler's last.
func Handle(ctx context.Context, p bus.RetryPolicy, h bus.Handler, m bus.Message) (Outcome, error) {
	p = p.WithDefaults()
	for attempt := 1; ; attempt++ {
		err := call(ctx, h, m)
		switch {
		case err == nil:
			return Done, nil
		case ctx.Err() != nil:
			return Stopped, err
		case bus.IsPermanent(err) || attempt >= p.MaxAttempts:
			return DeadLetter, err
		}
		t := time.NewTimer(p.Delay(attempt))
		select {
		case <-ctx.Done():
			t.Stop()
			return Stopped, err
		case <-t.C:
		}
	}
}

// call runs h, turning a panic into an error so that one bad message cannot kill the
// process; the stack goes into the error, which ends up in the dead-letter header.
func call(ctx context.Context, h bus.Handler, m bus.Message) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("handler panicked on %s message %s: %v\n%s", m.Topic, m.ID, r, debug.Stack())
		}
	}()
	return h(ctx, m)
}
