package server

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"fiat/executor"
	"fiat/planner"
	"fiat/state"
)

// liveRun is a run executing (or queued) on this node.
type liveRun struct {
	ctx   context.Context // the leadership term it runs in
	rec   Run
	up    *Upload
	log   *runLog
	done  chan struct{}
	paths *strings.Replacer // the run directory's paths → the user's
}

// BusyError refuses a -no-wait run while another run holds the stack.
type BusyError struct{ Stack, RunID string }

func (e *BusyError) Error() string {
	return fmt.Sprintf("stack %q is busy with run %s; wait for it (`fiat run show %s`) or submit without -no-wait to queue", e.Stack, e.RunID, e.RunID)
}

// startRun records a run and starts executing it; leader only. Commands
// that only read (state, history, show) make no record and run at once.
func (s *Server) startRun(ctx context.Context, up *Upload, actor string) (*liveRun, error) {
	if err := state.ValidStackName(up.Stack); err != nil {
		return nil, err
	}
	// The stack the run is recorded, queued and settled on is the stack it
	// acts on: the server names it.
	up.Args = append([]string{"-stack", up.Stack}, dropStack(up.Args)...)
	now := time.Now().UTC()
	lr := &liveRun{ctx: s.runCtx(), up: up, log: newRunLog(), done: make(chan struct{}),
		rec: Run{ID: newRunID(now), Stack: up.Stack, Command: up.Command, Args: redactVars(up.Args), Actor: actor, Source: "cli",
			Node: s.cfg.Name, ConfigDigest: digestFiles(up.Files), Status: StatusQueued, Created: now}}
	if up.Git != nil {
		lr.rec.Source, lr.rec.Repo, lr.rec.Commit = "git", up.Git.Repo, up.Git.Commit
		lr.rec.Author, lr.rec.Message = up.Git.Author, strings.TrimSpace(up.Git.Message)
	}
	if !recorded(up.Command) {
		lr.rec.ID = ""
		s.wg.Add(1)
		go s.execute(lr)
		return lr, nil
	}
	if mutating(up.Command) {
		if up.NoWait {
			if busy := s.busyWith(up.Stack); busy != "" {
				return nil, &BusyError{Stack: up.Stack, RunID: busy}
			}
		}
		// The upload is kept until the run ends: a new leader settles a run
		// its old leader lost with the same provider configuration.
		if err := saveUpload(ctx, s.store, lr.rec.ID, up); err != nil {
			return nil, err
		}
	}
	// Live before recorded: a settle that lists the runs in between must
	// see that this one is not orphaned.
	s.mu.Lock()
	s.live[lr.rec.ID] = lr
	s.mu.Unlock()
	if err := putRun(ctx, s.store, &lr.rec); err != nil {
		s.mu.Lock()
		delete(s.live, lr.rec.ID)
		s.mu.Unlock()
		return nil, err
	}
	s.m.runs.WithLabelValues(StatusQueued).Inc()
	s.wg.Add(1)
	go s.execute(lr)
	return lr, nil
}

// dropStack removes -stack flags (and their values) from args.
func dropStack(args []string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		name, _, inline := strings.Cut(strings.TrimLeft(args[i], "-"), "=")
		if strings.HasPrefix(args[i], "-") && name == "stack" {
			if !inline {
				i++
			}
			continue
		}
		out = append(out, args[i])
	}
	return out
}

// redactVars hides -var values in what a run record shows: a variable
// given on the command line may be a secret.
func redactVars(args []string) []string {
	out := slices.Clone(args)
	for i := 0; i < len(out); i++ {
		switch {
		case (out[i] == "-var" || out[i] == "--var") && i+1 < len(out):
			name, _, _ := strings.Cut(out[i+1], "=")
			out[i+1] = name + "=(hidden)"
			i++
		case strings.HasPrefix(out[i], "-var=") || strings.HasPrefix(out[i], "--var="):
			flag, v, _ := strings.Cut(out[i], "=")
			name, _, _ := strings.Cut(v, "=")
			out[i] = flag + "=" + name + "=(hidden)"
		}
	}
	return out
}

