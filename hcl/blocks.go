package hcl

import (
	"fmt"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

func (c *Config) addProvider(b *hcl2.Block) hcl2.Diagnostics {
	p := &Provider{Name: b.Labels[0], DeclRange: b.DefRange}
	// alias is a meta-argument; the rest belongs to the provider.
	content, rest, diags := b.Body.PartialContent(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{{Name: "alias"}},
	})
	p.Config = rest
	diags = append(diags, staticString(content.Attributes["alias"], &p.Alias)...)
	if prev, ok := c.Providers[p.Addr()]; ok {
		return append(diags, duplicate("provider", p.Addr(), b.DefRange, prev.DeclRange)...)
	}
	c.Providers[p.Addr()] = p
	return diags
}

func addVariable(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	v := &Variable{Name: b.Labels[0], Module: m.Path, Type: cty.DynamicPseudoType, DeclRange: b.DefRange}
	content, diags := b.Body.Content(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{
			{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"}, {Name: "nullable"},
		},
		Blocks: []hcl2.BlockHeaderSchema{{Type: "validation"}},
	})
	if !hclsyntax.ValidIdentifier(v.Name) {
		diags = append(diags, errorDiag("Invalid variable name", "A name must start with a letter or underscore and may contain only letters, digits, underscores, and dashes.", b.LabelRanges[0].Ptr())...)
	}
	if attr, ok := content.Attributes["type"]; ok {
		ty, defs, d := typeexpr.TypeConstraintWithDefaults(attr.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type, v.defaults = ty, typeDefaults{defs}
		}
	}
	if attr, ok := content.Attributes["default"]; ok {
		val, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := v.convert(val)
			if err != nil {
				diags = append(diags, errorDiag("Invalid default value",
					fmt.Sprintf("The default for variable %q does not match its type: %s.", v.Name, err),
					attr.Expr.Range().Ptr())...)
			}
			v.Default = conv
		}
	}
	diags = append(diags, staticString(content.Attributes["description"], &v.Description)...)
	diags = append(diags, staticBool(content.Attributes["sensitive"], &v.Sensitive)...)
	for _, vb := range content.Blocks {
		vc, d := vb.Body.Content(&hcl2.BodySchema{Attributes: []hcl2.AttributeSchema{
			{Name: "condition", Required: true}, {Name: "error_message", Required: true},
		}})
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		v.Validations = append(v.Validations, &Validation{
			Condition: vc.Attributes["condition"].Expr, ErrorMessage: vc.Attributes["error_message"].Expr, DeclRange: vb.DefRange,
		})
	}
	if prev, ok := m.Variables[v.Name]; ok {
		return append(diags, duplicate("variable", v.Name, b.DefRange, prev.DeclRange)...)
	}
	m.Variables[v.Name] = v
	return diags
}

// convert converts a value to the variable's type, filling optional
// attributes' defaults.
func (v *Variable) convert(val cty.Value) (cty.Value, error) {
	if v.defaults.d != nil && !val.IsNull() {
		val = v.defaults.d.Apply(val)
	}
	return convert.Convert(val, v.Type)
}

type typeDefaults struct{ d *typeexpr.Defaults }

func addLocals(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	attrs, diags := b.Body.JustAttributes()
	for _, name := range sortedKeys(attrs) {
		attr := attrs[name]
		if prev, ok := m.Locals[name]; ok {
			diags = append(diags, duplicate("local value", name, attr.NameRange, prev.DeclRange)...)
			continue
		}
		m.Locals[name] = &Local{Name: name, Module: m.Path, Expr: attr.Expr, DeclRange: attr.NameRange}
	}
	return diags
}

var resourceMeta = &hcl2.BodySchema{
	Attributes: []hcl2.AttributeSchema{{Name: "provider"}, {Name: "depends_on"}, {Name: "count"}, {Name: "for_each"}},
	Blocks: []hcl2.BlockHeaderSchema{{Type: "lifecycle"}, {Type: "provisioner", LabelNames: []string{"type"}},
		{Type: "connection"}},
}

var dataMeta = &hcl2.BodySchema{
	Attributes: []hcl2.AttributeSchema{{Name: "provider"}, {Name: "depends_on"}, {Name: "count"}, {Name: "for_each"}},
}

