package engine

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"
	"time"

	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/provision"
	"fiat/state"

	"github.com/zclconf/go-cty/cty"
)

// ApplyOptions says what to apply: a plan made by Plan (or loaded by
// OpenSaved) and the config it was made from.
type ApplyOptions struct {
	Stack  string
	Config *hcl.Config
	Plan   *planner.Plan
	// Saved says the plan came from a file: values it leaves out because
	// they may be sensitive are read back from the store first.
	Saved bool
	// PlanID names the plan in the journal and history (a digest prefix).
	PlanID string
	// Command is recorded in history: "apply", "destroy".
	Command     string
	Actor       string // recorded in history; default the holder
	Holder      string // names the stack lock's holder; default executor.Holder()
	Events      func(executor.Event)
	Parallelism int // default 10
}

// ApplyResult is a committed apply.
type ApplyResult struct {
	*executor.Result
	// Values are the final values of every resource instance and of every
	// value the plan read (data sources, imports, moves).
	Values map[string]cty.Value
	// Outputs are the root outputs after the apply (nil for a destroy).
	Outputs []Output
}

// Output is one root output value.
type Output struct {
	Name      string
	Value     cty.Value
	Sensitive bool
}

// Apply runs a plan as one transaction: it configures the providers the
// plan's steps use, evaluates each resource's config once its dependencies
// are applied, and commits, or rolls back and returns *executor.Error. A
// plan without changes commits nothing and returns a result with revision
// zero.
func (e *Engine) Apply(ctx context.Context, store Store, opts ApplyOptions) (*ApplyResult, error) {
	plan := opts.Plan
	if opts.Saved {
		err := plan.Rehydrate(func(addr string) (state.Entity, error) { return store.Get(ctx, addr) })
		if err != nil {
			return nil, fmt.Errorf("apply saved plan: %w", err)
		}
	}
	if !plan.HasChanges() {
		return &ApplyResult{Result: &executor.Result{}, Values: plan.KnownValues()}, nil
	}
	var checkSpace func(uint64) error
	if sc, ok := store.(interface {
		CheckFreeSpace() error
		CheckSpaceReserve(uint64) error
	}); ok {
		if err := sc.CheckFreeSpace(); err != nil {
			return nil, err
		}
		checkSpace = sc.CheckSpaceReserve
	}
	var used []string
	for _, s := range plan.Steps {
		if s.Action != planner.NoOp {
			used = append(used, s.Provider)
		}
		if len(s.Provisioners) > 0 {
			used = append(used, providers.ProvisionerAddress)
		}
	}
	provs, err := e.connect(ctx, opts.Config, used)
	if err != nil {
		return nil, err
	}
	defer closeAll(provs)
	events := serialized(opts.Events)
	if p, ok := provs[providers.ProvisionerAddress].(*provision.Provider); ok {
		// What a provisioner prints is progress: it goes out with the
		// executor's events, one line at a time.
		p.Output = func(addr, line string) {
			events(executor.Event{Time: time.Now().UTC(), Kind: executor.EventOutput, Address: addr, Err: line})
		}
	}
	res, err := executor.Apply(ctx, plan, executor.Options{
		Store: store, Providers: provs, Eval: executor.NewEvaluator(opts.Config, plan, e.providers.Schemas()),
		EvalProvisioner: executor.NewProvisionerEvaluator(opts.Config, plan),
		CheckSpace:      checkSpace,
		Events:          events, Parallelism: opts.Parallelism, PlanID: opts.PlanID, Actor: opts.Actor, Holder: opts.Holder, Command: opts.Command,
	})
	if err != nil {
		return nil, err
	}
	out := &ApplyResult{Result: res, Values: plan.KnownValues()}
	for k, v := range res.Values {
		out.Values[k] = v
	}
	if opts.Command != "destroy" {
		if out.Outputs, err = outputs(opts.Config, out.Values); err != nil {
			return out, err
		}
	}
	return out, nil
}

// DestroyOptions says which stack to destroy.
type DestroyOptions struct {
	Stack       string
	Config      *hcl.Config // for the provider blocks
	NoRefresh   bool
	Events      func(executor.Event)
	Parallelism int
	Actor       string
	Holder      string
}

// Destroy plans the deletion of everything the stack manages and applies
// it, without asking anyone: for callers that approve by other means.
func (e *Engine) Destroy(ctx context.Context, store Store, opts DestroyOptions) (*planner.Plan, *ApplyResult, error) {
	plan, err := e.Plan(ctx, store, PlanOptions{Stack: opts.Stack, Config: opts.Config, Destroy: true, NoRefresh: opts.NoRefresh})
	if err != nil {
		return nil, nil, err
	}
	res, err := e.Apply(ctx, store, ApplyOptions{Stack: opts.Stack, Config: opts.Config, Plan: plan, Command: "destroy",
		Events: opts.Events, Parallelism: opts.Parallelism, Actor: opts.Actor, Holder: opts.Holder})
	return plan, res, err
}

// outputs evaluates the root outputs from the final values. An error here
// comes after the commit: the apply stands, only the outputs are missing.
func outputs(cfg *hcl.Config, vals map[string]cty.Value) ([]Output, error) {
	outs, diags := cfg.EvalOutputs(hcl.Values(vals))
	if diags.HasErrors() {
		return nil, hcl.NewDiagError(diags, cfg.Files)
	}
	list := make([]Output, 0, len(outs))
	for _, name := range slices.Sorted(maps.Keys(outs)) {
		list = append(list, Output{Name: name, Value: outs[name], Sensitive: cfg.Outputs[name].Sensitive})
	}
	return list, nil
}

// serialized makes fn safe to call from several goroutines (the
// executor's, a provisioner's output), one call at a time.
func serialized(fn func(executor.Event)) func(executor.Event) {
	if fn == nil {
		return func(executor.Event) {}
	}
	var mu sync.Mutex
	return func(ev executor.Event) {
		mu.Lock()
		defer mu.Unlock()
		fn(ev)
	}
}
