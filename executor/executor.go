// Package executor runs a Plan as one transaction: lock, preflight, journaled
// steps in dependency order, commit, purge. A failure before the commit undoes
// every completed step in reverse order and returns one *Error saying what
// failed and what was undone. A transaction left open by a crashed process is
// rolled back (or its purge finished) by Recover. The executor decides nothing
// about what to change: that is the plan.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"fiat/planner"
	"fiat/providers"
	"fiat/state"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

// Store is what the executor needs of the state store.
type Store interface {
	Get(ctx context.Context, address string) (state.Entity, error)
	List(ctx context.Context, stack string) ([]state.Entity, error)
	Lock(ctx context.Context, stack, holder string, ttl time.Duration) (state.Lock, error)
	Renew(ctx context.Context, lock state.Lock, ttl time.Duration) (state.Lock, error)
	Unlock(ctx context.Context, lock state.Lock) error
	ForceUnlock(ctx context.Context, lockID string) (state.Lock, error)
	BeginTx(ctx context.Context, lock state.Lock, tx state.Tx) error
	AppendJournal(ctx context.Context, lock state.Lock, txID string, records ...json.RawMessage) error
	Journal(ctx context.Context, txID string) ([]json.RawMessage, error)
	OpenTxs(ctx context.Context, stack string) ([]state.Tx, error)
	Commit(ctx context.Context, lock state.Lock, c state.Commit) (uint64, error)
	EndTx(ctx context.Context, lock state.Lock, txID string) error
}

// EvalFunc evaluates a resource's final config once the values of its
// dependencies are known: a full object of its schema's type with computed
// attributes null. Apply of a saved plan re-evaluates its snapshot this way;
// it does not re-plan.
type EvalFunc func(addr string, vals map[string]cty.Value) (cty.Value, error)

// Options configures one apply.
type Options struct {
	Store Store
	// Providers by provider address, configured. Recovery of a crashed
	// transaction may need providers the plan itself does not use.
	Providers map[string]providers.Provider
	Eval      EvalFunc
	// EvalProvisioner evaluates provisioner i of a created instance, with
	// self its state, into what the provisioner provider runs (needed
	// when a step has provisioners).
	EvalProvisioner func(addr string, i int, self cty.Value, vals map[string]cty.Value) (cty.Value, error)
	Events          func(Event) // progress; calls are serialised
	Parallelism     int         // default 10
	PlanID          string
	Actor           string // recorded in history; default Holder()
	Command         string // "apply", "destroy"
	LockTTL         time.Duration
	// Holder names who holds the stack lock; default Holder(). A server
	// names its node, so a new leader knows the lock's run died with it.
	Holder string
	// Progress is how often a slow operation reports "still running"
	// (default 10s).
	Progress time.Duration
	// CheckSpace, if set, is asked before every operation and before the
	// commit (with the bytes the commit writes): an error (the store's disk
	// is nearly full) stops the apply there and rolls it back while there
	// is still room to journal the rollback, rather than let the store run
	// out of space mid-write.
	CheckSpace func(writes uint64) error
	// DurableLocal makes intents of local providers' calls durable before
	// the call too, as for any other provider (for measuring the journal).
	DurableLocal bool
}

// Result is a committed apply.
type Result struct {
	Revision uint64
	Values   map[string]cty.Value // final state of every resource in the config
	// Recovered lists transactions of crashed runs that were settled first.
	Recovered []*Recovery
	// PurgeErrors are retired objects that could not be destroyed after
	// the commit. The infrastructure is already correct; they stay recorded
	// as pending cleanup, finished by the next apply or `fiat recover`.
	PurgeErrors []error
	// JournalWrites and JournalRecords count store writes of the journal.
	JournalWrites, JournalRecords int64
}

