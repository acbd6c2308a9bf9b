package planner

import (
	"fmt"
	"path/filepath"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/providers"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Spec is the decoding spec of a resource type: the attributes a user may set.
// Computed-only attributes are not settable. An attribute whose type is a
// list or set of objects may be written as an attribute,
//
//	disk = [{ size = 1 }, { size = 2 }]
//
// or as repeated nested blocks, which dynamic blocks can generate:
//
//	disk { size = 1 }
//	disk { size = 2 }
func Spec(rs providers.ResourceSchema) hcldec.Spec {
	spec := hcldec.ObjectSpec{}
	for name, a := range rs.Attributes {
		if a.Computed && !a.Optional && !a.Required {
			continue
		}
		nested, ok := blockSpec(name, a)
		spec[name] = &hcldec.AttrSpec{Name: name, Type: a.Type, Required: a.Required && !ok}
		if ok {
			spec[name+blockSuffix] = nested
		}
	}
	return spec
}

// blockSuffix names, in a decoded object, the blocks form of an attribute.
const blockSuffix = "\x00blocks"

func blockSpec(name string, a providers.Attribute) (hcldec.Spec, bool) {
	t := a.Type
	if !(t.IsListType() || t.IsSetType()) || !t.ElementType().IsObjectType() {
		return nil, false
	}
	inner := innerSpec(t.ElementType())
	if t.IsSetType() {
		return &hcldec.BlockSetSpec{TypeName: name, Nested: inner}, true
	}
	return &hcldec.BlockListSpec{TypeName: name, Nested: inner}, true
}

// innerSpec is the spec of one block of object type et. An attribute that
// is itself a list of objects may be written as nested blocks too:
//
//	dns {
//	  forwarders { address = "8.8.8.8" }
//	}
func innerSpec(et cty.Type) hcldec.ObjectSpec {
	inner := hcldec.ObjectSpec{}
	for an, at := range et.AttributeTypes() {
		nested := at.IsListType() && at.ElementType().IsObjectType()
		inner[an] = &hcldec.AttrSpec{Name: an, Type: at, Required: !et.AttributeOptional(an) && !nested}
		if nested {
			inner[an+blockSuffix] = &hcldec.BlockListSpec{TypeName: an, Nested: innerSpec(at.ElementType())}
		}
	}
	return inner
}

// mergeNestedBlocks turns the nested blocks of decoded blocks (attributes
// named name+blockSuffix) into the attribute name, recursively.
func mergeNestedBlocks(v cty.Value) (cty.Value, error) {
	if !v.IsKnown() && v.Type().IsObjectType() {
		for n := range v.Type().AttributeTypes() {
			if strings.HasSuffix(n, blockSuffix) {
				return cty.DynamicVal, nil // known after apply, as a whole
			}
		}
	}
	if v.IsNull() || !v.IsKnown() {
		return v, nil
	}
	t := v.Type()
	switch {
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		if v.LengthInt() == 0 {
			return v, nil
		}
		var elems []cty.Value
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			m, err := mergeNestedBlocks(e)
			if err != nil {
				return v, err
			}
			elems = append(elems, m)
		}
		return cty.TupleVal(elems), nil
	case t.IsObjectType():
		attrs := map[string]cty.Value{}
		for n := range t.AttributeTypes() {
			if strings.HasSuffix(n, blockSuffix) {
				continue
			}
			av := v.GetAttr(n)
			if t.HasAttribute(n + blockSuffix) {
				if bv := v.GetAttr(n + blockSuffix); !bv.IsNull() && bv.IsKnown() && bv.LengthInt() > 0 {
					if !av.IsNull() {
						return v, fmt.Errorf("%q is set both as an attribute and as %s { ... } blocks; use one form", n, n)
					}
					av = bv
				}
			}
			m, err := mergeNestedBlocks(av)
			if err != nil {
				return v, err
			}
			attrs[n] = m
		}
		return cty.ObjectVal(attrs), nil
	}
	return v, nil
}

// attrType is an attribute's type without optional-attribute markers, as
// values have it.
func attrType(a providers.Attribute) cty.Type { return a.Type.WithoutOptionalAttributesDeep() }