// recorded says whether a command is a run with a record.
func recorded(command string) bool { return command == "plan" || mutating(command) }

// setStatus changes a live run's status. The run's goroutine is the only
// writer of its record; busyWith reads the status from others, under s.mu.
func (s *Server) setStatus(lr *liveRun, status string) {
	s.mu.Lock()
	lr.rec.Status = status
	s.mu.Unlock()
}

// busyWith names the run holding the stack's turn, or "".
func (s *Server) busyWith(stack string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, lr := range s.live {
		if lr.rec.Stack == stack && mutating(lr.rec.Command) && lr.rec.Status != StatusQueued {
			return lr.rec.ID
		}
	}
	return ""
}

// turn waits for the stack's turn: one mutating run per stack at a time,
// in arrival order; other stacks never wait.
func (s *Server) turn(ctx context.Context, stack string) (release func(), err error) {
	s.mu.Lock()
	ch, ok := s.turns[stack]
	if !ok {
		ch = make(chan struct{}, 1)
		s.turns[stack] = ch
	}
	s.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// execute runs one command to its end and records how it ended.
func (s *Server) execute(lr *liveRun) {
	defer s.wg.Done()
	defer close(lr.done)
	defer lr.log.finish()
	defer func() {
		s.mu.Lock()
		delete(s.live, lr.rec.ID)
		s.mu.Unlock()
	}()
	ctx := lr.ctx
	if mutating(lr.up.Command) {
		s.mu.Lock()
		settled := s.settled
		s.mu.Unlock()
		select {
		case <-settled:
		case <-ctx.Done():
		}
		release, err := s.turn(ctx, lr.up.Stack)
		if err != nil {
			s.endRun(lr, Outcome{ExitCode: 1, Err: fmt.Errorf("server shutting down before the run started: %w", err)})
			return
		}
		defer release()
	}
	started := time.Now().UTC()
	lr.rec.Started = &started
	status := StatusPlanning
	if !slices.Contains([]string{"plan", "apply", "destroy"}, lr.up.Command) {
		status = StatusRunning
	}
	s.setStatus(lr, status)
	if lr.rec.ID != "" {
		if err := putRun(ctx, s.store, &lr.rec); err != nil {
			lr.log.add(Frame{Err: fmt.Sprintf("Error: %v\n", err)})
			return
		}
	}
	lr.log.add(Frame{Run: runCopy(&lr.rec)})
	dir := filepath.Join(s.cfg.DataDir, "runs", cmp.Or(lr.rec.ID, newRunID(started)))
	defer os.RemoveAll(dir)
	out := s.invoke(ctx, lr, dir)
	s.endRun(lr, out)
}

func runCopy(r *Run) *Run { c := *r; return &c }

// invoke unpacks the upload and runs the command through Exec.
func (s *Server) invoke(ctx context.Context, lr *liveRun, dir string) Outcome {
	if err := unpack(dir, lr.up.Files); err != nil {
		return Outcome{ExitCode: 1, Err: err}
	}
	if err := os.MkdirAll(filepath.Join(dir, "out"), 0o700); err != nil {
		return Outcome{ExitCode: 1, Err: err}
	}
	args := make([]string, len(lr.up.Args))
	for i, a := range lr.up.Args {
		args[i] = resolveArg(dir, a)
	}
	paths := pathReplacer(dir, lr.up.Paths)
	lr.paths = paths
	applying := false
	actor := lr.rec.Actor
	if lr.rec.ID != "" {
		actor = fmt.Sprintf("%s (run %s)", actor, lr.rec.ID)
	}
	inv := Invocation{Command: lr.up.Command, Args: args, Dir: dir, Store: s.store,
		Stdout: stream{log: lr.log, paths: paths}, Stderr: stream{log: lr.log, err: true, paths: paths},
		Actor: actor, Holder: s.holder, Stale: lr.up.Stale, LastApplied: func(stack string) string { return s.lastApplied(ctx, stack) },
		Events: func(ev executor.Event) {
			if applying || lr.rec.ID == "" || lr.rec.Status != StatusPlanning {
				return
			}
			applying = true
			s.setStatus(lr, StatusApplying)
			if err := putRun(ctx, s.store, &lr.rec); err != nil {
				s.log.Warn("record run status", "run", lr.rec.ID, "error", err)
			}
		}}
	start := time.Now()
	out := s.cfg.Exec(ctx, inv)
	s.m.runDuration.WithLabelValues(lr.up.Command).Observe(time.Since(start).Seconds())
	// Files the command made for the client (plan -out) go back with it.
	outDir := filepath.Join(dir, "out")
	if ents, err := os.ReadDir(outDir); err == nil {
		for _, e := range ents {
			if b, err := os.ReadFile(filepath.Join(outDir, e.Name())); err == nil && e.Type().IsRegular() {
				lr.log.add(Frame{File: &File{Name: e.Name(), Data: b}})
			}
		}
	}
	return out
}

// lastApplied is the commit of the stack's latest applied git run.
func (s *Server) lastApplied(ctx context.Context, stack string) string {
	runs, err := listRuns(ctx, s.store, stack)
	if err != nil {
		return ""
	}
	for _, r := range runs { // newest first
		if r.Command == "apply" && r.Status == StatusApplied && r.Commit != "" {
			return r.Commit
		}
	}
	return ""
}

// resolveArg turns "@/path" (a path inside the upload) into a path in dir.
func resolveArg(dir, a string) string {
	if rest, ok := strings.CutPrefix(a, "@/"); ok {
		return filepath.Join(dir, filepath.FromSlash(rest))
	}
	return a
}

// endRun records a run's outcome. If this node lost leadership meanwhile
// the write fails: the new leader settles the run from its record.
func (s *Server) endRun(lr *liveRun, out Outcome) {
	ended := time.Now().UTC()
	lr.rec.Ended = &ended
	lr.rec.ExitCode = out.ExitCode
	s.setStatus(lr, out.status(lr.up.Command))
	lr.rec.Revision = out.Revision
	lr.rec.PlanDigest = out.PlanDigest
	if out.Err != nil {
		lr.rec.Error = out.Err.Error()
		lr.rec.ErrorJSON = errorJSON(out.Err)
		if lr.paths != nil {
			lr.rec.Error = lr.paths.Replace(lr.rec.Error)
			lr.rec.ErrorJSON = []byte(lr.paths.Replace(string(lr.rec.ErrorJSON)))
		}
	}
	if lr.rec.ID == "" {
		lr.log.add(Frame{Run: runCopy(&lr.rec), End: true})
		return
	}
	s.m.runs.WithLabelValues(lr.rec.Status).Inc()
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 10*time.Second)
	defer cancel()
	err := putRun(ctx, s.store, &lr.rec)
	if err == nil {
		err = s.store.PutDoc(ctx, colLog, lr.rec.ID, []byte(lr.log.text()))
	}
	if err == nil && mutating(lr.up.Command) {
		err = deleteUpload(ctx, s.store, lr.rec.ID)
	}
	if err != nil {
		s.log.Warn("record the end of run", "run", lr.rec.ID, "error", err)
		lr.log.add(Frame{Err: fmt.Sprintf("Warning: could not record the run's outcome (%v); the leader settles run %s\n", err, lr.rec.ID)})
		lr.log.add(Frame{End: true})
		return
	}
	lr.log.add(Frame{Run: runCopy(&lr.rec), End: true})
}

