package cli

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"fabu.dev/cmd/fabu/internal/client"
)

func applyCmd() *cobra.Command {
	var r remote
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f FILE",
		Short: "Create or update servers and projects from a YAML file",
		Long: "Create or update servers and projects, matched by name, from a YAML file " +
			"(-f - reads stdin). Applying the same file again changes nothing.\n\n" +
			"servers:\n" +
			"  - {name: web1, host: 10.0.0.1, port: 22, user: deploy, host_key: \"10.0.0.1 ssh-ed25519 AAAA…\"}\n" +
			"projects:\n" +
			"  - {name: shop, git_url: https://git.example.com/shop.git, type: jar, branch: main,\n" +
			"     deploy_path: /srv/shop, keep_releases: 5, servers: [web1]}",
		Args:         cobra.NoArgs,
		SilenceUsage: true,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if file == "" {
				return errors.New("apply: -f FILE is required")
			}
			in := cmd.InOrStdin()
			name := "stdin"
			if file != "-" {
				f, err := os.Open(file)
				if err != nil {
					return fmt.Errorf("apply: %w", err)
				}
				defer f.Close()
				in, name = f, file
			}
			doc, err := parseApplyFile(in)
			if err != nil {
				return fmt.Errorf("%s: %w", name, err)
			}
			c, err := r.client()
			if err != nil {
				return err
			}
			res, err := c.Apply(cmd.Context(), doc)
			if err != nil {
				return fmt.Errorf("apply %s: %w", name, err)
			}
			return printApplied(cmd.OutOrStdout(), res)
		},
	}
	r.addFlags(cmd)
	cmd.Flags().StringVarP(&file, "file", "f", "", "YAML file to apply, - for stdin")
	return cmd
}

func printApplied(w io.Writer, res client.ApplyResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, c := range res.Connections {
		fmt.Fprintf(tw, "connection\t%s\t%s\n", c.Name, c.Action)
	}
	for _, s := range res.Servers {
		fmt.Fprintf(tw, "server\t%s\t%s\n", s.Name, s.Action)
	}
	for _, p := range res.Projects {
		fmt.Fprintf(tw, "project\t%s\t%s\n", p.Name, p.Action)
	}
	return tw.Flush()
}
