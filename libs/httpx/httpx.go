// Package httpx holds the HTTP mechanisms every fabu service shares: a gin engine with
// recovery and request logging, strict JSON binding, the one mapping from application
// errors to responses, health endpoints and a server with graceful shutdown.
package httpx

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gin-gonic/gin"

	"fabu.dev/libs/apperr"
)

// MaxBody is the largest JSON request body the API accepts.
const MaxBody = 1 << 20

// NewEngine returns a gin engine in release mode with panic recovery, request logging and
// the security headers (SecureHeaders) on every response. Only the path is logged, never the
// query string, which may carry an access token.
func NewEngine(log *slog.Logger) *gin.Engine {
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.ContextWithFallback = true
	e.Use(SecureHeaders)
	e.Use(gin.CustomRecovery(func(c *gin.Context, v any) {
		log.Error("handler panic", "path", c.Request.URL.Path, "panic", fmt.Sprint(v))
		Fail(c, log, errors.New("handler panic"))
	}))
	e.Use(func(c *gin.Context) {
		start := time.Now()
		c.Next()
		log.Debug("http", "method", c.Request.Method, "path", LogPath(c.Request.URL.Path),
			"status", c.Writer.Status(), "dur", time.Since(start))
	})
	return e
}

// LogPath is a request path as it may be logged: the token of a trigger URL
// (/trigger/<token>) is replaced by "****".
func LogPath(p string) string {
	if rest, ok := strings.CutPrefix(p, "/trigger/"); ok && rest != "" {
		return "/trigger/****"
	}
	return p
}

// Fail writes err as {code, message} with the status its code maps to. Errors that are not
// application errors are logged and answered with a generic message, so no internal detail
// (or secret) leaks to the caller.
func Fail(c *gin.Context, log *slog.Logger, err error) {
	code, msg := apperr.Public(err)
	if code == apperr.CodeInternal && log != nil {
		log.Error("request failed", "method", c.Request.Method, "path", c.Request.URL.Path, "err", err)
	}
	c.AbortWithStatusJSON(apperr.HTTPStatus(code), gin.H{"code": code, "message": msg})
}

// Bind decodes the request body as exactly one JSON object into v. Unknown fields, trailing
// data, bodies over MaxBody and malformed JSON are invalid input.
func Bind(c *gin.Context, v any) error {
	dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, MaxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var tooBig *http.MaxBytesError
		switch {
		case errors.As(err, &tooBig):
			return apperr.Invalid("request body is larger than %d bytes", MaxBody)
		case errors.Is(err, io.EOF):
			return apperr.Invalid("request body is empty; a JSON object is expected")
		default:
			return apperr.Invalid("invalid JSON body: %v", err)
		}
	}
	if dec.More() {
		return apperr.Invalid("invalid JSON body: trailing data after the object")
	}
	return nil
}

// Check is one readiness check of a backend.
type Check struct {
	Name string
	Fn   func(ctx context.Context) error
}

// Health adds GET /healthz (the process answers) and GET /readyz (every check passes within
// two seconds) to e.
func Health(e gin.IRoutes, checks ...Check) {
	e.GET("/healthz", func(c *gin.Context) { c.JSON(http.StatusOK, gin.H{"status": "ok"}) })
	e.GET("/readyz", func(c *gin.Context) {
		ctx, cancel := context.WithTimeout(c.Request.Context(), 2*time.Second)
		defer cancel()
		failed := gin.H{}
		for _, ch := range checks {
			if err := ch.Fn(ctx); err != nil {
				failed[ch.Name] = err.Error()
			}
		}
		if len(failed) > 0 {
			c.JSON(http.StatusServiceUnavailable, gin.H{"status": "unready", "failed": failed})
			return
		}
		c.JSON(http.StatusOK, gin.H{"status": "ready"})
	})
}

// Serve serves h on ln until ctx ends, then shuts down gracefully: in-flight requests get
// up to grace to finish.
func Serve(ctx context.Context, ln net.Listener, h http.Handler, grace time.Duration) error {
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return fmt.Errorf("shut down %s: %w", ln.Addr(), err)
	}
	return nil
}
