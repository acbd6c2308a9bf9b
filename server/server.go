// Package server is fiat's shared control plane: one node of a Raft
// cluster of fiat servers (the state store's cluster mode), an HTTP API,
// and runs — plan, apply and the other commands, executed by the leader
// with the same engine the CLI uses embedded, recorded in the store, their
// output streamed to whoever waits on them.
//
// Files: server.go (lifecycle, membership, leadership), api.go (routes,
// forwarding to the leader), runs.go (executing and settling runs), run.go
// (the run record, uploads, the live log), client.go (what the CLI uses),
// auth.go (tokens, TLS), metrics.go.
package server

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"fiat/executor"
	"fiat/gitops"
	"fiat/state"

	"github.com/hashicorp/go-hclog"
)

// Config configures one server node (flags or server.hcl).
type Config struct {
	Name     string // node ID, unique in the cluster
	DataDir  string
	APIAddr  string // host:port of the HTTP API
	RaftAddr string // host:port of raft
	// BootstrapExpect starts a new cluster once this many nodes (this one
	// included, found through Join) are up; 0 or 1 with no Join starts a
	// one-node cluster.
	BootstrapExpect int
	// Join lists API addresses (host:port) of other nodes, tried until this
	// node is a member.
	Join []string
	TLS  TLSFiles
	// Insecure allows plaintext listeners on non-loopback addresses.
	Insecure bool
	Tokens   []Token
	// ClientToken is what this node presents to its peers (join).
	ClientToken string
	Logger      *slog.Logger
	// Exec runs one CLI command for a run (cmd/fiat provides it).
	Exec ExecFunc
	// Repos are hosted git repositories (push-to-apply); Sources are
	// watched branches of other repositories.
	Repos   []gitops.RepoConfig
	Sources []gitops.SourceConfig
}

// Invocation is one command the leader runs for a client, with the same
// code as the CLI embedded, against this node's store.
type Invocation struct {
	Command string
	// Args are the command's flags and arguments; paths point into Dir.
	Args   []string
	Dir    string // the run's directory, where the upload was unpacked
	Store  *state.Store
	Stdout io.Writer
	Stderr io.Writer
	Actor  string // recorded in history
	Holder string // names the stack lock's holder
	Stale  bool   // reads may be served from this node as it is
	// Events receives every executor event as it happens.
	Events func(executor.Event)
	// LastApplied returns the commit a stack was last applied from by a
	// git run, or "" (for previews' base-commit warning).
	LastApplied func(stack string) string
}

// ExecFunc runs an invocation to its end and says how it ended.
type ExecFunc func(ctx context.Context, inv Invocation) Outcome

// Server is one running node.
type Server struct {
	cfg    Config
	log    *slog.Logger
	store  *state.Store
	tls    *tls.Config // API and raft; nil for plaintext
	client *http.Client
	http   *http.Server
	ln     net.Listener
	holder string
	tokens map[string]Token // by secret
	m      *metrics
	git    *gitops.Gitops

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	live   map[string]*liveRun // runs executing or queued on this node
	turns  map[string]chan struct{}
	leader bool
	joined bool // this node is a voter with its API address recorded
	// settled is closed once this node, as leader, has settled the runs a
	// lost leader left; mutating runs wait for it (they would find the
	// lost run's stack locked).
	settled chan struct{}
	// term is the current leadership term's context; termCancel ends it.
	term       context.Context
	termCancel context.CancelFunc
	settling   map[string]bool // runs being settled now
	opened     chan struct{}   // closed once store is set
}