func (c *Config) addResource(m *Module, b *hcl2.Block, mode Mode) hcl2.Diagnostics {
	r := &Resource{Mode: mode, Type: b.Labels[0], Name: b.Labels[1], Module: m.Path, DeclRange: b.DefRange, TypeRange: b.LabelRanges[0]}
	var diags hcl2.Diagnostics
	for i, l := range b.Labels {
		if !hclsyntax.ValidIdentifier(l) {
			diags = append(diags, errorDiag("Invalid name", fmt.Sprintf("%q is not a valid name: use letters, digits, underscores and dashes, starting with a letter.", l), b.LabelRanges[i].Ptr())...)
		}
	}
	schema := resourceMeta
	if mode == Data {
		schema = dataMeta
	}
	content, rest, d := b.Body.PartialContent(schema)
	diags = append(diags, d...)
	r.Body = rest
	r.Provider = providerName(r.Type)
	if attr, ok := content.Attributes["provider"]; ok {
		trav, d := hcl2.AbsTraversalForExpr(attr.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			r.Provider = traversalString(trav)
		}
	}
	if attr, ok := content.Attributes["depends_on"]; ok {
		travs, d := traversalList(attr.Expr)
		diags = append(diags, d...)
		r.dependsOn = travs
	}
	if attr, ok := content.Attributes["count"]; ok {
		r.Count = attr.Expr
	}
	if attr, ok := content.Attributes["for_each"]; ok {
		if r.Count != nil {
			diags = append(diags, errorDiag("Invalid combination of count and for_each",
				"A resource may have count or for_each, not both.", attr.NameRange.Ptr())...)
		}
		r.ForEach = attr.Expr
	}
	for _, lb := range content.Blocks {
		switch lb.Type {
		case "lifecycle":
			diags = append(diags, decodeLifecycle(&r.Lifecycle, lb)...)
		case "provisioner":
			diags = append(diags, r.addProvisioner(lb)...)
		case "connection":
			r.Connection = lb.Body
		}
	}
	r.bodyTravs, r.dynamic = bodyTraversals(rest, metaAttrs, metaBlocks)
	r.bodyTravs = append(r.bodyTravs, r.provisionerTraversals()...)
	addr := r.Addr()
	if prev, ok := c.Resources[addr]; ok {
		kind := "resource"
		if mode == Data {
			kind = "data source"
		}
		return append(diags, duplicate(kind, addr, b.DefRange, prev.DeclRange)...)
	}
	c.Resources[addr] = r
	if mode == Data {
		m.dataTypes[r.Type] = true
	} else {
		m.types[r.Type] = true
	}
	return diags
}

func decodeLifecycle(lc *Lifecycle, b *hcl2.Block) hcl2.Diagnostics {
	content, diags := b.Body.Content(&hcl2.BodySchema{Attributes: []hcl2.AttributeSchema{
		{Name: "prevent_destroy"}, {Name: "create_before_destroy"}, {Name: "ignore_changes"},
	}})
	diags = append(diags, staticBool(content.Attributes["prevent_destroy"], &lc.PreventDestroy)...)
	if a := content.Attributes["prevent_destroy"]; a != nil {
		lc.PreventRange = a.Range
	}
	diags = append(diags, staticBool(content.Attributes["create_before_destroy"], &lc.CreateBeforeDestroy)...)
	if a := content.Attributes["ignore_changes"]; a != nil {
		if kw := hcl2.ExprAsKeyword(a.Expr); kw == "all" {
			lc.IgnoreAll = true
			return diags
		}
		travs, d := traversalList(a.Expr)
		diags = append(diags, d...)
		for _, t := range travs {
			if len(t) > 1 {
				diags = append(diags, warnDiag("Nested path in ignore_changes",
					fmt.Sprintf("fiat ignores changes to whole attributes; %s ignores all of %s.", traversalText(t), t.RootName()), t.SourceRange().Ptr())...)
			}
			lc.IgnoreChanges = append(lc.IgnoreChanges, t.RootName())
		}
	}
	return diags
}

