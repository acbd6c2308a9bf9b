package executor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"fiat/internal/panics"
	"fiat/planner"
	"fiat/providers"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

type opResult struct {
	op  *op
	err error
}

// walk runs ops in dependency order, up to Parallelism at once. The first
// failure cancels the rest; ops that depend on a failed or unstarted op never
// start. It returns the ops that took effect, in completion order (a failed
// op whose partial effect has an undo is included, last).
func (x *txn) walk(parent context.Context, ops []*op) (done []*op, vals map[string]cty.Value, failed *Error) {
	ctx, cancel := context.WithCancel(parent)
	defer cancel()

	vals = map[string]cty.Value{}
	for _, s := range x.plan.Steps {
		switch {
		case s.Action == planner.NoOp || s.Action == planner.Update:
			vals[s.Address] = s.Before
		case s.Action == planner.Read || s.Action.StoreOnly():
			vals[s.Address] = s.After
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
		for len(ready) > 0 && running < x.opts.Parallelism && failed == nil && ctx.Err() == nil {
			o := ready[0]
			ready = ready[1:]
			inputs := depValues(o, vals)
			running++
			go func() { results <- opResult{op: o, err: x.runOpGuarded(ctx, o, inputs)} }()
		}
		if running == 0 {
			break
		}
		r := <-results
		running--
		if r.err != nil {
			if r.op.undo != nil {
				done = append(done, r.op) // partial effect: roll it back too
			}
			if failed == nil {
				failed = x.opError(r.op, r.err)
				cancel()
			}
			continue
		}
		if r.op.kind != opRead {
			done = append(done, r.op) // a read took no effect to commit or undo
		}
		if r.op.kind != opRetire {
			vals[r.op.step.Address] = r.op.state
		}
		for _, d := range dependents[r.op] {
			if pending[d]--; pending[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	if parent.Err() != nil && (failed == nil || errors.Is(failed.Cause, context.Canceled) || errors.Is(failed.Cause, context.DeadlineExceeded)) {
		// Interrupted (Ctrl-C, or the lock was lost): an op that failed
		// failed because of it, so say so rather than blame the op. A
		// real failure that came first keeps its own report.
		failed = &Error{Phase: "apply", Cause: fmt.Errorf("apply interrupted before it finished: %w", context.Cause(parent))}
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
	return &Error{Phase: "apply", Address: o.step.Address, Source: o.step.Source, Operation: o.name(), Cause: err}
}

// runOpGuarded is runOp with a last line of defence: a panic outside the
// provider call (which providers.Call already guards) fails the op instead
// of killing the process with the transaction open.
func (x *txn) runOpGuarded(ctx context.Context, o *op, inputs map[string]cty.Value) (err error) {
	defer panics.Recover("apply "+o.step.Address, &err)
	return x.runOp(ctx, o, inputs)
}

// runOp journals the intent, calls the provider, and records the result
// with its undo. Nothing is done to an object without a durable intent.
func (x *txn) runOp(ctx context.Context, o *op, inputs map[string]cty.Value) error {
	if o.kind == opRead {
		return x.readData(ctx, o, inputs)
	}
	s := o.step
	provAddr, typ, opName := s.Provider, s.Type, string(o.kind)
	if o.kind == opProvision {
		provAddr, typ, opName = providers.ProvisionerAddress, s.Provisioners[o.prov].Type, fmt.Sprintf("provision-%d", o.prov)
	}
	p, ok := x.opts.Providers[provAddr]
	if !ok {
		return fmt.Errorf("provider %s is not configured", provAddr)
	}
	// The operation id is stable for retries within this transaction and
	// unique across transactions (a later run of the same plan must not
	// latch onto what an earlier one left).
	intent := record{Kind: recIntent, Op: o.kind, Address: s.Address, Type: typ, Provider: provAddr,
		OpID: fmt.Sprintf("%s/%s/%s/%s", x.opts.PlanID, x.txID, s.Address, opName), Source: s.Source, Action: string(s.Action)}
	if o.kind != opCreate && o.kind != opProvision {
		intent.ID = s.ID
	}
	var config cty.Value
	if o.kind == opProvision {
		var err error
		if x.opts.EvalProvisioner == nil {
			return fmt.Errorf("%s has provisioners, and this apply cannot evaluate them", s.Address)
		}
		if config, err = x.opts.EvalProvisioner(s.Address, o.prov, o.parent.state, inputs); err != nil {
			return fmt.Errorf("evaluate provisioner %d of %s: %w", o.prov+1, s.Address, err)
		}
		if intent.Config, err = value.Encode(config); err != nil {
			return err
		}
	} else if o.kind != opRetire {
		var err error
		if config, err = x.evalConfig(s.Address, inputs); err != nil {
			return err
		}
		if intent.Config, err = value.Encode(config); err != nil {
			return err
		}
	} else {
		var err error
		if intent.State, err = value.Encode(s.Before); err != nil {
			return err
		}
		o.stored = intent.State
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not started: %w", context.Cause(ctx))
	}
	if x.opts.CheckSpace != nil {
		if err := x.opts.CheckSpace(0); err != nil {
			return fmt.Errorf("not started: %w", err)
		}
	}
	if x.local(provAddr) {
		// No effect outside the store: the intent rides along with the
		// next write instead of costing one of its own.
		if err := x.journal.post(intent); err != nil {
			return err
		}
	} else if err := x.journal.write(ctx, intent); err != nil {
		return err
	}
	failpoint("after-intent")
	start := time.Now()
	x.events.emit(Event{Kind: EventStart, Address: s.Address, Operation: o.name()})
	stopProgress := x.progress(o, start)
	err := providers.Call(provAddr, o.name(), true, func() error { return x.call(ctx, p, o, intent.OpID, config) })
	if err != nil && errors.Is(err, providers.ErrContinued) {
		x.events.emit(Event{Kind: EventWarning, Address: s.Address, Operation: o.name(), Err: fmt.Sprintf("%s: %v (on_failure = continue: the apply goes on)", s.Address, err)})
		err = nil
	}
	stopProgress()
	failpoint("after-call")
	if err != nil && errors.Is(err, providers.ErrOutcomeUnknown) {
		serr := x.settle(ctx, provAddr, p, o, intent.OpID, config, err)
		var pe *providers.PanicError
		if serr == nil && errors.As(err, &pe) {
			// It took effect, but a provider that panicked is not
			// trusted to have done it right: fail the step, and the
			// rollback undoes what settle found.
			serr = err
		}
		err = serr
	}
	res := record{Kind: recDone, Op: o.kind, Address: s.Address, ID: o.id, Undo: o.undo}
	if err != nil {
		res.Kind, res.Err = recFailed, err.Error()
	} else if o.kind != opRetire && o.kind != opProvision {
		var eerr error
		if res.State, eerr = value.Encode(o.state); eerr != nil {
			err = eerr
		}
		o.stored = res.State
	}
	// The result need only be durable before the commit; it rides along
	// with the next journal write (often a dependent's intent).
	if jerr := x.journal.post(res); jerr != nil && err == nil {
		err = jerr
	}
	return x.ended(ctx, o, start, err)
}

// ended emits how an op that began at start ended (done, failed, or
// cancelled in flight) and returns its error.
func (x *txn) ended(ctx context.Context, o *op, start time.Time, err error) error {
	if err != nil {
		kind := EventFailed
		if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
			kind = EventCancelled
		}
		x.events.emit(Event{Kind: kind, Address: o.step.Address, Operation: o.name(), Elapsed: time.Since(start), Err: err.Error()})
		return err
	}
	x.events.emit(Event{Kind: EventDone, Address: o.step.Address, Operation: o.name(), Elapsed: time.Since(start)})
	return nil
}

// call makes the provider call. An Undo returned with an error is kept:
// the call had a partial effect that the rollback must reverse.
func (x *txn) call(ctx context.Context, p providers.Provider, o *op, opID string, config cty.Value) error {
	s := o.step
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
	case opProvision:
		var resp providers.CreateResponse
		resp, err = p.Create(ctx, providers.CreateRequest{Address: s.Address, Type: s.Provisioners[o.prov].Type, OpID: opID, Config: config})
		o.id, o.undo, o.state = resp.ID, resp.Undo, o.parent.state
	}
	return err
}

// settle decides an operation whose outcome is unknown by reading the real
// object: if it took effect, the op succeeded; otherwise the original error
// stands and there is nothing to undo.
func (x *txn) settle(ctx context.Context, provAddr string, p providers.Provider, o *op, opID string, config cty.Value, cause error) error {
	s := o.step
	req := providers.SettleRequest{Address: s.Address, Type: s.Type, Action: settleAction[o.kind], OpID: opID, Config: config}
	if o.kind != opCreate && o.kind != opProvision {
		// A create (also the new half of a replacement) has no identity
		// or prior state yet: the old object's must not be mistaken for it.
		req.ID, req.Prior = s.ID, s.Before
	}
	resp, err := settleCall(context.WithoutCancel(ctx), provAddr, p, req)
	if err != nil {
		return fmt.Errorf("%w; reading the object to settle it also failed: %v", cause, err)
	}
	if !resp.TookEffect {
		o.undo = resp.Undo // a partial effect to remove, if any
		return cause
	}
	if o.kind == opCreate && s.ID != "" && resp.ID == s.ID {
		return fmt.Errorf("%w; settling it found the object being replaced (%s), not a new one", cause, s.ID)
	}
	if resp.ID != "" {
		o.id = resp.ID
	}
	o.undo = resp.Undo
	switch o.kind {
	case opProvision:
		o.state = o.parent.state
	case opCreate, opUpdate:
		o.state = resp.State
	}
	return nil
}

// settleCall asks a provider to settle an operation, if it can.
func settleCall(ctx context.Context, addr string, p providers.Provider, req providers.SettleRequest) (resp providers.SettleResponse, err error) {
	sp, ok := p.(providers.Settler)
	if !ok {
		return resp, fmt.Errorf("provider %s cannot settle an operation whose outcome is unknown (it has no Settle)", addr)
	}
	err = providers.Call(addr, "settle", false, func() error {
		resp, err = sp.Settle(ctx, req)
		return err
	})
	return resp, err
}

var settleAction = map[opKind]providers.Action{opCreate: providers.ActionCreate, opUpdate: providers.ActionUpdate, opRetire: providers.ActionDelete, opProvision: providers.ActionCreate}

// progress reports a slow operation every Progress interval until stopped.
func (x *txn) progress(o *op, start time.Time) func() {
	stop := make(chan struct{})
	go func() {
		t := time.NewTicker(x.opts.Progress)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
				x.events.emit(Event{Kind: EventProgress, Address: o.step.Address, Operation: o.name(), Elapsed: time.Since(start)})
			}
		}
	}()
	return func() { close(stop) }
}

// local reports whether a provider's calls affect nothing outside the store.
func (x *txn) local(addr string) bool {
	x.localMu.Lock()
	defer x.localMu.Unlock()
	if x.localOf == nil {
		x.localOf = map[string]bool{}
	}
	l, ok := x.localOf[addr]
	if !ok {
		if p, found := x.opts.Providers[addr]; found {
			l = p.Schema().Local && !x.opts.DurableLocal
		}
		x.localOf[addr] = l
	}
	return l
}

// readData reads a data source the plan left for the apply, now that what
// its arguments depend on is done.
func (x *txn) readData(ctx context.Context, o *op, inputs map[string]cty.Value) error {
	s := o.step
	p, ok := x.opts.Providers[s.Provider]
	if !ok {
		return fmt.Errorf("provider %s is not configured", s.Provider)
	}
	dr, ok := p.(providers.DataReader)
	if !ok {
		return fmt.Errorf("provider %s has no data sources", s.Provider)
	}
	config, err := x.evalConfig(s.Address, inputs)
	if err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("not started: %w", context.Cause(ctx))
	}
	start := time.Now()
	x.events.emit(Event{Kind: EventStart, Address: s.Address, Operation: o.name()})
	var resp providers.ReadDataResponse
	err = providers.Call(s.Provider, "read", false, func() (err error) {
		resp, err = dr.ReadData(ctx, providers.ReadDataRequest{Address: s.Address, Type: s.Type, Config: config})
		return err
	})
	o.state = resp.State
	return x.ended(ctx, o, start, err)
}

// evalConfig is a step's config evaluated with the final values of what it
// depends on; every value must be known by then.
func (x *txn) evalConfig(addr string, inputs map[string]cty.Value) (cty.Value, error) {
	config, err := x.opts.Eval(addr, inputs)
	if err != nil {
		return cty.NilVal, fmt.Errorf("evaluate %s: %w", addr, err)
	}
	if !config.IsWhollyKnown() {
		return cty.NilVal, fmt.Errorf("evaluate %s: a value is still unknown after its dependencies were applied", addr)
	}
	return config, nil
}
