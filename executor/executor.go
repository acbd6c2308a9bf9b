// Package executor runs a Plan as one transaction: lock, preflight, journaled
// steps in dependency order, commit, purge. A failure before the commit undoes
// every completed step in reverse order and returns one *Error saying what
// failed and what was undone. It decides nothing about what to change: that
// is the plan.
package executor

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"fiat/planner"
	"fiat/providers"
	"fiat/state"

	"github.com/zclconf/go-cty/cty"
)

// Store is what the executor needs of the state store.
type Store interface {
	List(ctx context.Context, stack string) ([]state.Entity, error)
	Lock(ctx context.Context, stack, holder string, ttl time.Duration) (state.Lock, error)
	Unlock(ctx context.Context, lock state.Lock) error
	BeginTx(ctx context.Context, lock state.Lock, tx state.Tx) error
	AppendJournal(ctx context.Context, lock state.Lock, txID string, records ...json.RawMessage) error
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
	Store       Store
	Providers   map[string]providers.Provider // by provider address, configured
	Eval        EvalFunc
	Events      func(Event) // progress; called from several goroutines, serialised by the executor
	Parallelism int         // default 10
	PlanID      string
	Actor       string
	Command     string // "apply", "destroy"
	LockTTL     time.Duration
}

// Result is a committed apply.
type Result struct {
	Revision uint64
	Values   map[string]cty.Value // final state of every resource in the config
	// PurgeErrors are retired objects that could not be destroyed after
	// the commit. The infrastructure is already correct; they are garbage.
	PurgeErrors []error
}

// Apply runs the plan. On error nothing is committed and every completed step
// has been undone, except those listed as stuck in the returned *Error.
func Apply(ctx context.Context, plan *planner.Plan, opts Options) (*Result, error) {
	if opts.Parallelism <= 0 {
		opts.Parallelism = 10
	}
	if opts.LockTTL == 0 {
		opts.LockTTL = time.Hour
	}
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	x := &txn{opts: opts, plan: plan, events: newEmitter(opts.Events)}
	return x.run(ctx)
}

type txn struct {
	opts   Options
	plan   *planner.Plan
	events *emitter
	lock   state.Lock
	txID   string
}

func (x *txn) run(ctx context.Context) (*Result, error) {
	holder := holderName(x.opts.Actor)
	lock, err := x.opts.Store.Lock(ctx, x.plan.Stack, holder, x.opts.LockTTL)
	if err != nil {
		return nil, &Error{Phase: "lock", Cause: fmt.Errorf("lock stack %s: %w", x.plan.Stack, err)}
	}
	x.lock = lock
	// The lock is released with a fresh context: a cancelled apply must
	// still let go of it.
	defer x.opts.Store.Unlock(context.WithoutCancel(ctx), lock)

	if err := x.checkStale(ctx); err != nil {
		return nil, &Error{Phase: "preflight", Cause: err}
	}
	if err := x.preflight(ctx); err != nil {
		return nil, err
	}
	x.txID = newID()
	tx := state.Tx{ID: x.txID, Stack: x.plan.Stack, PlanID: x.opts.PlanID, LockID: lock.ID, Started: time.Now().UTC()}
	if err := x.opts.Store.BeginTx(ctx, lock, tx); err != nil {
		return nil, &Error{Phase: "apply", Cause: fmt.Errorf("begin transaction: %w", err)}
	}

	ops := buildOps(x.plan)
	done, vals, failed := x.walk(ctx, ops)
	if failed != nil {
		return nil, x.rollback(ctx, done, failed)
	}
	rev, err := x.commit(ctx, ops)
	if err != nil {
		return nil, x.rollback(ctx, done, &Error{Phase: "commit", Cause: err})
	}
	x.events.emit(Event{Kind: EventCommitted, Revision: rev})
	res := &Result{Revision: rev, Values: vals}
	res.PurgeErrors = x.purge(context.WithoutCancel(ctx), done)
	if err := x.opts.Store.EndTx(context.WithoutCancel(ctx), lock, x.txID); err != nil {
		res.PurgeErrors = append(res.PurgeErrors, fmt.Errorf("end transaction %s: %w", x.txID, err))
	}
	return res, nil
}

func holderName(actor string) string {
	if actor != "" {
		return actor
	}
	host, _ := os.Hostname()
	return fmt.Sprintf("%s pid %d", host, os.Getpid())
}

// checkStale refuses a plan whose reads no longer hold, before touching
// anything. The commit checks again, atomically.
func (x *txn) checkStale(ctx context.Context) error {
	ents, err := x.opts.Store.List(ctx, x.plan.Stack)
	if err != nil {
		return fmt.Errorf("read stack %s: %w", x.plan.Stack, err)
	}
	now := make(map[string]uint64, len(ents))
	for _, e := range ents {
		now[strings.TrimPrefix(e.Address, x.plan.Stack+"/")] = e.Revision
	}
	stale := &state.StaleError{}
	for addr, read := range x.plan.Reads {
		if now[addr] != read {
			stale.Entities = append(stale.Entities, state.StaleEntity{Address: x.plan.Stack + "/" + addr, Read: read, Now: now[addr]})
		}
	}
	for addr, rev := range now {
		if _, ok := x.plan.Reads[addr]; !ok {
			stale.Entities = append(stale.Entities, state.StaleEntity{Address: x.plan.Stack + "/" + addr, Now: rev})
		}
	}
	if len(stale.Entities) > 0 {
		return stale
	}
	return nil
}

// preflight asks each provider to check its steps, read-only.
func (x *txn) preflight(ctx context.Context) error {
	byProvider := map[string][]providers.PreflightStep{}
	for _, s := range x.plan.Steps {
		if s.Action == planner.NoOp {
			continue
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
		resp, err := p.Preflight(ctx, providers.PreflightRequest{Steps: byProvider[name]})
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
