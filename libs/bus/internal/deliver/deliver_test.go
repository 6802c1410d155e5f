package deliver

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fabu.dev/libs/bus"
)

var fast = bus.RetryPolicy{MaxAttempts: 3, Initial: time.Millisecond, Max: 2 * time.Millisecond}

func TestHandle(t *testing.T) {
	boom := errors.New("boom")
	tests := []struct {
		name         string
		fails        int   // attempts that fail before success
		err          error // what a failing attempt returns
		panics       bool
		wantOutcome  Outcome
		wantAttempts int
	}{
		{"succeeds at once", 0, boom, false, Done, 1},
		{"succeeds on retry", 2, boom, false, Done, 3},
		{"exhausts attempts", 99, boom, false, DeadLetter, 3},
		{"permanent error", 99, bus.Permanent(boom), false, DeadLetter, 1},
		{"panics", 99, nil, true, DeadLetter, 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			attempts := 0
			h := func(context.Context, bus.Message) error {
				attempts++
				if attempts > tt.fails {
					return nil
				}
				if tt.panics {
					panic("kaboom")
				}
				return tt.err
			}
			got, err := Handle(context.Background(), fast, h, bus.Message{ID: "m1", Topic: "t"})
			if got != tt.wantOutcome || attempts != tt.wantAttempts {
				t.Errorf("Handle = %v after %d attempts (err %v), want %v after %d", got, attempts, err, tt.wantOutcome, tt.wantAttempts)
			}
			if tt.panics && (err == nil || !strings.Contains(err.Error(), "kaboom")) {
				t.Errorf("error after panic = %v, want one naming the panic", err)
			}
		})
	}
}

func TestHandleStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	slow := bus.RetryPolicy{MaxAttempts: 10, Initial: time.Hour, Max: time.Hour}
	attempts := 0
	h := func(context.Context, bus.Message) error {
		attempts++
		cancel() // the subscriber is shutting down while the message fails
		return errors.New("transient")
	}
	got, _ := Handle(ctx, slow, h, bus.Message{})
	if got != Stopped || attempts != 1 {
		t.Errorf("Handle = %v after %d attempts, want Stopped after 1", got, attempts)
	}
}
