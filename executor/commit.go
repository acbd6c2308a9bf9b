package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"fiat/planner"
	"fiat/providers"
	"fiat/state"
	"fiat/value"
)

// undoItem is one operation that took effect and may have to be reversed:
// from a live apply's ops, or from a crashed run's journal.
type undoItem struct {
	Address, Type, Provider, Source string
	Op                              opKind
	ID                              string
	Undo                            json.RawMessage
	State                           json.RawMessage // create/update: the object's new state; retire: its prior state
}

func itemOf(o *op) undoItem {
	it := undoItem{Address: o.step.Address, Type: o.step.Type, Provider: o.step.Provider, Source: o.step.Source,
		Op: o.kind, ID: o.id, Undo: o.undo, State: o.stored}
	if o.kind == opProvision {
		it.Type, it.Provider = o.step.Provisioners[o.prov].Type, providers.ProvisionerAddress
	}
	return it
}

// rollback undoes completed ops in reverse completion order (a valid reverse
// dependency order), marks what could not be undone as needs-attention, and
// completes the error with what was done.
func (x *txn) rollback(ctx context.Context, done []*op, failed *Error) *Error {
	// Undo must run even when the apply was cancelled (Ctrl-C).
	ctx = context.WithoutCancel(ctx)
	if x.lease != nil && len(done) > 0 {
		err := x.lease.check(ctx)
		if errors.Is(err, state.ErrNotLeader) {
			// This node lost raft leadership: it cannot journal an undo,
			// and the new leader rolls the open transaction back from the
			// replicated journal. Undoing here too could race it.
			for _, o := range done {
				failed.Left = append(failed.Left, Undone{Address: o.step.Address, Operation: o.name()})
			}
			failed.Notes = append(failed.Notes, fmt.Sprintf("this server lost raft leadership (%v); the new leader rolls transaction %s back", err, x.txID))
			return failed
		}
		if errors.Is(err, state.ErrFenced) {
			// The lease lapsed (this run stalled past it). If nobody took
			// the stack meanwhile, take it again and roll back as usual.
			if rerr := x.lease.reacquire(ctx); rerr != nil {
				// Another run holds the stack and owns this journal now: it
				// rolls these operations back. Undoing them here could
				// destroy what it has made since.
				for _, o := range done {
					failed.Left = append(failed.Left, Undone{Address: o.step.Address, Operation: o.name()})
				}
				failed.Notes = append(failed.Notes, fmt.Sprintf("this run lost the stack lock (%v) and another run holds it (%v)", err, rerr))
				return failed
			}
		}
	}
	items := make([]undoItem, len(done))
	for i, o := range done {
		items[i] = itemOf(o)
	}
	failed.RolledBack, failed.Stuck = undoAll(ctx, x.opts.Providers, items, x.journal, x.events)
	if x.txID == "" {
		return failed
	}
	if err := x.journal.flush(ctx); err != nil {
		failed.Notes = append(failed.Notes, fmt.Sprintf("the rollback could not be journaled (%v); the transaction stays open and the next `fiat recover` settles it", err))
		return failed
	}
	if err := settleStuck(ctx, x.opts.Store, x.lock(), x.plan.Stack, x.txID, failed.Stuck, items); err != nil {
		failed.Notes = append(failed.Notes, fmt.Sprintf("could not record the outcome (%v); the transaction stays open and the next `fiat recover` settles it", err))
	}
	return failed
}

// undoAll reverses items, last first, journaling each outcome.
func undoAll(ctx context.Context, provs map[string]providers.Provider, items []undoItem, j *journal, ev *emitter) (undone []Undone, stuck []Stuck) {
	for i := len(items) - 1; i >= 0; i-- {
		it := items[i]
		ev.emit(Event{Kind: EventUndoStart, Address: it.Address, Operation: string(it.Op)})
		start := time.Now()
		err := undoOne(ctx, provs, it)
		failpoint("after-undo")
		rec := record{Kind: recUndone, Op: it.Op, Address: it.Address, ID: it.ID}
		if err != nil {
			rec.Kind, rec.Err = recUndoFailed, err.Error()
			stuck = append(stuck, Stuck{Address: it.Address, Source: it.Source, Operation: string(it.Op), Err: err.Error()})
			ev.emit(Event{Kind: EventUndoFailed, Address: it.Address, Operation: string(it.Op), Err: err.Error()})
		} else {
			undone = append(undone, Undone{Address: it.Address, Operation: string(it.Op)})
			ev.emit(Event{Kind: EventUndone, Address: it.Address, Operation: string(it.Op), Elapsed: time.Since(start)})
		}
		if j != nil {
			// Durable before the next undo: a crash mid-rollback must
			// not run an undo twice.
			j.write(ctx, rec)
		}
	}
	return undone, stuck
}

func undoOne(ctx context.Context, provs map[string]providers.Provider, it undoItem) error {
	if len(it.Undo) == 0 {
		return nil // the call took no effect that needs reversing
	}
	p, ok := provs[it.Provider]
	if !ok {
		return fmt.Errorf("provider %s is not configured (its provider block is needed to roll back)", it.Provider)
	}
	return providers.Call(it.Provider, "undo", false, func() error {
		_, err := p.Undo(ctx, providers.UndoRequest{Address: it.Address, Type: it.Type, Undo: it.Undo})
		return err
	})
}

