package executor

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fiat/providers"
	"fiat/state"
)

// AttentionReport says what `fiat recover` did about entities that needed
// attention.
type AttentionReport struct {
	Resolved []string `json:"resolved,omitempty"`
	Stuck    []Stuck  `json:"needs_attention,omitempty"`
}

func (r *AttentionReport) String() string {
	b := &strings.Builder{}
	for _, a := range r.Resolved {
		fmt.Fprintf(b, "%s: rollback finished; it no longer needs attention\n", a)
	}
	for _, s := range r.Stuck {
		fmt.Fprintf(b, "%s: undo of %s failed again: %s\n  Fix the cause and run `fiat recover` again, or stop managing it with `fiat state forget %s` (the object is left as it is).\n",
			s.Address, s.Operation, s.Err, s.Address)
	}
	return b.String()
}

// retryAttention retries the failed undos of each needs-attention entity,
// committing each entity's outcome as soon as it is known: an undone create
// of an untracked object removes the entity; otherwise it returns to ok. An
// entity whose undos partly succeed keeps only the ones still failing.
func retryAttention(ctx context.Context, store Store, lock state.Lock, stack string, provs map[string]providers.Provider, ev *emitter) (*AttentionReport, error) {
	ents, err := store.List(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read stack %s: %w", stack, err)
	}
	rep := &AttentionReport{}
	prefix := stack + "/"
	for _, e := range ents {
		if e.Status != state.StatusNeedsAttention || e.Attention == nil {
			continue
		}
		addr := strings.TrimPrefix(e.Address, prefix)
		var left []state.PendingUndo
		for _, u := range e.Attention.Undos {
			it := undoItem{Address: addr, Type: e.Type, Provider: e.Provider, Op: opKind(u.Operation), ID: e.ID, Undo: u.Undo}
			if it.Op == opProvision {
				it.Provider = providers.ProvisionerAddress // a provisioner's undo, not the object's
			}
			ev.emit(Event{Kind: EventUndoStart, Address: addr, Operation: u.Operation})
			if err := undoOne(ctx, provs, it); err != nil {
				u.Error = err.Error()
				left = append(left, u)
				rep.Stuck = append(rep.Stuck, Stuck{Address: addr, Operation: u.Operation, Err: err.Error(), Source: e.Source})
				ev.emit(Event{Kind: EventUndoFailed, Address: addr, Operation: u.Operation, Err: err.Error()})
				continue
			}
			ev.emit(Event{Kind: EventUndone, Address: addr, Operation: u.Operation})
		}
		if len(left) == len(e.Attention.Undos) {
			continue // nothing changed
		}
		c := state.Commit{Stack: stack, Expect: map[string]uint64{e.Address: e.Revision},
			Meta: state.Meta{Actor: Holder(), Command: "recover", Time: time.Now().UTC()}}
		switch {
		case len(left) > 0:
			e.Attention.Undos = left
			c.Put = []state.Entity{e}
		case e.Attention.Untracked:
			c.Delete = []string{e.Address}
			rep.Resolved = append(rep.Resolved, addr)
		default:
			e.Status, e.Reason, e.Attention = state.StatusOK, "", nil
			c.Put = []state.Entity{e}
			rep.Resolved = append(rep.Resolved, addr)
		}
		if _, err := store.Commit(ctx, lock, c); err != nil {
			return rep, fmt.Errorf("record recovery of %s: %w", addr, err)
		}
	}
	return rep, nil
}
