package hcl

import (
	"fmt"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/typeexpr"
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
	if attr, ok := content.Attributes["alias"]; ok {
		v, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			if v.Type() != cty.String || v.IsNull() {
				diags = append(diags, errorDiag("Invalid alias", "alias must be a string.", attr.Expr.Range().Ptr())...)
			} else {
				p.Alias = v.AsString()
			}
		}
	}
	if prev, ok := c.Providers[p.Addr()]; ok {
		return append(diags, duplicate("provider", p.Addr(), b.DefRange, prev.DeclRange)...)
	}
	c.Providers[p.Addr()] = p
	return diags
}

func (c *Config) addVariable(b *hcl2.Block) hcl2.Diagnostics {
	v := &Variable{Name: b.Labels[0], Type: cty.DynamicPseudoType, DeclRange: b.DefRange}
	content, diags := b.Body.Content(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{
			{Name: "type"}, {Name: "default"}, {Name: "description"}, {Name: "sensitive"},
		},
	})
	if attr, ok := content.Attributes["type"]; ok {
		ty, d := typeexpr.TypeConstraint(attr.Expr)
		diags = append(diags, d...)
		if !d.HasErrors() {
			v.Type = ty
		}
	}
	if attr, ok := content.Attributes["default"]; ok {
		val, d := attr.Expr.Value(nil)
		diags = append(diags, d...)
		if !d.HasErrors() {
			conv, err := convert.Convert(val, v.Type)
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
	if prev, ok := c.Variables[v.Name]; ok {
		return append(diags, duplicate("variable", v.Name, b.DefRange, prev.DeclRange)...)
	}
	c.Variables[v.Name] = v
	return diags
}

func (c *Config) addLocals(b *hcl2.Block) hcl2.Diagnostics {
	attrs, diags := b.Body.JustAttributes()
	for name, attr := range attrs {
		if _, ok := c.Locals[name]; ok {
			diags = append(diags, errorDiag("Duplicate local value",
				fmt.Sprintf("A local value named %q was already defined.", name), attr.NameRange.Ptr())...)
			continue
		}
		c.Locals[name] = &Local{Name: name, Expr: attr.Expr}
	}
	return diags
}

func (c *Config) addResource(b *hcl2.Block) hcl2.Diagnostics {
	r := &Resource{Type: b.Labels[0], Name: b.Labels[1], DeclRange: b.DefRange, TypeRange: b.LabelRanges[0]}
	content, rest, diags := b.Body.PartialContent(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{{Name: "provider"}, {Name: "depends_on"}},
	})
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
		exprs, d := hcl2.ExprList(attr.Expr)
		diags = append(diags, d...)
		for _, e := range exprs {
			trav, d := hcl2.AbsTraversalForExpr(e)
			diags = append(diags, d...)
			if !d.HasErrors() {
				r.DependsOn = append(r.DependsOn, traversalString(trav))
			}
		}
	}
	if prev, ok := c.Resources[r.Addr()]; ok {
		return append(diags, duplicate("resource", r.Addr(), b.DefRange, prev.DeclRange)...)
	}
	c.Resources[r.Addr()] = r
	c.types[r.Type] = true
	return diags
}

func (c *Config) addOutput(b *hcl2.Block) hcl2.Diagnostics {
	o := &Output{Name: b.Labels[0], DeclRange: b.DefRange}
	content, diags := b.Body.Content(&hcl2.BodySchema{
		Attributes: []hcl2.AttributeSchema{
			{Name: "value", Required: true}, {Name: "sensitive"}, {Name: "description"},
		},
	})
	if attr, ok := content.Attributes["value"]; ok {
		o.Expr = attr.Expr
	}
	diags = append(diags, staticBool(content.Attributes["sensitive"], &o.Sensitive)...)
	if prev, ok := c.Outputs[o.Name]; ok {
		return append(diags, duplicate("output", o.Name, b.DefRange, prev.DeclRange)...)
	}
	c.Outputs[o.Name] = o
	return diags
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

func traversalString(t hcl2.Traversal) string {
	s := t.RootName()
	for _, step := range t[1:] {
		if a, ok := step.(hcl2.TraverseAttr); ok {
			s += "." + a.Name
		}
	}
	return s
}
