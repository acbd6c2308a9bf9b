package executor

import (
	"context"
	"fmt"
	"time"

	"fiat/planner"
	"fiat/providers"
	"fiat/state"
)

// rollback undoes completed ops in reverse completion order (a valid reverse
// dependency order) and completes the error with what was undone.
func (x *txn) rollback(ctx context.Context, done []*op, failed *Error) *Error {
	// Undo must run even when the apply was cancelled (Ctrl-C).
	ctx = context.WithoutCancel(ctx)
	for i := len(done) - 1; i >= 0; i-- {
		o := done[i]
		x.events.emit(Event{Kind: EventUndoStart, Address: o.step.Address, Operation: string(o.kind)})
		start := time.Now()
		if err := x.undoOne(ctx, o); err != nil {
			failed.Stuck = append(failed.Stuck, Stuck{Address: o.step.Address, Operation: string(o.kind), Err: err.Error()})
			x.events.emit(Event{Kind: EventUndoFailed, Address: o.step.Address, Operation: string(o.kind), Err: err.Error()})
			continue
		}
		failed.RolledBack = append(failed.RolledBack, Undone{Address: o.step.Address, Operation: string(o.kind)})
		x.events.emit(Event{Kind: EventUndone, Address: o.step.Address, Operation: string(o.kind), Elapsed: time.Since(start)})
	}
	// Only a fully rolled-back transaction is closed; one with stuck
	// objects stays open in the journal for `fiat recover`.
	if len(failed.Stuck) == 0 && x.txID != "" {
		if err := x.opts.Store.EndTx(ctx, x.lock, x.txID); err != nil {
			failed.Stuck = append(failed.Stuck, Stuck{Address: "(journal)", Operation: "end transaction", Err: err.Error()})
		}
	}
	return failed
}

func (x *txn) undoOne(ctx context.Context, o *op) error {
	p := x.opts.Providers[o.step.Provider]
	base := record{Op: o.kind, Address: o.step.Address, Type: o.step.Type, Provider: o.step.Provider, ID: o.id}
	if err := p.Undo(ctx, providers.UndoRequest{Address: o.step.Address, Type: o.step.Type, Undo: o.undo}); err != nil {
		base.Kind, base.Err = "undo-failed", err.Error()
		_ = x.journal(ctx, base) // best effort: the report carries it either way
		return err
	}
	base.Kind = "undone"
	return x.journal(ctx, base)
}

// commit makes the new revision visible in one store write.
func (x *txn) commit(ctx context.Context, ops []*op) (uint64, error) {
	c, err := x.commitRequest(ops)
	if err != nil {
		return 0, err
	}
	rev, err := x.opts.Store.Commit(ctx, x.lock, c)
	if err != nil {
		return 0, fmt.Errorf("commit stack %s: %w", x.plan.Stack, err)
	}
	return rev, nil
}

func (x *txn) commitRequest(ops []*op) (state.Commit, error) {
	stack := x.plan.Stack
	c := state.Commit{
		Stack: stack, TxID: x.txID, Expect: map[string]uint64{},
		Meta: state.Meta{PlanID: x.opts.PlanID, Actor: holderName(x.opts.Actor), Command: x.opts.Command, Time: time.Now().UTC()},
	}
	for addr, rev := range x.plan.Reads {
		c.Expect[stack+"/"+addr] = rev
	}
	for _, o := range ops {
		s := o.step
		switch o.kind {
		case opCreate, opUpdate:
			attrs, err := planner.EncodeValue(o.state)
			if err != nil {
				return c, fmt.Errorf("encode state of %s: %w", s.Address, err)
			}
			deps := make([]string, len(s.DependsOn))
			for i, d := range s.DependsOn {
				deps[i] = stack + "/" + d
			}
			c.Put = append(c.Put, state.Entity{
				Address: stack + "/" + s.Address, Stack: stack, Type: s.Type, Name: s.Name,
				Provider: s.Provider, ID: o.id, Attributes: attrs, Dependencies: deps,
				Status: state.StatusOK, Source: s.Source,
			})
		case opRetire:
			if s.Action == planner.Delete {
				c.Delete = append(c.Delete, stack+"/"+s.Address)
			}
		}
	}
	return c, nil
}

// purge destroys retired objects after the commit, dependents first. A
// failure leaves the infrastructure correct (the object is inert); it is
// reported, not retried in a loop.
func (x *txn) purge(ctx context.Context, done []*op) []error {
	var errs []error
	for _, o := range done {
		if o.kind != opRetire {
			continue
		}
		p := x.opts.Providers[o.step.Provider]
		start := time.Now()
		err := p.Purge(ctx, providers.PurgeRequest{Address: o.step.Address, Type: o.step.Type, ID: o.id, State: o.step.Before})
		if err != nil {
			err = fmt.Errorf("purge %s: %w", o.step.Address, err)
			errs = append(errs, err)
			x.events.emit(Event{Kind: EventPurgeFailed, Address: o.step.Address, Operation: "purge", Err: err.Error()})
			continue
		}
		x.events.emit(Event{Kind: EventPurged, Address: o.step.Address, Operation: "purge", Elapsed: time.Since(start)})
	}
	return errs
}
