package hcl

import (
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

func load(t *testing.T, src string, opts Options) (*Config, string) {
	t.Helper()
	if opts.Env == nil {
		opts.Env = []string{}
	}
	cfg, diags := LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, opts)
	if len(diags) == 0 {
		return cfg, ""
	}
	return cfg, diags.Error()
}

var thingSpec = hcldec.ObjectSpec{
	"name": &hcldec.AttrSpec{Name: "name", Type: cty.String, Required: true},
	"size": &hcldec.AttrSpec{Name: "size", Type: cty.Number},
}

func TestReferencesLocalsAndFunctions(t *testing.T) {
	cfg, errs := load(t, `
variable "prefix" {
  type    = string
  default = "dev"
}
locals {
  base = upper(var.prefix)
}
resource "thing" "a" {
  name = "${local.base}-a"
}
resource "thing" "b" {
  name = format("%s/%s", thing.a.name, join("-", ["x", "y"]))
  size = 2 * 1024
}
output "b" {
  value = thing.b.name
}
`, Options{})
	if errs != "" {
		t.Fatal(errs)
	}
	if deps := cfg.Dependencies("thing.b"); len(deps) != 1 || deps[0] != "thing.a" {
		t.Fatalf("deps of thing.b = %v", deps)
	}
	a, diags := cfg.EvalResource("thing.a", thingSpec, nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := a.GetAttr("name").AsString(); got != "DEV-a" {
		t.Fatalf("thing.a.name = %q", got)
	}
	// Before thing.a exists its attributes are unknown; after, known.
	b, _ := cfg.EvalResource("thing.b", thingSpec, Values{})
	if b.GetAttr("name").IsKnown() {
		t.Fatal("thing.b.name should be unknown while thing.a is not known")
	}
	b, diags = cfg.EvalResource("thing.b", thingSpec, Values{"thing.a": a})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := b.GetAttr("name").AsString(); got != "DEV-a/x-y" {
		t.Fatalf("thing.b.name = %q", got)
	}
	outs, _ := cfg.EvalOutputs(Values{"thing.a": a, "thing.b": b})
	if outs["b"].AsString() != "DEV-a/x-y" {
		t.Fatalf("output b = %#v", outs["b"])
	}
}

func TestVariablePrecedence(t *testing.T) {
	src := `variable "n" {
  type    = number
  default = 1
}
variable "s" {
  type = string
}
`
	cfg, errs := load(t, src, Options{Vars: map[string]string{"n": "3", "s": "cli"}, Env: []string{"FIAT_VAR_n=2", "FIAT_VAR_s=env"}})
	if errs != "" {
		t.Fatal(errs)
	}
	if n, _ := cfg.inputsObj.GetAttr("n").AsBigFloat().Int64(); n != 3 {
		t.Fatalf("-var should win, got %d", n)
	}
	cfg, _ = load(t, src, Options{Env: []string{"FIAT_VAR_n=2", "FIAT_VAR_s=env"}})
	if n, _ := cfg.inputsObj.GetAttr("n").AsBigFloat().Int64(); n != 2 || cfg.inputsObj.GetAttr("s").AsString() != "env" {
		t.Fatalf("environment should win over default: %#v", cfg.inputsObj)
	}
}

func TestDiagnostics(t *testing.T) {
	cases := []struct {
		name, src, want string
	}{
		{"missing variable", `variable "x" {}`, `main.hcl:1,1-13: No value for required variable; Variable "x" has no default`},
		{"unknown var", "variable \"prefix\" {\n  default = 1\n}\nresource \"thing\" \"a\" {\n  name = var.prefx\n}", `main.hcl:5,10-19: Reference to undeclared input variable; No variable "prefx" is declared. Did you mean "prefix"?`},
		{"unknown resource", "resource \"thing\" \"alpha\" {\n  name = \"a\"\n}\nresource \"thing\" \"b\" {\n  name = thing.alpah.name\n}", `main.hcl:5,10-26: Reference to undeclared resource; No resource thing.alpah is declared. Did you mean "thing.alpha"?`},
		{"unknown root", "resource \"thing\" \"a\" {\n  name = thingy.a.name\n}", `main.hcl:2,10-23: Unknown reference; "thingy" is not a variable, local value, module, data source or resource type of this configuration. Did you mean "thing"?`},
		{"duplicate", "resource \"thing\" \"a\" {\n  name = \"a\"\n}\nresource \"thing\" \"a\" {\n  name = \"b\"\n}", `main.hcl:4,1-21: Duplicate resource; A resource named "thing.a" was already declared at main.hcl:1,1-21.`},
		{"syntax", "resource \"thing\" \"a\" {\n  name = \n}", `main.hcl:2`},
		{"bad default", "variable \"n\" {\n  type = number\n  default = \"x\"\n}", `main.hcl:3,13-16: Invalid default value`},
		{"undeclared -var", "", `Undeclared variable`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			opts := Options{}
			if c.name == "undeclared -var" {
				opts.Vars = map[string]string{"nope": "1"}
			}
			_, errs := load(t, c.src, opts)
			if !strings.Contains(errs, c.want) {
				t.Fatalf("diagnostics:\n%s\nwant to contain:\n%s", errs, c.want)
			}
		})
	}
}

func TestNoFiles(t *testing.T) {
	_, diags := Load(t.TempDir(), Options{})
	if !diags.HasErrors() || !strings.Contains(diags.Error(), "no *.hcl or *.tf files") {
		t.Fatalf("want a no-files error, got %v", diags)
	}
}