func addOutput(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	o := &Output{Name: b.Labels[0], Module: m.Path, DeclRange: b.DefRange}
	content, diags := b.Body.Content(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{
			{Name: "value", Required: true}, {Name: "sensitive"}, {Name: "description"}, {Name: "depends_on"},
		},
	})
	if attr, ok := content.Attributes["value"]; ok {
		o.Expr = attr.Expr
	}
	if attr, ok := content.Attributes["depends_on"]; ok {
		travs, d := traversalList(attr.Expr)
		diags = append(diags, d...)
		o.DependsOn = travs
	}
	diags = append(diags, staticBool(content.Attributes["sensitive"], &o.Sensitive)...)
	if prev, ok := m.Outputs[o.Name]; ok {
		return append(diags, duplicate("output", o.Name, b.DefRange, prev.DeclRange)...)
	}
	m.Outputs[o.Name] = o
	return diags
}

func addModuleCall(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	name := b.Labels[0]
	call := &ModuleCall{Name: name, Parent: m.Path, Path: modulePrefix(m.Path) + "module." + name,
		Args: map[string]*hcl2.Attribute{}, Providers: map[string]string{}, DeclRange: b.DefRange}
	attrs, diags := b.Body.JustAttributes()
	for _, an := range sortedKeys(attrs) {
		a := attrs[an]
		switch an {
		case "source":
			diags = append(diags, staticString(a, &call.Source)...)
		case "version":
			diags = append(diags, errorDiag("Unsupported argument", "fiat modules are local directories (source = \"./path\"); they have no version.", a.NameRange.Ptr())...)
		case "count", "for_each":
			diags = append(diags, errorDiag("Unsupported argument",
				fmt.Sprintf("fiat does not support %s on module blocks yet; use it on the resources inside the module.", an), a.NameRange.Ptr())...)
		case "depends_on":
			travs, d := traversalList(a.Expr)
			diags = append(diags, d...)
			call.DependsOn = travs
		case "providers":
			diags = append(diags, decodeProviderMap(call, a)...)
		default:
			call.Args[an] = a
		}
	}
	if _, ok := attrs["source"]; !ok {
		diags = append(diags, errorDiag("Missing required argument", "A module block needs source = \"./path\".", b.DefRange.Ptr())...)
	} else if !strings.HasPrefix(call.Source, "./") && !strings.HasPrefix(call.Source, "../") {
		diags = append(diags, errorDiag("Invalid module source",
			fmt.Sprintf("Module source %q is not a local path; fiat loads modules from directories such as \"./modules/net\".", call.Source),
			attrs["source"].Expr.Range().Ptr())...)
	}
	if prev, ok := m.Calls[name]; ok {
		return append(diags, duplicate("module", name, b.DefRange, prev.DeclRange)...)
	}
	if diags.HasErrors() {
		return diags
	}
	m.Calls[name] = call
	return diags
}

func decodeProviderMap(call *ModuleCall, a *hcl2.Attribute) hcl2.Diagnostics {
	pairs, diags := hcl2.ExprMap(a.Expr)
	for _, p := range pairs {
		k, d1 := hcl2.AbsTraversalForExpr(p.Key)
		v, d2 := hcl2.AbsTraversalForExpr(p.Value)
		diags = append(diags, d1...)
		diags = append(diags, d2...)
		if d1.HasErrors() || d2.HasErrors() {
			continue
		}
		call.Providers[traversalString(k)] = traversalString(v)
	}
	return diags
}

