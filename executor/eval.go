package executor

import (
	"fmt"
	"sync"

	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// NewEvaluator returns the EvalFunc every apply uses: it re-evaluates a
// resource instance's config from cfg, given the final values of what it
// depends on. Instance keys of other resources, and values the executor
// does not produce (data sources, imports, moves), come from the plan.
// schemas are the providers' schemas by provider name.
func NewEvaluator(cfg *hcl.Config, plan *planner.Plan, schemas map[string]providers.Schema) EvalFunc {
	known := plan.KnownValues()
	keys := map[string][]cty.Value{}
	deps := map[string][]string{} // by instance address; read concurrently, so built here
	if plan != nil {
		for _, s := range plan.Steps {
			deps[s.Address] = s.DependsOn
			if s.Action == planner.Delete || s.Action == planner.Forget {
				continue
			}
			res, key, err := hcl.SplitInstance(s.Address)
			if err == nil && key != cty.NilVal {
				keys[res] = append(keys[res], key)
			}
		}
	}
	for _, ks := range keys {
		hcl.SortKeys(ks)
	}
	var specs sync.Map // "r:"/"d:" + type (a resource and a data source may share a type name) → hcldec.Spec
	return func(addr string, vals map[string]cty.Value) (cty.Value, error) {
		res, _, err := hcl.SplitInstance(addr)
		if err != nil {
			return cty.NilVal, err
		}
		r := cfg.Resources[res]
		if r == nil {
			return cty.NilVal, fmt.Errorf("no resource %s in the configuration", addr)
		}
		all, kind, specKey := schemas[providers.NameOf(r.Provider)].Resources, "resource", "r:"+r.Type
		if r.Mode != hcl.Managed {
			all, kind, specKey = schemas[providers.NameOf(r.Provider)].DataSources, "data source", "d:"+r.Type // a data source read in the apply
		}
		rs, ok := all[r.Type]
		if !ok {
			return cty.NilVal, fmt.Errorf("provider %s has no %s type %s", r.Provider, kind, r.Type)
		}
		in := make(hcl.Values, len(vals)+4)
		for k, v := range vals {
			in[k] = v
		}
		for _, d := range deps[addr] {
			if _, ok := in[d]; !ok {
				if v, ok := known[d]; ok {
					in[d] = v
				}
			}
		}
		ev := cfg.NewEvaluator(in)
		for _, d := range cfg.Dependencies(res) {
			if dr := cfg.Resources[d]; dr != nil && dr.Expanded() {
				mode := hcl.ForEach
				if dr.Count != nil {
					mode = hcl.Counted
				}
				ev.SetInstances(d, mode, keys[d])
			}
		}
		spec, ok := specs.Load(specKey)
		if !ok {
			spec, _ = specs.LoadOrStore(specKey, planner.Spec(rs))
		}
		v, _, diags := planner.ConfigValueSensitive(ev, addr, rs, spec.(hcldec.Spec))
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		return v, nil
	}
}

// NewProvisionerEvaluator returns what Options.EvalProvisioner wants: a
// provisioner block of cfg evaluated with self (the object just created)
// and the final values of what the resource depends on, as the spec the
// provisioner provider runs.
func NewProvisionerEvaluator(cfg *hcl.Config, plan *planner.Plan) func(addr string, i int, self cty.Value, vals map[string]cty.Value) (cty.Value, error) {
	known := plan.KnownValues()
	return func(addr string, i int, self cty.Value, vals map[string]cty.Value) (cty.Value, error) {
		res, key, err := hcl.SplitInstance(addr)
		if err != nil {
			return cty.NilVal, err
		}
		r := cfg.Resources[res]
		if r == nil || i >= len(r.Provisioners) {
			return cty.NilVal, fmt.Errorf("no provisioner %d of %s in the configuration", i+1, addr)
		}
		in := make(hcl.Values, len(vals)+len(known))
		for k, v := range known {
			in[k] = v
		}
		for k, v := range vals {
			in[k] = v
		}
		conf, conn, diags := cfg.NewEvaluator(in).EvalProvisioner(res, key, i, self)
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		if !conf.IsWhollyKnown() || (conn != cty.NilVal && !conn.IsWhollyKnown()) {
			return cty.NilVal, fmt.Errorf("provisioner %d of %s: a value is still unknown after the object was created", i+1, addr)
		}
		conf, _ = conf.UnmarkDeep()
		if conn != cty.NilVal {
			conn, _ = conn.UnmarkDeep()
		}
		p := r.Provisioners[i]
		spec := map[string]cty.Value{"type": cty.StringVal(p.Type), "on_failure": cty.StringVal(p.OnFailure), "config": conf,
			"connection": cty.NullVal(cty.DynamicPseudoType)}
		if conn != cty.NilVal {
			spec["connection"] = conn
		}
		return cty.ObjectVal(spec), nil
	}
}
