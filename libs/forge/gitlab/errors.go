package gitlab

import (
	"context"
	"errors"
	"net"
	"net/http"

	gl "gitlab.com/gitlab-org/api/client-go"

	"fabu.dev/libs/apperr"
)

// apiError turns a client-go error into an application error whose message says what
// failed. GitLab's own message is kept in the wrapped cause, not in the public message.
func apiError(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	code := apperr.CodeInternal
	var er *gl.ErrorResponse
	var ne net.Error
	switch {
	case errors.Is(err, gl.ErrNotFound):
		code = apperr.CodeNotFound
	case errors.As(err, &er) && er.Response != nil:
		code = statusCode(er.Response)
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded), errors.As(err, &ne):
		code = apperr.CodeUnavailable
	}
	return apperr.Wrap(err, code, "gitlab: "+format, args...)
}

// statusCode is the one table from GitLab's HTTP statuses to application error codes.
func statusCode(resp *http.Response) apperr.Code {
	s := resp.StatusCode
	if rateLimited(resp) {
		return apperr.CodeUnavailable
	}
	return apperr.FromHTTPStatus(s)
}
