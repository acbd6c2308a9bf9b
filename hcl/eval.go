package hcl

import (
	"fmt"
	"sort"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Values are the values of resources known so far, keyed by "type.name".
// A resource not yet created is absent or holds unknown attributes.
type Values map[string]cty.Value

// EvalResource decodes a resource's body against spec, resolving references
// with vals. Only what the body references is put into the evaluation
// context, so evaluating N resources costs O(N), not O(N²).
func (c *Config) EvalResource(addr string, spec hcldec.Spec, vals Values) (cty.Value, hcl2.Diagnostics) {
	r, ok := c.Resources[addr]
	if !ok {
		return cty.NilVal, errorDiag("Unknown resource", fmt.Sprintf("No resource %s in the configuration.", addr), nil)
	}
	trav := hcldec.Variables(r.Body, spec)
	ctx, diags := c.evalContext(trav, vals, map[string]bool{})
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, d := hcldec.Decode(r.Body, spec, ctx)
	return v, append(diags, d...)
}

// EvalProvider decodes a provider block's body against spec. Providers may
// reference variables and locals, not resources.
func (c *Config) EvalProvider(addr string, spec hcldec.Spec) (cty.Value, hcl2.Diagnostics) {
	p, ok := c.Providers[addr]
	if !ok {
		// No block: the provider's defaults apply.
		return hcldec.Decode(hcl2.EmptyBody(), spec, nil)
	}
	ctx, diags := c.evalContext(hcldec.Variables(p.Config, spec), nil, map[string]bool{})
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, d := hcldec.Decode(p.Config, spec, ctx)
	return v, append(diags, d...)
}

// EvalOutputs evaluates every output with the final resource values.
func (c *Config) EvalOutputs(vals Values) (map[string]cty.Value, hcl2.Diagnostics) {
	out := make(map[string]cty.Value, len(c.Outputs))
	var diags hcl2.Diagnostics
	for _, name := range sortedKeys(c.Outputs) {
		o := c.Outputs[name]
		ctx, d := c.evalContext(o.Expr.Variables(), vals, map[string]bool{})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		v, d := o.Expr.Value(ctx)
		diags = append(diags, d...)
		out[name] = v
	}
	return out, diags
}

// evalContext builds a context holding just what traversals reference.
func (c *Config) evalContext(travs []hcl2.Traversal, vals Values, evaluating map[string]bool) (*hcl2.EvalContext, hcl2.Diagnostics) {
	ctx := &hcl2.EvalContext{Variables: map[string]cty.Value{}, Functions: functions}
	var diags hcl2.Diagnostics
	locals := map[string]cty.Value{}
	byType := map[string]map[string]cty.Value{}
	for _, t := range travs {
		root := t.RootName()
		switch root {
		case "var":
			ctx.Variables["var"] = c.vars
		case "local":
			name, ok := attrStep(t, 1)
			if !ok {
				diags = append(diags, errorDiag("Invalid reference", "A local value is referenced as local.NAME.", t.SourceRange().Ptr())...)
				continue
			}
			if _, done := locals[name]; done {
				continue
			}
			v, d := c.evalLocal(name, t.SourceRange(), vals, evaluating)
			diags = append(diags, d...)
			locals[name] = v
		default:
			if !c.isResourceType(root) {
				continue // checkReferences reported it at load
			}
			name, ok := attrStep(t, 1)
			if !ok {
				continue
			}
			if byType[root] == nil {
				byType[root] = map[string]cty.Value{}
			}
			v, ok := vals[root+"."+name]
			if !ok {
				v = cty.DynamicVal
			}
			byType[root][name] = v
		}
	}
	if len(locals) > 0 {
		ctx.Variables["local"] = cty.ObjectVal(locals)
	}
	for typ, m := range byType {
		ctx.Variables[typ] = cty.ObjectVal(m)
	}
	return ctx, diags
}

func (c *Config) evalLocal(name string, at hcl2.Range, vals Values, evaluating map[string]bool) (cty.Value, hcl2.Diagnostics) {
	l, ok := c.Locals[name]
	if !ok {
		return cty.DynamicVal, nil // reported by checkReferences
	}
	if evaluating[name] {
		return cty.DynamicVal, errorDiag("Cycle in local values",
			fmt.Sprintf("local.%s refers to itself, directly or through other locals.", name), at.Ptr())
	}
	evaluating[name] = true
	defer delete(evaluating, name)
	ctx, diags := c.evalContext(l.Expr.Variables(), vals, evaluating)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, d := l.Expr.Value(ctx)
	return v, append(diags, d...)
}

func (c *Config) isResourceType(name string) bool { return c.types[name] }

func attrStep(t hcl2.Traversal, i int) (string, bool) {
	if len(t) <= i {
		return "", false
	}
	a, ok := t[i].(hcl2.TraverseAttr)
	if !ok {
		return "", false
	}
	return a.Name, true
}

// Dependencies lists the resources a resource refers to, directly or through
// locals, plus its depends_on, sorted.
func (c *Config) Dependencies(addr string) []string {
	r := c.Resources[addr]
	if r == nil {
		return nil
	}
	set := map[string]bool{}
	for _, d := range r.DependsOn {
		set[d] = true
	}
	c.collectDeps(bodyTraversals(r.Body), set, map[string]bool{})
	delete(set, addr)
	out := make([]string, 0, len(set))
	for a := range set {
		out = append(out, a)
	}
	sort.Strings(out)
	return out
}

func (c *Config) collectDeps(travs []hcl2.Traversal, set map[string]bool, seenLocals map[string]bool) {
	for _, t := range travs {
		root := t.RootName()
		name, ok := attrStep(t, 1)
		if !ok {
			continue
		}
		if root == "local" {
			if l := c.Locals[name]; l != nil && !seenLocals[name] {
				seenLocals[name] = true
				c.collectDeps(l.Expr.Variables(), set, seenLocals)
			}
			continue
		}
		if _, ok := c.Resources[root+"."+name]; ok {
			set[root+"."+name] = true
		}
	}
}

// bodyTraversals walks every attribute of a native-syntax body and its nested
// blocks; meta-arguments (provider, depends_on) are not references to values.
func bodyTraversals(b hcl2.Body) []hcl2.Traversal {
	sb, ok := b.(*hclsyntax.Body)
	if !ok {
		return nil
	}
	var out []hcl2.Traversal
	var walk func(*hclsyntax.Body, bool)
	walk = func(body *hclsyntax.Body, top bool) {
		for name, attr := range body.Attributes {
			if top && (name == "provider" || name == "depends_on") {
				continue
			}
			out = append(out, attr.Expr.Variables()...)
		}
		for _, blk := range body.Blocks {
			walk(blk.Body, false)
		}
	}
	walk(sb, true)
	return out
}
