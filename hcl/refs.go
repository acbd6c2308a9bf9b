package hcl

import (
	"fmt"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// checkReferences reports every reference to something the configuration
// does not declare, with a suggestion where one is close.
func (c *Config) checkReferences() hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	for _, addr := range c.ResourceAddrs() {
		r := c.Resources[addr]
		diags = append(diags, c.checkTraversals(bodyTraversals(r.Body))...)
		for _, dep := range r.DependsOn {
			if _, ok := c.Resources[dep]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared resource",
					fmt.Sprintf("depends_on names %s, which is not declared.%s", dep, DidYouMean(dep, c.ResourceAddrs())),
					r.DeclRange.Ptr())...)
			}
		}
		if _, ok := c.Providers[r.Provider]; !ok && r.Provider != providerName(r.Type) {
			diags = append(diags, errorDiag("Reference to undeclared provider",
				fmt.Sprintf("Resource %s uses provider %s, which has no provider block.", addr, r.Provider),
				r.DeclRange.Ptr())...)
		}
	}
	for _, name := range sortedKeys(c.Locals) {
		diags = append(diags, c.checkTraversals(c.Locals[name].Expr.Variables())...)
	}
	for _, name := range sortedKeys(c.Outputs) {
		if e := c.Outputs[name].Expr; e != nil {
			diags = append(diags, c.checkTraversals(e.Variables())...)
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		diags = append(diags, c.checkTraversals(bodyTraversals(c.Providers[name].Config))...)
	}
	return diags
}

func (c *Config) checkTraversals(travs []hcl2.Traversal) hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	for _, t := range travs {
		root := t.RootName()
		rng := t.SourceRange().Ptr()
		name, hasName := attrStep(t, 1)
		switch {
		case root == "var":
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference", "A variable is referenced as var.NAME.", rng)...)
			} else if _, ok := c.Variables[name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared input variable",
					fmt.Sprintf("No variable %q is declared.%s", name, DidYouMean(name, keys(c.Variables))), rng)...)
			}
		case root == "local":
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference", "A local value is referenced as local.NAME.", rng)...)
			} else if _, ok := c.Locals[name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared local value",
					fmt.Sprintf("No local value %q is declared.%s", name, DidYouMean(name, keys(c.Locals))), rng)...)
			}
		case c.types[root]:
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference",
					fmt.Sprintf("A resource is referenced as %s.NAME.", root), rng)...)
			} else if _, ok := c.Resources[root+"."+name]; !ok {
				addr := root + "." + name
				diags = append(diags, errorDiag("Reference to undeclared resource",
					fmt.Sprintf("No resource %s is declared.%s", addr, DidYouMean(addr, c.ResourceAddrs())), rng)...)
			}
		default:
			cands := append([]string{"var", "local"}, keys(c.types)...)
			diags = append(diags, errorDiag("Unknown reference",
				fmt.Sprintf("%q is not a variable, local value or resource type of this configuration.%s",
					root, DidYouMean(root, cands)), rng)...)
		}
	}
	return diags
}