// specCache remembers each schema's spec (by resource type and mode).
type specCache map[string]hcldec.Spec

func (c specCache) get(key string, rs providers.ResourceSchema) hcldec.Spec {
	if s, ok := c[key]; ok {
		return s
	}
	s := Spec(rs)
	c[key] = s
	return s
}

// ConfigValue evaluates a resource instance's block ("type.name",
// "type.name[0]") into a full object of the schema's type: settable
// attributes from config (defaults filled in), and computed-only attributes
// null. vals resolves references. Sensitive marks are removed; use
// ConfigValueSensitive to learn which attributes carried them.
func ConfigValue(cfg *hcl.Config, addr string, rs providers.ResourceSchema, vals hcl.Values) (cty.Value, hcl2.Diagnostics) {
	v, _, diags := ConfigValueSensitive(cfg.NewEvaluator(vals), addr, rs, Spec(rs))
	return v, diags
}

// ConfigValueSensitive is ConfigValue with a given evaluator and spec; it
// also returns the attributes derived from sensitive values.
func ConfigValueSensitive(ev *hcl.Evaluator, addr string, rs providers.ResourceSchema, spec hcldec.Spec) (cty.Value, []string, hcl2.Diagnostics) {
	res, key, err := hcl.SplitInstance(addr)
	if err != nil {
		return cty.NilVal, nil, errorDiag("Invalid address", err.Error(), nil)
	}
	v, diags := ev.EvalInstance(res, key, spec)
	if diags.HasErrors() {
		return cty.NilVal, nil, diags
	}
	v, sens := unmarkAttrs(v)
	attrs := make(map[string]cty.Value, len(rs.Attributes))
	for name, a := range rs.Attributes {
		av := cty.NullVal(attrType(a))
		if v.Type().IsObjectType() && v.Type().HasAttribute(name) {
			av = v.GetAttr(name)
		}
		if v.Type().IsObjectType() && v.Type().HasAttribute(name+blockSuffix) {
			bv, d := fromBlocks(r(ev, res), name, av, v.GetAttr(name+blockSuffix), a)
			diags = append(diags, d...)
			av = bv
		}
		if av.IsNull() && a.Default != cty.NilVal {
			av = a.Default
		}
		if a.LocalPath && av.Type() == cty.String && av.IsKnown() && !av.IsNull() && !filepath.IsAbs(av.AsString()) && av.AsString() != "" && !isURL(av.AsString()) {
			av = cty.StringVal(filepath.Join(ev.Config().ResourceDir(res), av.AsString()))
		}
		if len(a.LocalPathNested) > 0 {
			av = nestedLocalPaths(av, a.LocalPathNested, ev.Config().ResourceDir(res))
		}
		attrs[name] = av
	}
	if diags.HasErrors() {
		return cty.NilVal, nil, diags
	}
	if rr := ev.Config().Resources[res]; rr != nil && strings.HasSuffix(rr.DeclRange.Filename, ".tf") {
		obj := cty.ObjectVal(attrs)
		for name, a := range rs.Attributes {
			if a.TerraformDefault != nil && attrs[name].IsNull() {
				if d := a.TerraformDefault(obj); d != cty.NilVal && !d.IsNull() {
					attrs[name] = d
				}
			}
		}
	}
	return cty.ObjectVal(attrs), sens, diags
}

// nestedLocalPaths resolves the named path attributes of a list of objects
// against dir, as LocalPath does for a top-level one.
func nestedLocalPaths(list cty.Value, names []string, dir string) cty.Value {
	if list.IsNull() || !list.IsKnown() || list.IsMarked() || !list.Type().IsListType() || !list.Type().ElementType().IsObjectType() || list.LengthInt() == 0 {
		return list
	}
	elems := list.AsValueSlice()
	for i, e := range elems {
		if e.IsNull() || !e.IsKnown() {
			continue
		}
		m := e.AsValueMap()
		for _, n := range names {
			p, ok := m[n]
			if !ok || p.IsNull() || !p.IsKnown() || p.Type() != cty.String {
				continue
			}
			if s := p.AsString(); s != "" && !filepath.IsAbs(s) && !isURL(s) {
				m[n] = cty.StringVal(filepath.Join(dir, s))
			}
		}
		elems[i] = cty.ObjectVal(m)
	}
	return cty.ListVal(elems)
}

