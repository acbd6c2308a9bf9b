// Package gitops makes git an input of fiat: repositories the server hosts
// where a push applies the pushed commit before the branch moves
// (push.go, over git's smart HTTP: http.go), and branches of other
// repositories it watches, polled and woken by signed webhooks
// (source.go). Neither plans nor applies by itself: both ask the server
// for runs (Runner), the same runs the CLI makes.
package gitops

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"path"
	"strings"
	"sync"
	"time"

	"fiat/state"
)

// RepoConfig is a `repo "NAME" { branch, stacks }` block: a repository the
// server hosts at /git/NAME.git.
type RepoConfig struct {
	Name   string `hcl:"name,label"`
	Branch string `hcl:"branch,optional"` // default "main"
	// Stacks maps a stack name to its directory in the repository; none
	// means one stack named after the repository, at its root.
	Stacks map[string]string `hcl:"stacks,optional"`
}

// SourceConfig is a `source "git" "NAME" { ... }` block: a branch of
// another repository the server follows.
type SourceConfig struct {
	Kind   string `hcl:"kind,label"` // "git"
	Name   string `hcl:"name,label"`
	URL    string `hcl:"url"`
	Branch string `hcl:"branch,optional"` // default "main"
	Path   string `hcl:"path,optional"`   // the config directory in the repository
	Stack  string `hcl:"stack,optional"`  // default: the source's name
	Poll   string `hcl:"poll,optional"`   // default "1m"
	// AutoApply applies each new commit; without it a commit is planned.
	AutoApply bool `hcl:"auto_apply,optional"`
	// Token authenticates https fetches; SSHKey (a private key file)
	// ssh ones.
	Token  string `hcl:"token,optional"`
	SSHKey string `hcl:"ssh_key,optional"`
	// WebhookSecret checks webhooks (GitHub and Gitea HMAC, GitLab token).
	WebhookSecret string `hcl:"webhook_secret,optional"`
}

// Config is the git part of the server's configuration.
type Config struct {
	Dir     string // where repositories and fetched sources live
	Repos   []RepoConfig
	Sources []SourceConfig
	Logger  *slog.Logger
}

// RunRequest asks the server for one run of a commit's configuration.
type RunRequest struct {
	Command string            // "apply" or "plan"
	Stack   string            //
	Files   map[string][]byte // the config directory's files, by slash path
	Actor   string
	Repo    string // repository or source name
	Dir     string // the config directory's path in the repository
	Commit  string
	Author  string
	Message string
	// Started, if set, is called with the run's id once it is recorded.
	Started func(runID string)
}

// RunResult is how a run ended.
type RunResult struct {
	ID       string
	Status   string
	Error    string
	ExitCode int
}

// Runner is what gitops needs of the server.
type Runner interface {
	// IsLeader says whether this node runs runs now.
	IsLeader() bool
	// Run executes req on this node (the leader), writing its output to
	// out as it is printed, and returns when it has ended.
	Execute(ctx context.Context, req RunRequest, out io.Writer) (RunResult, error)
	// Store is the cluster's store, for what gitops remembers (the last
	// commit each source ran).
	Store() *state.Store
	// Leader says how to reach the leader (false: none known, or this
	// node leads).
	Leader() (Peer, bool)
}

type actorKey struct{}

// WithActor tells gitops who made a request (the server's authentication).
func WithActor(ctx context.Context, who string) context.Context {
	return context.WithValue(ctx, actorKey{}, who)
}

func actorOf(ctx context.Context) string {
	if who, _ := ctx.Value(actorKey{}).(string); who != "" {
		return who
	}
	return "anonymous"
}

// Gitops serves the repositories and follows the sources.
type Gitops struct {
	cfg   Config
	run   Runner
	log   *slog.Logger
	repos map[string]*repo
	srcs  map[string]*source
}

// New checks cfg and prepares the repositories.
func New(cfg Config, run Runner) (*Gitops, error) {
	g := &Gitops{cfg: cfg, run: run, log: cfg.Logger, repos: map[string]*repo{}, srcs: map[string]*source{}}
	if g.log == nil {
		g.log = slog.Default()
	}
	for _, rc := range cfg.Repos {
		r, err := newRepo(cfg.Dir, rc)
		if err != nil {
			return nil, err
		}
		if _, dup := g.repos[rc.Name]; dup {
			return nil, fmt.Errorf("repo %q is declared twice", rc.Name)
		}
		g.repos[rc.Name] = r
	}
	for _, sc := range cfg.Sources {
		s, err := newSource(cfg.Dir, sc)
		if err != nil {
			return nil, err
		}
		if _, dup := g.srcs[sc.Name]; dup {
			return nil, fmt.Errorf("source %q is declared twice", sc.Name)
		}
		g.srcs[sc.Name] = s
	}
	return g, nil
}

// Start follows the sources until ctx ends; only the leader acts.
func (g *Gitops) Start(ctx context.Context, wg *sync.WaitGroup) {
	if len(g.repos) > 0 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.mirror(ctx)
		}()
	}
	for _, s := range g.srcs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			g.follow(ctx, s)
		}()
	}
}

// validName is a repository, source or stack name: no path in it.
func validName(what, name string) error {
	if name == "" || name == "." || name == ".." || strings.ContainsAny(name, "/\\\x00") || strings.HasPrefix(name, ".") {
		return fmt.Errorf("%s name %q: use letters, digits, '-', '_' and '.', not starting with '.'", what, name)
	}
	return nil
}

// validDir is a directory inside a repository: relative, no "..".
func validDir(dir string) (string, error) {
	if dir == "" || dir == "." {
		return "", nil
	}
	c := path.Clean(dir)
	if path.IsAbs(c) || c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("directory %q leaves the repository", dir)
	}
	return c, nil
}

func parsePoll(s string) (time.Duration, error) {
	if s == "" {
		return time.Minute, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Second {
		return 0, fmt.Errorf("poll %q: give a duration of at least 1s, e.g. \"1m\"", s)
	}
	return d, nil
}
