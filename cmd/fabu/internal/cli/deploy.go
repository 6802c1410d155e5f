package cli

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"fabu.dev/cmd/fabu/internal/client"
)

func deployCmd() *cobra.Command {
	var r remote
	var ref string
	var follow bool
	cmd := &cobra.Command{
		Use:   "deploy PROJECT [--ref REF] [--follow]",
		Short: "Start a deploy of a project",
		Long: "Start a run of PROJECT and print its ID and address. With --follow, stream its log " +
			"until it ends; the command then fails unless the run succeeded.",
		Args:         cobra.ExactArgs(1),
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := r.client()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			p, err := c.ProjectByName(ctx, args[0])
			if err != nil {
				return fmt.Errorf("deploy %s: %w", args[0], err)
			}
			run, err := c.StartRun(ctx, p.ID, ref)
			if err != nil {
				return fmt.Errorf("deploy %s: %w", args[0], err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Run %s started: %s\n", run.ID, c.RunURL(run.ID))
			if !follow {
				return nil
			}
			return followRun(ctx, cmd, c, run.ID)
		},
	}
	r.addFlags(cmd)
	cmd.Flags().StringVar(&ref, "ref", "", "git branch, tag or commit to deploy (default: the project's branch)")
	cmd.Flags().BoolVar(&follow, "follow", false, "stream the log until the run ends; fail unless it succeeds")
	return cmd
}

// ExitError makes the fabu binary exit with status Code without printing anything more:
// the command has already said why (deploy --follow says how the run ended).
type ExitError struct {
	Code int
}

func (e ExitError) Error() string { return fmt.Sprintf("exit status %d", e.Code) }

// followRun prints the run's log — stdout lines to stdout, stderr lines to stderr — with a
// progress bar and the estimated time left on stderr when both are terminals, and returns an error unless the run
// succeeded: an ExitError with code 1 once it has printed how the run ended.
func followRun(ctx context.Context, cmd *cobra.Command, c *client.Client, runID string) error {
	out, errOut := cmd.OutOrStdout(), cmd.ErrOrStderr()
	bar := &progressBar{w: errOut, on: isTerminal(out) && isTerminal(errOut)}
	stop := make(chan struct{})
	ticked := make(chan struct{})
	go func() {
		defer close(ticked)
		bar.tick(stop) // the time left counts down between status messages
	}()
	run, err := c.FollowLogs(ctx, runID, 0,
		func(l client.Line) {
			w := out
			if l.Stream == "stderr" {
				w = errOut
			}
			bar.println(w, l.Text)
		},
		func(r client.Run) { bar.update(r.Status, r.Progress, r.EstimatedFinishAt) })
	close(stop)
	<-ticked
	bar.clear()
	if err != nil {
		return err
	}
	if run.Status == client.StatusSucceeded {
		fmt.Fprintf(errOut, "Run %s succeeded\n", run.ID)
		return nil
	}
	if run.Error != "" {
		fmt.Fprintf(errOut, "Run %s %s: %s\n", run.ID, run.Status, run.Error)
	} else {
		fmt.Fprintf(errOut, "Run %s %s\n", run.ID, run.Status)
	}
	return ExitError{Code: 1}
}
