package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	"fiat/state"

	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// The API: JSON over HTTP(S). Everything that needs the leader (writes,
// runs, linearizable reads) is answered by a follower with a 307 to the
// leader's API, which clients follow with their credentials; "?stale=1"
// lets a read be served by the node asked.
func (s *Server) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", s.health)
	mux.HandleFunc("GET /v1/status", s.status)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.m.reg, promhttp.HandlerOpts{}))
	mux.HandleFunc("POST /v1/join", s.auth(ScopeAdmin, s.leaderOnly(s.handleJoin)))
	// Members are answered by the node asked (its view of the raft
	// configuration), so they can be listed while there is no leader.
	mux.HandleFunc("GET /v1/members", s.auth(ScopeRead, s.handleMembers))
	mux.HandleFunc("DELETE /v1/members/{name}", s.auth(ScopeAdmin, s.leaderOnly(s.handleRemove)))
	mux.HandleFunc("GET /v1/snapshot", s.auth(ScopeAdmin, s.leaderOnly(s.handleSnapshotSave)))
	mux.HandleFunc("PUT /v1/snapshot", s.auth(ScopeAdmin, s.leaderOnly(s.handleSnapshotRestore)))
	mux.HandleFunc("POST /v1/runs", s.handleSubmit)
	mux.HandleFunc("GET /v1/runs", s.auth(ScopeRead, s.readable(s.handleRuns)))
	mux.HandleFunc("GET /v1/runs/{id}", s.auth(ScopeRead, s.readable(s.handleRun)))
	mux.HandleFunc("GET /v1/runs/{id}/stream", s.auth(ScopeRead, s.leaderOnly(s.handleStream)))
	mux.HandleFunc("GET /v1/debug/fsm", s.auth(ScopeAdmin, s.handleDigest))
	mux.HandleFunc("POST /v1/runs/{id}/retry", s.handleRetry)
	mux.Handle("/git/", s.gitHandler(s.git.Handler()))
	mux.HandleFunc("POST /hooks/{kind}", s.hook)
	s.uiRoutes(mux)
	return s.logRequests(jsonOnly(mux))
}

// APIError is the body of every error response.
type APIError struct {
	Error string `json:"error"`
	// Leader is set with 503 when a leader exists but cannot be reached
	// through this node.
	Leader string `json:"leader,omitempty"`
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(v)
}

func writeErr(w http.ResponseWriter, code int, err error) {
	writeJSON(w, code, APIError{Error: err.Error()})
}

// leaderOnly sends the client to the leader unless this node is it.
func (s *Server) leaderOnly(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s.store.IsLeader() {
			h(w, r)
			return
		}
		s.redirect(w, r)
	}
}

// readable serves a read here if this node is the leader or the client
// asked for a stale read; otherwise it sends the client to the leader.
func (s *Server) readable(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("stale") != "" {
			h(w, r.WithContext(state.WithStale(r.Context())))
			return
		}
		s.leaderOnly(h)(w, r)
	}
}

func (s *Server) redirect(w http.ResponseWriter, r *http.Request) {
	api := s.leaderAPI(r.Context())
	if api == "" || api == s.APIURL() {
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("no leader: node %s cannot serve this now (%s); retry, or check `fiat operator members`", s.cfg.Name, state.ErrNotLeader))
		return
	}
	http.Redirect(w, r, api+r.URL.RequestURI(), http.StatusTemporaryRedirect)
}

// storeErr answers an error from the store: a lost leadership is a 503 the
// client retries elsewhere.
func (s *Server) storeErr(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, state.ErrNotLeader):
		s.redirect(w, r)
	case errors.Is(err, state.ErrNotFound):
		writeErr(w, http.StatusNotFound, err)
	default:
		writeErr(w, http.StatusInternalServerError, err)
	}
}

// Status is what /v1/status says about a node.
type Status struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	State    string `json:"state"`
	Leader   string `json:"leader,omitempty"`
	HasState bool   `json:"has_state"`
	Applied  uint64 `json:"applied_index"`
	Ready    bool   `json:"ready"`
	// RepoHeads is each hosted repository's branch head on this node.
	RepoHeads map[string]string `json:"repo_heads,omitempty"`
	LastError string            `json:"last_error,omitempty"`
}

