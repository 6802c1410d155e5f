package audit

// SetPruneBatch makes Prune delete n entries per statement, so tests reach the loop.
func SetPruneBatch(n int) func() {
	old := pruneBatch
	pruneBatch = n
	return func() { pruneBatch = old }
}
