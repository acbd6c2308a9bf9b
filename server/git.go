package server

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"fiat/gitops"
	"fiat/state"
)

// The server is gitops' Runner: a push or a watched branch's commit
// becomes a run like any other, recorded with its commit.

var _ gitops.Runner = (*Server)(nil)

// IsLeader implements gitops.Runner: this node runs runs now.
func (s *Server) IsLeader() bool { return s.leading() }

// Store implements gitops.Runner.
func (s *Server) Store() *state.Store { return s.store }

// Execute implements gitops.Runner: it starts a run of a commit's config
// directory and copies its output to out until it ends.
func (s *Server) Execute(ctx context.Context, req gitops.RunRequest, out io.Writer) (gitops.RunResult, error) {
	files := make(map[string][]byte, len(req.Files))
	ref := "config/" + req.Stack
	for p, b := range req.Files {
		files[ref+"/"+p] = b
	}
	args := []string{"-stack", req.Stack, "@/" + ref}
	if req.Command == "apply" {
		args = append([]string{"-auto-approve"}, args...)
	}
	shown := req.Dir
	if shown == "" {
		shown = "."
	}
	up := &Upload{Command: req.Command, Stack: req.Stack, Files: files, Args: args, Paths: map[string]string{ref: shown},
		Git: &GitOrigin{Repo: req.Repo, Commit: req.Commit, Author: req.Author, Message: req.Message}}
	lr, err := s.startRun(ctx, up, req.Actor)
	if err != nil {
		return gitops.RunResult{}, err
	}
	if req.Started != nil {
		req.Started(lr.rec.ID)
	}
	// If the pusher goes away the run goes on; its outcome still decides
	// whether the ref moves, so wait for it either way.
	lr.log.follow(ctx, 0, func(f Frame) error {
		io.WriteString(out, f.Out)
		io.WriteString(out, f.Err)
		return nil
	}, nil)
	<-lr.done
	return gitops.RunResult{ID: lr.rec.ID, Status: lr.rec.Status, Error: lr.rec.Error, ExitCode: lr.rec.ExitCode}, nil
}

// gitHandler serves /git/ on the leader: cloning needs the read scope,
// pushing the apply scope (git sends the token as the basic-auth
// password).
func (s *Server) gitHandler(h http.Handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		scope := ScopeRead
		if gitops.IsPush(r) {
			scope = ScopeApply // and anything that is not plainly a clone or fetch
		}
		who, ok := s.authorize(w, r, scope)
		if !ok {
			return
		}
		if !s.leading() {
			s.redirect(w, r)
			return
		}
		h.ServeHTTP(w, r.WithContext(gitops.WithActor(r.Context(), who)))
	}
}

// hook takes a webhook on any node: the leader handles it, another node
// passes it on to the leader (senders do not follow redirects).
func (s *Server) hook(w http.ResponseWriter, r *http.Request) {
	if s.store.IsLeader() {
		s.git.Webhook(w, r)
		return
	}
	api := s.leaderAPI(r.Context())
	u, err := url.Parse(api)
	if api == "" || err != nil || api == s.APIURL() || r.Header.Get("X-Fiat-Forwarded") != "" {
		writeErr(w, http.StatusServiceUnavailable, fmt.Errorf("no leader to take the webhook; the source is polled anyway"))
		return
	}
	r.Header.Set("X-Fiat-Forwarded", s.cfg.Name) // one hop only
	p := httputil.NewSingleHostReverseProxy(u)
	p.Transport = s.client.Transport
	p.ServeHTTP(w, r)
}

// handleRetry runs a failed watched-branch commit again (`fiat runs
// retry ID`), streaming its output as a submitted run does.
func (s *Server) handleRetry(w http.ResponseWriter, r *http.Request) {
	who, ok := s.authorize(w, r, ScopeApply)
	if !ok {
		return
	}
	if !s.leading() {
		s.redirect(w, r)
		return
	}
	run, err := getRun(r.Context(), s.store, r.PathValue("id"))
	if err != nil {
		s.storeErr(w, r, err)
		return
	}
	if run.Source != "git" || run.Commit == "" {
		writeErr(w, http.StatusBadRequest, fmt.Errorf("run %s did not come from git: run the command again instead", run.ID))
		return
	}
	if run.Status != StatusFailed && run.Status != StatusRolledBack && run.Status != StatusNeedsAttention {
		writeErr(w, http.StatusConflict, fmt.Errorf("run %s is %s: only a failed run is retried", run.ID, run.Status))
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	fw := &frameWriter{enc: json.NewEncoder(w), fl: w.(http.Flusher)}
	res, err := s.git.Retry(r.Context(), run.Repo, run.Commit, who, fw)
	if err != nil {
		fw.Write([]byte(fmt.Sprintf("Error: %v\n", err)))
		res.ExitCode = 1
	}
	end := &Run{ID: res.ID, Status: res.Status, Error: res.Error, ExitCode: res.ExitCode}
	if err != nil {
		end.Status = StatusFailed
	}
	fw.enc.Encode(Frame{Run: end, End: true})
}

type frameWriter struct {
	enc *json.Encoder
	fl  http.Flusher
}

func (f *frameWriter) Write(p []byte) (int, error) {
	f.enc.Encode(Frame{Out: string(p)})
	f.fl.Flush()
	return len(p), nil
}

// Leader implements gitops.Runner: the leader's API and this node's
// credentials for it (its certificate, or its token).
func (s *Server) Leader() (gitops.Peer, bool) {
	if s.store.IsLeader() {
		return gitops.Peer{}, false
	}
	api := s.leaderAPI(s.ctx)
	if api == "" {
		return gitops.Peer{}, false
	}
	p := gitops.Peer{URL: api, Token: s.cfg.ClientToken}
	if s.tls != nil {
		p.CABundle, _ = os.ReadFile(s.cfg.TLS.CA)
		p.ClientCert, _ = os.ReadFile(s.cfg.TLS.Cert)
		p.ClientKey, _ = os.ReadFile(s.cfg.TLS.Key)
	}
	return p, true
}
