package hcl

import (
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/agext/levenshtein"
	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Sensitive is the cty mark of values that must never be shown.
const Sensitive = "sensitive"

// resolveVariables picks each root variable's value. Lowest to highest:
// the default, FIAT_VAR_name, then -var and -var-file in command-line order
// (a later one wins). A variable with none of them is an error that names
// it and how to give it; fiat never prompts.
func resolveVariables(cfg *Config, decls map[string]*Variable, opts Options) (map[string]cty.Value, map[string]string, hcl2.Diagnostics) {
	vals := make(map[string]cty.Value, len(decls))
	sources := make(map[string]string, len(decls))
	var diags hcl2.Diagnostics
	fromEnv := func(restrict bool) map[string]rawValue {
		raw := map[string]rawValue{}
		env := opts.Env
		if env == nil {
			env = os.Environ()
		}
		for _, kv := range env {
			if name, val, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "FIAT_VAR_") {
				n := strings.TrimPrefix(name, "FIAT_VAR_")
				if _, declared := decls[n]; declared {
					if _, saved := opts.Values[n]; !restrict || !saved {
						raw[n] = rawValue{text: val, source: name}
					}
				}
			}
		}
		return raw
	}
	if opts.Values != nil {
		for _, name := range sortedKeys(fromEnv(true)) {
			rv := fromEnv(true)[name]
			val, d := rv.value(decls[name])
			diags = append(diags, d...)
			if !d.HasErrors() {
				vals[name], sources[name] = val, rv.source
			}
		}
		for _, name := range sortedKeys(opts.Values) {
			v, ok := decls[name]
			if !ok {
				diags = append(diags, errorDiag("Undeclared variable",
					fmt.Sprintf("The saved plan has a value for variable %q, which its configuration does not declare.", name), nil)...)
				continue
			}
			val, err := v.convert(opts.Values[name])
			if err != nil {
				diags = append(diags, errorDiag("Invalid value for variable",
					fmt.Sprintf("The saved value of %q does not match its type: %s.", name, err), v.DeclRange.Ptr())...)
				continue
			}
			vals[name], sources[name] = val, "saved plan"
		}
	} else {
		raw := fromEnv(false)
		for _, a := range opts.Args {
			if a.File != "" {
				d := readVarFile(a.File, decls, raw)
				diags = append(diags, d...)
				continue
			}
			diags = append(diags, setCLIVar(a.Name, a.Value, decls, raw)...)
		}
		for _, name := range sortedKeys(opts.Vars) {
			diags = append(diags, setCLIVar(name, opts.Vars[name], decls, raw)...)
		}
		for _, name := range sortedKeys(raw) {
			rv := raw[name]
			v := decls[name]
			val, d := rv.value(v)
			diags = append(diags, d...)
			if !d.HasErrors() {
				vals[name], sources[name] = val, rv.source
			}
		}
	}
	for _, name := range sortedKeys(decls) {
		v := decls[name]
		if _, ok := vals[name]; ok {
			continue
		}
		if v.Default != cty.NilVal {
			vals[name], sources[name] = v.Default, "default"
			continue
		}
		if opts.Unset {
			vals[name], sources[name] = cty.UnknownVal(v.Type), "unset"
			continue
		}
		if opts.Values != nil {
			diags = append(diags, errorDiag("No value for required variable",
				fmt.Sprintf("The saved plan has no value for variable %q.", name), v.DeclRange.Ptr())...)
			continue
		}
		diags = append(diags, errorDiag("No value for required variable",
			fmt.Sprintf("Variable %q has no default. Give it with -var %s=VALUE, in a -var-file, or in the environment variable FIAT_VAR_%s.",
				name, name, name), v.DeclRange.Ptr())...)
	}
	if diags.HasErrors() {
		return vals, sources, diags
	}
	for _, name := range sortedKeys(decls) {
		v := decls[name]
		if v.Sensitive {
			vals[name] = vals[name].Mark(Sensitive)
		}
	}
	for _, name := range sortedKeys(decls) {
		diags = append(diags, cfg.validateVariable(decls[name], vals[name], vals, sources[name])...)
	}
	return vals, sources, diags
}

// rawValue is a variable's value before parsing: text from -var or the
// environment, or an expression from a -var-file.
type rawValue struct {
	text   string
	expr   hcl2.Expression
	source string
}

func (rv rawValue) value(v *Variable) (cty.Value, hcl2.Diagnostics) {
	if rv.expr != nil {
		val, diags := rv.expr.Value(nil)
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		conv, err := v.convert(val)
		if err != nil {
			return cty.NilVal, errorDiag("Invalid value for variable",
				fmt.Sprintf("The value of %q from %s does not match the variable's type: %s.", v.Name, rv.source, err), rv.expr.Range().Ptr())
		}
		return conv, nil
	}
	return parseVarValue(rv.text, v, rv.source)
}

