package audit

import (
	"context"
	"fmt"
	"time"

	"gorm.io/gorm"
)

// pruneBatch is how many entries one DELETE removes, so pruning a large backlog never holds
// a long lock on the table or builds one huge transaction.
var pruneBatch = 5000

// Prune deletes the entries recorded before cutoff, in batches, and then records one entry
// (action audit.prune, actor "system") saying how many it removed and up to when, so the
// log itself shows that and when it was shortened. It records nothing when nothing was old
// enough. Several processes may prune at once: each batch deletes what is still there.
func Prune(ctx context.Context, db *gorm.DB, cutoff time.Time) (int64, error) {
	cutoff = cutoff.UTC()
	var total int64
	for {
		res := db.WithContext(ctx).Exec(`DELETE FROM audit_log WHERE id IN
			(SELECT id FROM audit_log WHERE at < ? ORDER BY id LIMIT ?)`, cutoff, pruneBatch)
		if res.Error != nil {
			return total, fmt.Errorf("audit: prune before %s: %w", cutoff.Format(time.RFC3339), res.Error)
		}
		total += res.RowsAffected
		if res.RowsAffected < int64(pruneBatch) {
			break
		}
		if err := ctx.Err(); err != nil {
			return total, err
		}
	}
	if total == 0 {
		return 0, nil
	}
	err := Record(db.WithContext(ctx), Entry{Actor: "system", ActorID: "retention", Action: "audit.prune",
		Target: "audit_log", Outcome: OK,
		Detail: map[string]any{"removed": total, "before": cutoff.Format(time.RFC3339)}})
	return total, err
}
