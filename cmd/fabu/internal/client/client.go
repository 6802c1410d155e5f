// Package client is a small typed client of fabu's gateway HTTP API (/api/v1), used by the
// fabu command line. API errors come back as *apperr.Error carrying the server's code and
// message.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"fabu.dev/libs/apperr"
)

// Client calls one fabu server with one API token.
type Client struct {
	server string
	token  string
	hc     *http.Client

	// PollInterval is how long FollowLogs waits between polls when it cannot use the
	// WebSocket and no new line arrived. New sets it to one second.
	PollInterval time.Duration
}

// New returns a client of the server at base URL server (e.g. "https://fabu.example.com"),
// authenticating with token (may be empty for Login). A nil httpClient means
// http.DefaultClient.
func New(server, token string, httpClient *http.Client) *Client {
	if httpClient == nil {
		httpClient = http.DefaultClient
	}
	return &Client{
		server:       strings.TrimRight(server, "/"),
		token:        token,
		hc:           httpClient,
		PollInterval: time.Second,
	}
}

// Server returns the server's base URL without a trailing slash.
func (c *Client) Server() string { return c.server }

// RunURL returns the address of the run's page in the web UI.
func (c *Client) RunURL(runID string) string { return c.server + "/runs/" + runID }

// do sends a JSON request to path (below the server's base URL) and decodes a 2xx answer
// into out (unless out is nil). Any other answer becomes an error.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("encode %s %s: %w", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.server+path, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.authorize(req.Header)
	resp, err := c.hc.Do(req)
	if err != nil {
		return err // *url.Error already names method and URL; the token is in a header only
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return responseError(resp)
	}
	if out == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("decode answer to %s %s: %w", method, path, err)
	}
	return nil
}

func (c *Client) authorize(h http.Header) {
	if c.token != "" {
		h.Set("Authorization", "Bearer "+c.token)
	}
}

// responseError turns a non-2xx answer into an *apperr.Error: the server's {code, message}
// when the body is one, otherwise a code derived from the status and the start of the body.
func responseError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var e apperr.Error
	if err := json.Unmarshal(b, &e); err == nil && e.Message != "" {
		if e.Code == "" {
			e.Code = codeOfStatus(resp.StatusCode)
		}
		return &e
	}
	msg := strings.TrimSpace(string(b))
	if len(msg) > 200 {
		msg = msg[:200] + "…"
	}
	if msg == "" {
		msg = http.StatusText(resp.StatusCode)
	}
	return &apperr.Error{
		Code:    codeOfStatus(resp.StatusCode),
		Message: fmt.Sprintf("%s %s: HTTP %d: %s", resp.Request.Method, resp.Request.URL.Path, resp.StatusCode, msg),
	}
}

// codeOfStatus inverts apperr.HTTPStatus for answers that carry no code.
func codeOfStatus(status int) apperr.Code {
	for _, c := range []apperr.Code{apperr.CodeInvalid, apperr.CodeNotFound, apperr.CodeConflict,
		apperr.CodeUnauthorized, apperr.CodeForbidden, apperr.CodeUnavailable} {
		if apperr.HTTPStatus(c) == status {
			return c
		}
	}
	if status == http.StatusBadGateway || status == http.StatusGatewayTimeout {
		return apperr.CodeUnavailable
	}
	return apperr.CodeInternal
}

// transient reports whether err may go away by retrying: a network failure or a server that
// is unavailable, not an answer about the request itself.
func transient(err error) bool {
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return ae.Code == apperr.CodeUnavailable || ae.Code == apperr.CodeInternal
	}
	return err != nil && !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
}
