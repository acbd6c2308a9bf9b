package state

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

// Options configure Open.
type Options struct {
	// Dir is the data directory; it is created if missing. It holds the
	// raft log (raft-wal/), raft snapshots (snapshots/) and the FSM (fsm/).
	Dir string
	// Logger receives raft's logs; nil discards them.
	Logger hclog.Logger
	// MustExist refuses to create a store: Open fails with ErrNoStore when
	// Dir holds none (read-only commands, and apply of a saved plan, must
	// not leave a new store behind on a mistyped path).
	MustExist bool
	// Cluster, if set, starts a node of a multi-node cluster (cluster.go)
	// instead of the embedded single voter. Open then returns at once,
	// before the node has joined or found a leader.
	Cluster *Cluster
}

// ErrNoStore is returned by Open with MustExist when the directory holds no
// store.
var ErrNoStore = errors.New("no fiat store here")

// Store is fiat's strictly consistent entity store: a raft node whose state
// machine is Badger on disk. Open starts an embedded single-node cluster.
//
// All methods are safe for concurrent use. Reads see every write that
// returned before they started. Writes are raft commands: once submitted, a
// write's outcome is awaited even if ctx is cancelled, so a caller never has
// to guess whether it happened.
type Store struct {
	dir     string
	fsm     *fsm
	node    *node
	dirLock *os.File

	now func() time.Time // the clock put into commands; tests replace it

	cluster   *Cluster
	logger    hclog.Logger
	ready     atomic.Bool   // leader, with every earlier entry applied
	notify    chan bool     // raft's leadership notifications (cluster)
	watchDone chan struct{} // closed when watchLeadership returns

	mu     sync.RWMutex // held for reading by every call, for writing by Close
	closed bool

	entries  atomic.Int64 // raft entries submitted
	maxEntry atomic.Int64 // size of the largest one
}

// ErrClosed is returned by calls on a closed Store.
var ErrClosed = errors.New("state store is closed")

// Open opens (creating if needed) the store in opts.Dir and waits until it
// is ready: leader of its raft cluster, with every committed entry applied.
func Open(ctx context.Context, opts Options) (*Store, error) {
	if opts.Dir == "" {
		return nil, errors.New("open state: no data directory given")
	}
	dir, err := filepath.Abs(opts.Dir)
	if err != nil {
		return nil, fmt.Errorf("open state: %w", err)
	}
	if opts.MustExist {
		if _, err := os.Stat(filepath.Join(dir, "fsm")); errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("open state in %s: %w", dir, ErrNoStore)
		}
	}
	s := &Store{dir: dir, now: time.Now, cluster: opts.Cluster, logger: opts.Logger}
	if s.logger == nil {
		s.logger = hclog.NewNullLogger()
	}
	if err := s.open(ctx, s.logger); err != nil {
		s.closeParts(false)
		return nil, fmt.Errorf("open state: %w", err)
	}
	if s.cluster != nil {
		return s, nil // the leader makes the identity, once there is one
	}
	if err := s.ensureIdentity(ctx); err != nil {
		s.closeParts(false)
		return nil, fmt.Errorf("open state: %w", err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, logger hclog.Logger) (err error) {
	if err := ensureDir(s.dir); err != nil {
		return err
	}
	if s.dirLock, err = lockDir(s.dir); err != nil {
		return err
	}
	if err := checkFiles(s.dir); err != nil {
		return err
	}
	// Badger takes about as long to open as the embedded voter takes to
	// win its election, so the two overlap: raft starts while Badger opens
	// and waits for it (fsmGate) before it applies or appends anything.
	fsmDir := filepath.Join(s.dir, "fsm")
	opened := make(chan struct{})
	var fsmErr error
	go func() {
		defer close(opened)
		fsmErr = guard(s.dir, fsmDir, func() (err error) { s.fsm, err = openFSM(fsmDir); return err })
		if fsmErr != nil && s.fsm == nil && !errors.Is(fsmErr, ErrDamaged) && !errors.Is(fsmErr, os.ErrPermission) {
			// Badger refuses files it did not write that way (an emptied
			// value log, a manifest cut short): damage, like the rest.
			fsmErr = &DamagedError{Dir: s.dir, File: fsmDir, Cause: fsmErr}
		}
	}()
	defer func() { <-opened }() // whatever happens, closeParts sees s.fsm
	awaitFSM := func() (*fsm, error) { <-opened; return s.fsm, fsmErr }
	return guard(s.dir, filepath.Join(s.dir, walDir), func() (err error) {
		if s.cluster != nil {
			s.notify = make(chan bool, 8)
		}
		s.node, err = openNode(ctx, s.dir, awaitFSM, logger, s.cluster, s.notify)
		if _, ferr := awaitFSM(); ferr != nil {
			return ferr // the cause, when raft failed for want of the FSM
		}
		if err == nil && s.notify != nil {
			s.watchDone = make(chan struct{})
			go s.watchLeadership(s.notify)
		}
		return err
	})
}

// Close waits for calls in progress, compacts the raft log if it has grown,
// and closes everything. Calls after Close return ErrClosed.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	if err := s.closeParts(true); err != nil {
		return fmt.Errorf("close state: %w", err)
	}
	return nil
}

