package server

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"fiat/executor"
	"fiat/state"
)

// Run statuses. A run is queued, then planning, then (for commands that
// change things) applying, and ends in one of the terminal statuses.
const (
	StatusQueued         = "queued"
	StatusPlanning       = "planning"
	StatusApplying       = "applying"
	StatusRunning        = "running" // recover, import, forget, unlock
	StatusPlanned        = "planned"
	StatusApplied        = "applied"
	StatusSucceeded      = "succeeded"
	StatusRolledBack     = "rolled back"
	StatusFailed         = "failed"
	StatusNeedsAttention = "needs attention"
)

// Terminal reports whether a run with this status has ended.
func Terminal(status string) bool {
	switch status {
	case StatusQueued, StatusPlanning, StatusApplying, StatusRunning:
		return false
	}
	return true
}

// Run is one operation the leader executed (or is executing) for a client:
// the record kept in the replicated store, so any node can show it and a
// new leader can finish what a lost one left.
type Run struct {
	ID      string   `json:"id"`
	Stack   string   `json:"stack"`
	Command string   `json:"command"` // plan, apply, destroy, recover, ...
	Args    []string `json:"args"`
	Actor   string   `json:"actor"`
	// Source is where the run came from: "cli", or "git" (a push to a
	// hosted repository or a watched branch: Repo, Commit, Author, Message).
	Source       string `json:"source"`
	Repo         string `json:"repo,omitempty"`
	Commit       string `json:"commit,omitempty"`
	Author       string `json:"author,omitempty"`
	Message      string `json:"message,omitempty"`
	Node         string `json:"node"` // the leader that executed it
	ConfigDigest string `json:"config_digest,omitempty"`
	PlanDigest   string `json:"plan_digest,omitempty"`
	Status       string `json:"status"`
	// Error is the precise error report as the CLI prints it; ErrorJSON the
	// same as -json prints it.
	Error     string          `json:"error,omitempty"`
	ErrorJSON json.RawMessage `json:"error_json,omitempty"`
	Revision  uint64          `json:"revision,omitempty"`
	ExitCode  int             `json:"exit_code"`
	Created   time.Time       `json:"created"`
	Started   *time.Time      `json:"started,omitempty"`
	Ended     *time.Time      `json:"ended,omitempty"`
}

// commands are the CLI commands a run may execute, and the scope each
// needs; anything else (server, operator, runs, a command with spaces in
// its name) is refused before it is parsed.
var commands = map[string]string{
	"plan": ScopePlan, "apply": ScopeApply, "destroy": ScopeApply, "recover": ScopeApply, "unlock": ScopeApply,
	"import-tfstate": ScopeApply, "state forget": ScopeApply,
	"history": ScopeRead, "state list": ScopeRead, "state show": ScopeRead,
}

// Argv is a run's command as the CLI's argument list.
func Argv(command string, args []string) []string {
	if sub, ok := strings.CutPrefix(command, "state "); ok {
		return append([]string{"state", sub}, args...)
	}
	return append([]string{command}, args...)
}

// mutating says whether a command changes infrastructure or the store:
// such runs take the stack's turn (one at a time per stack) and need the
// apply scope.
func mutating(command string) bool {
	switch command {
	case "apply", "destroy", "recover", "import-tfstate", "unlock", "state forget":
		return true
	}
	return false
}

// Store collections.
const (
	colRuns   = "runs"   // runs/<id> -> Run JSON
	colUpload = "upload" // upload/<id>/<n> -> a chunk of the run's Upload JSON
	colLog    = "runlog" // runlog/<id> -> the tail of the run's output
)

// maxLogBytes is how much of a run's output its record keeps.
const maxLogBytes = 192 << 10

func newRunID(now time.Time) string {
	var b [4]byte
	rand.Read(b[:])
	return fmt.Sprintf("%013x%s", now.UnixMilli(), hex.EncodeToString(b[:]))
}

func checkRunID(id string) error {
	if len(id) != 21 || strings.Trim(id, "0123456789abcdef") != "" {
		return fmt.Errorf("%q is not a run id", id)
	}
	return nil
}

func putRun(ctx context.Context, st *state.Store, r *Run) error {
	b, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("encode run %s: %w", r.ID, err)
	}
	return st.PutDoc(ctx, colRuns, r.ID, b)
}

func getRun(ctx context.Context, st *state.Store, id string) (*Run, error) {
	if err := checkRunID(id); err != nil {
		return nil, err
	}
	b, err := st.GetDoc(ctx, colRuns, id)
	if err != nil {
		return nil, err
	}
	var r Run
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("decode run %s: %w", id, err)
	}
	return &r, nil
}

