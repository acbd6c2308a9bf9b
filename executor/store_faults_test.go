package executor_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/state"
)

// faultyStore wraps the real store with hooks that misbehave on purpose.
type faultyStore struct {
	*state.Store
	renew   func(state.Lock) error
	lock    func() error
	commit  func(c state.Commit) (uint64, error, bool) // handled?
	openTxs func() error
}

func (f *faultyStore) Renew(ctx context.Context, l state.Lock, ttl time.Duration) (state.Lock, error) {
	if f.renew != nil {
		if err := f.renew(l); err != nil {
			return state.Lock{}, err
		}
	}
	return f.Store.Renew(ctx, l, ttl)
}

func (f *faultyStore) Lock(ctx context.Context, stack, holder string, ttl time.Duration) (state.Lock, error) {
	if f.lock != nil {
		if err := f.lock(); err != nil {
			return state.Lock{}, err
		}
	}
	return f.Store.Lock(ctx, stack, holder, ttl)
}

func (f *faultyStore) Commit(ctx context.Context, l state.Lock, c state.Commit) (uint64, error) {
	if f.commit != nil {
		if rev, err, handled := f.commit(c); handled {
			return rev, err
		}
	}
	return f.Store.Commit(ctx, l, c)
}

func (f *faultyStore) OpenTxs(ctx context.Context, stack string) ([]state.Tx, error) {
	if f.openTxs != nil {
		if err := f.openTxs(); err != nil {
			return nil, err
		}
	}
	return f.Store.OpenTxs(ctx, stack)
}

func (e *env) applyWith(st executor.Store, p *planner.Plan, cfg *hcl.Config) (*executor.Result, error) {
	return executor.Apply(context.Background(), p, executor.Options{
		Store: st, Providers: map[string]providers.Provider{"fake": e.fake}, PlanID: "p", Parallelism: 1,
		Eval: executor.NewEvaluator(cfg, p, e.schemas()),
	})
}

func failB(op, addr string) error {
	if op == "create" && addr == "fake_thing.r02" {
		return errors.New("refused")
	}
	return nil
}

// A lease that lapsed without anyone taking the stack is taken again and
// the rollback runs as usual.
func TestLapsedLeaseIsReacquiredForRollback(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(3, false))
	e.fake.Fail = failB
	fs := &faultyStore{Store: e.store, renew: func(state.Lock) error { return state.ErrFenced }}
	_, err := e.applyWith(fs, p, cfg)
	var aerr *executor.Error
	if !errors.As(err, &aerr) || len(aerr.Left) != 0 || len(aerr.RolledBack) == 0 || len(aerr.Notes) != 0 {
		t.Fatalf("want a normal rollback, got %v\nleft=%v rolled=%v notes=%v", err, aerr.Left, aerr.RolledBack, aerr.Notes)
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("objects left: %v", e.fake.Snapshot())
	}
}

// A run whose stack was taken over by another run leaves its completed
// operations to that run (the journal has them) instead of undoing them.
func TestTakenOverRunLeavesRollbackToNewHolder(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(3, false))
	e.fake.Fail = failB
	taken := false
	fs := &faultyStore{Store: e.store,
		renew: func(state.Lock) error { return state.ErrFenced },
		lock: func() error {
			if taken {
				return &state.LockedError{Lock: state.Lock{ID: "other", Stack: stack, Holder: "another run"}}
			}
			taken = true // the first Lock is this run's own
			return nil
		}}
	_, err := e.applyWith(fs, p, cfg)
	var aerr *executor.Error
	if !errors.As(err, &aerr) || len(aerr.Left) == 0 || len(aerr.RolledBack) != 0 {
		t.Fatalf("want the completed operations left for recovery, got %v", err)
	}
	left := len(aerr.Left)
	if !strings.Contains(err.Error(), "NOT rolled back by this run") || strings.Contains(err.Error(), "Nothing had been changed") {
		t.Fatalf("error misreports what happened:\n%s", err)
	}
	if len(e.fake.Objects) != left {
		t.Fatalf("this run must not undo: %v", e.fake.Snapshot())
	}
	// The run that holds the stack now recovers the journal.
	recs, _, err := executor.Recover(context.Background(), stack, executor.RecoverOptions{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}})
	if err != nil || len(recs) != 1 || len(recs[0].RolledBack) != left {
		t.Fatalf("recover: %v %+v", err, recs)
	}
	if len(e.fake.Objects) != 0 {
		t.Fatalf("objects left after recover: %v", e.fake.Snapshot())
	}
}

// A commit that took effect although the store call returned an error is
// recognised as committed, not rolled back.
func TestCommitErrorAfterCommitIsNotRolledBack(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(2, false))
	fs := &faultyStore{Store: e.store}
	fs.commit = func(c state.Commit) (uint64, error, bool) {
		if c.TxID == "" {
			return 0, nil, false
		}
		if _, err := e.store.Commit(context.Background(), lockOf(t, e, c.Stack), c); err != nil {
			t.Fatalf("real commit: %v", err)
		}
		return 0, errors.New("leadership lost while waiting"), true
	}
	res, err := e.applyWith(fs, p, cfg)
	if err != nil || res.Revision != 1 {
		t.Fatalf("want the apply recognised as committed at revision 1, got %v %+v", err, res)
	}
	if len(e.fake.Objects) != 2 {
		t.Fatalf("committed objects were undone: %v", e.fake.Snapshot())
	}
}

// If the outcome of a failed commit cannot be read, nothing is rolled back
// and the error says to run recover, which then settles it.
func TestUnknownCommitOutcomeIsLeftToRecover(t *testing.T) {
	e := newEnv(t)
	p, cfg := e.plan(config(2, false))
	committing := false
	fs := &faultyStore{Store: e.store,
		commit: func(c state.Commit) (uint64, error, bool) {
			committing = committing || c.TxID != ""
			return 0, errors.New("connection to the leader lost"), c.TxID != ""
		},
		openTxs: func() error {
			if committing {
				return errors.New("no leader")
			}
			return nil
		}}
	_, err := e.applyWith(fs, p, cfg)
	if err == nil || !strings.Contains(err.Error(), "fiat recover") {
		t.Fatalf("want an unknown-commit error pointing at recover, got %v", err)
	}
	if len(e.fake.Objects) != 2 {
		t.Fatalf("objects were undone although the commit may have happened: %v", e.fake.Snapshot())
	}
	recs, _, err := executor.Recover(context.Background(), stack, executor.RecoverOptions{
		Store: e.store, Providers: map[string]providers.Provider{"fake": e.fake}})
	if err != nil || len(recs) != 1 || recs[0].Committed || len(recs[0].RolledBack) != 2 {
		t.Fatalf("recover: %v %+v", err, recs)
	}
}

// lockOf returns the stack's current lock (held by the apply under test).
func lockOf(t *testing.T, e *env, stack string) state.Lock {
	locks, err := e.store.Locks(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range locks {
		if l.Stack == stack {
			return l
		}
	}
	t.Fatal("no lock held")
	return state.Lock{}
}
