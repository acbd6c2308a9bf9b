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

// retryAttention retries the failed undo of each needs-attention entity and
// commits the outcome: an undone create removes the entity, an undone update
// or retire returns it to ok.
func retryAttention(ctx context.Context, store Store, lock state.Lock, stack string, provs map[string]providers.Provider, ev *emitter) (*AttentionReport, error) {
	ents, err := store.List(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read stack %s: %w", stack, err)
	}
	rep := &AttentionReport{}
	c := state.Commit{Stack: stack, Expect: map[string]uint64{},
		Meta: state.Meta{Actor: Holder(), Command: "recover", Time: time.Now().UTC()}}
	prefix := stack + "/"
	for _, e := range ents {
		if e.Status != state.StatusNeedsAttention || e.Attention == nil {
			continue
		}
		addr := strings.TrimPrefix(e.Address, prefix)
		it := undoItem{Address: addr, Type: e.Type, Provider: e.Provider, Op: opKind(e.Attention.Operation), ID: e.ID, Undo: e.Attention.Undo}
		ev.emit(Event{Kind: EventUndoStart, Address: addr, Operation: string(it.Op)})
		if err := undoOne(ctx, provs, it); err != nil {
			rep.Stuck = append(rep.Stuck, Stuck{Address: addr, Operation: string(it.Op), Err: err.Error()})
			ev.emit(Event{Kind: EventUndoFailed, Address: addr, Operation: string(it.Op), Err: err.Error()})
			continue
		}
		ev.emit(Event{Kind: EventUndone, Address: addr, Operation: string(it.Op)})
		rep.Resolved = append(rep.Resolved, addr)
		c.Expect[e.Address] = e.Revision
		if e.Attention.Untracked {
			c.Delete = append(c.Delete, e.Address)
			continue
		}
		e.Status, e.Reason, e.Attention = state.StatusOK, "", nil
		c.Put = append(c.Put, e)
	}
	if len(c.Put)+len(c.Delete) > 0 {
		if _, err := store.Commit(ctx, lock, c); err != nil {
			return rep, fmt.Errorf("record recovery: %w", err)
		}
	}
	return rep, nil
}
