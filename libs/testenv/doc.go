// Package testenv finds the real backends that fabu's integration tests run against —
// PostgreSQL, Redis and a Kafka-protocol broker — through environment variables with this
// machine's local defaults. A missing backend fails the test with a message saying how to get
// it; it is skipped only when FABU_TEST_SKIP_MISSING=1 asks for that, never silently.
//
//	FABU_TEST_POSTGRES  default postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable
//	FABU_TEST_REDIS     default 127.0.0.1:6379
//
// The Kafka-protocol broker is franz-go's kfake, started in process on a loopback port.
package testenv

import (
	"os"
	"testing"
)

// Missing reports a backend that a test needs and cannot reach: the test fails with how to
// get the backend, or is skipped when FABU_TEST_SKIP_MISSING=1.
func Missing(t testing.TB, what, how string, err error) {
	t.Helper()
	if os.Getenv("FABU_TEST_SKIP_MISSING") == "1" {
		t.Skipf("%s unavailable (%v); skipped because FABU_TEST_SKIP_MISSING=1", what, err)
	}
	t.Fatalf("%s unavailable: %v\n%s", what, err, how)
}

// Getenv returns the environment variable key, or def when it is empty.
func Getenv(key, def string) string {
	if v := os.Getenv(key); v != "" {
		return v
	}
	return def
}
