package audit

import (
	"encoding/csv"
	"encoding/json"
	"io"
	"strconv"
	"time"
)

// CSVHeader is the first row of an export.
var CSVHeader = []string{"id", "at", "actor", "actor_id", "action", "target", "target_id", "outcome", "ip", "user_agent", "detail"}

// CSVWriter writes entries as CSV (RFC 4180: fields with commas, quotes or line breaks are
// quoted). Every cell is guarded against formula injection: a spreadsheet would run a cell
// that starts with =, +, -, @, a tab or a carriage return, so such a cell gets a leading
// apostrophe.
type CSVWriter struct {
	w *csv.Writer
}

// NewCSVWriter returns a writer to w that has written the header row.
func NewCSVWriter(w io.Writer) (*CSVWriter, error) {
	cw := &CSVWriter{w: csv.NewWriter(w)}
	if err := cw.w.Write(CSVHeader); err != nil {
		return nil, err
	}
	return cw, nil
}

// Write writes one entry.
func (cw *CSVWriter) Write(e Entry) error {
	detail := "{}"
	if len(e.Detail) > 0 {
		if b, err := json.Marshal(e.Detail); err == nil {
			detail = string(b)
		}
	}
	rec := []string{strconv.FormatInt(e.ID, 10), e.At.UTC().Format(time.RFC3339Nano), e.Actor, e.ActorID, e.Action,
		e.Target, e.TargetID, e.Outcome, e.IP, e.UserAgent, detail}
	for i, s := range rec {
		rec[i] = CSVCell(s)
	}
	return cw.w.Write(rec)
}

// Flush writes buffered rows to the underlying writer and reports any error of a write.
func (cw *CSVWriter) Flush() error {
	cw.w.Flush()
	return cw.w.Error()
}

// CSVCell guards s against formula injection: a leading =, +, -, @, tab or carriage return
// gets an apostrophe before it.
func CSVCell(s string) string {
	if s == "" {
		return s
	}
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return "'" + s
	}
	return s
}