func (c *Config) addMoved(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	content, diags := b.Body.Content(&hcl2.BodySchema{Attributes: []hcl2.AttributeSchema{
		{Name: "from", Required: true}, {Name: "to", Required: true},
	}})
	if diags.HasErrors() {
		return diags
	}
	mv := &Moved{DeclRange: b.DefRange}
	for _, side := range []struct {
		name string
		dst  *Address
	}{{"from", &mv.From}, {"to", &mv.To}} {
		attr := content.Attributes[side.name]
		trav, d := hcl2.AbsTraversalForExpr(attr.Expr)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		a, d := addressFromTraversal(trav)
		diags = append(diags, d...)
		if d.HasErrors() {
			continue
		}
		if m.Path != "" {
			a.Module = modulePrefix(m.Path) + a.Module
			a.Module = strings.TrimSuffix(a.Module, ".")
		}
		*side.dst = a
	}
	if diags.HasErrors() {
		return diags
	}
	switch {
	case mv.From.IsModule() != mv.To.IsModule():
		diags = append(diags, errorDiag("Invalid moved block", "A moved block moves a module to a module, or a resource to a resource.", b.DefRange.Ptr())...)
	case mv.From.Mode == Data || mv.To.Mode == Data:
		diags = append(diags, errorDiag("Invalid moved block", "Data sources are not stored; there is nothing to move.", b.DefRange.Ptr())...)
	case !mv.From.IsModule() && mv.From.Type != mv.To.Type:
		diags = append(diags, errorDiag("Resource type mismatch",
			fmt.Sprintf("A moved block cannot change a resource's type (%s to %s); remove the old resource and declare a new one.", mv.From.Type, mv.To.Type),
			b.DefRange.Ptr())...)
	case mv.From.String() == mv.To.String():
		diags = append(diags, errorDiag("Invalid moved block", "from and to are the same address.", b.DefRange.Ptr())...)
	}
	if !diags.HasErrors() {
		c.Moved = append(c.Moved, mv)
	}
	return diags
}

func (c *Config) addImport(b *hcl2.Block) hcl2.Diagnostics {
	content, diags := b.Body.Content(&hcl2.BodySchema{Attributes: []hcl2.AttributeSchema{
		{Name: "to", Required: true}, {Name: "id", Required: true}, {Name: "provider"},
	}})
	if diags.HasErrors() {
		return diags
	}
	im := &Import{ID: content.Attributes["id"].Expr, DeclRange: b.DefRange}
	trav, d := hcl2.AbsTraversalForExpr(content.Attributes["to"].Expr)
	diags = append(diags, d...)
	if d.HasErrors() {
		return diags
	}
	a, d := addressFromTraversal(trav)
	diags = append(diags, d...)
	if d.HasErrors() {
		return diags
	}
	if a.IsModule() || a.Mode == Data {
		return append(diags, errorDiag("Invalid import address", "import { to = ... } names a resource (type.name, or type.name[key]).", trav.SourceRange().Ptr())...)
	}
	im.To = a
	if attr, ok := content.Attributes["provider"]; ok {
		t, d := hcl2.AbsTraversalForExpr(attr.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			im.Provider = traversalString(t)
		}
	}
	c.Imports = append(c.Imports, im)
	return diags
}

// resolveProviders maps each resource's provider, as written in its module,
// to a root provider address, following module blocks' providers = { ... }.
func (c *Config) resolveProviders() hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	for _, addr := range sortedKeys(c.Resources) {
		r := c.Resources[addr]
		p, ok := c.rootProvider(r.Module, r.Provider)
		if !ok {
			diags = append(diags, errorDiag("Reference to undeclared provider",
				fmt.Sprintf("%s uses provider %s, which has no provider block.%s", addr, r.Provider, DidYouMean(r.Provider, keys(c.Providers))),
				r.DeclRange.Ptr())...)
			continue
		}
		r.Provider = p
	}
	for _, im := range c.Imports {
		if im.Provider == "" {
			continue
		}
		if _, ok := c.Providers[im.Provider]; !ok && strings.Contains(im.Provider, ".") {
			diags = append(diags, errorDiag("Reference to undeclared provider",
				fmt.Sprintf("The import block uses provider %s, which has no provider block.", im.Provider), im.DeclRange.Ptr())...)
		}
	}
	return diags
}

// rootProvider follows providers = { child = parent } mappings up to the root.
func (c *Config) rootProvider(modPath, addr string) (string, bool) {
	for modPath != "" {
		m := c.Modules[modPath]
		if m == nil || m.Call == nil {
			break
		}
		if p, ok := m.Call.Providers[addr]; ok {
			addr = p
		} else if strings.Contains(addr, ".") {
			// An alias must be passed in explicitly.
			return addr, false
		}
		modPath = m.Call.Parent
	}
	if _, ok := c.Providers[addr]; ok || !strings.Contains(addr, ".") {
		return addr, true
	}
	return addr, false
}