// New checks cfg; Run starts the node.
func New(cfg Config) (*Server, error) {
	if err := checkNodeName(cfg.Name); err != nil {
		return nil, err
	}
	if cfg.DataDir == "" || cfg.APIAddr == "" || cfg.RaftAddr == "" || cfg.Exec == nil {
		return nil, errors.New("server: -name, -data-dir, -api and -raft are required")
	}
	if cfg.BootstrapExpect < 0 || cfg.BootstrapExpect > 7 {
		return nil, fmt.Errorf("-bootstrap-expect %d: give the number of voters to start with, 1 to 7", cfg.BootstrapExpect)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.NewTextHandler(os.Stderr, nil))
	}
	conf, err := cfg.TLS.config()
	if err != nil {
		return nil, err
	}
	if conf == nil && !cfg.Insecure {
		for _, a := range []string{cfg.APIAddr, cfg.RaftAddr} {
			if !loopback(a) {
				return nil, fmt.Errorf("%s is not a loopback address and no TLS is configured: give -tls-cert, -tls-key and -tls-ca, or -insecure to send plaintext (tokens included) over the network", a)
			}
		}
	}
	host, _ := os.Hostname()
	settled := make(chan struct{})
	close(settled) // not a leader yet: nothing to settle
	s := &Server{cfg: cfg, log: cfg.Logger, tls: conf, live: map[string]*liveRun{}, turns: map[string]chan struct{}{}, settled: settled,
		settling: map[string]bool{}, opened: make(chan struct{}),
		holder: fmt.Sprintf("%snode %s (pid %d on %s)", serverHolder, cfg.Name, os.Getpid(), host),
		tokens: map[string]Token{}}
	for _, t := range cfg.Tokens {
		if err := t.check(); err != nil {
			return nil, err
		}
		s.tokens[t.Secret] = t
	}
	s.client = peerClient(conf)
	s.m = newMetrics(s)
	g, err := gitops.New(gitops.Config{Dir: filepath.Join(cfg.DataDir, "git"), Repos: cfg.Repos, Sources: cfg.Sources, Logger: cfg.Logger}, s)
	if err != nil {
		return nil, err
	}
	s.git = g
	s.m.gitSources(g)
	return s, nil
}

// serverHolder starts every stack-lock holder name a server uses.
const serverHolder = "fiat server "

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Run opens the store, serves the API and takes part in the cluster until
// ctx ends; then it stops serving, lets running runs end (their provider
// calls are cancelled and rolled back) and closes the store.
func (s *Server) Run(ctx context.Context) error {
	s.ctx, s.cancel = context.WithCancel(context.Background())
	defer s.cancel()
	if err := os.MkdirAll(s.cfg.DataDir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	ln, err := net.Listen("tcp", s.cfg.APIAddr)
	if err != nil {
		return fmt.Errorf("listen for the API on %s: %w", s.cfg.APIAddr, err)
	}
	if s.tls != nil {
		ln = tls.NewListener(ln, s.tls)
	}
	s.ln = ln
	// Raft takes no connection without a certificate the CA signed: the
	// API may also take tokens, raft may not.
	var raftTLS *tls.Config
	if s.tls != nil {
		raftTLS = s.tls.Clone()
		raftTLS.ClientAuth = tls.RequireAndVerifyClientCert
	}
	st, err := state.Open(ctx, state.Options{Dir: filepath.Join(s.cfg.DataDir, "store"),
		Logger:  hclog.New(&hclog.LoggerOptions{Name: "raft", Level: hclog.Warn, Output: slogWriter{s.log}}),
		Cluster: &state.Cluster{ID: s.cfg.Name, RaftAddr: s.cfg.RaftAddr, TLS: raftTLS, OnLeadership: s.onLeadership}})
	if err != nil {
		ln.Close()
		return err
	}
	s.store = st
	close(s.opened)
	s.http = &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	s.git.Start(s.ctx, &s.wg)
	s.wg.Add(2)
	go func() {
		defer s.wg.Done()
		if err := s.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("serve API", "error", err)
		}
	}()
	go func() {
		defer s.wg.Done()
		s.joinLoop()
	}()
	s.log.Info("fiat server started", "name", s.cfg.Name, "api", s.cfg.APIAddr, "raft", s.cfg.RaftAddr, "tls", s.tls != nil)
	<-ctx.Done()
	return s.shutdown()
}

func (s *Server) shutdown() error {
	s.log.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	s.http.Shutdown(sctx)
	s.cancel()
	s.wg.Wait()
	return s.store.Close()
}

// APIURL is the base URL of this node's API.
func (s *Server) APIURL() string { return s.scheme() + "://" + s.cfg.APIAddr }

