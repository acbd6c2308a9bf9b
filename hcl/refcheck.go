package hcl

import (
	"fmt"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Where an expression is, for what it may reference.
type refContext struct {
	count, each bool // count.index / each.key and each.value are in scope
}

// checkReferences reports every reference to something the configuration
// does not declare, with a suggestion where one is close.
func (c *Config) checkReferences() hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	for _, addr := range sortedKeys(c.Resources) {
		r := c.Resources[addr]
		rc := refContext{count: r.Count != nil, each: r.ForEach != nil}
		diags = append(diags, c.checkRefs(r.Module, r.refs, rc)...)
		diags = append(diags, c.checkRefs(r.Module, r.metaRefs, refContext{})...)
		for _, t := range r.dependsOn {
			a, d := c.dependsOnTarget(r.Module, t)
			diags = append(diags, d...)
			if !d.HasErrors() {
				r.DependsOn = append(r.DependsOn, a)
			}
		}
	}
	for _, mp := range sortedKeys(c.Modules) {
		m := c.Modules[mp]
		for _, name := range sortedKeys(m.Locals) {
			diags = append(diags, c.checkRefs(mp, m.Locals[name].refs, refContext{})...)
		}
		for _, name := range sortedKeys(m.Outputs) {
			o := m.Outputs[name]
			diags = append(diags, c.checkRefs(mp, o.refs, refContext{})...)
			for _, t := range o.DependsOn {
				_, d := c.dependsOnTarget(mp, t)
				diags = append(diags, d...)
			}
		}
		for _, cn := range sortedKeys(m.Calls) {
			call := m.Calls[cn]
			child := c.Modules[call.Path]
			for _, an := range sortedKeys(call.Args) {
				a := call.Args[an]
				diags = append(diags, c.checkRefs(mp, call.argRefs[an], refContext{})...)
				if child != nil {
					if _, ok := child.Variables[an]; !ok {
						diags = append(diags, errorDiag("Unsupported argument",
							fmt.Sprintf("Module %q has no variable %q.%s", cn, an, DidYouMean(an, keys(child.Variables))), a.NameRange.Ptr())...)
					}
				}
			}
			for _, t := range call.DependsOn {
				_, d := c.dependsOnTarget(mp, t)
				diags = append(diags, d...)
			}
			if child == nil {
				continue
			}
			for _, vn := range sortedKeys(child.Variables) {
				if _, ok := call.Args[vn]; !ok && child.Variables[vn].Default == cty.NilVal {
					diags = append(diags, errorDiag("Missing required argument",
						fmt.Sprintf("Module %q needs a value for its variable %q, which has no default.", cn, vn), call.DeclRange.Ptr())...)
				}
			}
		}
		if mp != "" {
			for _, name := range sortedKeys(m.Variables) {
				for _, vd := range m.Variables[name].Validations {
					diags = append(diags, c.checkRefs(mp, vd.refs, refContext{})...)
				}
			}
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		refs := c.providerRefs(name)
		diags = append(diags, c.checkRefs("", refs, refContext{})...)
		for _, r := range refs {
			if r.Kind != RefVar && r.Kind != RefLocal && r.Kind != RefPath {
				diags = append(diags, errorDiag("Invalid provider reference",
					"A provider block may reference variables and local values, not resources or modules.", r.Range.Ptr())...)
			}
		}
	}
	for _, im := range c.Imports {
		diags = append(diags, c.checkRefs("", im.refs, refContext{})...)
		if _, ok := c.Resources[im.To.Resource()]; !ok {
			diags = append(diags, errorDiag("Import to undeclared resource",
				fmt.Sprintf("import names %s, which is not declared; add its resource block.%s", im.To.Resource(), DidYouMean(im.To.Resource(), c.managedAddrs())),
				im.DeclRange.Ptr())...)
		}
	}
	return diags
}

// dependsOnTarget checks a depends_on entry: a resource, a data source or a
// module of this module.
func (c *Config) dependsOnTarget(mod string, t hcl2.Traversal) (string, hcl2.Diagnostics) {
	a, diags := addressFromTraversal(t)
	if diags.HasErrors() {
		return "", diags
	}
	if a.Key != cty.NilVal {
		return "", errorDiag("Invalid depends_on", "depends_on names whole resources, without an instance key.", t.SourceRange().Ptr())
	}
	if a.Module != "" {
		a.Module = modulePrefix(mod) + a.Module
	} else {
		a.Module = mod
	}
	if a.IsModule() {
		if _, ok := c.Modules[a.Module]; !ok {
			return "", errorDiag("Reference to undeclared module", fmt.Sprintf("depends_on names %s, which is not declared.", traversalText(t)), t.SourceRange().Ptr())
		}
		return a.Module, nil
	}
	if _, ok := c.Resources[a.Resource()]; !ok {
		return "", errorDiag("Reference to undeclared resource",
			fmt.Sprintf("depends_on names %s, which is not declared.%s", traversalText(t), DidYouMean(traversalText(t), c.moduleResourceNames(mod))),
			t.SourceRange().Ptr())
	}
	return a.Resource(), nil
}

func (c *Config) managedAddrs() []string {
	var out []string
	for a, r := range c.Resources {
		if r.Mode == Managed {
			out = append(out, a)
		}
	}
	return out
}

// moduleResourceNames lists the resources of a module as written inside it.
func (c *Config) moduleResourceNames(mod string) []string {
	var out []string
	for _, r := range c.Resources {
		if r.Module != mod {
			continue
		}
		out = append(out, Address{Mode: r.Mode, Type: r.Type, Name: r.Name}.Resource())
	}
	return out
}

// checkRefs reports references in module mod to what it does not declare.
func (c *Config) checkRefs(mod string, refs []Ref, rc refContext) hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	m := c.Modules[mod]
	for _, r := range refs {
		rng := r.Range.Ptr()
		if r.Malformed != "" {
			diags = append(diags, errorDiag("Invalid reference", r.Malformed, rng)...)
			continue
		}
		switch r.Kind {
		case RefVar:
			if _, ok := m.Variables[r.Name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared input variable",
					fmt.Sprintf("No variable %q is declared.%s", r.Name, DidYouMean(r.Name, keys(m.Variables))), rng)...)
			}
		case RefLocal:
			if _, ok := m.Locals[r.Name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared local value",
					fmt.Sprintf("No local value %q is declared.%s", r.Name, DidYouMean(r.Name, keys(m.Locals))), rng)...)
			}
		case RefModule:
			call, ok := m.Calls[r.Name]
			if !ok {
				diags = append(diags, errorDiag("Reference to undeclared module",
					fmt.Sprintf("No module %q is declared.%s", r.Name, DidYouMean(r.Name, keys(m.Calls))), rng)...)
				continue
			}
			if child := c.Modules[call.Path]; r.Output != "" && child != nil {
				if _, ok := child.Outputs[r.Output]; !ok {
					diags = append(diags, errorDiag("Unsupported attribute",
						fmt.Sprintf("Module %q has no output %q.%s", r.Name, r.Output, DidYouMean(r.Output, keys(child.Outputs))), rng)...)
				}
			}
		case RefData:
			if _, ok := c.Resources[r.Resource(mod)]; !ok {
				local := r.Resource("")
				diags = append(diags, errorDiag("Reference to undeclared data source",
					fmt.Sprintf("No data source %s is declared.%s", local, DidYouMean(local, c.moduleResourceNames(mod))), rng)...)
			}
		case RefCount:
			switch {
			case !rc.count:
				diags = append(diags, errorDiag("Reference to \"count\" outside a counted resource",
					"count.index is only available in a resource or data block that sets count.", rng)...)
			case r.Name != "index":
				diags = append(diags, errorDiag("Invalid reference", "The only attribute of count is count.index.", rng)...)
			}
		case RefEach:
			switch {
			case !rc.each:
				diags = append(diags, errorDiag("Reference to \"each\" outside a for_each resource",
					"each.key and each.value are only available in a resource or data block that sets for_each.", rng)...)
			case r.Name != "key" && r.Name != "value":
				diags = append(diags, errorDiag("Invalid reference", "each has two attributes: each.key and each.value.", rng)...)
			}
		case RefPath:
			if r.Name != "module" && r.Name != "root" && r.Name != "cwd" {
				diags = append(diags, errorDiag("Invalid reference", "path has three attributes: path.module, path.root and path.cwd.", rng)...)
			}
		case RefResource:
			if _, ok := c.Resources[r.Resource(mod)]; !ok {
				addr := r.Resource("")
				diags = append(diags, errorDiag("Reference to undeclared resource",
					fmt.Sprintf("No resource %s is declared.%s", addr, DidYouMean(addr, c.moduleResourceNames(mod))), rng)...)
			}
		case RefSelf, RefUnknown:
			cands := append([]string{"var", "local", "module", "data", "path"}, keys(m.types)...)
			what := "a variable, local value, module, data source or resource type"
			if c.typeElsewhere(r.Root) {
				diags = append(diags, errorDiag("Unknown reference",
					fmt.Sprintf("%q is not %s of this module (resources of other modules are reached through their outputs).", r.Root, what), rng)...)
				continue
			}
			diags = append(diags, errorDiag("Unknown reference",
				fmt.Sprintf("%q is not %s of this configuration.%s", r.Root, what, DidYouMean(r.Root, cands)), rng)...)
		}
	}
	return diags
}

// providerRefs parses the references of a provider block (root module).
func (c *Config) providerRefs(name string) []Ref {
	travs, _ := bodyTraversals(c.Providers[name].Config, map[string]bool{"alias": true})
	return parseRefs(travs, c.Modules[""].types)
}

func (c *Config) typeElsewhere(typ string) bool {
	for _, m := range c.Modules {
		if m.types[typ] {
			return true
		}
	}
	return false
}
