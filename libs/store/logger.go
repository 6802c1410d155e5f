package store

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"gorm.io/gorm/logger"
	"gorm.io/gorm/utils"
)

// GORM's Scan (and whatever else runs through logger.Recorder) explains its SQL through this
// package-level filter instead of the session logger's ParamsFilter, so parameter values would
// reach the slow query log from there. It is set once, at package init, before any query.
func init() {
	logger.RecorderParamsFilter = func(_ context.Context, sql string, _ ...any) (string, []any) {
		return sql, nil
	}
}

// slowQueryLogger is GORM's logger for fabu: it logs only queries slower than SlowQuery, as
// slog warnings, and never parameter values, which may be secrets. Errors are not logged:
// they go to the caller, who knows whether they matter.
type slowQueryLogger struct {
	threshold time.Duration // queries that take this long are slow
}

// LogMode ignores GORM's level: fabu wants slow queries only, whatever a caller asks.
func (l slowQueryLogger) LogMode(logger.LogLevel) logger.Interface { return l }

func (slowQueryLogger) Info(ctx context.Context, msg string, args ...any) {
	slog.InfoContext(ctx, fmt.Sprintf(msg, args...), "component", "store")
}

func (slowQueryLogger) Warn(ctx context.Context, msg string, args ...any) {
	slog.WarnContext(ctx, fmt.Sprintf(msg, args...), "component", "store")
}

func (slowQueryLogger) Error(ctx context.Context, msg string, args ...any) {
	slog.ErrorContext(ctx, fmt.Sprintf(msg, args...), "component", "store")
}

func (l slowQueryLogger) Trace(ctx context.Context, begin time.Time, fc func() (string, int64), _ error) {
	elapsed := time.Since(begin)
	if elapsed < l.threshold {
		return
	}
	sql, rows := fc()
	slog.WarnContext(ctx, "slow query", "component", "store", "elapsed", elapsed,
		"rows", rows, "sql", sql, "source", utils.FileWithLineNum())
}

// ParamsFilter drops the parameters, so that the SQL GORM hands to Trace keeps its
// placeholders instead of the values.
func (slowQueryLogger) ParamsFilter(_ context.Context, sql string, _ ...any) (string, []any) {
	return sql, nil
}
