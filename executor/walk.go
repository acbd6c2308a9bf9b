package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fiat/planner"
	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// record is one journal entry. The journal lives in the replicated store, so
// another process can roll back a transaction this one left open.
type record struct {
	Kind     string          `json:"k"` // "intent", "done", "undone", "undo-failed"
	Op       opKind          `json:"op"`
	Address  string          `json:"a"`
	Type     string          `json:"t"`
	Provider string          `json:"p"`
	ID       string          `json:"id,omitempty"`
	Undo     json.RawMessage `json:"u,omitempty"`
	Err      string          `json:"e,omitempty"`
}

func (x *txn) journal(ctx context.Context, recs ...record) error {
	raw := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return fmt.Errorf("encode journal record: %w", err)
		}
		raw[i] = b
	}
	if err := x.opts.Store.AppendJournal(ctx, x.lock, x.txID, raw...); err != nil {
		return fmt.Errorf("write journal: %w", err)
	}
	return nil
}

type opResult struct {
	op  *op
	err error
}

// walk runs ops in dependency order, up to Parallelism at once. The first
// failure cancels the rest; ops that depend on a failed or unstarted op never
// start. It returns the ops that completed, in completion order.
func (x *txn) walk(parent context.Context, ops []*op) (done []*op, vals map[string]cty.Value, failed *Error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	vals = map[string]cty.Value{}
	for _, s := range x.plan.Steps {
		if s.Action == planner.NoOp || s.Action == planner.Update {
			vals[s.Address] = s.Before
		}
	}
	pending := make(map[*op]int, len(ops))
	dependents := map[*op][]*op{}
	var ready []*op
	for _, o := range ops {
		pending[o] = len(o.deps)
		for _, d := range o.deps {
			dependents[d] = append(dependents[d], o)
		}
		if len(o.deps) == 0 {
			ready = append(ready, o)
		}
	}
	results := make(chan opResult, len(ops)) // buffered: a worker never blocks on send
	running := 0
	for {
		for len(ready) > 0 && running < x.opts.Parallelism && failed == nil {
			o := ready[0]
			ready = ready[1:]
			inputs := depValues(o, vals)
			running++
			go func() { results <- opResult{op: o, err: x.runOp(ctx, o, inputs)} }()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			if failed == nil {
				failed = x.opError(r.op, r.err)
				cancel()
			}
			continue
		}
		done = append(done, r.op)
		if r.op.kind != opRetire {
			vals[r.op.step.Address] = r.op.state
		}
		for _, d := range dependents[r.op] {
			if pending[d]--; pending[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if failed == nil && parent.Err() != nil {
		failed = &Error{Phase: "apply", Cause: fmt.Errorf("apply interrupted: %w", parent.Err())}
	}
	return done, vals, failed
}

// depValues copies the values an op's config may reference, so the running
// op never reads the map the walk loop writes.
func depValues(o *op, vals map[string]cty.Value) map[string]cty.Value {
	in := make(map[string]cty.Value, len(o.step.DependsOn))
	for _, d := range o.step.DependsOn {
		if v, ok := vals[d]; ok {
			in[d] = v
		}
	}
	return in
}

func (x *txn) opError(o *op, err error) *Error {
	return &Error{Phase: "apply", Address: o.step.Address, Source: o.step.Source, Operation: string(o.kind), Cause: err}
}

// runOp journals the intent, calls the provider, and journals the result
// with its undo. Nothing is done to an object without an intent on record.
func (x *txn) runOp(ctx context.Context, o *op, inputs map[string]cty.Value) error {
	s := o.step
	p, ok := x.opts.Providers[s.Provider]
	if !ok {
		return fmt.Errorf("provider %s is not configured", s.Provider)
	}
	var config cty.Value
	if o.kind != opRetire {
		var err error
		if config, err = x.opts.Eval(s.Address, inputs); err != nil {
			return fmt.Errorf("evaluate %s: %w", s.Address, err)
		}
		if !config.IsWhollyKnown() {
			return fmt.Errorf("evaluate %s: a value is still unknown after its dependencies were applied", s.Address)
		}
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not started: %w", err)
	}
	base := record{Op: o.kind, Address: s.Address, Type: s.Type, Provider: s.Provider, ID: s.ID}
	intent := base
	intent.Kind = "intent"
	if err := x.journal(ctx, intent); err != nil {
		return err
	}
	start := time.Now()
	x.events.emit(Event{Kind: EventStart, Address: s.Address, Operation: string(o.kind)})
	opID := fmt.Sprintf("%s/%s/%s", x.opts.PlanID, s.Address, o.kind)
	var err error
	switch o.kind {
	case opCreate:
		var resp providers.CreateResponse
		resp, err = p.Create(ctx, providers.CreateRequest{Address: s.Address, Type: s.Type, OpID: opID, Config: config})
		o.id, o.state, o.undo = resp.ID, resp.State, resp.Undo
	case opUpdate:
		var resp providers.UpdateResponse
		resp, err = p.Update(ctx, providers.UpdateRequest{Address: s.Address, Type: s.Type, OpID: opID, ID: s.ID, Prior: s.Before, Config: config})
		o.id, o.state, o.undo = s.ID, resp.State, resp.Undo
	case opRetire:
		var resp providers.RetireResponse
		resp, err = p.Retire(ctx, providers.RetireRequest{Address: s.Address, Type: s.Type, OpID: opID, ID: s.ID, State: s.Before})
		o.id, o.undo = s.ID, resp.Undo
	}
	if err != nil {
		x.events.emit(Event{Kind: EventFailed, Address: s.Address, Operation: string(o.kind), Elapsed: time.Since(start), Err: err.Error()})
		return err
	}
	res := base
	res.Kind, res.ID, res.Undo = "done", o.id, o.undo
	// The object changed: the undo must be on record even if this apply
	// was cancelled meanwhile, so the journal write ignores cancellation.
	if err := x.journal(context.WithoutCancel(ctx), res); err != nil {
		// The op is done: roll it back with the rest.
		return errors.Join(err, x.undoOne(context.WithoutCancel(ctx), o))
	}
	x.events.emit(Event{Kind: EventDone, Address: s.Address, Operation: string(o.kind), Elapsed: time.Since(start)})
	return nil
}
