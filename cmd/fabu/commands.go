package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	goredis "github.com/redis/go-redis/v9"
	"github.com/spf13/cobra"

	"fabu.dev/libs/bus/kafka"
	busmem "fabu.dev/libs/bus/memory"
	"fabu.dev/libs/coord"
	coordmem "fabu.dev/libs/coord/memory"
	coordredis "fabu.dev/libs/coord/redis"
	"fabu.dev/libs/events"
	"fabu.dev/libs/secret"
	"fabu.dev/libs/store"
)

func newUpCmd() *cobra.Command {
	var cfg serverConfig
	cmd := &cobra.Command{
		Use:   "up",
		Short: "Run all of fabu in one process on embedded defaults (SQLite, in-process bus and locks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.resolve(cmd); err != nil {
				return err
			}
			log, err := newLogger(cfg.LogLevel)
			if err != nil {
				return err
			}
			if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
				return fmt.Errorf("create data dir: %w", err)
			}
			ctx := cmd.Context()
			keys, err := loadKeyring(cfg, true)
			if err != nil {
				return err
			}
			db, err := openStore(ctx, store.Config{Driver: store.SQLite, DSN: filepath.Join(cfg.DataDir, "fabu.db"), Sealer: keys})
			if err != nil {
				return err
			}
			defer db.Close()
			b := busmem.New(busmem.Config{})
			defer b.Close()
			co := coordmem.New()
			defer co.Close()
			log.Info("embedded mode", "data_dir", cfg.DataDir)
			return runProcess(ctx, cfg, &stack{keys: keys, db: db, bus: b, coord: co, log: log}, serviceNames)
		},
	}
	cfg.flags(cmd.Flags(), false)
	return cmd
}

func newServeCmd() *cobra.Command {
	var cfg serverConfig
	cmd := &cobra.Command{
		Use:   "serve SERVICE...",
		Short: "Run some of fabu's services (" + strings.Join(serviceNames, ", ") + " or all) against PostgreSQL, Kafka and Redis",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cfg.resolve(cmd); err != nil {
				return err
			}
			names, err := pickServices(args)
			if err != nil {
				return err
			}
			log, err := newLogger(cfg.LogLevel)
			if err != nil {
				return err
			}
			if cfg.Postgres == "" || cfg.Kafka == "" {
				return fmt.Errorf("serve needs --postgres and --kafka (or FABU_POSTGRES, FABU_KAFKA)")
			}
			ctx := cmd.Context()
			var keys *secret.Keyring
			if slices.Contains(names, "gateway") || slices.Contains(names, "webhook") || slices.Contains(names, "auth") ||
				slices.Contains(names, "builder") || slices.Contains(names, "deployer") { // registry passwords
				if keys, err = loadKeyring(cfg, false); err != nil {
					return err
				}
			}
			// Migrations that seal (repository credentials) use the keys when the process has them.
			db, err := openStore(ctx, store.Config{Driver: store.Postgres, DSN: cfg.Postgres, Sealer: sealerOf(keys)})
			if err != nil {
				return err
			}
			defer db.Close()
			kb, err := kafka.New(kafka.Config{Brokers: strings.Split(cfg.Kafka, ","), ClientID: "fabu-" + strings.Join(names, "-")})
			if err != nil {
				return err
			}
			defer kb.Close()
			if err := kb.EnsureTopics(ctx, events.Topics...); err != nil {
				return fmt.Errorf("create kafka topics: %w", err)
			}
			co, closeCoord, err := openCoord(ctx, cfg, names)
			if err != nil {
				return err
			}
			defer closeCoord()
			return runProcess(ctx, cfg, &stack{keys: keys, db: db, bus: kb, coord: co, log: log}, names)
		},
	}
	cfg.flags(cmd.Flags(), true)
	return cmd
}

func pickServices(args []string) ([]string, error) {
	if len(args) == 1 && args[0] == "all" {
		return slices.Clone(serviceNames), nil
	}
	seen := map[string]bool{}
	for _, a := range args {
		known := false
		for _, n := range serviceNames {
			known = known || n == a
		}
		if !known {
			return nil, fmt.Errorf("unknown service %q (known: %s, or all)", a, strings.Join(serviceNames, ", "))
		}
		seen[a] = true
	}
	var out []string
	for _, n := range serviceNames { // start order, without duplicates
		if seen[n] {
			out = append(out, n)
		}
	}
	return out, nil
}

