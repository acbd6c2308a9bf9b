// Package engine is fiat's one way to plan and apply: whole operations as a
// library. Plan does the provider reads around the pure planner (drift,
// import blocks, data sources); Apply configures the providers, evaluates
// each resource at apply time and runs the executor's transaction; Destroy
// and Recover complete the set. The CLI, the server's runs, git-triggered
// runs, benchmarks and tests all call these functions, so they plan and
// apply the same way.
//
// Errors: spec problems come back as *hcl.DiagError; a failed transaction as
// *executor.Error (resource, file:line, operation, provider message,
// rollback report); anything else is wrapped "verb object: %w".
package engine

import (
	"context"

	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/builtin"
	"fiat/providers/libvirt"
	"fiat/providers/utility"
	"fiat/state"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// Reader is what planning needs of the state store.
type Reader interface {
	Revision(ctx context.Context) (uint64, error)
	List(ctx context.Context, stack string) ([]state.Entity, error)
}

// Store is what applying needs of the state store: the executor's
// transaction calls and the reads of a plan. *state.Store is one.
type Store interface {
	executor.Store
	Reader
	Identified
}

var _ Store = (*state.Store)(nil)

// Engine plans and applies with one set of providers. It holds no state of
// its own between calls and is safe for concurrent use.
type Engine struct {
	providers *providers.Registry
}

// New returns an engine that uses the providers of reg.
func New(reg *providers.Registry) *Engine { return &Engine{providers: reg} }

// DefaultRegistry holds every provider fiat ships: libvirt, fiat's own, and
// the utility providers Terraform configurations use (random, tls, ...).
func DefaultRegistry() *providers.Registry {
	fs := map[string]providers.Factory{
		"libvirt":    func() providers.Provider { return libvirt.New() },
		builtin.Name: func() providers.Provider { return builtin.New() },
	}
	for _, name := range utility.Names {
		fs[name] = func() providers.Provider { return utility.New(name) }
	}
	return providers.NewRegistry(fs)
}

// Default returns an engine with DefaultRegistry.
func Default() *Engine { return New(DefaultRegistry()) }

// Providers is the engine's registry.
func (e *Engine) Providers() *providers.Registry { return e.providers }

// Validate type-checks cfg against the provider schemas by planning it
// against an empty stack: no store, no provider calls, and values known only
// at apply time are accepted.
func (e *Engine) Validate(cfg *hcl.Config) hcl2.Diagnostics {
	_, diags := planner.Build(planner.Input{Stack: "validate", Config: cfg, Schemas: e.providers.Schemas(),
		Modifiers: e.providers.Modifiers(), Validators: e.providers.Validators(), Validate: true})
	return diags
}