func duplicate(kind, name string, at, prev hcl2.Range) hcl2.Diagnostics {
	return errorDiag("Duplicate "+kind,
		fmt.Sprintf("A %s named %q was already declared at %s.", kind, name, prev), at.Ptr())
}

func staticString(attr *hcl2.Attribute, dst *string) hcl2.Diagnostics {
	if attr == nil {
		return nil
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	v, err := convert.Convert(v, cty.String)
	if err != nil || v.IsNull() {
		return errorDiag("Invalid value", "A string is required here.", attr.Expr.Range().Ptr())
	}
	*dst = v.AsString()
	return nil
}

func staticBool(attr *hcl2.Attribute, dst *bool) hcl2.Diagnostics {
	if attr == nil {
		return nil
	}
	v, diags := attr.Expr.Value(nil)
	if diags.HasErrors() {
		return diags
	}
	v, err := convert.Convert(v, cty.Bool)
	if err != nil || v.IsNull() {
		return errorDiag("Invalid value", "true or false is required here.", attr.Expr.Range().Ptr())
	}
	*dst = v.True()
	return nil
}

func traversalList(expr hcl2.Expression) ([]hcl2.Traversal, hcl2.Diagnostics) {
	exprs, diags := hcl2.ExprList(expr)
	var out []hcl2.Traversal
	for _, e := range exprs {
		t, d := hcl2.AbsTraversalForExpr(e)
		diags = append(diags, d...)
		if !d.HasErrors() {
			out = append(out, t)
		}
	}
	return out, diags
}

func traversalString(t hcl2.Traversal) string {
	s := t.RootName()
	for _, step := range t[1:] {
		if a, ok := step.(hcl2.TraverseAttr); ok {
			s += "." + a.Name
		}
	}
	return s
}

// Meta-arguments of resource and data blocks: not references to values.
var (
	metaAttrs  = map[string]bool{"provider": true, "depends_on": true, "count": true, "for_each": true}
	metaBlocks = map[string]bool{"lifecycle": true, "provisioner": true, "connection": true}
)

// bodyTraversals walks every attribute of a native-syntax body and its nested
// blocks, dynamic blocks included (less their iterator references), skipping
// the top-level attributes and blocks named in skip.
func bodyTraversals(b hcl2.Body, skip ...map[string]bool) ([]hcl2.Traversal, bool) {
	sb, ok := b.(*hclsyntax.Body)
	if !ok {
		return nil, false
	}
	var out []hcl2.Traversal
	dynamic := false
	var walk func(body *hclsyntax.Body, iters map[string]bool)
	add := func(travs []hcl2.Traversal, iters map[string]bool) {
		for _, t := range travs {
			if !iters[t.RootName()] {
				out = append(out, t)
			}
		}
	}
	skipped := func(top bool, name string) bool {
		if !top {
			return false
		}
		for _, m := range skip {
			if m[name] {
				return true
			}
		}
		return false
	}
	walk = func(body *hclsyntax.Body, iters map[string]bool) {
		top := body == sb
		for _, name := range sortedKeys(body.Attributes) {
			if !skipped(top, name) {
				add(body.Attributes[name].Expr.Variables(), iters)
			}
		}
		for _, blk := range body.Blocks {
			if skipped(top, blk.Type) {
				continue
			}
			if blk.Type != "dynamic" || len(blk.Labels) != 1 {
				walk(blk.Body, iters)
				continue
			}
			dynamic = true
			iter := blk.Labels[0]
			if a, ok := blk.Body.Attributes["iterator"]; ok {
				if t, d := hcl2.AbsTraversalForExpr(a.Expr); !d.HasErrors() && len(t) == 1 {
					iter = t.RootName()
				}
			}
			inner := make(map[string]bool, len(iters)+1)
			for k := range iters {
				inner[k] = true
			}
			inner[iter] = true
			for _, name := range sortedKeys(blk.Body.Attributes) {
				switch name {
				case "for_each":
					add(blk.Body.Attributes[name].Expr.Variables(), iters)
				case "iterator":
				default:
					add(blk.Body.Attributes[name].Expr.Variables(), inner)
				}
			}
			for _, cb := range blk.Body.Blocks {
				walk(cb.Body, inner)
			}
		}
	}
	walk(sb, map[string]bool{})
	return out, dynamic
}