func setCLIVar(name, value string, decls map[string]*Variable, raw map[string]rawValue) hcl2.Diagnostics {
	if _, ok := decls[name]; !ok {
		return errorDiag("Undeclared variable",
			fmt.Sprintf("A value was given for variable %q, but no variable block declares it.%s", name, DidYouMean(name, keys(decls))), nil)
	}
	raw[name] = rawValue{text: value, source: "-var " + name}
	return nil
}

func readVarFile(name string, decls map[string]*Variable, raw map[string]rawValue) hcl2.Diagnostics {
	src, err := os.ReadFile(name)
	if err != nil {
		return errorDiag("Cannot read variables file", fmt.Sprintf("-var-file %s: %s", name, err), nil)
	}
	f, diags := hclparse.NewParser().ParseHCL(src, name)
	if diags.HasErrors() {
		return diags
	}
	attrs, d := f.Body.JustAttributes()
	diags = append(diags, d...)
	for _, an := range sortedKeys(attrs) {
		a := attrs[an]
		if _, ok := decls[an]; !ok {
			diags = append(diags, warnDiag("Value for undeclared variable",
				fmt.Sprintf("%s sets %q, which no variable block declares; it is ignored.%s", name, an, DidYouMean(an, keys(decls))), a.NameRange.Ptr())...)
			continue
		}
		raw[an] = rawValue{expr: a.Expr, source: "-var-file " + name}
	}
	return diags
}

// parseVarValue takes a string verbatim for string variables and parses it as
// an HCL expression otherwise (lists, maps, numbers), as operators expect.
func parseVarValue(raw string, v *Variable, source string) (cty.Value, hcl2.Diagnostics) {
	var val cty.Value
	if v.Type == cty.String {
		val = cty.StringVal(raw)
	} else {
		expr, diags := hclsyntax.ParseExpression([]byte(raw), source, hcl2.InitialPos)
		if diags.HasErrors() {
			if v.Type == cty.DynamicPseudoType {
				return cty.StringVal(raw), nil
			}
			return cty.NilVal, errorDiag("Invalid value for variable",
				fmt.Sprintf("The value of %q from %s is not a valid expression: %s.", v.Name, source, diags[0].Summary), nil)
		}
		x, diags := expr.Value(nil)
		if diags.HasErrors() {
			// A bare word is a string; the type check below says
			// whether a string will do.
			x = cty.StringVal(raw)
		}
		val = x
	}
	conv, err := v.convert(val)
	if err != nil {
		return cty.NilVal, errorDiag("Invalid value for variable",
			fmt.Sprintf("The value of %q from %s does not match the variable's type: %s.", v.Name, source, err), v.DeclRange.Ptr())
	}
	return conv, nil
}

// validateVariable runs a variable's validation blocks. vars holds every
// variable of its module (conditions may compare variables).
func (c *Config) validateVariable(v *Variable, val cty.Value, vars map[string]cty.Value, source string) hcl2.Diagnostics {
	if len(v.Validations) == 0 || !val.IsWhollyKnown() {
		return nil
	}
	ctx := &hcl2.EvalContext{Functions: c.funcs, Variables: map[string]cty.Value{"var": cty.ObjectVal(varsWith(vars, v.Name, val))}}
	var diags hcl2.Diagnostics
	for _, vd := range v.Validations {
		ok, d := vd.Condition.Value(ctx)
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		ok, _ = ok.Unmark()
		if !ok.IsKnown() {
			continue
		}
		if ok, err := convert.Convert(ok, cty.Bool); err != nil || ok.IsNull() {
			diags = append(diags, errorDiag("Invalid validation condition", "The condition must be true or false.", vd.Condition.Range().Ptr())...)
			continue
		} else if ok.True() {
			continue
		}
		msg := "(the error message could not be evaluated)"
		if m, d := vd.ErrorMessage.Value(ctx); !d.HasErrors() {
			if m.IsMarked() {
				msg = "(the error message refers to a sensitive value)"
			} else if s, err := convert.Convert(m, cty.String); err == nil && s.IsKnown() && !s.IsNull() {
				msg = s.AsString()
			}
		}
		where := ""
		if source != "" {
			where = fmt.Sprintf(" (value from %s)", source)
		}
		diags = append(diags, &hcl2.Diagnostic{Severity: hcl2.DiagError, Summary: "Invalid value for variable",
			Detail:  fmt.Sprintf("var.%s%s: %s", v.Name, where, msg),
			Subject: vd.Condition.Range().Ptr(), Context: vd.DeclRange.Ptr()})
	}
	return diags
}

func varsWith(vars map[string]cty.Value, name string, val cty.Value) map[string]cty.Value {
	out := make(map[string]cty.Value, len(vars)+1)
	for k, v := range vars {
		out[k] = v
	}
	out[name] = val
	return out
}

// DidYouMean suggests the closest candidate, as HCL itself does for
// attribute names (edit distance under 3).
func DidYouMean(name string, candidates []string) string {
	cands := append([]string(nil), candidates...)
	sort.Strings(cands)
	best, bestDist := "", 3
	for _, c := range cands {
		if d := levenshtein.Distance(name, c, nil); d < bestDist {
			best, bestDist = c, d
		}
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf(" Did you mean %q?", best)
}