func (s *Store) closeParts(compact bool) error {
	var errs []error
	if s.node != nil {
		errs = append(errs, s.node.stop(compact))
	}
	if s.watchDone != nil {
		close(s.notify) // raft has shut down: it sends no more
		<-s.watchDone
	}
	// Raft is stopped: its files and Badger close side by side.
	fsmClosed := make(chan error, 1)
	go func() {
		if s.fsm == nil {
			fsmClosed <- nil
			return
		}
		fsmClosed <- s.fsm.close()
	}()
	if s.node != nil {
		errs = append(errs, s.node.closeFiles())
	}
	errs = append(errs, <-fsmClosed)
	if s.dirLock != nil {
		errs = append(errs, unlockDir(s.dirLock))
	}
	return errors.Join(errs...)
}

// Dir is the absolute data directory.
func (s *Store) Dir() string { return s.dir }

// read runs fn against the current state. A read is linearizable: the
// node confirms with a quorum that it is still the leader, and a new leader
// serves none until it has applied every entry committed before its term
// (watchLeadership); writes return only once applied on the leader. A
// follower refuses with ErrNotLeader, unless ctx is marked WithStale.
func (s *Store) read(ctx context.Context, fn func(txn *badger.Txn) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	if !isStale(ctx) {
		if s.cluster != nil && !s.ready.Load() {
			return s.notLeader(raft.ErrNotLeader)
		}
		if err := s.node.raft.VerifyLeader().Error(); err != nil {
			return fmt.Errorf("verify leadership: %w", s.notLeader(err))
		}
	}
	return s.fsm.view(fn)
}

// op is one command to submit.
type op struct {
	kind cmdKind
	v    any
}

func (s *Store) run(ctx context.Context, kind cmdKind, v any) (*result, error) {
	res, err := s.runOps(ctx, []op{{kind, v}})
	if err != nil {
		return nil, err
	}
	return res[0], nil
}

// runAll submits one command of kind per value, in order.
func (s *Store) runAll(ctx context.Context, kind cmdKind, vs []any) ([]*result, error) {
	ops := make([]op, len(vs))
	for i, v := range vs {
		ops[i] = op{kind, v}
	}
	return s.runOps(ctx, ops)
}

// runOps encodes every command first (so a size error sends nothing), then
// submits them back to back — raft keeps their order and writes them in few
// disk syncs — and waits for all. It returns the first failure in order:
// raft's (future.Error), the FSM's (a Response that is an error), or the
// command's refusal (result.Err).
func (s *Store) runOps(ctx context.Context, ops []op) ([]*result, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	data := make([][]byte, len(ops))
	for i, o := range ops {
		b, err := encodeCmd(o.kind, o.v)
		if err != nil {
			return nil, err
		}
		if len(b) > maxEntryBytes {
			return nil, fmt.Errorf("%s command is %d bytes, over the %d byte limit of a raft entry", o.kind, len(b), maxEntryBytes)
		}
		data[i] = b
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return nil, ErrClosed
	}
	futures := make([]raft.ApplyFuture, len(data))
	for i, b := range data {
		s.noteEntry(len(b))
		futures[i] = s.node.raft.Apply(b, 0)
	}
	results := make([]*result, len(futures))
	var first error
	for i, f := range futures {
		res, err := waitApply(f)
		if err != nil && first == nil {
			first = err
		}
		results[i] = res
	}
	if first != nil {
		return nil, s.notLeader(first)
	}
	return results, nil
}

