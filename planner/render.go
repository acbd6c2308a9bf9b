package planner

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// TextOptions controls RenderTextOpts.
type TextOptions struct {
	// Color adds ANSI colours (for a terminal).
	Color bool
}

// RenderText writes the plan in the familiar + ~ -/+ - style, without colour.
func RenderText(w io.Writer, p *Plan) error { return RenderTextOpts(w, p, TextOptions{}) }

// RenderTextOpts writes the plan in the familiar + ~ -/+ - style.
func RenderTextOpts(w io.Writer, p *Plan, opts TextOptions) error {
	b := &strings.Builder{}
	c := colors{on: opts.Color}
	for _, warn := range p.Warnings {
		fmt.Fprintf(b, "%s %s\n\n", c.bold(c.yellow("Warning:")), warn)
	}
	if len(p.Drift) > 0 {
		renderDrift(b, p, c)
	}
	if !p.HasChanges() {
		fmt.Fprintf(b, "No changes. Stack %q matches the configuration (store revision %d).\n", p.Stack, p.BaseRevision)
		_, err := io.WriteString(w, b.String())
		return err
	}
	fmt.Fprintf(b, "Stack %q, store revision %d. fiat will perform these actions:\n", p.Stack, p.BaseRevision)
	for _, s := range p.Steps {
		if s.Action == Read && s.ReadAtApply {
			fmt.Fprintf(b, "\n  # %s %s\n", s.Address, readAtApply)
		}
		if s.Action == NoOp || s.Action == Read {
			continue
		}
		b.WriteString("\n")
		renderStep(b, s, c)
	}
	b.WriteString("\n" + c.bold(Summary(p)) + "\n")
	if n := p.lossy(); len(n) > 0 {
		fmt.Fprintf(b, "%s %s.\n", c.bold(c.red("Not fully reversible:")), strings.Join(n, ", "))
	} else {
		b.WriteString("Every change is reversible: a failed apply undoes all of it.\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// Summary is the one-line tally: "Plan: 1 to create, ...".
func Summary(p *Plan) string {
	cnt := p.Counts()
	s := fmt.Sprintf("Plan: %d to create, %d to update, %d to replace, %d to delete", cnt[Create], cnt[Update], cnt[Replace], cnt[Delete])
	for _, x := range []struct {
		a    Action
		verb string
	}{{Import, "import"}, {Move, "move"}, {Adopt, "record as found"}, {Forget, "forget"}} {
		if cnt[x.a] > 0 {
			s += fmt.Sprintf(", %d to %s", cnt[x.a], x.verb)
		}
	}
	return s + "."
}

func (p *Plan) lossy() []string {
	var out []string
	for _, s := range p.Steps {
		if s.Action != NoOp && s.Action != Read && s.Reversibility != 0 {
			out = append(out, fmt.Sprintf("%s (%s %s)", s.Address, s.Action, s.Reversibility))
		}
		for _, p := range s.Provisioners {
			if p.Reversibility == providers.Irreversible {
				out = append(out, fmt.Sprintf("%s (provisioner %s irreversible)", s.Address, p.Type))
			}
		}
	}
	return out
}

func renderDrift(b *strings.Builder, p *Plan, c colors) {
	fmt.Fprintf(b, "%s\n", c.bold("Objects changed outside fiat (a provider read differs from the store):"))
	for _, d := range p.Drift {
		b.WriteString("\n")
		if d.Deleted() {
			fmt.Fprintf(b, "  # %s was deleted outside fiat (stored at revision %d)\n", d.Address, d.Revision)
			continue
		}
		fmt.Fprintf(b, "  # %s changed outside fiat (stored at revision %d)\n", d.Address, d.Revision)
		fmt.Fprintf(b, "%s resource %q %q {\n", c.yellow("  ~"), d.Type, d.Name)
		sens := nameSet(d.Sensitive)
		var lines []line
		for _, n := range d.Changed {
			lines = append(lines, line{"~", n, show(sens, n, attr(d.Before, n)) + " -> " + show(sens, n, attr(d.After, n))})
		}
		writeLines(b, lines, c)
		b.WriteString("    }\n")
	}
	if p.AdoptDrift {
		b.WriteString("\nWith -adopt-drift this plan records these objects in the store as they are; nothing is changed back.\n\n")
	} else {
		b.WriteString("\nThis plan changes them back to the configuration. To keep them as they are instead, plan with -adopt-drift.\n\n")
	}
}

const readAtApply = "will be read during apply (its arguments depend on objects this plan changes)"

var headline = map[Action]string{
	Create:  "will be created",
	Update:  "will be updated in place",
	Replace: "must be replaced",
	Delete:  "will be deleted",
	Import:  "will be imported",
	Move:    "will be moved",
	Adopt:   "will be recorded in the store as found",
	Forget:  "will be removed from the store",
}

type line struct{ mark, name, text string }

func renderStep(b *strings.Builder, s *Step, c colors) {
	fmt.Fprintf(b, "  # %s %s", s.Address, headline[s.Action])
	if s.Reversibility != 0 {
		fmt.Fprintf(b, " [%s]", c.red(s.Reversibility.String()))
	}
	if s.Source != "" {
		fmt.Fprintf(b, " (%s)", s.Source)
	}
	b.WriteString("\n")
	var notes []string
	if s.MovedFrom != "" {
		notes = append(notes, "moved from "+s.MovedFrom)
	}
	if s.Imported || s.Action == Import {
		notes = append(notes, fmt.Sprintf("imported from id %q", s.ID))
	}
	if s.Reason != "" {
		notes = append(notes, s.Reason)
	}
	if len(s.Provisioners) > 0 {
		var ps []string
		for _, p := range s.Provisioners {
			ps = append(ps, p.describe())
		}
		notes = append(notes, "then runs "+strings.Join(ps, ", "))
	}
	if s.CreateBeforeDestroy {
		notes = append(notes, "the new object is created before the old one is retired")
	}
	for _, n := range notes {
		fmt.Fprintf(b, "  # (%s)\n", n)
	}
	sym := s.Action.Symbol()
	if s.Action == Replace && s.CreateBeforeDestroy {
		sym = "+/-"
	}
	fmt.Fprintf(b, "%s resource %q %q {\n", c.action(s.Action, fmt.Sprintf("%3s", sym)), s.Type, s.Name)
	sensitive := nameSet(s.Sensitive)
	forces := nameSet(s.ForceNew)
	restart := nameSet(s.RestartNeeded)
	var lines []line
	for _, n := range attrNames(s.Before, s.After) {
		before, after := attr(s.Before, n), attr(s.After, n)
		switch s.Action {
		case Create:
			if !after.IsNull() {
				lines = append(lines, line{"+", n, show(sensitive, n, after)})
			}
		case Delete, Forget:
			if !before.IsNull() {
				lines = append(lines, line{"-", n, show(sensitive, n, before)})
			}
		case Move, Import:
		default:
			if after.IsWhollyKnown() && equal(after, before) {
				continue
			}
			text := show(sensitive, n, before) + " -> " + show(sensitive, n, after)
			if forces[n] {
				text += " # forces replacement"
			}
			if restart[n] {
				text += " # takes effect at the next restart"
			}
			lines = append(lines, line{"~", n, text})
		}
	}
	writeLines(b, lines, c)
	b.WriteString("    }\n")
}

func writeLines(b *strings.Builder, lines []line, c colors) {
	width := 0
	for _, l := range lines {
		width = max(width, len(l.name))
	}
	for _, l := range lines {
		fmt.Fprintf(b, "      %s %-*s = %s\n", c.mark(l.mark), width, l.name, l.text)
	}
}

func show(sensitive map[string]bool, n string, v cty.Value) string {
	if sensitive[n] && v.IsKnown() && !v.IsNull() {
		return "(sensitive)"
	}
	return FormatValue(v)
}

func nameSet(names []string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

func attrNames(vals ...cty.Value) []string {
	set := map[string]bool{}
	for _, v := range vals {
		if v == cty.NilVal || v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
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
	if v == cty.NilVal || v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() || !v.Type().HasAttribute(name) {
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return v.GetAttr(name)
}

// FormatValue renders a value the way it would be written in HCL.
func FormatValue(v cty.Value) string {
	switch {
	case v.IsMarked():
		return "(sensitive)"
	case !v.IsKnown():
		return "(known after apply)"
	case v.IsNull():
		return "null"
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
		if len(parts) == 0 {
			return "{}"
		}
		return "{ " + strings.Join(parts, ", ") + " }"
	}
	return v.GoString()
}

// colors wraps text in ANSI escapes when on.
type colors struct{ on bool }

func (c colors) wrap(code, s string) string {
	if !c.on {
		return s
	}
	return "\x1b[" + code + "m" + s + "\x1b[0m"
}

func (c colors) bold(s string) string   { return c.wrap("1", s) }
func (c colors) red(s string) string    { return c.wrap("31", s) }
func (c colors) green(s string) string  { return c.wrap("32", s) }
func (c colors) yellow(s string) string { return c.wrap("33", s) }
func (c colors) cyan(s string) string   { return c.wrap("36", s) }

func (c colors) action(a Action, s string) string {
	switch a {
	case Create, Import:
		return c.green(s)
	case Update, Adopt:
		return c.yellow(s)
	case Replace, Delete, Forget:
		return c.red(s)
	}
	return c.cyan(s)
}

func (c colors) mark(m string) string {
	switch m {
	case "+":
		return c.green(m)
	case "-":
		return c.red(m)
	case "~":
		return c.yellow(m)
	}
	return m
}
