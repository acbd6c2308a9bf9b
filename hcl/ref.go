package hcl

import (
	"fmt"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// RefKind is what a reference's root names.
type RefKind uint8

const (
	RefUnknown  RefKind = iota // a root this module does not declare
	RefVar                     // var.NAME
	RefLocal                   // local.NAME
	RefModule                  // module.NAME or module.NAME.OUTPUT
	RefData                    // data.TYPE.NAME
	RefResource                // TYPE.NAME, TYPE a managed resource type of the module
	RefCount                   // count.index
	RefEach                    // each.key, each.value
	RefPath                    // path.module, path.root, path.cwd
	RefSelf                    // self (provisioner and connection blocks)
)

// Ref is one reference in an expression, parsed once at load: the only
// place that decides what a reference root means. Reference checking, the
// dependency graph and evaluation all work from Refs.
type Ref struct {
	Kind RefKind
	Root string // as written
	// Type is the resource or data source type.
	Type string
	// Name is what the reference names: the variable, local value, module
	// call, resource or data source; for count, each and path, the
	// attribute ("index", "key", ...). "" when it is missing.
	Name string
	// Output is the output a module reference reads; "" for the whole
	// module.
	Output string
	// Malformed, when set, says how this kind of reference is written: the
	// reference lacks a part it needs (var without a name, ...).
	Malformed string
	Range     hcl2.Range
}

// parseRef classifies a traversal found in a module whose managed resource
// types are types.
func parseRef(t hcl2.Traversal, types map[string]bool) Ref {
	root := t.RootName()
	r := Ref{Root: root, Range: t.SourceRange()}
	name, hasName := attrStep(t, 1)
	r.Name = name
	switch {
	case root == "var":
		r.Kind = RefVar
		if !hasName {
			r.Malformed = "A variable is referenced as var.NAME."
		}
	case root == "local":
		r.Kind = RefLocal
		if !hasName {
			r.Malformed = "A local value is referenced as local.NAME."
		}
	case root == "module":
		r.Kind = RefModule
		r.Output, _ = attrStep(t, 2)
		if !hasName {
			r.Malformed = "A module is referenced as module.NAME or module.NAME.OUTPUT."
		}
	case root == "data":
		r.Kind, r.Type = RefData, name
		n, ok := attrStep(t, 2)
		r.Name = n
		if !hasName || !ok {
			r.Malformed = "A data source is referenced as data.TYPE.NAME."
		}
	case root == "count":
		r.Kind = RefCount
	case root == "each":
		r.Kind = RefEach
	case root == "path":
		r.Kind = RefPath
	case root == "self":
		r.Kind = RefSelf
	case types[root]:
		r.Kind, r.Type = RefResource, root
		if !hasName {
			r.Malformed = fmt.Sprintf("A resource is referenced as %s.NAME.", root)
		}
	default:
		r.Kind = RefUnknown
	}
	return r
}

// Resource is the full configuration address a resource or data source
// reference names, from inside module mod.
func (r Ref) Resource(mod string) string {
	if r.Kind == RefData {
		return modulePrefix(mod) + "data." + r.Type + "." + r.Name
	}
	return modulePrefix(mod) + r.Type + "." + r.Name
}

func parseRefs(travs []hcl2.Traversal, types map[string]bool) []Ref {
	if len(travs) == 0 {
		return nil
	}
	out := make([]Ref, len(travs))
	for i, t := range travs {
		out[i] = parseRef(t, types)
	}
	return out
}

func exprRefs(e hcl2.Expression, types map[string]bool) []Ref {
	if e == nil {
		return nil
	}
	return parseRefs(e.Variables(), types)
}

// parseAllRefs parses the references of every expression once, when every
// module's types are known.
func (c *Config) parseAllRefs() {
	for _, r := range c.Resources {
		types := c.Modules[r.Module].types
		r.refs = parseRefs(r.bodyTravs, types)
		r.metaRefs = append(exprRefs(r.Count, types), exprRefs(r.ForEach, types)...)
		r.bodyTravs = nil
	}
	for _, m := range c.Modules {
		for _, l := range m.Locals {
			l.refs = exprRefs(l.Expr, m.types)
		}
		for _, o := range m.Outputs {
			o.refs = exprRefs(o.Expr, m.types)
		}
		for _, v := range m.Variables {
			for _, vd := range v.Validations {
				vd.refs = exprRefs(vd.Condition, m.types)
			}
		}
		for _, call := range m.Calls {
			call.argRefs = make(map[string][]Ref, len(call.Args))
			for name, a := range call.Args {
				call.argRefs[name] = exprRefs(a.Expr, m.types)
			}
		}
	}
	for _, im := range c.Imports {
		im.refs = exprRefs(im.ID, c.Modules[""].types)
	}
}

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
