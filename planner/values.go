package planner

import (
	"encoding/json"
	"fmt"
	"sort"

	"fiat/hcl"
	"fiat/providers"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Spec is the decoding spec of a resource type: the attributes a user may set.
// Computed-only attributes are not settable.
func Spec(rs providers.ResourceSchema) hcldec.Spec {
	spec := hcldec.ObjectSpec{}
	for name, a := range rs.Attributes {
		if a.Computed && !a.Optional && !a.Required {
			continue
		}
		spec[name] = &hcldec.AttrSpec{Name: name, Type: a.Type, Required: a.Required}
	}
	return spec
}

// ConfigValue evaluates a resource's block into a full object of the
// schema's type: settable attributes from config (defaults filled in), and
// computed-only attributes null. vals resolves references.
func ConfigValue(cfg *hcl.Config, addr string, rs providers.ResourceSchema, vals hcl.Values) (cty.Value, hcl2.Diagnostics) {
	v, diags := cfg.EvalResource(addr, Spec(rs), vals)
	if diags.HasErrors() {
		return cty.NilVal, diags
	}
	attrs := make(map[string]cty.Value, len(rs.Attributes))
	for name, a := range rs.Attributes {
		av := cty.NullVal(a.Type)
		if v.Type().IsObjectType() && v.Type().HasAttribute(name) {
			av = v.GetAttr(name)
		}
		if av.IsNull() && a.Default != cty.NilVal {
			av = a.Default
		}
		attrs[name] = av
	}
	return cty.ObjectVal(attrs), diags
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
			attrs[name] = cty.UnknownVal(a.Type)
		}
	}
	return cty.ObjectVal(attrs)
}

// Settled reports whether config's settable attributes are all known.
func Settled(config cty.Value) bool { return config.IsWhollyKnown() }

// EncodeValue stores a cty value with its type, for the store and plan files.
func EncodeValue(v cty.Value) (json.RawMessage, error) {
	if v == cty.NilVal {
		return nil, nil
	}
	b, err := json.Marshal(ctyjson.SimpleJSONValue{Value: v})
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	return b, nil
}

// DecodeValue reverses EncodeValue.
func DecodeValue(b json.RawMessage) (cty.Value, error) {
	if len(b) == 0 {
		return cty.NilVal, nil
	}
	var v ctyjson.SimpleJSONValue
	if err := json.Unmarshal(b, &v); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	return v.Value, nil
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
		var before cty.Value = cty.NullVal(a.Type)
		if prior.Type().IsObjectType() && prior.Type().HasAttribute(name) {
			before = prior.GetAttr(name)
		}
		if a.Computed && pv.IsNull() {
			continue // optional+computed left unset: the provider's value stands
		}
		if !pv.IsWhollyKnown() {
			out = append(out, name)
			continue
		}
		if eq := pv.Equals(before); !eq.IsKnown() || eq.False() {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