// settleStuck ends a rolled-back transaction. Objects whose undo failed are
// first marked needs-attention in the store, each with the undos to retry,
// so the journal is no longer needed and unrelated plans can run.
func settleStuck(ctx context.Context, store Store, lock state.Lock, stack, txID string, stuck []Stuck, items []undoItem) error {
	if len(stuck) > 0 {
		byOp := map[string]undoItem{}
		for _, it := range items {
			byOp[it.Address+" "+string(it.Op)] = it
		}
		c := state.Commit{Stack: stack, Expect: map[string]uint64{},
			Meta: state.Meta{Actor: Holder(), Command: "rollback", Time: time.Now().UTC()}}
		marked := map[string]int{} // address → index in c.Put
		for _, s := range stuck {
			it, ok := byOp[s.Address+" "+s.Operation]
			if !ok {
				continue
			}
			undo := state.PendingUndo{Operation: string(it.Op), Error: s.Err, Undo: it.Undo}
			if k, ok := marked[it.Address]; ok {
				// Both halves of a replacement: one entity, two undos.
				e := &c.Put[k]
				e.Attention.Undos = append(e.Attention.Undos, undo)
				e.Reason += "; rollback of " + string(it.Op) + " failed: " + s.Err
				continue
			}
			addr := stack + "/" + it.Address
			e, err := store.Get(ctx, addr)
			untracked := false
			switch {
			case err == nil:
				c.Expect[addr] = e.Revision
			case errors.Is(err, state.ErrNotFound) && it.Op == opCreate:
				// A created object the store never knew: record it so it
				// is not lost track of.
				untracked = true
				c.Expect[addr] = 0
				e = state.Entity{Address: addr, Stack: stack, Type: it.Type, Name: strings.TrimPrefix(it.Address, it.Type+"."),
					Provider: it.Provider, ID: it.ID, Attributes: it.State, Source: it.Source}
			default:
				return fmt.Errorf("read %s: %w", addr, err)
			}
			e.Status = state.StatusNeedsAttention
			e.Reason = fmt.Sprintf("rollback of %s failed: %s", it.Op, s.Err)
			e.Attention = &state.Attention{TxID: txID, Time: time.Now().UTC(), Undos: []state.PendingUndo{undo}, Untracked: untracked}
			marked[it.Address] = len(c.Put)
			c.Put = append(c.Put, e)
		}
		if len(c.Put) > 0 {
			if _, err := store.Commit(ctx, lock, c); err != nil {
				return fmt.Errorf("mark needs-attention: %w", err)
			}
		}
	}
	if err := store.EndTx(ctx, lock, txID); err != nil {
		return fmt.Errorf("end transaction %s: %w", txID, err)
	}
	return nil
}

// commit makes the new revision visible in one store write.
func (x *txn) commit(ctx context.Context, c state.Commit) (uint64, error) {
	rev, err := x.opts.Store.Commit(ctx, x.lock(), c)
	if err != nil {
		return 0, fmt.Errorf("commit stack %s: %w", x.plan.Stack, err)
	}
	return rev, nil
}

// commitBytes is about what a commit writes: its entities' attributes.
func commitBytes(c state.Commit) uint64 {
	var n uint64
	for _, e := range c.Put {
		n += uint64(len(e.Attributes) + len(e.Address) + 256)
	}
	return n
}

func (x *txn) commitRequest(ops []*op) (state.Commit, error) {
	stack := x.plan.Stack
	c := state.Commit{
		Stack: stack, TxID: x.txID, Expect: map[string]uint64{},
		Meta: state.Meta{PlanID: x.opts.PlanID, Actor: x.opts.Actor, Command: x.opts.Command, Time: time.Now().UTC()},
	}
	for addr, rev := range x.plan.Reads {
		c.Expect[stack+"/"+addr] = rev
	}
	// Imports, moves, adopted drift and forgotten entities change only the
	// store: they ride in the same commit as everything else.
	put, del, err := x.plan.StoreChanges()
	if err != nil {
		return c, err
	}
	c.Put, c.Delete = append(c.Put, put...), append(c.Delete, del...)
	for _, o := range ops {
		s := o.step
		switch o.kind {
		case opCreate, opUpdate:
			attrs, err := value.Encode(o.state)
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
				Status: state.StatusOK, Source: s.Source, Sensitive: s.Sensitive,
			})
		case opRetire:
			if s.Action == planner.Delete {
				c.Delete = append(c.Delete, stack+"/"+s.Address)
			}
		}
	}
	return c, nil
}

func retiredOf(done []*op) []undoItem {
	var out []undoItem
	for _, o := range done {
		if o.kind == opRetire {
			out = append(out, itemOf(o))
		}
	}
	return out
}

// purgeAll destroys retired objects after the commit, dependents first. A
// failure leaves the infrastructure correct (the object is inert); it is
// reported and stays pending in the journal, never retried in a loop.
func purgeAll(ctx context.Context, provs map[string]providers.Provider, retired []undoItem, j *journal, ev *emitter) []error {
	var errs []error
	for _, it := range retired {
		start := time.Now()
		err := purgeOne(ctx, provs, it)
		failpoint("after-purge")
		if err != nil {
			err = fmt.Errorf("purge %s: %w", it.Address, err)
			errs = append(errs, err)
			ev.emit(Event{Kind: EventPurgeFailed, Address: it.Address, Operation: "purge", Err: err.Error()})
			continue
		}
		j.post(record{Kind: recPurged, Address: it.Address, Op: opRetire, ID: it.ID})
		ev.emit(Event{Kind: EventPurged, Address: it.Address, Operation: "purge", Elapsed: time.Since(start)})
	}
	return errs
}

func purgeOne(ctx context.Context, provs map[string]providers.Provider, it undoItem) error {
	p, ok := provs[it.Provider]
	if !ok {
		return fmt.Errorf("provider %s is not configured", it.Provider)
	}
	st, err := value.Decode(it.State)
	if err != nil {
		return err
	}
	return providers.Call(it.Provider, "purge", false, func() error {
		_, err := p.Purge(ctx, providers.PurgeRequest{Address: it.Address, Type: it.Type, ID: it.ID, State: st, Undo: it.Undo})
		return err
	})
}