func (s *Server) nodeStatus() Status {
	has, _ := s.store.HasState()
	st := Status{ID: s.cfg.Name, RaftAddr: s.cfg.RaftAddr, APIAddr: s.cfg.APIAddr, State: s.store.RaftState(),
		Leader: s.leaderID(), HasState: has, RepoHeads: s.git.Heads()}
	stats := s.store.RaftStats()
	fmt.Sscan(stats["applied_index"], &st.Applied)
	var commit uint64
	fmt.Sscan(stats["commit_index"], &commit)
	// Ready: a leader exists, and this node has applied what it knows is
	// committed (the leader itself: applied everything before its term).
	s.mu.Lock()
	joined := s.joined
	s.mu.Unlock()
	st.Ready = joined && st.Leader != "" && st.Applied >= commit && (st.State != "Leader" || s.store.IsLeader())
	return st
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.nodeStatus())
}

// health is 200 only when the node can serve: a leader is known and this
// node's state machine has caught up with what it knows is committed.
func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	st := s.nodeStatus()
	if !st.Ready {
		writeJSON(w, http.StatusServiceUnavailable, st)
		return
	}
	writeJSON(w, http.StatusOK, st)
}

// handleDigest reports this node's own FSM digest (no forwarding): nodes
// that applied the same log report the same.
func (s *Server) handleDigest(w http.ResponseWriter, r *http.Request) {
	applied, digest, err := s.store.Digest(r.Context())
	if err != nil {
		writeErr(w, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"node": s.cfg.Name, "applied_index": applied, "digest": digest})
}

func (s *Server) handleJoin(w http.ResponseWriter, r *http.Request) {
	var req joinRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(&req); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("join: %w", err))
		return
	}
	if err := s.addMember(r.Context(), req); err != nil {
		s.storeErr(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"leader": s.cfg.Name})
}

// MemberStatus is one line of `fiat operator members`.
type MemberStatus struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
	State    string `json:"state"` // the node's raft state as it answers, or "unreachable"
	Leader   bool   `json:"leader"`
}

func (s *Server) handleMembers(w http.ResponseWriter, r *http.Request) {
	voters, err := s.store.Voters()
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	recorded, err := s.store.Members(r.Context())
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	leader := s.leaderID()
	out := make([]MemberStatus, len(voters))
	var wg sync.WaitGroup
	for i, v := range voters {
		out[i] = MemberStatus{ID: v.ID, RaftAddr: v.RaftAddr, APIAddr: recorded[v.ID].APIAddr, Leader: v.ID == leader, State: "unreachable"}
		if v.ID == s.cfg.Name {
			out[i].State = s.store.RaftState()
			continue
		}
		if out[i].APIAddr == "" {
			continue
		}
		wg.Add(1)
		go func(m *MemberStatus) {
			defer wg.Done()
			if st, err := s.peerStatus(m.APIAddr); err == nil {
				m.State = st.State
			}
		}(&out[i])
	}
	wg.Wait()
	writeJSON(w, http.StatusOK, out)
}

// peerStatus asks another node for its status, briefly.
func (s *Server) peerStatus(addr string) (Status, error) {
	ctx, cancel := context.WithTimeout(s.ctx, time.Second)
	defer cancel()
	c := &Client{Endpoints: []string{s.scheme() + "://" + addr}, HTTP: s.client, Token: s.cfg.ClientToken, noRedirect: true}
	var st Status
	err := c.call(ctx, http.MethodGet, "/v1/status", nil, &st)
	return st, err
}

func (s *Server) handleRemove(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	voters, err := s.store.Voters()
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	found := false
	for _, v := range voters {
		found = found || v.ID == name
	}
	if !found {
		writeErr(w, http.StatusNotFound, fmt.Errorf("no member named %q", name))
		return
	}
	if err := s.store.RemoveVoter(r.Context(), name); err != nil {
		s.storeErr(w, r, err)
		return
	}
	s.log.Info("removed member", "id", name)
	writeJSON(w, http.StatusOK, map[string]string{"removed": name})
}