// Apply runs the plan. On error nothing is committed and every completed step
// has been undone, except those the returned *Error lists as stuck, which are
// marked needs-attention in the store.
func Apply(ctx context.Context, plan *planner.Plan, opts Options) (*Result, error) {
	opts.defaults()
	x := &txn{opts: opts, plan: plan, events: newEmitter(opts.Events)}
	return x.run(ctx)
}

func (o *Options) defaults() {
	if o.Parallelism <= 0 {
		o.Parallelism = 10
	}
	if o.Events == nil {
		o.Events = func(Event) {}
	}
	if o.Holder == "" {
		o.Holder = Holder()
	}
	if o.Actor == "" {
		o.Actor = o.Holder
	}
	if o.Progress <= 0 {
		o.Progress = 10 * time.Second
	}
}

type txn struct {
	localMu sync.Mutex
	localOf map[string]bool // provider address → Schema().Local
	opts    Options
	plan    *planner.Plan
	events  *emitter
	lease   *lease
	txID    string
	journal *journal
	// storedDeps are the dependencies the store recorded, by address:
	// what an entity used before this plan, for retirement order.
	storedDeps map[string][]string
}

func (x *txn) lock() state.Lock { return x.lease.current() }

func (x *txn) run(parent context.Context) (*Result, error) {
	ls, err := acquire(parent, x.opts.Store, x.plan.Stack, x.opts.Holder, x.opts.LockTTL)
	if err != nil {
		return nil, &Error{Phase: "lock", Cause: fmt.Errorf("lock stack %s: %w", x.plan.Stack, err)}
	}
	x.lease = ls
	defer func() {
		if rerr := ls.release(parent); rerr != nil {
			x.events.emit(Event{Kind: EventWarning, Err: rerr.Error()})
		}
	}()
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	ls.onLost(cancel)

	res := &Result{}
	// A crashed run's transaction is settled before anything else: its
	// objects may be exactly the ones this plan is about to touch.
	if res.Recovered, err = recoverOpen(ctx, x.opts.Store, ls, x.plan.Stack, x.opts.Providers, x.events); err != nil {
		return nil, &Error{Phase: "recover", Cause: err, Recovered: res.Recovered}
	}
	if err := x.checkStale(ctx); err != nil {
		return nil, err
	}
	if err := x.preflight(ctx); err != nil {
		return nil, err
	}
	x.txID = newID()
	tx := state.Tx{ID: x.txID, Stack: x.plan.Stack, PlanID: x.opts.PlanID, Started: time.Now().UTC()}
	if err := x.opts.Store.BeginTx(ctx, x.lock(), tx); err != nil {
		return nil, &Error{Phase: "apply", Cause: fmt.Errorf("begin transaction: %w", err)}
	}
	failpoint("after-begin")
	x.journal = newJournal(x.opts.Store, x.lock, x.txID)
	defer func() { res.JournalWrites, res.JournalRecords = x.journal.writes.Load(), x.journal.recs.Load() }()

	ops, warn := orderOps(x.plan, x.storedDeps)
	if warn != "" {
		x.events.emit(Event{Kind: EventWarning, Err: warn})
	}
	done, vals, failed := x.walk(ctx, ops)
	if failed != nil {
		return nil, x.rollback(ctx, done, failed)
	}
	if err := x.journal.flush(ctx); err != nil {
		return nil, x.rollback(ctx, done, &Error{Phase: "commit", Cause: err})
	}
	creq, err := x.commitRequest(ops)
	if err != nil {
		return nil, x.rollback(ctx, done, &Error{Phase: "commit", Cause: err})
	}
	if x.opts.CheckSpace != nil {
		if err := x.opts.CheckSpace(commitBytes(creq)); err != nil {
			return nil, x.rollback(ctx, done, &Error{Phase: "commit", Cause: fmt.Errorf("not committed: %w", err)})
		}
	}
	failpoint("before-commit")
	rev, err := x.commit(ctx, creq)
	if err != nil {
		committed, committedRev, known := x.commitOutcome(ctx, err)
		switch {
		case !known:
			// Rolling back a commit that did happen would leave the store
			// describing objects that no longer exist: leave it to recovery,
			// which reads the transaction's state first.
			return nil, &Error{Phase: "commit", Cause: fmt.Errorf("%w; whether the commit took effect is unknown, so nothing was rolled back: run `fiat recover`, which settles transaction %s either way", err, x.txID)}
		case !committed:
			return nil, x.rollback(ctx, done, &Error{Phase: "commit", Cause: err})
		}
		rev = committedRev
	}
	failpoint("after-commit")
	x.events.emit(Event{Kind: EventCommitted, Revision: rev})
	res.Revision, res.Values = rev, vals
	// Past the point of no return: cleanup runs even if ctx ended.
	cctx := context.WithoutCancel(ctx)
	res.PurgeErrors = purgeAll(cctx, x.opts.Providers, retiredOf(done), x.journal, x.events)
	if len(res.PurgeErrors) == 0 {
		failpoint("before-end")
		if err := x.opts.Store.EndTx(cctx, x.lock(), x.txID); err != nil {
			res.PurgeErrors = append(res.PurgeErrors, fmt.Errorf("end transaction %s: %w", x.txID, err))
		}
	} else if err := x.journal.flush(cctx); err != nil {
		res.PurgeErrors = append(res.PurgeErrors, err)
	}
	return res, nil
}

