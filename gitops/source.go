package gitops

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"fiat/state"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/transport"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
	gitssh "github.com/go-git/go-git/v5/plumbing/transport/ssh"
)

// source is a watched branch: a local bare mirror fetched with go-git.
type source struct {
	cfg    SourceConfig
	dir    string
	path   string
	stack  string
	poll   time.Duration
	wake   chan struct{}
	checks atomic.Int64 // fetches made (a metric, and tests wait on it)
}

func newSource(base string, sc SourceConfig) (*source, error) {
	if sc.Kind != "git" {
		return nil, fmt.Errorf("source %q: kind %q is not \"git\"", sc.Name, sc.Kind)
	}
	if err := validName("source", sc.Name); err != nil {
		return nil, err
	}
	if sc.URL == "" {
		return nil, fmt.Errorf("source %q: url is required", sc.Name)
	}
	if sc.Branch == "" {
		sc.Branch = "main"
	}
	p, err := validDir(sc.Path)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	poll, err := parsePoll(sc.Poll)
	if err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	stack := sc.Stack
	if stack == "" {
		stack = sc.Name
	}
	if err := validName("stack", stack); err != nil {
		return nil, fmt.Errorf("source %q: %w", sc.Name, err)
	}
	return &source{cfg: sc, dir: filepath.Join(base, "sources", sc.Name+".git"), path: p, stack: stack, poll: poll,
		wake: make(chan struct{}, 1)}, nil
}

// follow fetches the source every poll interval, and at once when a
// webhook wakes it; only the leader fetches and runs.
func (g *Gitops) follow(ctx context.Context, s *source) {
	t := time.NewTicker(s.poll)
	defer t.Stop()
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			case <-s.wake:
			}
		}
		if !g.run.IsLeader() {
			continue
		}
		err := g.check(ctx, s)
		s.checks.Add(1)
		if err != nil && ctx.Err() == nil {
			g.log.Warn("watched branch", "source", s.cfg.Name, "error", err)
		}
	}
}

// seen is what the store remembers of a source: the last commit it took
// up. It is written before that commit's run starts, so a commit makes
// exactly one run — a failed one is never retried by a poll, a webhook or
// a restart, only by a new commit or `fiat runs retry`.
type seen struct {
	Commit string `json:"commit"`
	Run    string `json:"run,omitempty"`
	Status string `json:"status,omitempty"`
}

const colSources = "gitsrc"

func (s *source) auth() (transport.AuthMethod, error) {
	switch {
	case s.cfg.SSHKey != "":
		return gitssh.NewPublicKeysFromFile("git", s.cfg.SSHKey, "")
	case s.cfg.Token != "":
		return &githttp.BasicAuth{Username: "x-access-token", Password: s.cfg.Token}, nil
	}
	return nil, nil
}

// fetch brings the branch into the local mirror and returns its head.
func (s *source) fetch(ctx context.Context) (*git.Repository, plumbing.Hash, error) {
	r, err := git.PlainOpen(s.dir)
	if errors.Is(err, git.ErrRepositoryNotExists) {
		if r, err = git.PlainInit(s.dir, true); err == nil {
			_, err = r.CreateRemote(&config.RemoteConfig{Name: "origin", URLs: []string{s.cfg.URL}})
		}
	}
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("open mirror of %s: %w", s.cfg.URL, err)
	}
	auth, err := s.auth()
	if err != nil {
		return nil, plumbing.ZeroHash, err
	}
	ref := plumbing.NewBranchReferenceName(s.cfg.Branch)
	err = r.FetchContext(ctx, &git.FetchOptions{RemoteName: "origin", RemoteURL: s.cfg.URL, Auth: auth, Force: true,
		RefSpecs: []config.RefSpec{config.RefSpec(fmt.Sprintf("+%s:%s", ref, ref))}})
	if err != nil && !errors.Is(err, git.NoErrAlreadyUpToDate) {
		return nil, plumbing.ZeroHash, fmt.Errorf("fetch %s from %s: %w", s.cfg.Branch, s.cfg.URL, err)
	}
	head, err := r.Reference(ref, true)
	if err != nil {
		return nil, plumbing.ZeroHash, fmt.Errorf("branch %s of %s: %w", s.cfg.Branch, s.cfg.URL, err)
	}
	return r, head.Hash(), nil
}

// check fetches and, if the branch has a commit not taken up yet, makes
// its one run.
func (g *Gitops) check(ctx context.Context, s *source) error {
	r, head, err := s.fetch(ctx)
	if err != nil {
		return err
	}
	st := g.run.Store()
	var last seen
	if b, err := st.GetDoc(ctx, colSources, s.cfg.Name); err == nil {
		json.Unmarshal(b, &last)
	} else if !errors.Is(err, state.ErrNotFound) {
		return err
	}
	// A commit is taken up once. The one exception: a leader that claimed
	// it and was lost before its run was even recorded left nothing to
	// retry by hand, so the new leader runs it.
	if last.Commit == head.String() && (last.Run != "" || last.Status != "started") {
		return nil
	}
	commit, err := r.CommitObject(head)
	if err != nil {
		return err
	}
	if err := putSeen(ctx, st, s.cfg.Name, seen{Commit: head.String(), Status: "started"}); err != nil {
		return err
	}
	started := func(id string) {
		if err := putSeen(ctx, st, s.cfg.Name, seen{Commit: head.String(), Run: id, Status: "started"}); err != nil {
			g.log.Warn("record the run of a watched commit", "source", s.cfg.Name, "run", id, "error", err)
		}
	}
	res, err := g.runCommit(ctx, s, commit, "fiat source "+s.cfg.Name, io.Discard, started)
	if err != nil {
		res.Status = "failed: " + err.Error()
	}
	g.log.Info("watched branch: ran a new commit", "source", s.cfg.Name, "commit", head.String()[:12], "run", res.ID, "status", res.Status)
	return putSeen(ctx, st, s.cfg.Name, seen{Commit: head.String(), Run: res.ID, Status: res.Status})
}