// fromBlocks picks between an attribute's attribute form and block form.
func fromBlocks(rng *hcl2.Range, name string, attrVal, blocks cty.Value, a providers.Attribute) (cty.Value, hcl2.Diagnostics) {
	if blocks.IsNull() || !blocks.IsKnown() || blocks.LengthInt() == 0 {
		if a.Required && attrVal.IsNull() {
			return attrVal, errorDiag("Missing required argument", fmt.Sprintf("%q is required: set it, or write one or more %s { ... } blocks.", name, name), rng)
		}
		return attrVal, nil
	}
	if !attrVal.IsNull() {
		return attrVal, errorDiag("Conflicting arguments", fmt.Sprintf("%q is set both as an attribute and as %s { ... } blocks; use one form.", name, name), rng)
	}
	merged, err := mergeNestedBlocks(blocks)
	if err != nil {
		return cty.NilVal, errorDiag("Conflicting arguments", fmt.Sprintf("%s blocks: %s.", name, err), rng)
	}
	v, err := convert.Convert(merged, a.Type)
	if err != nil {
		return cty.NilVal, errorDiag("Invalid blocks", fmt.Sprintf("%s blocks: %s.", name, err), rng)
	}
	return v, nil
}

func r(ev *hcl.Evaluator, res string) *hcl2.Range {
	if rr := ev.Config().Resources[res]; rr != nil {
		return rr.DeclRange.Ptr()
	}
	return nil
}

