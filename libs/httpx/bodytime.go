package httpx

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// LimitBodyTime gives r's body d to arrive: a read after that fails with an error for which
// BodyTimedOut is true, so a sender trickling its body cannot hold the connection. Once the
// body has been read to its end the deadline is lifted, so it never cuts short the work the
// handler does after reading. w must be the handler's writer (or one that unwraps to it);
// the error says when the connection does not support deadlines.
func LimitBodyTime(w http.ResponseWriter, r *http.Request, d time.Duration) error {
	rc := http.NewResponseController(w)
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return err
	}
	r.Body = &timedBody{ReadCloser: r.Body, rc: rc}
	return nil
}

// BodyTimedOut reports whether err is a body read that LimitBodyTime cut short.
func BodyTimedOut(err error) bool { return errors.Is(err, os.ErrDeadlineExceeded) }

type timedBody struct {
	io.ReadCloser
	rc   *http.ResponseController
	done bool
}

func (b *timedBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if errors.Is(err, io.EOF) && !b.done {
		// The server now reads ahead in the background to notice a closed connection; a
		// deadline left set would end the request's context when it passes.
		b.done = true
		_ = b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// Linger flushes an early answer, then reads and discards what is left of r's body, at most
// max bytes and for at most d. A client still sending a body the server has refused (413
// before reading it) then finishes its write and reads the answer, instead of meeting a
// reset connection; a proxy in front answers the client with the 413, not a 502. nginx calls
// this a lingering close. Both bounds keep a slow or endless sender from holding on.
func Linger(w http.ResponseWriter, r *http.Request, max int64, d time.Duration) {
	rc := http.NewResponseController(w)
	_ = rc.Flush()
	if err := rc.SetReadDeadline(time.Now().Add(d)); err != nil {
		return
	}
	_, _ = io.CopyN(io.Discard, r.Body, max)
}