func putSeen(ctx context.Context, st *state.Store, name string, v seen) error {
	b, _ := json.Marshal(v)
	return st.PutDoc(ctx, colSources, name, b)
}

func (g *Gitops) runCommit(ctx context.Context, s *source, commit *object.Commit, actor string, out io.Writer, started func(string)) (RunResult, error) {
	files, err := configFiles(commit, s.path)
	if err != nil {
		return RunResult{}, err
	}
	cmd := "plan"
	if s.cfg.AutoApply {
		cmd = "apply"
	}
	return g.run.Execute(ctx, RunRequest{Command: cmd, Stack: s.stack, Files: files, Actor: actor, Repo: s.cfg.Name,
		Commit: commit.Hash.String(), Author: commit.Author.String(), Message: commit.Message, Dir: s.path, Started: started}, out)
}

// Checks returns, per watched branch, how many times it was fetched.
func (g *Gitops) Checks() map[string]int64 {
	out := map[string]int64{}
	for name, s := range g.srcs {
		out[name] = s.checks.Load()
	}
	return out
}

// Retry runs a commit of a watched branch again, as a person asked
// (`fiat runs retry ID`): only the last commit the source took up, so a
// retry never applies an older commit over a newer one.
func (g *Gitops) Retry(ctx context.Context, sourceName, commit, actor string, out io.Writer) (RunResult, error) {
	s := g.srcs[sourceName]
	if s == nil {
		return RunResult{}, fmt.Errorf("%q is not a watched branch of this server: a pushed commit is retried by pushing again", sourceName)
	}
	var last seen
	if b, err := g.run.Store().GetDoc(ctx, colSources, sourceName); err == nil {
		json.Unmarshal(b, &last)
	}
	if last.Commit != commit {
		return RunResult{}, fmt.Errorf("commit %s is no longer the newest of %s (%s is): only the newest commit is retried", short(commit), sourceName, short(last.Commit))
	}
	r, err := git.PlainOpen(s.dir)
	if err != nil {
		return RunResult{}, fmt.Errorf("open mirror of %s: %w", s.cfg.URL, err)
	}
	c, err := r.CommitObject(plumbing.NewHash(commit))
	if err != nil {
		return RunResult{}, fmt.Errorf("commit %s of source %s: %w", commit, sourceName, err)
	}
	return g.runCommit(ctx, s, c, actor, out, nil)
}

func short(commit string) string { return commit[:min(len(commit), 12)] }

// Webhook handles POST /hooks/{github,gitlab,gitea}: a request signed
// with a source's webhook secret makes that source fetch now. A bad or
// missing signature is refused (401) and starts nothing.
func (g *Gitops) Webhook(w http.ResponseWriter, r *http.Request) {
	kind := r.PathValue("kind")
	payload, err := io.ReadAll(io.LimitReader(r.Body, 4<<20))
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var woken []string
	for _, name := range slices.Sorted(maps.Keys(g.srcs)) {
		s := g.srcs[name]
		if s.cfg.WebhookSecret == "" || !verify(kind, r.Header, payload, s.cfg.WebhookSecret) {
			continue
		}
		select {
		case s.wake <- struct{}{}:
		default:
		}
		woken = append(woken, name)
	}
	w.Header().Set("Content-Type", "application/json")
	if len(woken) == 0 {
		w.WriteHeader(http.StatusUnauthorized)
		json.NewEncoder(w).Encode(map[string]string{"error": "no watched branch's webhook secret verifies this request's signature"})
		return
	}
	w.WriteHeader(http.StatusAccepted)
	json.NewEncoder(w).Encode(map[string][]string{"fetching": woken})
}

// verify checks a webhook's signature the way its sender makes it.
func verify(kind string, h http.Header, payload []byte, secret string) bool {
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	want := mac.Sum(nil)
	hexEqual := func(got string) bool {
		b, err := hex.DecodeString(got)
		return err == nil && hmac.Equal(b, want)
	}
	switch kind {
	case "github":
		sig, ok := strings.CutPrefix(h.Get("X-Hub-Signature-256"), "sha256=")
		return ok && hexEqual(sig)
	case "gitea":
		return hexEqual(h.Get("X-Gitea-Signature"))
	case "gitlab":
		tok := h.Get("X-Gitlab-Token")
		return tok != "" && subtle.ConstantTimeCompare([]byte(tok), []byte(secret)) == 1
	}
	return false
}
