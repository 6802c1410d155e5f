package testenv

import (
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"
)

// Kafka starts a Kafka-protocol broker for the test — franz-go's kfake, one broker on a
// random loopback port, speaking the real wire protocol — and returns its bootstrap
// addresses. It is closed when the test ends. Topics are not created automatically: create
// them as production does (bus/kafka creates the topics it uses). A test with a consumer
// group must wait until every reader holds partitions before it produces.
func Kafka(t testing.TB) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1))
	if err != nil {
		t.Fatalf("start in-process Kafka broker (kfake): %v", err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}