// openCoord connects to Redis when a service that needs locks runs here; others get an
// in-process coordinator they never use.
func openCoord(ctx context.Context, cfg serverConfig, names []string) (coord.Coordinator, func(), error) {
	needs := false
	for _, n := range names {
		needs = needs || n == "builder" || n == "deployer"
	}
	if !needs {
		c := coordmem.New()
		return c, func() { c.Close() }, nil
	}
	if cfg.Redis == "" {
		return nil, nil, fmt.Errorf("builder and deployer need --redis (or FABU_REDIS)")
	}
	opts, err := redisOptions(cfg.Redis)
	if err != nil {
		return nil, nil, err
	}
	client := goredis.NewClient(opts)
	if err := client.Ping(ctx).Err(); err != nil {
		client.Close()
		return nil, nil, fmt.Errorf("connect to redis %s: %w", opts.Addr, err)
	}
	c := coordredis.New(coordredis.Config{Client: client, Prefix: cfg.RedisPrefix})
	return c, func() { c.Close(); client.Close() }, nil
}

func redisOptions(s string) (*goredis.Options, error) {
	if strings.Contains(s, "://") {
		o, err := goredis.ParseURL(s)
		if err != nil {
			return nil, fmt.Errorf("redis URL: %w", err)
		}
		return o, nil
	}
	return &goredis.Options{Addr: s}, nil
}

// sealerOf is keys as a store.Sealer: nil (not a nil pointer in an interface) without keys.
func sealerOf(keys *secret.Keyring) store.Sealer {
	if keys == nil {
		return nil
	}
	return keys
}

// openStore opens the database and applies pending migrations.
func openStore(ctx context.Context, cfg store.Config) (*store.DB, error) {
	db, err := store.Open(ctx, cfg)
	if err != nil {
		return nil, err
	}
	if err := db.Migrate(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("migrate: %w", err)
	}
	return db, nil
}

func newMigrateCmd() *cobra.Command {
	var cfg serverConfig
	var embedded, status bool
	var downTo int64
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Apply pending database migrations (PostgreSQL with --postgres, else the embedded SQLite)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := cfg.resolve(cmd); err != nil {
				return err
			}
			sc := store.Config{Driver: store.Postgres, DSN: cfg.Postgres}
			if cfg.Postgres == "" || embedded {
				if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
					return fmt.Errorf("create data dir: %w", err)
				}
				sc = store.Config{Driver: store.SQLite, DSN: filepath.Join(cfg.DataDir, "fabu.db")}
			}
			ctx := cmd.Context()
			// Migration 22 seals the credentials it takes out of repository URLs: with the
			// master keys when they are configured, else it refuses if there are any.
			if keys, kerr := loadKeyring(cfg, sc.Driver == store.SQLite); kerr == nil {
				sc.Sealer = keys
			}
			db, err := store.Open(ctx, sc)
			if err != nil {
				return err
			}
			defer db.Close()
			out := cmd.OutOrStdout()
			if status {
				ms, err := db.MigrationStatus(ctx)
				if err != nil {
					return err
				}
				for _, m := range ms {
					state := "pending"
					if m.Applied {
						state = "applied " + m.AppliedAt.UTC().Format(time.RFC3339)
					}
					fmt.Fprintf(out, "%05d  %-40s %s\n", m.Version, m.Name, state)
				}
				return nil
			}
			if cmd.Flags().Changed("down-to") {
				if err := db.MigrateDown(ctx, downTo); err != nil {
					return err
				}
				fmt.Fprintf(out, "%s database rolled back to migration %05d\n", sc.Driver, downTo)
				return nil
			}
			if err := db.Migrate(ctx); err != nil {
				return fmt.Errorf("migrate: %w", err)
			}
			fmt.Fprintf(out, "%s database is up to date\n", sc.Driver)
			return nil
		},
	}
	cfg.flags(cmd.Flags(), true)
	cmd.Flags().BoolVar(&embedded, "embedded", false, "migrate the embedded SQLite database in --data-dir")
	cmd.Flags().BoolVar(&status, "status", false, "list the migrations and whether each is applied, changing nothing")
	cmd.Flags().Int64Var(&downTo, "down-to", 0, "roll migrations back to this version (to downgrade fabu: run it with the newer binary first); 0 removes fabu's schema")
	return cmd
}
