package cli

import (
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"
)

const barWidth = 30

// progressBar draws a run's progress as one line that is redrawn in place, with the time
// left beside it when fabu could estimate it from the project's earlier runs. Log lines
// are printed between clear and draw so the bar always stays below them. A ticker redraws
// it every second so the time left counts down between status messages; mu keeps its
// redraws and the log lines from interleaving.
type progressBar struct {
	w        io.Writer
	on       bool
	now      func() time.Time // default time.Now
	mu       sync.Mutex
	shown    bool
	status   string
	progress int
	finishAt *time.Time
}

func (b *progressBar) update(status string, progress int, finishAt *time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status, b.progress, b.finishAt = status, progress, finishAt
	b.drawLocked()
}

// println prints a log line to w above the bar.
func (b *progressBar) println(w io.Writer, text string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
	fmt.Fprintln(w, text)
	b.drawLocked()
}

func (b *progressBar) draw() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.drawLocked()
}

func (b *progressBar) clear() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.clearLocked()
}

func (b *progressBar) drawLocked() {
	if !b.on || b.status == "" {
		return
	}
	now := time.Now
	if b.now != nil {
		now = b.now
	}
	fmt.Fprint(b.w, "\r"+renderBar(b.progress, b.status)+renderETA(b.finishAt, now())+"\x1b[K")
	b.shown = true
}

func (b *progressBar) clearLocked() {
	if b.shown {
		fmt.Fprint(b.w, "\r\x1b[K")
		b.shown = false
	}
}

// tick redraws the bar every second until stop is closed, so the time left counts down.
func (b *progressBar) tick(stop <-chan struct{}) {
	if !b.on {
		return
	}
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
			b.draw()
		}
	}
}

// renderBar renders e.g. "[#########---------------------]  30% building".
func renderBar(progress int, status string) string {
	progress = min(max(progress, 0), 100)
	filled := progress * barWidth / 100
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", barWidth-filled) + "] " +
		fmt.Sprintf("%3d%% %s", progress, status)
}

// renderETA renders the time left until finishAt, e.g. " · ETA 1m20s", " · ETA any
// moment" once it is due, or "" without an estimate.
func renderETA(finishAt *time.Time, now time.Time) string {
	if finishAt == nil {
		return ""
	}
	left := finishAt.Sub(now).Round(time.Second)
	if left <= 0 {
		return " · ETA any moment"
	}
	return " · ETA " + left.String()
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
