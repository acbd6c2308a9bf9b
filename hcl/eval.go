package hcl

import (
	"fmt"
	"math/big"
	"os"
	"path/filepath"
	"sort"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/dynblock"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Values are the values of resource instances known so far, keyed by
// instance address ("type.name", "type.name[0]", "module.m.data.t.n").
// An instance that is absent is not known yet: its value is unknown.
type Values map[string]cty.Value

// ExpandMode says how a resource becomes instances.
type ExpandMode int

const (
	Single  ExpandMode = iota // one instance, no key
	Counted                   // count: keys 0..n-1
	ForEach                   // for_each: string keys
)

// Expansion is the instances of one resource.
type Expansion struct {
	Mode ExpandMode
	Keys []cty.Value // sorted; nil for Single
	each map[string]cty.Value
}

// Instances lists the instance addresses of resource addr.
func (x *Expansion) Instances(addr string) []string {
	if x.Mode == Single {
		return []string{addr}
	}
	out := make([]string, len(x.Keys))
	for i, k := range x.Keys {
		out[i] = InstanceAddr(addr, k)
	}
	return out
}

// Evaluator evaluates a Config's expressions against resource values. It
// puts into each expression's scope only what the expression references, so
// evaluating N resources costs O(N). Locals, module inputs and outputs are
// evaluated once and remembered: give an Evaluator values only in
// dependency order (as the planner does), or use a new one per evaluation.
// An Evaluator is not safe for concurrent use; a Config is.
type Evaluator struct {
	lenient    bool
	cfg        *Config
	vals       Values
	exps       map[string]*Expansion
	keys       map[string]*Expansion // instance keys known from a plan
	memo       map[node]cty.Value
	evaluating map[node]bool
}

// NewEvaluator returns an evaluator over vals (nil: nothing known yet).
func (c *Config) NewEvaluator(vals Values) *Evaluator {
	if vals == nil {
		vals = Values{}
	}
	return &Evaluator{cfg: c, vals: vals, exps: map[string]*Expansion{}, memo: map[node]cty.Value{}, evaluating: map[node]bool{}}
}

// Config is the configuration the evaluator evaluates.
func (e *Evaluator) Config() *Config { return e.cfg }

// SetLenient makes a count or for_each known only after apply expand to no
// instances instead of failing (for validating a configuration).
func (e *Evaluator) SetLenient(on bool) { e.lenient = on }

// Set records the value of an instance.
func (e *Evaluator) Set(addr string, v cty.Value) { e.vals[addr] = v }

// Values are the instance values recorded so far.
func (e *Evaluator) Values() Values { return e.vals }

// SetInstances tells the evaluator a resource's instance keys without
// evaluating its count or for_each (they come from a plan). keys is nil for
// a resource without count or for_each.
func (e *Evaluator) SetInstances(resource string, mode ExpandMode, keys []cty.Value) {
	if e.keys == nil {
		e.keys = map[string]*Expansion{}
	}
	e.keys[resource] = &Expansion{Mode: mode, Keys: keys}
}

// Expand evaluates a resource's count or for_each into its instances.
func (e *Evaluator) Expand(resource string) (*Expansion, hcl2.Diagnostics) {
	if x, ok := e.exps[resource]; ok {
		return x, nil
	}
	r := e.cfg.Resources[resource]
	if r == nil {
		return nil, errorDiag("Unknown resource", fmt.Sprintf("No resource %s in the configuration.", resource), nil)
	}
	// A count or for_each that needs its own resource's instances (count =
	// length(thing.a[*].id)) cannot be worked out: an error, not endless
	// recursion.
	self := node{kind: nodeExpand, name: resource}
	if e.evaluating[self] {
		rng := r.DeclRange
		if r.Count != nil {
			rng = r.Count.Range()
		} else if r.ForEach != nil {
			rng = r.ForEach.Range()
		}
		return nil, errorDiag("Self-referential count or for_each",
			fmt.Sprintf("The number of instances of %s depends on %s itself.", resource, resource), &rng)
	}
	e.evaluating[self] = true
	defer delete(e.evaluating, self)
	var x *Expansion
	var diags hcl2.Diagnostics
	switch {
	case r.Count != nil:
		x, diags = e.expandCount(r)
	case r.ForEach != nil:
		x, diags = e.expandForEach(r)
	default:
		x = &Expansion{Mode: Single}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	e.exps[resource] = x
	return x, diags
}

// metaValue evaluates a meta-argument (count, for_each) in its module's scope.
func (e *Evaluator) metaValue(r *Resource, expr hcl2.Expression) (cty.Value, hcl2.Diagnostics) {
	ctx, diags := e.scope(r.Module, r.metaRefs, nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, d := expr.Value(ctx)
	return v, append(diags, d...)
}

// MaxInstances is the most instances count or for_each may give one
// resource: planning holds every instance in memory, and a typo such as
// count = 1e8 must fail with a clear error, not exhaust the machine.
const MaxInstances = 10000

func (e *Evaluator) expandCount(r *Resource) (*Expansion, hcl2.Diagnostics) {
	v, diags := e.metaValue(r, r.Count)
	if diags.HasErrors() {
		return nil, diags
	}
	rng := r.Count.Range().Ptr()
	bad := func(detail string) (*Expansion, hcl2.Diagnostics) {
		return nil, append(diags, errorDiag("Invalid count argument", detail, rng)...)
	}
	if v.HasMark(Sensitive) || v.ContainsMarked() {
		return bad("count is derived from a sensitive value; the number of instances would reveal it.")
	}
	if !v.IsKnown() && e.lenient {
		return &Expansion{Mode: Counted}, diags
	}
	if !v.IsKnown() {
		return bad("The count value depends on values that are known only after apply. Make count depend on variables, locals or data sources only, or apply the resources it depends on first (fiat apply -target).")
	}
	if v.IsNull() {
		return bad("count must be a whole number, not null.")
	}
	n, err := convert.Convert(v, cty.Number)
	if err != nil {
		return bad(fmt.Sprintf("count must be a whole number: %s.", err))
	}
	bf := n.AsBigFloat()
	if !bf.IsInt() || bf.Sign() < 0 {
		return bad(fmt.Sprintf("count must be a whole number, 0 or more, not %s.", bf.Text('f', -1)))
	}
	if bf.Cmp(big.NewFloat(MaxInstances)) > 0 {
		return bad(fmt.Sprintf("count is %s; fiat plans at most %d instances of one resource.", bf.Text('g', 6), MaxInstances))
	}
	cnt, _ := bf.Int64()
	x := &Expansion{Mode: Counted, Keys: make([]cty.Value, cnt)}
	for i := range x.Keys {
		x.Keys[i] = intKey(i)
	}
	return x, diags
}

func (e *Evaluator) expandForEach(r *Resource) (*Expansion, hcl2.Diagnostics) {
	v, diags := e.metaValue(r, r.ForEach)
	if diags.HasErrors() {
		return nil, diags
	}
	rng := r.ForEach.Range().Ptr()
	bad := func(summary, detail string) (*Expansion, hcl2.Diagnostics) {
		return nil, append(diags, errorDiag(summary, detail, rng)...)
	}
	if v.HasMark(Sensitive) {
		return bad("Invalid for_each argument", "for_each is derived from a sensitive value; instance keys appear in addresses and plans, so they cannot be sensitive.")
	}
	if !v.IsWhollyKnown() && e.lenient {
		return &Expansion{Mode: ForEach, each: map[string]cty.Value{}}, diags
	}
	if !v.IsKnown() {
		return bad("Invalid for_each argument", "The for_each value depends on values that are known only after apply, so fiat cannot tell which instances to plan. Use keys that come from variables, locals or data sources.")
	}
	if v.IsNull() {
		return bad("Invalid for_each argument", "for_each must be a map or a set of strings, not null.")
	}
	ty := v.Type()
	if (ty.IsMapType() || ty.IsSetType() || ty.IsObjectType()) && v.IsKnown() && v.LengthInt() > MaxInstances {
		return bad("Invalid for_each argument", fmt.Sprintf("for_each has %d elements; fiat plans at most %d instances of one resource.", v.LengthInt(), MaxInstances))
	}
	x := &Expansion{Mode: ForEach, each: map[string]cty.Value{}}
	switch {
	case ty.IsMapType() || ty.IsObjectType():
		for it := v.ElementIterator(); it.Next(); {
			k, val := it.Element()
			x.Keys = append(x.Keys, k)
			x.each[keyIndex(k)] = val
		}
	case ty.IsSetType():
		if !v.IsWhollyKnown() {
			return bad("Invalid for_each argument", "The for_each set includes values that are known only after apply; every key must be known while planning.")
		}
		if ty.ElementType() != cty.String && ty.ElementType() != cty.DynamicPseudoType {
			return bad("Invalid for_each set argument",
				fmt.Sprintf("for_each supports sets of strings, but this set holds %s values; convert them, e.g. toset([for x in ... : tostring(x)]).", ty.ElementType().FriendlyName()))
		}
		for it := v.ElementIterator(); it.Next(); {
			_, el := it.Element()
			if el.IsMarked() {
				return bad("Invalid for_each argument", "A for_each key is derived from a sensitive value; keys appear in addresses and plans.")
			}
			if el.IsNull() {
				return bad("Invalid for_each set argument", "The for_each set holds a null value; every key must be a string.")
			}
			if el.Type() != cty.String {
				return bad("Invalid for_each set argument", fmt.Sprintf("for_each keys must be strings, not %s.", el.Type().FriendlyName()))
			}
			x.Keys = append(x.Keys, el)
			x.each[keyIndex(el)] = el
		}
	case ty.IsListType() || ty.IsTupleType():
		return bad("Invalid for_each argument",
			"for_each supports maps and sets of strings, but this is a list (a tuple): its elements have no keys. Convert it with toset(...), or build a map with a for expression.")
	default:
		return bad("Invalid for_each argument", fmt.Sprintf("for_each supports maps and sets of strings, not %s.", ty.FriendlyName()))
	}
	sort.Slice(x.Keys, func(i, j int) bool { return keyLess(x.Keys[i], x.Keys[j]) })
	return x, diags
}

// instance is what count.index / each.key / each.value mean in one
// instance's body.
type instance struct {
	count  cty.Value
	key    cty.Value
	value  cty.Value
	isEach bool
}

func (e *Evaluator) instanceOf(r *Resource, key cty.Value) (*instance, hcl2.Diagnostics) {
	switch {
	case r.Count != nil:
		if key == cty.NilVal || key.Type() != cty.Number {
			return nil, errorDiag("Missing instance key", fmt.Sprintf("%s has count; its instances are %s[0], %s[1], ...", r.Addr(), r.Addr(), r.Addr()), r.DeclRange.Ptr())
		}
		return &instance{count: key}, nil
	case r.ForEach != nil:
		if key == cty.NilVal || key.Type() != cty.String {
			return nil, errorDiag("Missing instance key", fmt.Sprintf("%s has for_each; its instances are %s[\"key\"].", r.Addr(), r.Addr()), r.DeclRange.Ptr())
		}
		x, diags := e.Expand(r.Addr())
		if diags.HasErrors() {
			return nil, diags
		}
		val, ok := x.each[keyIndex(key)]
		if !ok {
			return nil, errorDiag("Instance not in for_each", fmt.Sprintf("%s has no key %s any more.", r.Addr(), Quote(key.AsString())), r.ForEach.Range().Ptr())
		}
		return &instance{key: key, value: val, isEach: true}, nil
	}
	if key != cty.NilVal {
		return nil, errorDiag("Unexpected instance key", fmt.Sprintf("%s has neither count nor for_each, so it has no %s.", r.Addr(), KeyString(key)), r.DeclRange.Ptr())
	}
	return nil, nil
}

// EvalInstance decodes one instance of a resource or data block against
// spec. The result may carry the Sensitive mark where it derives from
// sensitive values.
func (e *Evaluator) EvalInstance(resource string, key cty.Value, spec hcldec.Spec) (cty.Value, hcl2.Diagnostics) {
	r, ok := e.cfg.Resources[resource]
	if !ok {
		return cty.NilVal, errorDiag("Unknown resource", fmt.Sprintf("No resource %s in the configuration.", resource), nil)
	}
	inst, diags := e.instanceOf(r, key)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	ctx, d := e.scope(r.Module, r.refs, inst)
	diags = append(diags, d...)
	if d.HasErrors() {
		return cty.NilVal, diags
	}
	body := r.Body
	if r.dynamic {
		body = dynblock.Expand(body, ctx)
	}
	v, d := hcldec.Decode(body, spec, ctx)
	return v, append(diags, d...)
}

// EvalResource decodes a resource instance ("type.name" or "type.name[0]")
// against spec, resolving references with vals.
func (c *Config) EvalResource(addr string, spec hcldec.Spec, vals Values) (cty.Value, hcl2.Diagnostics) {
	res, key, err := SplitInstance(addr)
	if err != nil {
		return cty.NilVal, errorDiag("Invalid address", err.Error(), nil)
	}
	return c.NewEvaluator(vals).EvalInstance(res, key, spec)
}

// EvalProvider decodes a provider block's body against spec. Providers may
// reference variables and locals, not resources.
func (c *Config) EvalProvider(addr string, spec hcldec.Spec) (cty.Value, hcl2.Diagnostics) {
	p, ok := c.Providers[addr]
	if !ok {
		// No block: the provider's defaults apply.
		return hcldec.Decode(hcl2.EmptyBody(), spec, nil)
	}
	e := c.NewEvaluator(nil)
	ctx, diags := e.scope("", c.providerRefs(addr), nil)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	v, d := hcldec.Decode(p.Config, spec, ctx)
	v, _ = v.UnmarkDeep()
	return v, append(diags, d...)
}

// EvalImportID evaluates an import block's id.
func (e *Evaluator) EvalImportID(im *Import) (string, hcl2.Diagnostics) {
	ctx, diags := e.scope("", im.refs, nil)
	if diags.HasErrors() {
		return "", diags
	}
	v, d := im.ID.Value(ctx)
	diags = append(diags, d...)
	if d.HasErrors() {
		return "", diags
	}
	v, _ = v.Unmark()
	s, err := convert.Convert(v, cty.String)
	if err != nil || !s.IsKnown() || s.IsNull() {
		return "", append(diags, errorDiag("Invalid import id", "The id must be a string known while planning.", im.ID.Range().Ptr())...)
	}
	return s.AsString(), diags
}

// EvalOutputs evaluates every root output with the resource values given.
// Sensitive outputs carry the Sensitive mark.
func (c *Config) EvalOutputs(vals Values) (map[string]cty.Value, hcl2.Diagnostics) {
	return c.NewEvaluator(vals).EvalOutputs()
}

// EvalOutputs evaluates every root output.
func (e *Evaluator) EvalOutputs() (map[string]cty.Value, hcl2.Diagnostics) {
	outs := e.cfg.Outputs
	out := make(map[string]cty.Value, len(outs))
	var diags hcl2.Diagnostics
	for _, name := range sortedKeys(outs) {
		v, d := e.outputValue(outs[name])
		diags = append(diags, d...)
		out[name] = v
	}
	return out, diags
}

func (e *Evaluator) outputValue(o *Output) (cty.Value, hcl2.Diagnostics) {
	if o.Expr == nil {
		return cty.NullVal(cty.DynamicPseudoType), nil
	}
	ctx, diags := e.scope(o.Module, o.refs, nil)
	if diags.HasErrors() {
		return cty.DynamicVal, diags
	}
	v, d := o.Expr.Value(ctx)
	diags = append(diags, d...)
	if d.HasErrors() {
		return cty.DynamicVal, diags
	}
	if o.Sensitive {
		return v.Mark(Sensitive), diags
	}
	if v.ContainsMarked() {
		diags = append(diags, errorDiag("Output refers to sensitive values",
			fmt.Sprintf("Output %q shows values derived from sensitive ones; mark it sensitive = true if that is intended.", o.Name),
			o.DeclRange.Ptr())...)
		return cty.DynamicVal, diags
	}
	return v, diags
}

// scope builds an evaluation context holding just what refs reference.
func (e *Evaluator) scope(mod string, refs []Ref, inst *instance) (*hcl2.EvalContext, hcl2.Diagnostics) {
	ctx := &hcl2.EvalContext{Variables: make(map[string]cty.Value, 2), Functions: e.cfg.funcs}
	if len(refs) == 0 {
		return ctx, nil
	}
	var diags hcl2.Diagnostics
	m := e.cfg.Modules[mod]
	var (
		vars, locals map[string]cty.Value
		modules      map[string]map[string]cty.Value
		byType       map[string]map[string]cty.Value
		data         map[string]map[string]cty.Value
	)
	set := func(mp *map[string]map[string]cty.Value, outer, inner string, v cty.Value) {
		if *mp == nil {
			*mp = map[string]map[string]cty.Value{}
		}
		if (*mp)[outer] == nil {
			(*mp)[outer] = map[string]cty.Value{}
		}
		(*mp)[outer][inner] = v
	}
	for _, r := range refs {
		if r.Malformed != "" && !(r.Kind == RefVar && mod == "") {
			continue // reported by checkReferences
		}
		switch r.Kind {
		case RefVar:
			if mod == "" {
				ctx.Variables["var"] = e.cfg.inputsObj
				continue
			}
			if vars == nil {
				vars = map[string]cty.Value{}
			}
			if _, done := vars[r.Name]; !done {
				v, d := e.moduleVar(mod, r.Name)
				diags = append(diags, d...)
				vars[r.Name] = v
			}
		case RefLocal:
			if locals == nil {
				locals = map[string]cty.Value{}
			}
			if _, done := locals[r.Name]; !done {
				v, d := e.local(mod, r.Name)
				diags = append(diags, d...)
				locals[r.Name] = v
			}
		case RefModule:
			call := m.Calls[r.Name]
			if call == nil {
				continue
			}
			child := e.cfg.Modules[call.Path]
			if r.Output != "" {
				if o := child.Outputs[r.Output]; o != nil {
					v, d := e.moduleOutput(o)
					diags = append(diags, d...)
					set(&modules, r.Name, r.Output, v)
				}
				continue
			}
			for _, on := range sortedKeys(child.Outputs) {
				v, d := e.moduleOutput(child.Outputs[on])
				diags = append(diags, d...)
				set(&modules, r.Name, on, v)
			}
		case RefData:
			set(&data, r.Type, r.Name, e.resourceValue(r.Resource(mod)))
		case RefCount:
			if inst != nil && inst.count != cty.NilVal {
				ctx.Variables["count"] = cty.ObjectVal(map[string]cty.Value{"index": inst.count})
			}
		case RefEach:
			if inst != nil && inst.isEach {
				ctx.Variables["each"] = cty.ObjectVal(map[string]cty.Value{"key": inst.key, "value": inst.value})
			}
		case RefPath:
			ctx.Variables["path"] = e.cfg.pathObject(m)
		case RefResource:
			set(&byType, r.Type, r.Name, e.resourceValue(r.Resource(mod)))
		}
	}
	if vars != nil {
		ctx.Variables["var"] = cty.ObjectVal(vars)
	}
	if locals != nil {
		ctx.Variables["local"] = cty.ObjectVal(locals)
	}
	for _, pair := range []struct {
		root string
		m    map[string]map[string]cty.Value
	}{{"module", modules}, {"data", data}} {
		if pair.m == nil {
			continue
		}
		outer := make(map[string]cty.Value, len(pair.m))
		for k, inner := range pair.m {
			outer[k] = cty.ObjectVal(inner)
		}
		ctx.Variables[pair.root] = cty.ObjectVal(outer)
	}
	for typ, inner := range byType {
		ctx.Variables[typ] = cty.ObjectVal(inner)
	}
	return ctx, diags
}

// ResourceDir is the absolute directory of the module that declares a
// resource: what its relative file paths are relative to.
func (c *Config) ResourceDir(resource string) string {
	if r := c.Resources[resource]; r != nil {
		if m := c.Modules[r.Module]; m != nil {
			return filepath.Join(c.absDir(), filepath.FromSlash(m.Dir))
		}
	}
	return c.absDir()
}

// pathObject is path.module, path.root and path.cwd. module and root are
// absolute, so "${path.module}/file" names the same file from any working
// directory (the file functions read a relative path from the root).
func (c *Config) pathObject(m *Module) cty.Value {
	cwd, _ := os.Getwd()
	root := c.absDir()
	return cty.ObjectVal(map[string]cty.Value{
		"module": cty.StringVal(filepath.Join(root, filepath.FromSlash(m.Dir))),
		"root":   cty.StringVal(root),
		"cwd":    cty.StringVal(cwd),
	})
}

// absDir is the root module's directory, absolute (resolved once, at
// load: the working directory it is relative to does not change).
func (c *Config) absDir() string {
	if c.root != "" {
		return c.root
	}
	if abs, err := filepath.Abs(c.Dir); err == nil {
		return abs
	}
	return c.Dir
}

// resourceValue is what a reference to a whole resource sees: its one
// instance, a tuple (count) or an object by key (for_each).
func (e *Evaluator) resourceValue(addr string) cty.Value {
	r := e.cfg.Resources[addr]
	if r == nil {
		return cty.DynamicVal
	}
	if !r.Expanded() {
		return e.instanceValue(addr)
	}
	x := e.keys[addr]
	if x == nil {
		var diags hcl2.Diagnostics
		if x, diags = e.Expand(addr); diags.HasErrors() {
			return cty.DynamicVal
		}
	}
	if x.Mode == Counted {
		if len(x.Keys) == 0 {
			return cty.EmptyTupleVal
		}
		els := make([]cty.Value, len(x.Keys))
		for i, k := range x.Keys {
			els[i] = e.instanceValue(InstanceAddr(addr, k))
		}
		return cty.TupleVal(els)
	}
	if len(x.Keys) == 0 {
		return cty.EmptyObjectVal
	}
	attrs := make(map[string]cty.Value, len(x.Keys))
	for _, k := range x.Keys {
		attrs[k.AsString()] = e.instanceValue(InstanceAddr(addr, k))
	}
	return cty.ObjectVal(attrs)
}

func (e *Evaluator) instanceValue(addr string) cty.Value {
	if v, ok := e.vals[addr]; ok && v != cty.NilVal {
		return v
	}
	return cty.DynamicVal
}

func (e *Evaluator) remember(n node, eval func() (cty.Value, hcl2.Diagnostics)) (cty.Value, hcl2.Diagnostics) {
	if v, ok := e.memo[n]; ok {
		return v, nil
	}
	if e.evaluating[n] {
		return cty.DynamicVal, errorDiag("Dependency cycle", fmt.Sprintf("%s refers to itself.", e.cfg.describeNode(n)), nil)
	}
	e.evaluating[n] = true
	v, diags := eval()
	delete(e.evaluating, n)
	e.memo[n] = v
	return v, diags
}

func (e *Evaluator) local(mod, name string) (cty.Value, hcl2.Diagnostics) {
	l := e.cfg.Modules[mod].Locals[name]
	if l == nil {
		return cty.DynamicVal, nil // reported by checkReferences
	}
	return e.remember(node{kind: nodeLocal, mod: mod, name: name}, func() (cty.Value, hcl2.Diagnostics) {
		ctx, diags := e.scope(mod, l.refs, nil)
		if diags.HasErrors() {
			return cty.DynamicVal, diags
		}
		v, d := l.Expr.Value(ctx)
		return v, append(diags, d...)
	})
}

func (e *Evaluator) moduleVar(mod, name string) (cty.Value, hcl2.Diagnostics) {
	m := e.cfg.Modules[mod]
	v := m.Variables[name]
	if v == nil {
		return cty.DynamicVal, nil
	}
	return e.remember(node{kind: nodeVar, mod: mod, name: name}, func() (cty.Value, hcl2.Diagnostics) {
		val := v.Default
		var diags hcl2.Diagnostics
		if arg, ok := m.Call.Args[name]; ok {
			ctx, d := e.scope(m.Call.Parent, m.Call.argRefs[name], nil)
			diags = append(diags, d...)
			if d.HasErrors() {
				return cty.DynamicVal, diags
			}
			x, d := arg.Expr.Value(ctx)
			diags = append(diags, d...)
			if d.HasErrors() {
				return cty.DynamicVal, diags
			}
			if !(x.IsKnown() && x.IsNull() && v.Default != cty.NilVal) {
				conv, err := v.convert(x)
				if err != nil {
					return cty.DynamicVal, append(diags, errorDiag("Invalid value for module argument",
						fmt.Sprintf("The value for variable %q of module %s does not match its type: %s.", name, mod, err), arg.Expr.Range().Ptr())...)
				}
				val = conv
			}
		}
		if v.Sensitive {
			val = val.Mark(Sensitive)
		}
		diags = append(diags, e.cfg.validateVariable(v, val, map[string]cty.Value{}, mod+" module block")...)
		return val, diags
	})
}

func (e *Evaluator) moduleOutput(o *Output) (cty.Value, hcl2.Diagnostics) {
	return e.remember(node{kind: nodeOutput, mod: o.Module, name: o.Name}, func() (cty.Value, hcl2.Diagnostics) {
		if o.Expr == nil {
			return cty.NullVal(cty.DynamicPseudoType), nil
		}
		ctx, diags := e.scope(o.Module, o.refs, nil)
		if diags.HasErrors() {
			return cty.DynamicVal, diags
		}
		v, d := o.Expr.Value(ctx)
		diags = append(diags, d...)
		if o.Sensitive {
			v = v.Mark(Sensitive)
		}
		return v, diags
	})
}
