// Package apperr is fabu's one application error type: an error with a code that says what
// kind of failure it is, mapped to HTTP statuses in one table and carried across the bus as
// {code, message}.
package apperr

import (
	"errors"
	"fmt"
	"net/http"
)

// Code classifies an application error.
type Code string

// The codes an application error can carry.
const (
	CodeInvalid      Code = "invalid"
	CodeNotFound     Code = "not_found"
	CodeConflict     Code = "conflict"
	CodeUnauthorized Code = "unauthorized"
	CodeForbidden    Code = "forbidden"
	CodeUnavailable  Code = "unavailable"
	CodeRateLimited  Code = "rate_limited"
	CodeInternal     Code = "internal"
)

var statuses = map[Code]int{
	CodeInvalid:      http.StatusBadRequest,
	CodeNotFound:     http.StatusNotFound,
	CodeConflict:     http.StatusConflict,
	CodeUnauthorized: http.StatusUnauthorized,
	CodeForbidden:    http.StatusForbidden,
	CodeUnavailable:  http.StatusServiceUnavailable,
	CodeRateLimited:  http.StatusTooManyRequests,
	CodeInternal:     http.StatusInternalServerError,
}

// Error is an application error: a code, a message safe to show to the caller, and an
// optional wrapped cause that is not shown.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	Err     error  `json:"-"`
}

func (e *Error) Error() string {
	if e.Err != nil {
		return e.Message + ": " + e.Err.Error()
	}
	return e.Message
}

// Unwrap returns the wrapped cause.
func (e *Error) Unwrap() error { return e.Err }

// New returns an application error with code and a formatted message.
func New(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// Wrap returns an application error with code and message that wraps err.
func Wrap(err error, code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Err: err}
}

// Invalid reports bad input.
func Invalid(format string, args ...any) *Error { return New(CodeInvalid, format, args...) }

// NotFound reports a missing resource.
func NotFound(format string, args ...any) *Error { return New(CodeNotFound, format, args...) }

// Conflict reports a state conflict.
func Conflict(format string, args ...any) *Error { return New(CodeConflict, format, args...) }

// Unauthorized reports missing or bad credentials.
func Unauthorized(format string, args ...any) *Error {
	return New(CodeUnauthorized, format, args...)
}

// Forbidden reports an authenticated caller without the permission.
func Forbidden(format string, args ...any) *Error { return New(CodeForbidden, format, args...) }

// Unavailable reports a dependency that cannot be reached now.
func Unavailable(format string, args ...any) *Error {
	return New(CodeUnavailable, format, args...)
}

// CodeOf returns the code of the first application error in err's chain, or CodeInternal.
func CodeOf(err error) Code {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return CodeInternal
}

// Is reports whether err carries code.
func Is(err error, code Code) bool { return err != nil && CodeOf(err) == code }

// HTTPStatus maps a code to its HTTP status.
func HTTPStatus(code Code) int {
	if s, ok := statuses[code]; ok {
		return s
	}
	return http.StatusInternalServerError
}

// Public returns the code and the message of err that may be shown to a caller: the
// application error's own message, or a generic one for anything else.
func Public(err error) (Code, string) {
	var e *Error
	if errors.As(err, &e) {
		return e.Code, e.Message
	}
	return CodeInternal, "internal error"
}

// FromHTTPStatus is the inverse table, for errors answered by another HTTP API (a git
// platform): what a caller of fabu should make of that status.
func FromHTTPStatus(status int) Code {
	switch {
	case status == http.StatusNotFound || status == http.StatusGone:
		return CodeNotFound
	case status == http.StatusUnauthorized:
		return CodeUnauthorized
	case status == http.StatusForbidden:
		return CodeForbidden
	case status == http.StatusConflict:
		return CodeConflict
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return CodeInvalid
	case status == http.StatusTooManyRequests || status == http.StatusRequestTimeout || status >= 500:
		return CodeUnavailable
	}
	return CodeInternal
}