func deleteUpload(ctx context.Context, st *state.Store, id string) error {
	var ids []string
	if err := st.ListDocs(ctx, colUpload, id+"/", func(k string, _ []byte) error { ids = append(ids, k); return nil }); err != nil {
		return err
	}
	for _, k := range ids {
		if err := st.DeleteDoc(ctx, colUpload, k); err != nil {
			return err
		}
	}
	return nil
}

func errorJSON(err error) json.RawMessage {
	var ae *executor.Error
	var v any = map[string]string{"message": err.Error()}
	if errors.As(err, &ae) {
		v = ae
	}
	b, _ := json.Marshal(v)
	return b
}

func digestFiles(files map[string][]byte) string {
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	h := sha256.New()
	for _, n := range names {
		fmt.Fprintf(h, "%s\x00%d\x00", n, len(files[n]))
		h.Write(files[n])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// settleOrphans runs on a new leader: every run a lost leader left
// unfinished is settled here, without anyone asking. A run that never
// started is failed; one that was planning changed nothing; one that may
// have touched infrastructure is recovered like `fiat recover` with the
// configuration it was submitted with — its open transaction rolled back,
// or its purge finished if it had committed — and the run records what
// happened.
func (s *Server) settleOrphans(ctx context.Context) {
	runs, err := listRuns(ctx, s.store, "")
	if err != nil {
		s.log.Error("list runs to settle", "error", err)
		return
	}
	for _, r := range runs {
		if Terminal(r.Status) {
			continue
		}
		s.mu.Lock()
		_, live := s.live[r.ID]
		busy := s.settling[r.ID]
		if !live && !busy {
			s.settling[r.ID] = true
		}
		s.mu.Unlock()
		if live || busy {
			continue
		}
		s.settle(ctx, r)
		s.mu.Lock()
		delete(s.settling, r.ID)
		s.mu.Unlock()
	}
}

func (s *Server) settle(ctx context.Context, r *Run) {
	log := s.log.With("run", r.ID, "stack", r.Stack, "lost_leader", r.Node)
	end := func(status, msg string, code int) {
		now := time.Now().UTC()
		r.Status, r.Error, r.Ended, r.ExitCode = status, msg, &now, code
		if msg != "" {
			r.ErrorJSON, _ = json.Marshal(map[string]string{"message": msg})
		}
		if err := putRun(ctx, s.store, r); err != nil {
			log.Warn("record settled run", "error", err)
			return
		}
		deleteUpload(ctx, s.store, r.ID)
		s.m.runs.WithLabelValues(status).Inc()
		log.Info("settled a run its leader left", "status", status)
	}
	if r.Status == StatusQueued {
		end(StatusFailed, fmt.Sprintf("leader %s was lost before the run started; nothing was changed: submit it again", r.Node), 1)
		return
	}
	if !mutating(r.Command) {
		end(StatusFailed, fmt.Sprintf("leader %s was lost mid-%s; nothing was changed: run it again", r.Node, r.Command), 1)
		return
	}
	release, err := s.turn(ctx, r.Stack)
	if err != nil {
		return
	}
	defer release()
	// Another term's settle may have finished it while this one waited.
	if cur, err := getRun(ctx, s.store, r.ID); err != nil || Terminal(cur.Status) {
		return
	}
	up, err := loadUpload(ctx, s.store, r.ID)
	if err != nil {
		end(StatusNeedsAttention, fmt.Sprintf("leader %s was lost mid-%s and its configuration cannot be read (%v): run `fiat recover` on stack %s", r.Node, r.Command, err, r.Stack), 1)
		return
	}
	if err := s.releaseDeadLocks(ctx, r.Stack); err != nil {
		log.Warn("release the lost leader's lock", "error", err)
	}
	// Recover with the run's own configuration: its provider blocks.
	args, err := recoverArgs(up, up.Files)
	if err != nil {
		end(StatusNeedsAttention, fmt.Sprintf("leader %s was lost mid-%s and %v: run `fiat recover` on stack %s", r.Node, r.Command, err, r.Stack), 1)
		return
	}
	rec := &liveRun{up: &Upload{Command: "recover", Stack: r.Stack, Files: up.Files, Paths: up.Paths,
		Args: args}, log: newRunLog(), rec: Run{Actor: "fiat server " + s.cfg.Name}}
	dir := filepath.Join(s.cfg.DataDir, "runs", r.ID+"-settle")
	defer os.RemoveAll(dir)
	out := s.invoke(ctx, rec, dir)
	report := strings.TrimSpace(rec.log.text())
	committed := false
	for _, t := range out.Recovered {
		committed = committed || t.Committed
	}
	switch {
	case out.Err != nil || !out.Clean:
		end(StatusNeedsAttention, fmt.Sprintf("leader %s lost mid-%s; recovering its transaction left work:\n%s", r.Node, r.Command, report), 1)
	case committed:
		end(StatusApplied, "", 0)
	case len(out.Recovered) > 0:
		end(StatusRolledBack, fmt.Sprintf("rolled back: leader %s lost mid-%s; undone:\n%s", r.Node, r.Command, report), 1)
	case s.committedBy(ctx, r):
		end(StatusApplied, "", 0)
	default:
		end(StatusFailed, fmt.Sprintf("leader %s was lost mid-%s before its transaction began; nothing was changed", r.Node, r.Command), 1)
	}
}

// recoverArgs is `recover -stack S [-var ...] [-var-file ...] DIR` with
// the configuration a run was submitted with: its config directory, or,
// for a saved plan applied alone, the config snapshot inside the plan
// (added to files here). The provider blocks in it say how to reach the
// objects to roll back.
func recoverArgs(up *Upload, files map[string][]byte) ([]string, error) {
	args := []string{"-stack", up.Stack}
	for i := 0; i+1 < len(up.Args); i++ {
		if up.Args[i] == "-var" || up.Args[i] == "-var-file" {
			args = append(args, up.Args[i], up.Args[i+1])
			i++
		}
	}
	for name := range files {
		if rest, ok := strings.CutPrefix(name, "config/"); ok {
			top, _, _ := strings.Cut(rest, "/")
			return append(args, "@/config/"+top), nil
		}
	}
	for name, b := range files {
		if !strings.HasPrefix(name, "files/") {
			continue
		}
		sealed, err := planner.Unseal(b)
		if err != nil {
			continue
		}
		for rel, content := range sealed.File.Files {
			files["config/"+up.Stack+"/"+rel] = content
		}
		return append(args, "@/config/"+up.Stack), nil
	}
	return nil, errors.New("the run's upload holds no configuration to recover with")
}

// committedBy reports whether history holds a revision the run committed
// (its leader was lost after the commit and the end of its transaction).
func (s *Server) committedBy(ctx context.Context, r *Run) bool {
	revs, err := s.store.History(ctx, r.Stack)
	if err != nil {
		return false
	}
	for _, rev := range revs {
		if strings.Contains(rev.Meta.Actor, "(run "+r.ID+")") {
			r.Revision = rev.Revision
			return true
		}
	}
	return false
}

// releaseDeadLocks frees the stack's lock if a server run holds it that is
// not running here: only the leader runs applies, so its holder is a lost
// leader (or this node before a restart). Its store writes are refused
// from here on (fencing); it makes no further provider call either, since
// its term's context ended when it lost leadership and each call needs a
// journal write first. Only a call already in flight when it was cut off
// can still land: the recovery reads every object whose outcome is
// unknown before undoing it.
func (s *Server) releaseDeadLocks(ctx context.Context, stack string) error {
	locks, err := s.store.Locks(ctx)
	if err != nil {
		return err
	}
	for _, l := range locks {
		if l.Stack != stack || !strings.HasPrefix(l.Holder, serverHolder) {
			continue
		}
		if l.Holder == s.holder && s.busyWith(stack) != "" {
			continue
		}
		if _, err := s.store.ForceUnlock(ctx, l.ID); err != nil {
			return err
		}
		s.log.Info("released the lock of a lost leader", "stack", stack, "holder", l.Holder)
	}
	return nil
}