// commitOutcome decides whether a commit that returned an error took effect:
// a refusal (stale plan, fenced lock) did not; otherwise the transaction's
// state in the store says. known is false if the store cannot be read.
func (x *txn) commitOutcome(ctx context.Context, commitErr error) (committed bool, rev uint64, known bool) {
	var stale *state.StaleError
	if errors.As(commitErr, &stale) || errors.Is(commitErr, state.ErrFenced) {
		return false, 0, true
	}
	txs, err := x.opts.Store.OpenTxs(context.WithoutCancel(ctx), x.plan.Stack)
	if err != nil {
		return false, 0, false
	}
	for _, tx := range txs {
		if tx.ID == x.txID {
			return tx.State == state.TxCommitted, tx.Revision, true
		}
	}
	return false, 0, false
}

// checkStale refuses a plan whose reads no longer hold, and one that would
// touch an entity needing attention, before touching anything. The commit
// checks staleness again, atomically.
func (x *txn) checkStale(ctx context.Context) error {
	ents, err := x.opts.Store.List(ctx, x.plan.Stack)
	if err != nil {
		return &Error{Phase: "preflight", Cause: fmt.Errorf("read stack %s: %w", x.plan.Stack, err)}
	}
	prefix := x.plan.Stack + "/"
	now := make(map[string]state.Entity, len(ents))
	x.storedDeps = make(map[string][]string, len(ents))
	for _, e := range ents {
		addr := strings.TrimPrefix(e.Address, prefix)
		now[addr] = e
		for _, d := range e.Dependencies {
			x.storedDeps[addr] = append(x.storedDeps[addr], strings.TrimPrefix(d, prefix))
		}
	}
	// Reads is exactly what the plan relied on: entities it did not read
	// (other targets, created since) do not make it stale.
	stale := &state.StaleError{}
	for addr, read := range x.plan.Reads {
		if now[addr].Revision != read {
			stale.Entities = append(stale.Entities, state.StaleEntity{Address: prefix + addr, Read: read, Now: now[addr].Revision})
		}
	}
	if len(stale.Entities) > 0 {
		return &Error{Phase: "preflight", Cause: stale}
	}
	perr := &Error{Phase: "preflight"}
	for _, s := range x.plan.Steps {
		if e, ok := now[s.Address]; ok && s.Action != planner.NoOp && s.Action != planner.Read && e.Status == state.StatusNeedsAttention {
			perr.Problems = append(perr.Problems, Problem{Address: s.Address, Source: s.Source,
				Message: fmt.Sprintf("needs attention: %s; resolve it first with `fiat recover`, or stop managing it with `fiat state forget %s`", e.Reason, s.Address)})
		}
	}
	if len(perr.Problems) > 0 {
		perr.Cause = errors.New(perr.Problems[0].Message)
		return perr
	}
	return nil
}

