package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
)

func TestCodes(t *testing.T) {
	err := fmt.Errorf("load: %w", NotFound("project %s not found", "x"))
	if CodeOf(err) != CodeNotFound || !Is(err, CodeNotFound) || HTTPStatus(CodeOf(err)) != http.StatusNotFound {
		t.Errorf("wrapped not_found: code %s", CodeOf(err))
	}
	if HTTPStatus(CodeRateLimited) != http.StatusTooManyRequests {
		t.Errorf("rate_limited maps to %d, want 429", HTTPStatus(CodeRateLimited))
	}
	if c, msg := Public(errors.New("pq: secret detail")); c != CodeInternal || msg != "internal error" {
		t.Errorf("Public(plain error) = %s %q, want internal without detail", c, msg)
	}
	w := Wrap(errors.New("cause"), CodeUnavailable, "redis down")
	if w.Error() != "redis down: cause" || errors.Unwrap(w).Error() != "cause" {
		t.Errorf("Wrap: %q", w.Error())
	}
}

func TestFromHTTPStatus(t *testing.T) {
	for _, tt := range []struct {
		status int
		want   Code
	}{
		{404, CodeNotFound}, {410, CodeNotFound}, {401, CodeUnauthorized}, {403, CodeForbidden},
		{409, CodeConflict}, {400, CodeInvalid}, {422, CodeInvalid}, {429, CodeUnavailable},
		{408, CodeUnavailable}, {500, CodeUnavailable}, {503, CodeUnavailable}, {418, CodeInternal},
	} {
		if got := FromHTTPStatus(tt.status); got != tt.want {
			t.Errorf("FromHTTPStatus(%d) = %s, want %s", tt.status, got, tt.want)
		}
	}
}
