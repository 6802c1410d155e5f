// Command fabu is the one binary of fabu, the self-hosted release system: `fabu up` runs
// every service in one process on embedded defaults, `fabu serve` runs any subset against
// PostgreSQL, Kafka and Redis, `fabu migrate` applies the schema, and `login`, `apply` and
// `deploy` are the command-line client.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"

	"fabu.dev/cmd/fabu/internal/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		var exit cli.ExitError
		if errors.As(err, &exit) {
			os.Exit(exit.Code)
		}
		fmt.Fprintln(os.Stderr, "fabu:", err)
		os.Exit(1)
	}
}

func newRoot() *cobra.Command {
	root := &cobra.Command{
		Use:           "fabu",
		Short:         "fabu (发布) — build and release to your own servers",
		Version:       version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.AddCommand(newUpCmd(), newServeCmd(), newMigrateCmd(), newKeygenCmd(), newSecretsCmd())
	root.AddCommand(cli.Commands()...)
	return root
}