func waitApply(f raft.ApplyFuture) (*result, error) {
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("raft apply: %w", err)
	}
	switch r := f.Response().(type) {
	case *result:
		return r, r.Err
	case error:
		return nil, r
	default:
		return nil, fmt.Errorf("raft apply: unexpected response %T", r)
	}
}

func (s *Store) noteEntry(n int) {
	s.entries.Add(1)
	for {
		cur := s.maxEntry.Load()
		if int64(n) <= cur || s.maxEntry.CompareAndSwap(cur, int64(n)) {
			return
		}
	}
}

// Revision returns the store's revision: 0 when empty, +1 per Commit.
func (s *Store) Revision(ctx context.Context) (uint64, error) {
	var rev uint64
	err := s.read(ctx, func(txn *badger.Txn) (err error) {
		rev, err = getUint(txn, keyRevision)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("read revision: %w", err)
	}
	return rev, nil
}

// Get returns the entity at address, or an error wrapping ErrNotFound.
func (s *Store) Get(ctx context.Context, address string) (Entity, error) {
	var e Entity
	err := s.read(ctx, func(txn *badger.Txn) error {
		item, err := txn.Get(entityKey(address))
		if errors.Is(err, badger.ErrKeyNotFound) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		return item.Value(func(val []byte) (err error) {
			e, err = decodeEntity(val)
			return err
		})
	})
	if err != nil {
		return Entity{}, fmt.Errorf("get entity %s: %w", address, err)
	}
	return e, nil
}

// List returns the entities of stack ("" = every stack), sorted by address.
func (s *Store) List(ctx context.Context, stack string) ([]Entity, error) {
	var es []Entity
	err := s.read(ctx, func(txn *badger.Txn) error {
		return scan(txn, entityPrefix(stack), func(key, val []byte) error {
			e, err := decodeEntity(val)
			if err != nil {
				return fmt.Errorf("%s: %w", key, err)
			}
			es = append(es, e)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list entities of stack %q: %w", stack, err)
	}
	return es, nil
}

// History returns the revisions that changed stack ("" = all), ascending.
func (s *Store) History(ctx context.Context, stack string) ([]Revision, error) {
	var revs []Revision
	err := s.read(ctx, func(txn *badger.Txn) error {
		cur, err := getUint(txn, keyRevision)
		if err != nil {
			return err
		}
		var hs []historyHeader
		err = scanJSON(txn, []byte(prefixHistory), func(h *historyHeader) {
			// History is written before its revision is visible.
			if h.Revision <= cur && (stack == "" || h.Stack == stack) {
				hs = append(hs, *h)
			}
		})
		if err != nil {
			return err
		}
		for _, h := range hs {
			r := Revision{Revision: h.Revision, Stack: h.Stack, Meta: h.Meta, Changes: []Change{}}
			err := scanJSON(txn, changesPrefix(h.Revision), func(cs *[]Change) {
				r.Changes = append(r.Changes, *cs...)
			})
			if err != nil {
				return err
			}
			revs = append(revs, r)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read history of stack %q: %w", stack, err)
	}
	sort.Slice(revs, func(i, j int) bool { return revs[i].Revision < revs[j].Revision })
	return revs, nil
}

// newID returns a random 16-hex-digit id for locks and commits.
func newID() string {
	var b [8]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return hex.EncodeToString(b[:])
}

// checkName rejects names that would break key prefixes.
func checkName(what, name string) error {
	switch {
	case name == "":
		return fmt.Errorf("%s is empty", what)
	case strings.ContainsAny(name, "/\x00"):
		return fmt.Errorf("%s %q contains '/' or NUL", what, name)
	}
	return nil
}
