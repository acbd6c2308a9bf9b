package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"sort"
	"strings"

	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// TFState is the part of a Terraform/OpenTofu state file (format version
// 4) that says which objects it manages.
type TFState struct {
	Version   int          `json:"version"`
	Resources []tfResource `json:"resources"`
}

type tfResource struct {
	Module    string       `json:"module"`
	Mode      string       `json:"mode"`
	Type      string       `json:"type"`
	Name      string       `json:"name"`
	Provider  string       `json:"provider"`
	Instances []tfInstance `json:"instances"`
}

type tfInstance struct {
	IndexKey   any             `json:"index_key"`
	Attributes json.RawMessage `json:"attributes"`
}

// ReadTFState reads a state file Terraform or OpenTofu wrote.
func ReadTFState(path string) (*TFState, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read state %s: %w", path, err)
	}
	var st TFState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fmt.Errorf("read state %s: not a Terraform state file: %w", path, err)
	}
	if st.Version != 4 {
		return nil, fmt.Errorf("read state %s: state format version %d; fiat reads version 4 (Terraform 0.12 and later, OpenTofu 1.x)", path, st.Version)
	}
	return &st, nil
}

// tfObject is one managed object of a state file, as fiat will address it.
type tfObject struct {
	addr     string
	provider string // fiat provider name
	id       string
	attrs    json.RawMessage
}

func (st *TFState) objects() ([]tfObject, error) {
	var out []tfObject
	for _, r := range st.Resources {
		if r.Mode != "managed" {
			continue // data sources are read again by every plan
		}
		base := r.Type + "." + r.Name
		if r.Module != "" {
			base = r.Module + "." + base
		}
		for _, in := range r.Instances {
			addr := base
			switch k := in.IndexKey.(type) {
			case float64:
				addr += fmt.Sprintf("[%d]", int(k))
			case string:
				addr += fmt.Sprintf("[%q]", k)
			}
			var id struct {
				ID string `json:"id"`
			}
			if err := json.Unmarshal(in.Attributes, &id); err != nil || id.ID == "" {
				return nil, fmt.Errorf("%s has no id in the state file", addr)
			}
			out = append(out, tfObject{addr: addr, provider: providerName(r.Provider, r.Type), id: id.ID, attrs: in.Attributes})
		}
	}
	return out, nil
}

// providerName maps a state's provider address
// (provider["registry.terraform.io/dmacvicar/libvirt"]) to fiat's name; a
// provider fiat lacks keeps its Terraform name, for the error.
func providerName(addr, typ string) string {
	src := strings.TrimSuffix(strings.TrimPrefix(addr, `provider["`), `"]`)
	if i := strings.Index(src, `"]`); i >= 0 {
		src = src[:i]
	}
	parts := strings.Split(src, "/")
	if len(parts) >= 2 {
		if name := hcl.TerraformProvider(strings.Join(parts[len(parts)-2:], "/")); name != "" {
			return name
		}
		return parts[len(parts)-1]
	}
	name, _, _ := strings.Cut(typ, "_")
	return name
}

// ImportTFStateOptions says which state to adopt into which stack.
type ImportTFStateOptions struct {
	Stack  string
	Config *hcl.Config // the configuration that manages these objects from now on
	State  *TFState
	Events func(executor.Event)
}

