package auth

import (
	"context"
	"errors"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
	"fabu.dev/libs/audit"
)

// record writes e to the audit log with the request's client address and user agent. A
// failure to record is logged; the answer to the caller does not change, because what was
// done (a sign-in, a new token) is done.
func (s *Service) record(c *gin.Context, e audit.Entry) {
	e.At = s.now()
	e.IP = s.clientIP(c)
	e.UserAgent = c.Request.UserAgent()
	if err := audit.Record(s.db.WithContext(context.WithoutCancel(c.Request.Context())), e); err != nil {
		s.log.Error("audit log: entry not recorded", "action", e.Action, "err", err)
	}
}

// outcomeOf is the audit outcome of err: nil is OK, an error the caller caused is Refused,
// anything else Failed.
func outcomeOf(err error) string {
	var locked *LockedError
	switch {
	case err == nil:
		return audit.OK
	case errors.As(err, &locked):
		return audit.Refused
	}
	switch code, _ := apperr.Public(err); code {
	case apperr.CodeInternal, apperr.CodeUnavailable:
		return audit.Failed
	}
	return audit.Refused
}

// reasonOf is what the caller was told about err, for the audit detail.
func reasonOf(err error) string {
	var locked *LockedError
	if errors.As(err, &locked) {
		return "locked after too many failed sign-ins"
	}
	_, msg := apperr.Public(err)
	return msg
}