// checkSizes refuses, before anything is created, a resource whose
// attributes could not be stored: one entity must fit one raft entry.
func (x *txn) checkSizes() error {
	perr := &Error{Phase: "preflight"}
	for _, s := range x.plan.Steps {
		if s.Action != planner.Create && s.Action != planner.Update && s.Action != planner.Replace {
			continue
		}
		if value.SizeAtLeast(s.After) < state.MaxEntityBytes/2 {
			continue // far below: no need to encode it
		}
		n, err := value.EncodedSize(s.After)
		if err != nil {
			return &Error{Phase: "preflight", Address: s.Address, Source: s.Source, Cause: fmt.Errorf("measure %s: %w", s.Address, err)}
		}
		if n > state.MaxEntityBytes {
			perr.Problems = append(perr.Problems, Problem{Address: s.Address, Source: s.Source,
				Message: fmt.Sprintf("its attributes take %d KB stored; fiat stores at most %d KB per resource (README: Limits). Keep large content in files (e.g. a volume's source) rather than in attributes", n>>10, state.MaxEntityBytes>>10)})
		}
	}
	if len(perr.Problems) > 0 {
		perr.Cause = errors.New(perr.Problems[0].Message)
		return perr
	}
	return nil
}

// preflight asks each provider to check its steps, read-only.
func (x *txn) preflight(ctx context.Context) error {
	if err := x.checkSizes(); err != nil {
		return err
	}
	byProvider := map[string][]providers.PreflightStep{}
	for _, s := range x.plan.Steps {
		if s.Action == planner.NoOp || s.Action == planner.Read || s.Action.StoreOnly() {
			continue // nothing for a provider to do
		}
		ps := providers.PreflightStep{Address: s.Address, Type: s.Type, ID: s.ID, Prior: s.Before, Config: s.After}
		switch s.Action {
		case planner.Create:
			ps.Action = providers.ActionCreate
		case planner.Update:
			ps.Action = providers.ActionUpdate
		case planner.Delete:
			ps.Action = providers.ActionDelete
		case planner.Replace:
			// The provider sees both halves: the old object goes, the new comes.
			del := ps
			del.Action, del.Config = providers.ActionDelete, cty.NilVal
			byProvider[s.Provider] = append(byProvider[s.Provider], del)
			ps.Action, ps.ID, ps.Prior = providers.ActionCreate, "", cty.NilVal
		}
		byProvider[s.Provider] = append(byProvider[s.Provider], ps)
	}
	perr := &Error{Phase: "preflight"}
	for _, name := range sortedKeys(byProvider) {
		p, ok := x.opts.Providers[name]
		if !ok {
			return &Error{Phase: "preflight", Cause: fmt.Errorf("provider %s is not configured", name)}
		}
		var resp providers.PreflightResponse
		err := providers.Call(name, "preflight", false, func() (err error) {
			resp, err = p.Preflight(ctx, providers.PreflightRequest{Steps: byProvider[name]})
			return err
		})
		if err != nil {
			return &Error{Phase: "preflight", Cause: fmt.Errorf("preflight provider %s: %w", name, err)}
		}
		for _, pr := range resp.Problems {
			src := ""
			if s := x.plan.Step(pr.Address); s != nil {
				src = s.Source
			}
			perr.Problems = append(perr.Problems, Problem{Address: pr.Address, Source: src, Message: pr.Message})
		}
	}
	if len(perr.Problems) > 0 {
		perr.Cause = errors.New(perr.Problems[0].Message)
		return perr
	}
	return nil
}

func newID() string {
	b := make([]byte, 8)
	rand.Read(b)
	return hex.EncodeToString(b)
}
