package engine

import (
	"context"
	"fmt"
	"strings"

	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/state"

	"github.com/zclconf/go-cty/cty"
)

// PlanOptions says what to plan.
type PlanOptions struct {
	Stack  string
	Config *hcl.Config
	// Destroy plans to delete everything the stack manages.
	Destroy bool
	// NoRefresh trusts the store instead of reading every managed object
	// (plan -refresh=false).
	NoRefresh bool
	// AdoptDrift records objects changed outside fiat as found instead of
	// planning to change them back.
	AdoptDrift bool
	// Targets and Excludes restrict the plan (-target, -exclude).
	Targets, Excludes []string
	// Imported are objects found already for import blocks (by address);
	// the others are asked of their providers.
	Imported map[string]planner.Imported
}

// Plan diffs the config against the stack in the store. Before the pure
// planner runs it does the provider reads it needs: every stored entity
// (drift; unless NoRefresh), the import blocks' objects, and data sources
// (as many rounds as data sources depend on each other). It changes
// nothing: no store write, no provider side effect.
func (e *Engine) Plan(ctx context.Context, store Reader, opts PlanOptions) (*planner.Plan, error) {
	cfg := opts.Config
	if opts.Destroy {
		cfg = cfg.WithoutResources()
	}
	// Revision first: entities read after it are at or after it, and the
	// commit's per-entity check catches anything newer.
	rev, err := store.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read store revision: %w", err)
	}
	ents, err := store.List(ctx, opts.Stack)
	if err != nil {
		return nil, fmt.Errorf("read stack %s: %w", opts.Stack, err)
	}
	in := planner.Input{
		Stack: opts.Stack, Config: cfg, Entities: ents, Revision: rev,
		Schemas: e.providers.Schemas(), Modifiers: e.providers.Modifiers(), Validators: e.providers.Validators(),
		AdoptDrift: opts.AdoptDrift, Targets: opts.Targets, Excludes: opts.Excludes,
		Data: map[string]cty.Value{},
	}
	pr := &lazyProviders{e: e, ctx: ctx, cfg: cfg}
	defer pr.close()
	if !opts.NoRefresh {
		if in.Refreshed, err = e.refresh(ctx, pr, opts.Stack, ents); err != nil {
			return nil, err
		}
	}
	if in.Imported, err = importObjects(ctx, pr, cfg, opts.Stack, ents, opts.Imported); err != nil {
		return nil, err
	}
	for round := 0; ; round++ {
		plan, diags := planner.Build(in)
		if diags.HasErrors() {
			return nil, hcl.NewDiagError(diags, cfg.Files)
		}
		if len(plan.PendingReads) == 0 {
			return plan, nil
		}
		if round > len(cfg.Resources) {
			return nil, fmt.Errorf("plan: data sources still unread after %d rounds", round)
		}
		for _, req := range plan.PendingReads {
			if in.Data[req.Address], err = readData(ctx, pr, req); err != nil {
				return nil, err
			}
		}
	}
}

func readData(ctx context.Context, pr *lazyProviders, req planner.DataRequest) (cty.Value, error) {
	p, err := pr.get(req.Provider)
	if err != nil {
		return cty.NilVal, err
	}
	dr, ok := p.(providers.DataReader)
	if !ok {
		return cty.NilVal, fmt.Errorf("read data source %s: provider %s has no data sources", req.Address, req.Provider)
	}
	var resp providers.ReadDataResponse
	err = providers.Call(req.Provider, "read data", false, func() (err error) {
		resp, err = dr.ReadData(ctx, providers.ReadDataRequest{Address: req.Address, Type: req.Type, Config: req.Config})
		return err
	})
	if err != nil {
		return cty.NilVal, fmt.Errorf("read data source %s: %w", req.Address, err)
	}
	return resp.State, nil
}

// importObjects asks providers for the objects of import blocks whose
// address the store does not hold yet.
func importObjects(ctx context.Context, pr *lazyProviders, cfg *hcl.Config, stack string, ents []state.Entity, found map[string]planner.Imported) (map[string]planner.Imported, error) {
	if len(cfg.Imports) == 0 {
		return nil, nil
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[strings.TrimPrefix(e.Address, stack+"/")] = true
	}
	out := map[string]planner.Imported{}
	ev := cfg.NewEvaluator(nil)
	for _, im := range cfg.Imports {
		addr := im.To.String()
		if have[addr] {
			continue // already managed: the import block has done its work
		}
		if im, ok := found[addr]; ok {
			out[addr] = im
			continue
		}
		where := fmt.Sprintf("%s:%d", im.DeclRange.Filename, im.DeclRange.Start.Line)
		id, diags := ev.EvalImportID(im)
		if diags.HasErrors() {
			return nil, hcl.NewDiagError(diags, cfg.Files)
		}
		prov := im.Provider
		if prov == "" {
			prov = cfg.Resources[im.To.Resource()].Provider
		}
		p, err := pr.get(prov)
		if err != nil {
			return nil, err
		}
		imp, ok := p.(providers.Importer)
		if !ok {
			return nil, fmt.Errorf("import %s (%s): provider %s cannot import existing objects; declare the resource instead", addr, where, prov)
		}
		var resp providers.ImportResponse
		err = providers.Call(prov, "import", false, func() (err error) {
			resp, err = imp.Import(ctx, providers.ImportRequest{Address: addr, Type: im.To.Type, ID: id})
			return err
		})
		if err != nil {
			return nil, fmt.Errorf("import %s (id %q, %s): %w", addr, id, where, err)
		}
		out[addr] = planner.Imported{ID: resp.ID, State: resp.State}
	}
	return out, nil
}
