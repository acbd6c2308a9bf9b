package planner

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/zclconf/go-cty/cty"
)

// RenderText writes the plan in the familiar + ~ -/+ - style.
func RenderText(w io.Writer, p *Plan) error {
	b := &strings.Builder{}
	if !p.HasChanges() {
		fmt.Fprintf(b, "No changes. Stack %q matches the configuration (store revision %d).\n", p.Stack, p.BaseRevision)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "Stack %q, store revision %d. fiat will perform these actions:\n", p.Stack, p.BaseRevision)
	for _, s := range p.Steps {
		if s.Action == NoOp {
			continue
		}
		b.WriteString("\n")
		renderStep(b, s)
	}
	c := p.Counts()
	fmt.Fprintf(b, "\nPlan: %d to create, %d to update, %d to replace, %d to delete.\n",
		c[Create], c[Update], c[Replace], c[Delete])
	if n := p.lossy(); len(n) > 0 {
		fmt.Fprintf(b, "Not fully reversible: %s.\n", strings.Join(n, ", "))
	}
	_, err := io.WriteString(w, b.String())
	return err
}

func (p *Plan) lossy() []string {
	var out []string
	for _, s := range p.Steps {
		if s.Action != NoOp && s.Reversibility != 0 {
			out = append(out, fmt.Sprintf("%s (%s %s)", s.Address, s.Action, s.Reversibility))
		}
	}
	return out
}

var headline = map[Action]string{
	Create:  "will be created",
	Update:  "will be updated in place",
	Replace: "must be replaced",
	Delete:  "will be deleted",
}

func renderStep(b *strings.Builder, s *Step) {
	fmt.Fprintf(b, "  # %s %s", s.Address, headline[s.Action])
	if s.Reversibility != 0 {
		fmt.Fprintf(b, " [%s]", s.Reversibility)
	}
	if s.Source != "" {
		fmt.Fprintf(b, " (%s)", s.Source)
	}
	b.WriteString("\n")
	fmt.Fprintf(b, "%3s resource %q %q {\n", s.Action.Symbol(), s.Type, s.Name)
	sensitive := map[string]bool{}
	for _, n := range s.Sensitive {
		sensitive[n] = true
	}
	forces := map[string]bool{}
	for _, n := range s.ForceNew {
		forces[n] = true
	}
	type line struct{ mark, name, text string }
	var lines []line
	show := func(n string, v cty.Value) string {
		if sensitive[n] && v.IsKnown() && !v.IsNull() {
			return "(sensitive)"
		}
		return FormatValue(v)
	}
	for _, n := range attrNames(s.Before, s.After) {
		before, after := attr(s.Before, n), attr(s.After, n)
		switch s.Action {
		case Create:
			if !after.IsNull() {
				lines = append(lines, line{"+", n, show(n, after)})
			}
		case Delete:
			if !before.IsNull() {
				lines = append(lines, line{"-", n, show(n, before)})
			}
		default:
			if eq := after.Equals(before); after.IsWhollyKnown() && eq.IsKnown() && eq.True() {
				continue
			}
			text := show(n, before) + " -> " + show(n, after)
			if forces[n] {
				text += " # forces replacement"
			}
			lines = append(lines, line{"~", n, text})
		}
	}
	width := 0
	for _, l := range lines {
		width = max(width, len(l.name))
	}
	for _, l := range lines {
		fmt.Fprintf(b, "      %s %-*s = %s\n", l.mark, width, l.name, l.text)
	}
	b.WriteString("    }\n")
}

func attrNames(vals ...cty.Value) []string {
	set := map[string]bool{}
	for _, v := range vals {
		if v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() {
			continue
		}
		for n := range v.Type().AttributeTypes() {
			set[n] = true
		}
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

func attr(v cty.Value, name string) cty.Value {
	if v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute(name) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return v.GetAttr(name)
}

// FormatValue renders a value the way it would be written in HCL.
func FormatValue(v cty.Value) string {
	switch {
	case !v.IsKnown():
		return "(known after apply)"
	case v.IsNull():
		return "null"
	case v.IsMarked():
		return "(sensitive)"
	}
	t := v.Type()
	switch {
	case t == cty.String:
		return fmt.Sprintf("%q", v.AsString())
	case t == cty.Number:
		return v.AsBigFloat().Text('f', -1)
	case t == cty.Bool:
		if v.True() {
			return "true"
		}
		return "false"
	case t.IsListType() || t.IsSetType() || t.IsTupleType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			parts = append(parts, FormatValue(e))
		}
		return "[" + strings.Join(parts, ", ") + "]"
	case t.IsMapType() || t.IsObjectType():
		var parts []string
		for it := v.ElementIterator(); it.Next(); {
			k, e := it.Element()
			parts = append(parts, fmt.Sprintf("%s = %s", k.AsString(), FormatValue(e)))
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return v.GoString()
}