// listRuns returns the runs of stack ("" = all), newest first.
func listRuns(ctx context.Context, st *state.Store, stack string) ([]*Run, error) {
	var runs []*Run
	err := st.ListDocs(ctx, colRuns, "", func(id string, b []byte) error {
		var r Run
		if err := json.Unmarshal(b, &r); err != nil {
			return fmt.Errorf("decode run %s: %w", id, err)
		}
		if stack == "" || r.Stack == stack {
			runs = append(runs, &r)
		}
		return nil
	})
	sort.Slice(runs, func(i, j int) bool { return runs[i].ID > runs[j].ID })
	return runs, err
}

// Upload is what a client sends to start a run: the command line, with
// paths replaced by references into Files (the config directory and any
// -var-file or saved plan), as cmd/fiat's remote.go lays it out.
type Upload struct {
	Command string            `json:"command"`
	Args    []string          `json:"args"`
	Stack   string            `json:"stack"`
	Files   map[string][]byte `json:"files"` // slash paths relative to the run's directory
	// Paths maps references ("config/web", "vars/0-prod.tfvars") to the
	// paths the user gave, so output names the user's files.
	Paths  map[string]string `json:"paths,omitempty"`
	NoWait bool              `json:"no_wait,omitempty"`
	// Git says where a git-triggered run's configuration came from; the
	// server sets it (a client's is ignored).
	Git   *GitOrigin `json:"git,omitempty"`
	Stale bool       `json:"stale,omitempty"`
}

// GitOrigin is the commit a run's configuration came from.
type GitOrigin struct {
	Repo, Commit, Author, Message string
}

// maxUpload bounds one upload (the config directory and its files).
const maxUpload = 16 << 20

// saveUpload stores the upload in chunks beside the run, so a new leader
// can settle the run with the same configuration (its provider blocks).
func saveUpload(ctx context.Context, st *state.Store, id string, up *Upload) error {
	b, err := json.Marshal(up)
	if err != nil {
		return fmt.Errorf("encode upload: %w", err)
	}
	for n := 0; len(b) > 0; n++ {
		k := min(len(b), state.MaxDocBytes)
		if err := st.PutDoc(ctx, colUpload, fmt.Sprintf("%s/%04d", id, n), b[:k]); err != nil {
			return err
		}
		b = b[k:]
	}
	return nil
}

func loadUpload(ctx context.Context, st *state.Store, id string) (*Upload, error) {
	var b []byte
	err := st.ListDocs(ctx, colUpload, id+"/", func(_ string, v []byte) error {
		b = append(b, v...)
		return nil
	})
	if err != nil {
		return nil, err
	}
	var up Upload
	if err := json.Unmarshal(b, &up); err != nil {
		return nil, fmt.Errorf("decode upload of run %s: %w", id, err)
	}
	return &up, nil
}

// unpack writes the upload's files under dir, refusing any path that would
// leave it.
func unpack(dir string, files map[string][]byte) error {
	for name, data := range files {
		clean := path.Clean(name)
		if name == "" || path.IsAbs(name) || clean != name || clean == ".." || strings.HasPrefix(clean, "../") || strings.ContainsRune(name, 0) {
			return fmt.Errorf("upload: file name %q leaves the run's directory", name)
		}
		p := filepath.Join(dir, filepath.FromSlash(clean))
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
		if err := os.WriteFile(p, data, 0o600); err != nil {
			return fmt.Errorf("upload: %w", err)
		}
	}
	return nil
}

// Frame is one item of a run's output stream (NDJSON on the wire).
type Frame struct {
	Out  string `json:"out,omitempty"` // text the CLI printed on stdout
	Err  string `json:"err,omitempty"` // ... on stderr
	File *File  `json:"file,omitempty"`
	// Run is sent first (as queued or started) and last (as it ended).
	Run *Run `json:"run,omitempty"`
	End bool `json:"end,omitempty"`
}

// File is a file a run made for the client (plan -out).
type File struct {
	Name string `json:"name"`
	Data []byte `json:"data"`
}

// runLog is a live run's output: frames appended by the run, read by any
// number of followers from any position.
type runLog struct {
	mu      sync.Mutex
	frames  []Frame
	changed chan struct{} // closed and replaced on every append
	done    bool
	size    int
}

func newRunLog() *runLog { return &runLog{changed: make(chan struct{})} }

func (l *runLog) add(f Frame) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.frames = append(l.frames, f)
	l.size += len(f.Out) + len(f.Err)
	close(l.changed)
	l.changed = make(chan struct{})
}

func (l *runLog) finish() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.done = true
	close(l.changed)
	l.changed = make(chan struct{})
}

// from returns the frames from index i on, whether the log is finished,
// and a channel closed at the next change.
func (l *runLog) from(i int) ([]Frame, bool, <-chan struct{}) {
	l.mu.Lock()
	defer l.mu.Unlock()
	i = max(0, min(i, len(l.frames)))
	return l.frames[i:], l.done, l.changed
}