// ImportTFState adopts every object a Terraform state manages into the
// stack, in one transaction that changes no object: objects of providers
// with a backend are read by their provider (Import) and recorded as they
// are; objects that live only in state (random_*, tls_private_key) are
// recorded with the state's values. Every object must have a resource in
// the configuration and a provider in fiat, or nothing is imported. A
// later plan shows whatever differs between the configuration and the
// objects.
func (e *Engine) ImportTFState(ctx context.Context, store Store, opts ImportTFStateOptions) (*planner.Plan, *ApplyResult, error) {
	objs, err := opts.State.objects()
	if err != nil {
		return nil, nil, err
	}
	var missing []string
	schemas := e.providers.Schemas()
	for _, o := range objs {
		if _, ok := schemas[o.provider]; !ok {
			missing = append(missing, fmt.Sprintf("%s (provider %s)", o.addr, o.provider))
		}
	}
	if len(missing) > 0 {
		sort.Strings(missing)
		return nil, nil, fmt.Errorf("import state: fiat has no provider for %s; nothing was imported", strings.Join(missing, ", "))
	}
	ents, err := store.List(ctx, opts.Stack)
	if err != nil {
		return nil, nil, fmt.Errorf("read stack %s: %w", opts.Stack, err)
	}
	have := map[string]bool{}
	for _, en := range ents {
		have[strings.TrimPrefix(en.Address, opts.Stack+"/")] = true
	}
	// Objects fiat can read are imported as import blocks are; the others
	// take the state's values.
	cfg := *opts.Config
	cfg.Imports = append([]*hcl.Import(nil), cfg.Imports...)
	known := map[string]planner.Imported{}
	for _, o := range objs {
		if have[o.addr] {
			continue // the stack manages it already
		}
		if schemas[o.provider].Local {
			st, err := localState(o, cfg, schemas)
			if err != nil {
				return nil, nil, err
			}
			known[o.addr] = planner.Imported{ID: o.id, State: st}
		}
		to, diags := hcl.ParseAddress(o.addr)
		if diags.HasErrors() {
			return nil, nil, fmt.Errorf("import state: address %s: %s", o.addr, diags.Error())
		}
		if _, ok := cfg.Resources[to.Resource()]; !ok {
			return nil, nil, fmt.Errorf("import state: the state manages %s, which the configuration does not declare; nothing was imported", o.addr)
		}
		rng := hcl2.Range{Filename: "terraform state", Start: hcl2.InitialPos, End: hcl2.InitialPos}
		cfg.Imports = append(cfg.Imports, &hcl.Import{To: to, ID: hcl2.StaticExpr(cty.StringVal(o.id), rng), DeclRange: rng})
	}
	plan, err := e.Plan(ctx, store, PlanOptions{Stack: opts.Stack, Config: &cfg, Imported: known})
	if err != nil {
		return nil, nil, err
	}
	// Record what was found; change nothing.
	steps := plan.Steps[:0]
	for _, s := range plan.Steps {
		switch {
		case s.Imported:
			s.Action, s.After, s.ForceNew, s.RestartNeeded = planner.Import, s.Before, nil, nil
			steps = append(steps, s)
		case s.Action == planner.NoOp || s.Action == planner.Read && !s.ReadAtApply:
			steps = append(steps, s) // a read that waits for a create has nothing to wait for here
		}
	}
	plan.Steps = steps
	res, err := e.Apply(ctx, store, ApplyOptions{Stack: opts.Stack, Config: &cfg, Plan: plan, Command: "import-tfstate", PlanID: "tfstate", Events: opts.Events})
	return plan, res, err
}

// localState converts a store-only object's attributes from the state file
// to its fiat schema: attributes fiat's schema lacks are dropped, missing
// ones are null.
func localState(o tfObject, cfg hcl.Config, schemas map[string]providers.Schema) (cty.Value, error) {
	r, _, err := hcl.SplitInstance(o.addr)
	if err != nil {
		return cty.NilVal, err
	}
	res := cfg.Resources[r]
	if res == nil {
		return cty.NilVal, fmt.Errorf("import state: the state manages %s, which the configuration does not declare; nothing was imported", o.addr)
	}
	rs, ok := schemas[o.provider].Resources[res.Type]
	if !ok {
		return cty.NilVal, fmt.Errorf("import state: provider %s has no resource type %s", o.provider, res.Type)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(o.attrs, &raw); err != nil {
		return cty.NilVal, fmt.Errorf("import state %s: %w", o.addr, err)
	}
	attrs := map[string]cty.Value{}
	for name, a := range rs.Attributes {
		t := a.Type.WithoutOptionalAttributesDeep()
		v := cty.NullVal(t)
		if b, ok := raw[name]; ok && string(b) != "null" {
			if t == cty.DynamicPseudoType {
				var sv ctyjson.SimpleJSONValue
				if err := json.Unmarshal(b, &sv); err != nil {
					return cty.NilVal, fmt.Errorf("import state %s: attribute %s: %w", o.addr, name, err)
				}
				v = sv.Value
			} else if v, err = ctyjson.Unmarshal(b, t); err != nil {
				return cty.NilVal, fmt.Errorf("import state %s: attribute %s: %w", o.addr, name, err)
			}
		}
		attrs[name] = v
	}
	return cty.ObjectVal(attrs), nil
}
