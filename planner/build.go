package planner

import (
	"fmt"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/providers"
	"fiat/state"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Input is everything a plan is computed from.
type Input struct {
	Stack    string
	Config   *hcl.Config
	Entities []state.Entity // the stack's stored entities
	Revision uint64         // the store revision they were read at
	// Schemas maps a provider name ("libvirt") to its schema.
	Schemas map[string]providers.Schema
}

// Build computes the plan. It has no side effects.
func Build(in Input) (*Plan, hcl2.Diagnostics) {
	cfg := in.Config
	plan := &Plan{Stack: in.Stack, BaseRevision: in.Revision, Reads: map[string]uint64{}}
	stored := make(map[string]state.Entity, len(in.Entities))
	prefix := in.Stack + "/"
	for _, e := range in.Entities {
		addr := strings.TrimPrefix(e.Address, prefix)
		stored[addr] = e
		plan.Reads[addr] = e.Revision
	}

	var diags hcl2.Diagnostics
	schemas := map[string]providers.ResourceSchema{}
	for _, addr := range cfg.ResourceAddrs() {
		r := cfg.Resources[addr]
		rs, d := lookupSchema(in.Schemas, r)
		diags = append(diags, d...)
		schemas[addr] = rs
		if _, ok := stored[addr]; !ok {
			plan.Reads[addr] = 0 // the plan relies on it not existing
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}

	order, cycles := NewGraph(cfg.ResourceAddrs(), cfg.Dependencies).Order()
	for _, c := range cycles {
		r := cfg.Resources[c[0]]
		diags = append(diags, &hcl2.Diagnostic{
			Severity: hcl2.DiagError,
			Summary:  "Dependency cycle",
			Detail:   fmt.Sprintf("These resources depend on each other in a cycle: %s.", describeCycle(cfg, c)),
			Subject:  r.DeclRange.Ptr(),
		})
	}
	if diags.HasErrors() {
		return nil, diags
	}

	vals := hcl.Values{}
	for _, addr := range order {
		r := cfg.Resources[addr]
		rs := schemas[addr]
		cv, d := ConfigValue(cfg, addr, rs, vals)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		step := &Step{
			Address: addr, Type: r.Type, Name: r.Name, Provider: r.Provider,
			DependsOn: cfg.Dependencies(addr), Source: r.Source(),
			Sensitive: sensitiveAttrs(rs),
		}
		prev, exists := stored[addr]
		var prior cty.Value
		if exists {
			var err error
			if prior, err = DecodeValue(prev.Attributes); err != nil {
				return nil, errorDiag(fmt.Sprintf("Cannot read stored state of %s", addr), err.Error(), r.DeclRange.Ptr())
			}
			step.Before, step.ID = prior, prev.ID
		}
		switch {
		case !exists:
			step.Action, step.After = Create, Planned(cv, cty.NilVal, rs)
			step.Reversibility = providers.Reversible
		default:
			changed := changedAttrs(cv, prior, rs)
			step.ForceNew = forceNew(changed, rs)
			switch {
			case len(step.ForceNew) > 0:
				step.Action, step.After = Replace, Planned(cv, cty.NilVal, rs)
				step.Reversibility = rs.Delete
			case len(changed) > 0:
				step.Action, step.After = Update, Planned(cv, prior, rs)
				step.Reversibility = rs.Update
			default:
				step.Action, step.After = NoOp, prior
			}
		}
		vals[addr] = step.After
		plan.Steps = append(plan.Steps, step)
	}
	if diags.HasErrors() {
		return nil, diags
	}

	for addr, e := range stored {
		if _, ok := cfg.Resources[addr]; ok {
			continue
		}
		before, err := DecodeValue(e.Attributes)
		if err != nil {
			return nil, errorDiag(fmt.Sprintf("Cannot read stored state of %s", addr), err.Error(), nil)
		}
		rs := schemaForType(in.Schemas, e.Type)
		deps := make([]string, len(e.Dependencies))
		for i, d := range e.Dependencies {
			deps[i] = strings.TrimPrefix(d, prefix)
		}
		plan.Steps = append(plan.Steps, &Step{
			Address: addr, Type: e.Type, Name: e.Name, Provider: e.Provider,
			Action: Delete, Reversibility: rs.Delete, ID: e.ID, Before: before,
			DependsOn: deps, Source: e.Source, Sensitive: sensitiveAttrs(rs),
		})
	}
	sort.Slice(plan.Steps, func(i, j int) bool { return plan.Steps[i].Address < plan.Steps[j].Address })
	return plan, diags
}

func lookupSchema(schemas map[string]providers.Schema, r *hcl.Resource) (providers.ResourceSchema, hcl2.Diagnostics) {
	pname, _, _ := strings.Cut(r.Provider, ".")
	ps, ok := schemas[pname]
	if !ok {
		return providers.ResourceSchema{}, errorDiag("Unknown provider",
			fmt.Sprintf("Resource %s needs provider %q, which fiat does not have.", r.Addr(), pname), r.TypeRange.Ptr())
	}
	rs, ok := ps.Resources[r.Type]
	if !ok {
		names := make([]string, 0, len(ps.Resources))
		for n := range ps.Resources {
			names = append(names, n)
		}
		return providers.ResourceSchema{}, errorDiag("Unknown resource type",
			fmt.Sprintf("Provider %q has no resource type %q.%s", pname, r.Type, hcl.DidYouMean(r.Type, names)), r.TypeRange.Ptr())
	}
	return rs, nil
}

func schemaForType(schemas map[string]providers.Schema, typ string) providers.ResourceSchema {
	for _, ps := range schemas {
		if rs, ok := ps.Resources[typ]; ok {
			return rs
		}
	}
	// A type no provider knows any more: deleting it is of unknown cost.
	return providers.ResourceSchema{Delete: providers.Irreversible}
}

func forceNew(changed []string, rs providers.ResourceSchema) []string {
	var out []string
	for _, name := range changed {
		if rs.Attributes[name].ForceNew {
			out = append(out, name)
		}
	}
	return out
}

func sensitiveAttrs(rs providers.ResourceSchema) []string {
	var out []string
	for name, a := range rs.Attributes {
		if a.Sensitive {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func describeCycle(cfg *hcl.Config, members []string) string {
	parts := make([]string, len(members))
	for i, m := range members {
		parts[i] = fmt.Sprintf("%s (%s)", m, cfg.Resources[m].Source())
	}
	return strings.Join(parts, ", ")
}

func errorDiag(summary, detail string, rng *hcl2.Range) hcl2.Diagnostics {
	return hcl2.Diagnostics{{Severity: hcl2.DiagError, Summary: summary, Detail: detail, Subject: rng}}
}