// follow calls fn with every frame from index from on, as they come,
// until the log is finished (nil), ctx ends, or fn fails (its error);
// flush, if set, runs whenever fn has caught up.
func (l *runLog) follow(ctx context.Context, from int, fn func(Frame) error, flush func()) error {
	for i := from; ; {
		frames, done, changed := l.from(i)
		for _, f := range frames {
			if err := fn(f); err != nil {
				return err
			}
		}
		i += len(frames)
		if flush != nil {
			flush()
		}
		if done {
			return nil // frames held everything up to the end
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// text is the run's output as one text (stdout and stderr interleaved as
// printed), its tail if longer than maxLogBytes.
func (l *runLog) text() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, f := range l.frames {
		b.WriteString(f.Out)
		b.WriteString(f.Err)
	}
	s := b.String()
	if len(s) > maxLogBytes {
		s = "…\n" + s[len(s)-maxLogBytes:]
	}
	return s
}

// stream is an io.Writer that appends to the log as out or err frames,
// with the run directory's paths put back as the user gave them.
type stream struct {
	log   *runLog
	err   bool
	paths *strings.Replacer
}

func (s stream) Write(p []byte) (int, error) {
	text := string(p)
	if s.paths != nil {
		text = s.paths.Replace(text)
	}
	if s.err {
		s.log.add(Frame{Err: text})
	} else {
		s.log.add(Frame{Out: text})
	}
	return len(p), nil
}

// pathReplacer maps paths inside dir back to the user's.
func pathReplacer(dir string, paths map[string]string) *strings.Replacer {
	var pairs []string
	refs := make([]string, 0, len(paths))
	for ref := range paths {
		refs = append(refs, ref)
	}
	// Longest first, so "config/a/b" wins over "config/a".
	sort.Slice(refs, func(i, j int) bool { return len(refs[i]) > len(refs[j]) })
	for _, ref := range refs {
		pairs = append(pairs, filepath.Join(dir, filepath.FromSlash(ref)), paths[ref])
	}
	return strings.NewReplacer(pairs...)
}

var _ io.Writer = stream{}

// Outcome is how an executed command ended, as the CLI's code knows it.
type Outcome struct {
	ExitCode int
	// Err is the command's error (nil on success); an *executor.Error for
	// a failed transaction.
	Err error
	// Revision is the store revision an apply committed.
	Revision uint64
	// PlanDigest is the sha256 of the plan the command made or applied.
	PlanDigest string
	// Recovered lists the transactions a recover settled.
	Recovered []*executor.Recovery
	// Clean says, for recover, that nothing is left to settle.
	Clean bool
}

// status maps a command's outcome to the run's terminal status.
func (o *Outcome) status(command string) string {
	var ae *executor.Error
	switch {
	case errors.As(o.Err, &ae) && len(ae.Stuck) > 0:
		return StatusNeedsAttention
	case errors.As(o.Err, &ae) && len(ae.RolledBack) > 0:
		return StatusRolledBack
	case o.Err != nil || o.ExitCode == 1:
		return StatusFailed
	case command == "recover" && !o.Clean:
		return StatusNeedsAttention
	case command == "plan":
		return StatusPlanned
	case command == "apply" || command == "destroy":
		return StatusApplied
	}
	return StatusSucceeded
}

// valueFlags are the CLI flags that take a value (the others are bools).
var valueFlags = map[string]bool{"var": true, "var-file": true, "out": true, "stack": true, "target": true,
	"exclude": true, "parallelism": true, "data-dir": true}

// CheckArgs refuses a command line that would reach outside the run's
// directory: a client names files only through its upload. Values of
// -var-file and -out, and the last argument (the config directory or plan
// file), must be inside dir; other arguments (addresses, lock ids) must
// not be paths; -data-dir is refused.
func CheckArgs(dir string, args []string) error {
	inside := func(p string) bool {
		c := filepath.Clean(p)
		return strings.HasPrefix(c, filepath.Clean(dir)+string(filepath.Separator))
	}
	var pos []string
	for i := 0; i < len(args); i++ {
		t := args[i]
		if !strings.HasPrefix(t, "-") {
			pos = append(pos, t)
			continue
		}
		name, val, inline := strings.Cut(strings.TrimLeft(t, "-"), "=")
		if !valueFlags[name] {
			continue
		}
		if !inline && i+1 < len(args) {
			i++
			val = args[i]
		}
		switch name {
		case "data-dir":
			return errors.New("-data-dir is not allowed in a run: the server's store holds every stack")
		case "var-file", "out":
			if !inside(val) {
				return fmt.Errorf("-%s %q is outside the run's upload", name, val)
			}
		}
	}
	if len(pos) == 0 || !inside(pos[len(pos)-1]) {
		return errors.New("a run names its config directory or plan file through its upload")
	}
	for _, p := range pos[:len(pos)-1] {
		if strings.ContainsRune(p, '/') || p == "." || p == ".." {
			return fmt.Errorf("argument %q is a path outside the run's upload", p)
		}
	}
	return nil
}