func (s *Server) scheme() string {
	if s.tls != nil {
		return "https"
	}
	return "http"
}

// joinLoop makes this node a member: bootstrapping a new cluster, or
// joining one through Join, retried until it works (as Consul and Nomad
// do); then it keeps the node's API address recorded with the leader.
func (s *Server) joinLoop() {
	has, err := s.store.HasState()
	if err != nil {
		s.log.Error("read raft state", "error", err)
		return
	}
	self := state.Peer{ID: s.cfg.Name, RaftAddr: s.cfg.RaftAddr}
	var others []string
	for _, a := range s.cfg.Join {
		if a != s.cfg.APIAddr {
			others = append(others, a)
		}
	}
	switch {
	case has:
		// A restarted node: raft knows its peers.
	case len(others) == 0 && s.cfg.BootstrapExpect <= 1:
		if err := s.store.Bootstrap([]state.Peer{self}); err != nil {
			s.log.Error("bootstrap", "error", err)
			return
		}
		s.log.Info("bootstrapped a one-node cluster")
	case s.cfg.BootstrapExpect > 1:
		if !s.bootstrapExpect(self) {
			return
		}
	}
	// Join (or re-record our API address with) the leader until it took.
	for delay := 50 * time.Millisecond; ; delay = min(delay*2, time.Second) {
		if err := s.join(); err == nil {
			s.mu.Lock()
			s.joined = true
			s.mu.Unlock()
			s.log.Info("member of the cluster", "leader", s.leaderID())
			return
		} else if len(s.cfg.Join) > 0 || has {
			s.log.Debug("join", "error", err)
		}
		select {
		case <-s.ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

// bootstrapExpect waits until BootstrapExpect nodes without state know of
// each other through Join, then bootstraps them all with one configuration.
// If it finds a cluster already running, it joins it instead.
func (s *Server) bootstrapExpect(self state.Peer) bool {
	for {
		peers := map[string]state.Peer{self.ID: self}
		joined := false
		for _, addr := range s.cfg.Join {
			st, err := s.peerStatus(addr)
			if err != nil {
				continue
			}
			if st.Leader != "" || st.HasState {
				joined = true
				break
			}
			peers[st.ID] = state.Peer{ID: st.ID, RaftAddr: st.RaftAddr}
		}
		if joined {
			return true // a cluster exists: join it
		}
		if len(peers) >= s.cfg.BootstrapExpect {
			var list []state.Peer
			for _, p := range peers {
				list = append(list, p)
			}
			if err := s.store.Bootstrap(list); err != nil {
				s.log.Error("bootstrap", "error", err)
				return false
			}
			s.log.Info("bootstrapped the cluster", "voters", len(list))
			return true
		}
		select {
		case <-s.ctx.Done():
			return false
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// join asks the leader (through any node) to add this node and record its
// API address; the leader itself does it directly.
func (s *Server) join() error {
	req := joinRequest{ID: s.cfg.Name, RaftAddr: s.cfg.RaftAddr, APIAddr: s.cfg.APIAddr}
	if s.store.IsLeader() {
		return s.addMember(s.ctx, req)
	}
	targets := s.cfg.Join
	if id, _ := s.store.Leader(); id != "" {
		if m, err := s.store.Members(s.ctx); err == nil && m[id].APIAddr != "" {
			targets = append([]string{m[id].APIAddr}, targets...)
		}
	}
	var last error = errors.New("no leader known and no -join address")
	for _, addr := range targets {
		if addr == s.cfg.APIAddr {
			continue
		}
		c := &Client{Endpoints: []string{s.scheme() + "://" + addr}, Token: s.cfg.ClientToken, HTTP: s.client}
		ctx, cancel := context.WithTimeout(s.ctx, 5*time.Second)
		last = c.call(ctx, http.MethodPost, "/v1/join", req, nil)
		cancel()
		if last == nil {
			return nil
		}
	}
	return last
}

type joinRequest struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

// addMember makes a node a voter and records its API address; leader only.
func (s *Server) addMember(ctx context.Context, req joinRequest) error {
	if err := checkNodeName(req.ID); err != nil {
		return err
	}
	voters, err := s.store.Voters()
	if err != nil {
		return err
	}
	present := false
	for _, v := range voters {
		if v.ID == req.ID && v.RaftAddr == req.RaftAddr {
			present = true
		}
	}
	if !present {
		if err := s.store.AddVoter(ctx, state.Peer{ID: req.ID, RaftAddr: req.RaftAddr}); err != nil {
			return err
		}
		s.log.Info("added voter", "id", req.ID, "raft", req.RaftAddr)
	}
	ms, err := s.store.Members(ctx)
	if err != nil {
		return err
	}
	if m := ms[req.ID]; m.APIAddr != req.APIAddr || m.RaftAddr != req.RaftAddr {
		return s.store.SetMember(ctx, state.Member{ID: req.ID, RaftAddr: req.RaftAddr, APIAddr: req.APIAddr})
	}
	return nil
}

// leading says this node runs runs now: the store's leader, serving
// (every earlier entry applied), and told so (its settling has begun).
func (s *Server) leading() bool {
	s.mu.Lock()
	leader := s.leader
	s.mu.Unlock()
	return leader && s.store.IsLeader()
}

func (s *Server) leaderID() string { id, _ := s.store.Leader(); return id }

// leaderAPI is the leader's API base URL, or "" while none is known.
func (s *Server) leaderAPI(ctx context.Context) string {
	id, _ := s.store.Leader()
	if id == "" {
		return ""
	}
	if id == s.cfg.Name {
		return s.APIURL()
	}
	ms, err := s.store.Members(ctx)
	if err != nil || ms[id].APIAddr == "" {
		return ""
	}
	return s.scheme() + "://" + ms[id].APIAddr
}

// onLeadership is called by the store, in order, as leadership changes.
//
// The store calls it with true before this node serves as leader, so the
// open settled channel is in place before the first run is accepted.
// Each term has its own context: runs and settling started in a term are
// cancelled when it ends, so a deposed leader makes no further provider
// call (its executor then leaves the open transaction to the new leader).
func (s *Server) onLeadership(leader bool) {
	s.mu.Lock()
	if s.termCancel != nil {
		s.termCancel()
	}
	s.leader = leader
	settled := make(chan struct{})
	s.settled = settled
	term, cancel := context.WithCancel(s.ctx)
	s.term, s.termCancel = term, cancel
	s.mu.Unlock()
	if !leader {
		// Runs still queued here go on and fail fast (the store refuses
		// a follower's writes); the new leader settles their records.
		close(settled)
		s.log.Info("no longer the leader")
		return
	}
	s.log.Info("leader")
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		defer close(settled)
		select {
		case <-s.opened:
		case <-term.Done():
			return
		}
		for !s.store.IsLeader() { // the store serves right after this callback
			select {
			case <-term.Done():
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
		ctx, cancel := context.WithTimeout(term, 10*time.Second)
		err := s.addMember(ctx, joinRequest{ID: s.cfg.Name, RaftAddr: s.cfg.RaftAddr, APIAddr: s.cfg.APIAddr})
		cancel()
		if err != nil {
			s.log.Warn("record this node's address", "error", err)
		}
		s.settleOrphans(term)
	}()
}

// runCtx is the context a run started now lives in: the leadership
// term's, or the server's for a read a follower serves.
func (s *Server) runCtx() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.leader && s.term != nil {
		return s.term
	}
	return s.ctx
}

// slogWriter carries raft's hclog lines into the server's structured log.
type slogWriter struct{ log *slog.Logger }

func (w slogWriter) Write(p []byte) (int, error) {
	w.log.Warn(string(trimNL(p)), "component", "raft")
	return len(p), nil
}

func trimNL(p []byte) []byte {
	for len(p) > 0 && (p[len(p)-1] == '\n' || p[len(p)-1] == '\r') {
		p = p[:len(p)-1]
	}
	return p
}

func checkNodeName(name string) error {
	if name == "" {
		return errors.New("-name is required: a node name unique in the cluster")
	}
	for _, r := range name {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.') {
			return fmt.Errorf("node name %q: use letters, digits, '-', '_' and '.'", name)
		}
	}
	return nil
}
