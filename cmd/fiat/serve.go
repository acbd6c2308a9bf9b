package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"fiat/gitops"
	"fiat/server"
	"fiat/state"

	"github.com/hashicorp/hcl/v2/hclsimple"
)

// serverFile is server.hcl: the same settings as the flags.
type serverFile struct {
	Name            string                `hcl:"name,optional"`
	DataDir         string                `hcl:"data_dir,optional"`
	API             string                `hcl:"api,optional"`
	Raft            string                `hcl:"raft,optional"`
	BootstrapExpect int                   `hcl:"bootstrap_expect,optional"`
	Join            []string              `hcl:"join,optional"`
	Insecure        bool                  `hcl:"insecure,optional"`
	LogJSON         bool                  `hcl:"log_json,optional"`
	TLS             *server.TLSFiles      `hcl:"tls,block"`
	Tokens          []server.Token        `hcl:"token,block"`
	Repos           []gitops.RepoConfig   `hcl:"repo,block"`
	Sources         []gitops.SourceConfig `hcl:"source,block"`
}

// serve is `fiat server`: one node of the cluster, until SIGINT/SIGTERM.
func (m *Main) serve(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("server", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var f serverFile
	confPath := fs.String("config", "", "read settings from an HCL file (server.hcl); flags given too win")
	fs.StringVar(&f.Name, "name", "", "this node's name, unique in the cluster")
	fs.StringVar(&f.DataDir, "data-dir", "", "where this node keeps its store")
	fs.StringVar(&f.API, "api", "", "HOST:PORT of the HTTP API")
	fs.StringVar(&f.Raft, "raft", "", "HOST:PORT of raft (peers dial it)")
	fs.IntVar(&f.BootstrapExpect, "bootstrap-expect", 0, "start a new cluster once this many nodes are up (found through -join)")
	join := fs.String("join", "", "API addresses HOST:PORT,... of other nodes; retried until joined")
	fs.BoolVar(&f.Insecure, "insecure", false, "allow plaintext on non-loopback addresses")
	fs.BoolVar(&f.LogJSON, "log-json", false, "structured logs as JSON lines")
	var tf server.TLSFiles
	fs.StringVar(&tf.Cert, "tls-cert", "", "PEM certificate of this node (API and raft)")
	fs.StringVar(&tf.Key, "tls-key", "", "PEM key of -tls-cert")
	fs.StringVar(&tf.CA, "tls-ca", "", "PEM CA that signed every node's (and client) certificate")
	if err := fs.Parse(args); err != nil {
		return err
	}
	set := map[string]bool{}
	fs.Visit(func(fl *flag.Flag) { set[fl.Name] = true })
	if *confPath != "" {
		var file serverFile
		if err := hclsimple.DecodeFile(*confPath, nil, &file); err != nil {
			return fmt.Errorf("read %s: %w", *confPath, err)
		}
		mergeServerFile(&f, &file, set)
		if file.TLS != nil && !set["tls-cert"] {
			tf = *file.TLS
		}
	}
	if *join != "" {
		f.Join = strings.Split(*join, ",")
	}
	var h slog.Handler = slog.NewTextHandler(m.Stderr, nil)
	if f.LogJSON {
		h = slog.NewJSONHandler(m.Stderr, nil)
	}
	srv, err := server.New(server.Config{Name: f.Name, DataDir: f.DataDir, APIAddr: f.API, RaftAddr: f.Raft,
		BootstrapExpect: f.BootstrapExpect, Join: f.Join, TLS: tf, Insecure: f.Insecure, Tokens: f.Tokens,
		ClientToken: os.Getenv("FIAT_TOKEN"), Logger: slog.New(h), Exec: m.execInvocation,
		Repos: f.Repos, Sources: f.Sources})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	return srv.Run(ctx)
}

func mergeServerFile(f, file *serverFile, set map[string]bool) {
	pick := func(flagName string, dst *string, v string) {
		if !set[flagName] && v != "" {
			*dst = v
		}
	}
	pick("name", &f.Name, file.Name)
	pick("data-dir", &f.DataDir, file.DataDir)
	pick("api", &f.API, file.API)
	pick("raft", &f.Raft, file.Raft)
	if !set["bootstrap-expect"] && file.BootstrapExpect != 0 {
		f.BootstrapExpect = file.BootstrapExpect
	}
	if !set["join"] {
		f.Join = file.Join
	}
	f.Insecure = f.Insecure || file.Insecure
	f.LogJSON = f.LogJSON || file.LogJSON
	f.Tokens = file.Tokens
	f.Repos, f.Sources = file.Repos, file.Sources
}

// execInvocation runs one command for a server run, with the CLI's own
// code: same output, same errors, same exit codes.
func (m *Main) execInvocation(ctx context.Context, inv server.Invocation) server.Outcome {
	w := &Main{Stdin: strings.NewReader(""), Stdout: inv.Stdout, Stderr: inv.Stderr,
		Interactive: func() bool { return false }, Engine: m.engine(), inv: &inv}
	if inv.Stale {
		ctx = state.WithStale(ctx)
	}
	if err := server.CheckArgs(inv.Dir, inv.Args); err != nil {
		fmt.Fprintf(inv.Stderr, "Error: %v\n", err)
		return server.Outcome{ExitCode: exitError, Err: err}
	}
	args := server.Argv(inv.Command, inv.Args)
	code := w.Run(ctx, args)
	w.outcome.ExitCode = code
	return w.outcome
}

// operator is `fiat operator members | remove NAME | snapshot save|restore FILE`.
func (m *Main) operator(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("operator needs a subcommand: members, remove NAME, snapshot save FILE, snapshot restore FILE")
	}
	sub := args[0]
	if sub == "snapshot" && len(args) > 1 {
		sub, args = "snapshot "+args[1], args[1:]
	}
	fs := flag.NewFlagSet("operator "+sub, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	addr := fs.String("server", os.Getenv("FIAT_ADDR"), "URL[,URL...] of the cluster's nodes (default $FIAT_ADDR)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	c, err := server.NewClient(*addr, os.Getenv("FIAT_TOKEN"))
	if err != nil {
		return err
	}
	switch sub {
	case "members":
		var ms []server.MemberStatus
		if err := c.Call(ctx, http.MethodGet, "/v1/members?stale=1", nil, &ms); err != nil {
			return fmt.Errorf("list members: %w", err)
		}
		if *asJSON {
			return json.NewEncoder(m.Stdout).Encode(ms)
		}
		tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tAPI\tRAFT\tSTATE\tLEADER")
		for _, x := range ms {
			lead := ""
			if x.Leader {
				lead = "*"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", x.ID, x.APIAddr, x.RaftAddr, x.State, lead)
		}
		return tw.Flush()
	case "remove":
		if fs.NArg() != 1 {
			return errors.New("operator remove needs the NAME of the member")
		}
		if err := c.Call(ctx, http.MethodDelete, "/v1/members/"+fs.Arg(0), nil, nil); err != nil {
			return fmt.Errorf("remove %s: %w", fs.Arg(0), err)
		}
		fmt.Fprintf(m.Stdout, "Removed %s from the cluster.\n", fs.Arg(0))
		return nil
	case "snapshot save":
		if fs.NArg() != 1 {
			return errors.New("operator snapshot save needs a FILE")
		}
		return saveSnapshot(ctx, c, fs.Arg(0), m)
	case "snapshot restore":
		if fs.NArg() != 1 {
			return errors.New("operator snapshot restore needs a FILE")
		}
		b, err := os.ReadFile(fs.Arg(0))
		if err != nil {
			return err
		}
		if err := c.Upload(ctx, http.MethodPut, "/v1/snapshot", b); err != nil {
			return fmt.Errorf("restore %s: %w", fs.Arg(0), err)
		}
		fmt.Fprintf(m.Stdout, "Restored the cluster's store from %s.\n", fs.Arg(0))
		return nil
	}
	return fmt.Errorf("unknown operator subcommand %q", sub)
}

// saveSnapshot writes the backup to a temporary file and renames it into
// place once whole, so FILE is never half a backup.
func saveSnapshot(ctx context.Context, c *server.Client, path string, m *Main) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fiat-snapshot-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := c.Call(ctx, http.MethodGet, "/v1/snapshot", nil, tmp); err != nil {
		tmp.Close()
		return fmt.Errorf("save snapshot: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	st, _ := os.Stat(path)
	fmt.Fprintf(m.Stdout, "Saved a snapshot of the cluster's store to %s (%d bytes).\n", path, st.Size())
	return nil
}

// runs is `fiat runs [STACK]` and `fiat run show ID`.
func (m *Main) runs(ctx context.Context, args []string, show bool) error {
	name := "runs"
	if show {
		name = "run show"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	addr := fs.String("server", os.Getenv("FIAT_ADDR"), "URL[,URL...] of the cluster's nodes (default $FIAT_ADDR)")
	asJSON := fs.Bool("json", false, "print JSON")
	stale := fs.Bool("stale", false, "let any node answer from its own copy, possibly behind")
	if err := fs.Parse(args); err != nil {
		return err
	}
	c, err := server.NewClient(*addr, os.Getenv("FIAT_TOKEN"))
	if err != nil {
		return err
	}
	q := ""
	if *stale {
		q = "stale=1"
	}
	if show {
		if fs.NArg() != 1 {
			return errors.New("run show needs a run ID (from `fiat runs`)")
		}
		var d server.RunDetail
		if err := c.Call(ctx, http.MethodGet, "/v1/runs/"+fs.Arg(0)+"?"+q, nil, &d); err != nil {
			return fmt.Errorf("show run %s: %w", fs.Arg(0), err)
		}
		if *asJSON {
			return json.NewEncoder(m.Stdout).Encode(d)
		}
		fmt.Fprintf(m.Stdout, "Run %s: %s of stack %q by %s from %s on %s\nStatus: %s", d.ID, d.Command, d.Stack, d.Actor, d.Source, d.Node, d.Status)
		if d.Revision > 0 {
			fmt.Fprintf(m.Stdout, " (store revision %d)", d.Revision)
		}
		fmt.Fprintf(m.Stdout, "\nCreated: %s  Duration: %s\nConfig: sha256:%s\n", d.Created.Format(time.RFC3339), server.Duration(&d.Run), d.ConfigDigest)
		if d.PlanDigest != "" {
			fmt.Fprintf(m.Stdout, "Plan: sha256:%s\n", d.PlanDigest)
		}
		if d.Log != "" {
			fmt.Fprintf(m.Stdout, "\n%s", d.Log)
		}
		if d.Error != "" {
			fmt.Fprintf(m.Stdout, "\nError: %s\n", strings.ReplaceAll(d.Error, "\n", "\n       "))
		}
		return nil
	}
	if fs.NArg() == 2 && fs.Arg(0) == "retry" {
		run, _, err := c.Stream(ctx, http.MethodPost, "/v1/runs/"+fs.Arg(1)+"/retry", nil, func(f server.Frame) {
			m.Stdout.Write([]byte(f.Out))
			m.Stderr.Write([]byte(f.Err))
		})
		if err != nil {
			return fmt.Errorf("retry run %s: %w", fs.Arg(1), err)
		}
		fmt.Fprintf(m.Stdout, "Run %s: %s\n", run.ID, run.Status)
		return exitCode(run.ExitCode)
	}
	if fs.NArg() > 0 {
		q += "&stack=" + url.QueryEscape(fs.Arg(0))
	}
	var list []*server.Run
	if err := c.Call(ctx, http.MethodGet, "/v1/runs?"+q, nil, &list); err != nil {
		return fmt.Errorf("list runs: %w", err)
	}
	if *asJSON {
		return json.NewEncoder(m.Stdout).Encode(list)
	}
	tw := tabwriter.NewWriter(m.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTACK\tCOMMAND\tSTATUS\tSOURCE\tACTOR\tCREATED\tDURATION")
	for _, r := range list {
		source := r.Source
		if r.Commit != "" {
			source = r.Repo + "@" + short(r.Commit)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Stack, r.Command, r.Status, source, r.Actor, r.Created.Format("2006-01-02 15:04:05Z"), server.Duration(r))
	}
	return tw.Flush()
}
