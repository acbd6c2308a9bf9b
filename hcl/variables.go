package hcl

import (
	"fmt"
	"github.com/agext/levenshtein"
	"os"
	"sort"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// resolveVariables picks each variable's value: -var, then FIAT_VAR_name,
// then the default. A variable with none of them is an error that names it.
func resolveVariables(decls map[string]*Variable, opts Options) (cty.Value, hcl2.Diagnostics) {
	var diags hcl2.Diagnostics
	env := opts.Env
	if env == nil {
		env = os.Environ()
	}
	fromEnv := map[string]string{}
	for _, kv := range env {
		if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "FIAT_VAR_") {
			fromEnv[strings.TrimPrefix(name, "FIAT_VAR_")] = val
		}
	}
	for name := range opts.Vars {
		if _, ok := decls[name]; !ok {
			diags = append(diags, errorDiag("Undeclared variable",
				fmt.Sprintf("A value was given for variable %q, but no variable block declares it.%s",
					name, DidYouMean(name, keys(decls))), nil)...)
		}
	}
	vals := make(map[string]cty.Value, len(decls))
	for _, name := range sortedKeys(decls) {
		v := decls[name]
		raw, given := opts.Vars[name]
		source := "-var " + name
		if !given {
			raw, given = fromEnv[name]
			source = "FIAT_VAR_" + name
		}
		switch {
		case given:
			val, d := parseVarValue(raw, v.Type, source)
			if d.HasErrors() {
				diags = append(diags, d...)
				continue
			}
			vals[name] = val
		case v.Default != cty.NilVal:
			vals[name] = v.Default
		default:
			diags = append(diags, errorDiag("No value for required variable",
				fmt.Sprintf("Variable %q has no default. Give it with -var %s=VALUE or the environment variable FIAT_VAR_%s.",
					name, name, name), v.DeclRange.Ptr())...)
		}
	}
	return cty.ObjectVal(vals), diags
}

// parseVarValue takes a string verbatim for string variables and parses it as
// an HCL expression otherwise (lists, maps, numbers), as operators expect.
func parseVarValue(raw string, ty cty.Type, source string) (cty.Value, hcl2.Diagnostics) {
	var val cty.Value
	if ty == cty.String {
		val = cty.StringVal(raw)
	} else {
		expr, diags := hclsyntax.ParseExpression([]byte(raw), source, hcl2.InitialPos)
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		v, diags := expr.Value(nil)
		if diags.HasErrors() {
			// A bare word for an untyped variable is a string.
			if ty == cty.DynamicPseudoType {
				return cty.StringVal(raw), nil
			}
			return cty.NilVal, diags
		}
		val = v
	}
	conv, err := convert.Convert(val, ty)
	if err != nil {
		return cty.NilVal, errorDiag("Invalid value for variable",
			fmt.Sprintf("The value from %s does not match the variable's type: %s.", source, err), nil)
	}
	return conv, nil
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

func sortedKeys[V any](m map[string]V) []string {
	out := keys(m)
	sort.Strings(out)
	return out
}

// DidYouMean suggests the closest candidate, as HCL itself does for
// attribute names (edit distance under 3).
func DidYouMean(name string, candidates []string) string {
	sort.Strings(candidates)
	best, bestDist := "", 3
	for _, c := range candidates {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}