// unmarkAttrs removes every mark and lists the top-level attributes that
// carried the sensitive mark, sorted.
func unmarkAttrs(v cty.Value) (cty.Value, []string) {
	if !v.ContainsMarked() {
		return v, nil
	}
	v, pvms := v.UnmarkDeepWithPaths()
	set := map[string]bool{}
	for _, pvm := range pvms {
		if _, ok := pvm.Marks[hcl.Sensitive]; !ok {
			continue
		}
		if len(pvm.Path) == 0 {
			for n := range v.Type().AttributeTypes() {
				set[n] = true
			}
			continue
		}
		if ga, ok := pvm.Path[0].(cty.GetAttrStep); ok {
			set[ga.Name] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return v, out
}

// Planned turns a config value into the planned state: computed attributes
// the config leaves null keep their prior value, or are unknown until apply.
func Planned(config cty.Value, prior cty.Value, rs providers.ResourceSchema) cty.Value {
	attrs := config.AsValueMap()
	for name, a := range rs.Attributes {
		if !a.Computed || !attrs[name].IsNull() {
			continue
		}
		if prior != cty.NilVal && !prior.IsNull() && prior.Type().HasAttribute(name) {
			attrs[name] = prior.GetAttr(name)
		} else {
			attrs[name] = cty.UnknownVal(attrType(a))
		}
	}
	return cty.ObjectVal(attrs)
}

// changedAttrs lists settable attributes whose planned value differs from
// prior, sorted. An unknown planned value counts as a change.
func changedAttrs(planned, prior cty.Value, rs providers.ResourceSchema) []string {
	var out []string
	for name, a := range rs.Attributes {
		if a.Computed && !a.Optional && !a.Required {
			continue
		}
		pv := planned.GetAttr(name)
		before := attr(prior, name)
		if a.Computed && pv.IsNull() {
			continue // optional+computed left unset: the provider's value stands
		}
		if !pv.IsWhollyKnown() {
			out = append(out, name)
			continue
		}
		if !equal(pv, before) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// equal compares values as stored: null equals null whatever its type.
func equal(a, b cty.Value) bool {
	if a.IsNull() || b.IsNull() {
		return a.IsNull() && b.IsNull()
	}
	eq := a.Equals(b)
	return eq.IsKnown() && eq.True()
}

// diffAttrs lists every schema attribute (computed ones too, volatile ones
// not) whose value differs between two known states, sorted: what drifted.
func diffAttrs(stored, read cty.Value, rs providers.ResourceSchema) []string {
	var out []string
	for name, a := range rs.Attributes {
		if a.Volatile {
			continue // changes by itself: not drift
		}
		if !equal(maskNested(attr(stored, name), a), maskNested(attr(read, name), a)) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

// withVolatile takes the volatile attributes of a read into the stored
// state: what the object has now, without it being drift.
func withVolatile(stored, read cty.Value, rs providers.ResourceSchema) cty.Value {
	if stored == cty.NilVal || stored.IsNull() || !stored.Type().IsObjectType() || read == cty.NilVal || read.IsNull() {
		return stored
	}
	attrs := stored.AsValueMap()
	changed := false
	for name, a := range rs.Attributes {
		if len(a.VolatileNested) > 0 {
			// Only the volatile parts differ (diffAttrs found no drift here).
			if v := attr(read, name); !equal(v, attrs[name]) && equal(maskNested(v, a), maskNested(attrs[name], a)) {
				attrs[name], changed = v, true
			}
			continue
		}
		if !a.Volatile {
			continue
		}
		if v := attr(read, name); !equal(v, attrs[name]) {
			attrs[name], changed = v, true
		}
	}
	if !changed {
		return stored
	}
	return cty.ObjectVal(attrs)
}

// maskNested is a list of objects with the attribute's VolatileNested
// parts of each object nulled, to compare the rest.
func maskNested(v cty.Value, a providers.Attribute) cty.Value {
	if len(a.VolatileNested) == 0 || v.IsNull() || !v.IsWhollyKnown() || !v.Type().IsListType() || !v.Type().ElementType().IsObjectType() || v.LengthInt() == 0 {
		return v
	}
	elems := v.AsValueSlice()
	for i, e := range elems {
		if e.IsNull() {
			continue
		}
		m := e.AsValueMap()
		for _, n := range a.VolatileNested {
			if at, ok := e.Type().AttributeTypes()[n]; ok {
				m[n] = cty.NullVal(at)
			}
		}
		elems[i] = cty.ObjectVal(m)
	}
	return cty.ListVal(elems)
}

// withNewDefaults gives a stored state the attributes the schema gained
// after it was stored, where they have a default (and the optional
// attributes nested objects gained, null): the provider's contract
// (providers.Attribute.Default) is that the default describes the objects
// it made before the attribute existed. So an entity stored by an older
// fiat re-plans clean against a config that leaves the attribute unset,
// and a read that finds it otherwise is drift like any other.
func withNewDefaults(stored cty.Value, rs providers.ResourceSchema) cty.Value {
	if stored == cty.NilVal || stored.IsNull() || !stored.IsKnown() || !stored.Type().IsObjectType() {
		return stored
	}
	var attrs map[string]cty.Value
	set := func(name string, v cty.Value) {
		if attrs == nil {
			attrs = make(map[string]cty.Value, len(rs.Attributes))
			for n, v := range stored.AsValueMap() {
				attrs[n] = v
			}
		}
		attrs[name] = v
	}
	for name, a := range rs.Attributes {
		if stored.Type().HasAttribute(name) {
			// Nested objects that gained optional attributes take them
			// null (the attribute's type says which are optional).
			v := stored.GetAttr(name)
			if t := attrType(a); !v.Type().Equals(t) && v.IsWhollyKnown() {
				if cv, err := convert.Convert(v, a.Type); err == nil && cv.Type().Equals(t) {
					set(name, cv)
				}
			}
			continue
		}
		if a.Default == cty.NilVal {
			continue
		}
		set(name, a.Default)
	}
	if attrs == nil {
		return stored
	}
	return cty.ObjectVal(attrs)
}

// isURL says a LocalPath attribute's value is a URL (scheme://...), which
// the provider fetches itself: it is not a file relative to the module.
func isURL(s string) bool {
	i := strings.Index(s, "://")
	if i <= 0 {
		return false
	}
	for _, c := range s[:i] {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '+' || c == '-' || c == '.') {
			return false
		}
	}
	return true
}
