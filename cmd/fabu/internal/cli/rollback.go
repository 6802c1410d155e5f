package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func rollbackCmd() *cobra.Command {
	var r remote
	var follow bool
	cmd := &cobra.Command{
		Use:   "rollback RUN [--follow]",
		Short: "Put the release of an earlier succeeded run back on its servers",
		Long: "Start a run that switches the project's servers back to the release RUN deployed " +
			"(nothing is built; every server must still hold it) and print its ID and address. " +
			"With --follow, stream its log until it ends; the command then fails unless the run succeeded.",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			run, err := c.Rollback(ctx, args[0])
			if err != nil {
				return fmt.Errorf("rollback to %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Run %s started: %s\n", run.ID, c.RunURL(run.ID))
			if !follow {
				return nil
			}
			return followRun(ctx, cmd, c, run.ID)
		},
	}
	r.addFlags(cmd)
	cmd.Flags().BoolVar(&follow, "follow", false, "stream the log until the run ends; fail unless it succeeds")
	return cmd
}