func (s *Server) handleSnapshotSave(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/octet-stream")
	if err := s.store.SaveBackup(r.Context(), w); err != nil {
		// Headers may be out; a cut-short body fails the backup's checksum.
		s.log.Error("snapshot save", "error", err)
		writeErr(w, http.StatusInternalServerError, err)
	}
}

func (s *Server) handleSnapshotRestore(w http.ResponseWriter, r *http.Request) {
	if err := s.store.RestoreBackup(r.Context(), r.Body); err != nil {
		s.storeErr(w, r, err)
		return
	}
	s.log.Info("restored a backup")
	writeJSON(w, http.StatusOK, map[string]bool{"restored": true})
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := listRuns(r.Context(), s.store, r.URL.Query().Get("stack"))
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	if runs == nil {
		runs = []*Run{}
	}
	writeJSON(w, http.StatusOK, runs)
}

// RunDetail is a run with its output.
type RunDetail struct {
	Run
	Log string `json:"log"`
}

func (s *Server) handleRun(w http.ResponseWriter, r *http.Request) {
	run, err := getRun(r.Context(), s.store, r.PathValue("id"))
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	d := RunDetail{Run: *run}
	s.mu.Lock()
	lr := s.live[run.ID]
	s.mu.Unlock()
	if lr != nil {
		d.Log = lr.log.text()
	} else if b, err := s.store.GetDoc(r.Context(), colLog, run.ID); err == nil {
		d.Log = string(b)
	}
	writeJSON(w, http.StatusOK, d)
}

// handleSubmit starts a run and streams its output (NDJSON frames) until
// it ends. The run goes on if the client goes away.
func (s *Server) handleSubmit(w http.ResponseWriter, r *http.Request) {
	// Only someone the server knows may make it read a body this large.
	if _, ok := s.authorize(w, r, ScopeRead); !ok {
		return
	}
	var up Upload
	body := http.MaxBytesReader(w, r.Body, maxUpload*2)
	if err := json.NewDecoder(body).Decode(&up); err != nil {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("read run request: %w", err))
		return
	}
	up.Git = nil // only the server's own git runs name a commit
	scope, known := commands[up.Command]
	if !known {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("%q is not a command a run can execute", up.Command))
		return
	}
	who, ok := s.authorize(w, r, scope)
	if !ok {
		return
	}
	// Only reads may be served stale, and only they by a follower.
	up.Stale = up.Stale && scope == ScopeRead
	if !up.Stale && !s.leading() {
		s.redirect(w, r)
		return
	}
	lr, err := s.startRun(r.Context(), &up, who)
	var busy *BusyError
	switch {
	case errors.As(err, &busy):
		writeErr(w, http.StatusConflict, err)
		return
	case err != nil:
		s.storeErr(w, r, err)
		return
	}
	s.streamLog(w, r, lr.log, 0)
}

func (s *Server) handleStream(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	s.mu.Lock()
	lr := s.live[id]
	s.mu.Unlock()
	if lr == nil {
		writeErr(w, http.StatusNotFound, fmt.Errorf("run %s is not running on this node; `fiat run show %s` shows its record", id, id))
		return
	}
	from := 0
	fmt.Sscan(r.URL.Query().Get("from"), &from)
	s.streamLog(w, r, lr.log, from)
}

func (s *Server) streamLog(w http.ResponseWriter, r *http.Request, l *runLog, from int) {
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	enc := json.NewEncoder(w)
	fl, _ := w.(http.Flusher)
	ctx, cancel := context.WithCancel(r.Context())
	defer cancel()
	stop := context.AfterFunc(s.ctx, cancel)
	defer stop()
	l.follow(ctx, from, func(f Frame) error { return enc.Encode(f) }, func() {
		if fl != nil {
			fl.Flush()
		}
	})
}

func (s *Server) logRequests(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		h.ServeHTTP(w, r)
		if r.URL.Path != "/health" && r.URL.Path != "/v1/status" && r.URL.Path != "/metrics" {
			s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "elapsed", time.Since(start))
		}
	})
}
