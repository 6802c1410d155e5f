package bus

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

func TestPermanent(t *testing.T) {
	base := errors.New("bad payload")
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"plain", base, false},
		{"marked", Permanent(base), true},
		{"wrapped after marking", fmt.Errorf("handle: %w", Permanent(base)), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := IsPermanent(tt.err); got != tt.want {
				t.Errorf("IsPermanent(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
	if !errors.Is(Permanent(base), base) {
		t.Error("Permanent(err) does not wrap err")
	}
	if Permanent(nil) != nil {
		t.Error("Permanent(nil) is not nil")
	}
}

func TestRetryPolicyDelay(t *testing.T) {
	p := RetryPolicy{MaxAttempts: 5, Initial: 100 * time.Millisecond, Max: time.Second}
	tests := []struct {
		attempt int
		full    time.Duration // the delay before jitter; the result lies in [full/2, full]
	}{
		{1, 100 * time.Millisecond},
		{2, 200 * time.Millisecond},
		{3, 400 * time.Millisecond},
		{4, 800 * time.Millisecond},
		{5, time.Second},
		{50, time.Second},
	}
	for _, tt := range tests {
		for i := 0; i < 100; i++ {
			got := p.Delay(tt.attempt)
			if got < tt.full/2 || got > tt.full {
				t.Fatalf("Delay(%d) = %v, want within [%v, %v]", tt.attempt, got, tt.full/2, tt.full)
			}
		}
	}
}

func TestRetryPolicyWithDefaults(t *testing.T) {
	if got := (RetryPolicy{}).WithDefaults(); got != DefaultRetry {
		t.Errorf("zero policy with defaults = %+v, want %+v", got, DefaultRetry)
	}
	p := RetryPolicy{MaxAttempts: 2, Initial: time.Millisecond, Max: 3 * time.Millisecond}
	if got := p.WithDefaults(); got != p {
		t.Errorf("full policy with defaults = %+v, want it unchanged", got)
	}
}

func TestDeadLetter(t *testing.T) {
	m := Message{ID: "1", Topic: "t", Key: "k", Payload: []byte("p"), Headers: map[string]string{"a": "b"}}
	got := DeadLetter(m, errors.New("boom"))
	if got.Topic != "t.dlq" || got.ID != "1" || got.Key != "k" || got.Headers["a"] != "b" || got.Headers[HeaderError] != "boom" {
		t.Errorf("DeadLetter = %+v, want topic t.dlq, same ID/key, header a=b and error=boom", got)
	}
	if _, ok := m.Headers[HeaderError]; ok {
		t.Error("DeadLetter changed the original message's headers")
	}
}
