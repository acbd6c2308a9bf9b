package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

func loadMany(t *testing.T, srcs map[string]string, opts Options) (*Config, string) {
	t.Helper()
	files := map[string][]byte{}
	for k, v := range srcs {
		files[k] = []byte(v)
	}
	if opts.Env == nil {
		opts.Env = []string{}
	}
	cfg, diags := LoadFiles("", files, opts)
	if len(diags) == 0 {
		return cfg, ""
	}
	return cfg, diags.Error()
}

func TestVariableFilesEnvAndOrder(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "a.fiatvars")
	if err := os.WriteFile(file, []byte("n = 10\nl = [\"x\", \"y\"]\nundeclared = 1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	src := `
variable "n" {
  type    = number
  default = 1
}
variable "l" {
  type    = list(string)
  default = []
}
variable "o" {
  type = object({
    name = string
    size = optional(number, 64)
  })
  default = { name = "d" }
}
`
	// -var-file beats the environment; a later -var beats the file.
	cfg, errs := load(t, src, Options{Env: []string{"FIAT_VAR_n=2", "FIAT_VAR_l=[\"env\"]"},
		Args: []VarArg{{File: file}, {Name: "n", Value: "30"}}})
	if strings.Contains(errs, "Error") || cfg == nil {
		t.Fatal(errs)
	}
	if !strings.Contains(errs, `a.fiatvars:3,1-11: Value for undeclared variable`) {
		t.Errorf("want a warning for the undeclared variable in the file, got %q", errs)
	}
	vals := cfg.VariableValues()
	if n, _ := vals["n"].AsBigFloat().Int64(); n != 30 || vals["l"].LengthInt() != 2 {
		t.Fatalf("values %#v", vals)
	}
	if cfg.VariableSource("n") != "-var n" || cfg.VariableSource("l") != "-var-file "+file || cfg.VariableSource("o") != "default" {
		t.Fatalf("sources %q %q %q", cfg.VariableSource("n"), cfg.VariableSource("l"), cfg.VariableSource("o"))
	}
	if sz, _ := vals["o"].GetAttr("size").AsBigFloat().Int64(); sz != 64 {
		t.Fatalf("optional attribute default not applied: %#v", vals["o"])
	}
	// A -var before the file loses to it.
	cfg, _ = load(t, src, Options{Args: []VarArg{{Name: "n", Value: "30"}, {File: file}}})
	if n, _ := cfg.VariableValues()["n"].AsBigFloat().Int64(); n != 10 {
		t.Fatalf("later -var-file should win, got %d", n)
	}
	_, errs = load(t, src, Options{Vars: map[string]string{"n": "abc"}})
	if !strings.Contains(errs, `main.hcl:2,1-13: Invalid value for variable; The value of "n" from -var n does not match the variable's type`) {
		t.Fatal(errs)
	}
	_, errs = load(t, src, Options{Args: []VarArg{{File: filepath.Join(dir, "missing")}}})
	if !strings.Contains(errs, "Cannot read variables file") {
		t.Fatal(errs)
	}
}

func TestVariableValidation(t *testing.T) {
	src := `
variable "size" {
  type = number
  validation {
    condition     = var.size >= 1 && var.size <= 8
    error_message = "size must be between 1 and 8."
  }
}
`
	if _, errs := load(t, src, Options{Vars: map[string]string{"size": "4"}}); errs != "" {
		t.Fatal(errs)
	}
	_, errs := load(t, src, Options{Vars: map[string]string{"size": "9"}})
	if !strings.Contains(errs, "main.hcl:5,21-51: Invalid value for variable; var.size (value from -var size): size must be between 1 and 8.") {
		t.Fatal(errs)
	}
	// A failing condition on a sensitive variable does not echo it.
	_, errs = load(t, `
variable "pw" {
  sensitive = true
  validation {
    condition     = length(var.pw) >= 8
    error_message = "too short: ${var.pw}"
  }
}
`, Options{Env: []string{"FIAT_VAR_pw=abc"}})
	if strings.Contains(errs, "abc") || !strings.Contains(errs, "refers to a sensitive value") {
		t.Fatal(errs)
	}
}

func TestMissingRequiredVariableNeverPrompts(t *testing.T) {
	_, errs := load(t, "variable \"region\" {\n  type = string\n}\n", Options{})
	if !strings.Contains(errs, "main.hcl:1,1-18: No value for required variable") || !strings.Contains(errs, "FIAT_VAR_region") {
		t.Fatal(errs)
	}
}

func TestLocalsDependsOnAndPath(t *testing.T) {
	cfg, errs := load(t, `
locals {
  a = "x"
  b = "${local.a}-${path.module}"
}
resource "thing" "one" {
  name = local.b
}
resource "thing" "two" {
  name       = "two"
  depends_on = [thing.one]
}
`, Options{})
	if errs != "" {
		t.Fatal(errs)
	}
	if d := cfg.Dependencies("thing.two"); len(d) != 1 || d[0] != "thing.one" {
		t.Fatalf("depends_on: %v", d)
	}
	v, diags := cfg.EvalResource("thing.one", thingSpec, nil)
	wd, _ := os.Getwd() // path.module is absolute: the same file from any working directory
	if diags.HasErrors() || v.GetAttr("name").AsString() != "x-"+wd {
		t.Fatalf("%v %#v", diags, v)
	}
	if o := cfg.Order(); len(o) != 2 || o[0] != "thing.one" {
		t.Fatalf("order %v", o)
	}
}

func TestLanguageDiagnostics(t *testing.T) {
	cases := []struct{ name, src, want string }{
		{"count outside", "resource \"thing\" \"a\" {\n  name = count.index\n}", `main.hcl:2,10-21: Reference to "count" outside a counted resource`},
		{"each outside", "resource \"thing\" \"a\" {\n  count = 1\n  name = each.key\n}", `main.hcl:3,10-18: Reference to "each" outside a for_each resource`},
		{"count and for_each", "resource \"thing\" \"a\" {\n  count = 1\n  for_each = {}\n}", `main.hcl:3,3-11: Invalid combination of count and for_each`},
		{"undeclared data", "data \"thing\" \"alpha\" {}\nresource \"thing\" \"a\" {\n  name = data.thing.alpah.x\n}", `main.hcl:3,10-28: Reference to undeclared data source; No data source data.thing.alpah is declared. Did you mean "data.thing.alpha"?`},
		{"duplicate data", "data \"thing\" \"a\" {}\ndata \"thing\" \"a\" {}", `main.hcl:2,1-17: Duplicate data source; A data source named "data.thing.a" was already declared at main.hcl:1,1-17.`},
		{"duplicate local", "locals {\n  a = 1\n}\nlocals {\n  a = 2\n}", `main.hcl:5,3-4: Duplicate local value`},
		{"local cycle", "locals {\n  a = local.b\n  b = local.a\n}", `main.hcl:2,3-4: Dependency cycle; These depend on each other in a cycle: local.a (main.hcl:2), local.b (main.hcl:3).`},
		{"bad depends_on", "resource \"thing\" \"a\" {\n  depends_on = [thing.b]\n}", `main.hcl:2,17-24: Reference to undeclared resource; depends_on names thing.b, which is not declared.`},
		{"unknown provider alias", "resource \"thing\" \"a\" {\n  provider = thing.west\n}", `main.hcl:1,1-21: Reference to undeclared provider; thing.a uses provider thing.west, which has no provider block.`},
		{"moved type change", "resource \"thing\" \"a\" {}\nmoved {\n  from = other.a\n  to = thing.a\n}", `main.hcl:2,1-6: Resource type mismatch`},
		{"self", "resource \"thing\" \"a\" {\n  name = self.x\n}", `Unknown reference; "self" is not a variable`},
		{"invalid name", "resource \"thing\" \"1a\" {}", `Invalid name`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, errs := load(t, c.src, Options{})
			if !strings.Contains(errs, c.want) {
				t.Fatalf("diagnostics:\n%s\nwant to contain:\n%s", errs, c.want)
			}
		})
	}
}

func TestModuleCycleAndDependsOnModule(t *testing.T) {
	_, errs := loadMany(t, map[string]string{
		"main.hcl": "module \"m\" {\n  source = \"./m\"\n  in = thing.top.name\n}\nresource \"thing\" \"top\" {\n  name = module.m.out\n}\n",
		"m/m.hcl":  "variable \"in\" {}\noutput \"out\" {\n  value = var.in\n}\n",
	}, Options{})
	for _, w := range []string{"Dependency cycle", "thing.top (main.hcl:5)", "module.m.var.in (m/m.hcl:1)", "module.m.output.out (m/m.hcl:2)"} {
		if !strings.Contains(errs, w) {
			t.Fatalf("want %q in:\n%s", w, errs)
		}
	}
	cfg, errs := loadMany(t, map[string]string{
		"main.hcl": "module \"m\" {\n  source = \"./m\"\n  depends_on = [thing.first]\n}\nresource \"thing\" \"first\" {}\nresource \"thing\" \"after\" {\n  depends_on = [module.m]\n}\n",
		"m/m.hcl":  "resource \"thing\" \"inner\" {}\n",
	}, Options{})
	if errs != "" {
		t.Fatal(errs)
	}
	if d := cfg.Dependencies("module.m.thing.inner"); len(d) != 1 || d[0] != "thing.first" {
		t.Fatalf("module depends_on: %v", d)
	}
	if d := cfg.Dependencies("thing.after"); len(d) != 1 || d[0] != "module.m.thing.inner" {
		t.Fatalf("depends_on a module: %v", d)
	}
}

func TestAddresses(t *testing.T) {
	for in, want := range map[string]string{
		`thing.a`: `thing.a`, `thing.a[0]`: `thing.a[0]`, `thing.a["k"]`: `thing.a["k"]`,
		`module.m.module.n.thing.a[2]`: `module.m.module.n.thing.a[2]`, `data.t.n`: `data.t.n`, `module.m`: `module.m`,
	} {
		a, diags := ParseAddress(in)
		if diags.HasErrors() || a.String() != want {
			t.Errorf("%s: %v %s", in, diags, a.String())
		}
	}
	for _, bad := range []string{"thing", "thing.a.b.c", "thing.a[1.5]", "module.m[0].thing.a"} {
		if _, diags := ParseAddress(bad); !diags.HasErrors() {
			t.Errorf("%s should not parse", bad)
		}
	}
	if KeyString(cty.StringVal("a\"b${x}")) != `["a\"b$${x}"]` {
		t.Errorf("quoting: %s", KeyString(cty.StringVal("a\"b${x}")))
	}
}

func TestLoadModulesFromDisk(t *testing.T) {
	dir := t.TempDir()
	write := func(rel, src string) {
		p := filepath.Join(dir, rel)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("main.hcl", "module \"m\" {\n  source = \"./mods/m\"\n}\n")
	write("mods/m/main.hcl", "resource \"thing\" \"x\" {\n  name = path.module\n}\n")
	cfg, diags := Load(dir, Options{Env: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	if _, ok := cfg.Files["mods/m/main.hcl"]; !ok {
		t.Fatalf("snapshot lacks the module: %v", keys(cfg.Files))
	}
	v, d := cfg.EvalResource("module.m.thing.x", hcldec.ObjectSpec{"name": &hcldec.AttrSpec{Name: "name", Type: cty.String}}, nil)
	if d.HasErrors() || v.GetAttr("name").AsString() != filepath.Join(dir, "mods/m") {
		t.Fatalf("%v %#v", d, v)
	}
	// The snapshot loads the same.
	if _, diags := LoadFiles(dir, cfg.Files, Options{Env: []string{}}); diags.HasErrors() {
		t.Fatal(diags)
	}
}

// A big file is parsed in pieces; the result and every diagnostic must be
// those of a whole-file parse.
func TestBigFileParsedInPieces(t *testing.T) {
	var b strings.Builder
	n := 0
	for b.Len() < 3*chunkSize {
		fmt.Fprintf(&b, "resource \"thing\" \"r%d\" {\n  name = \"r%d\"\n}\n", n, n)
		n++
		if n == 9000 {
			// A heredoc that looks like a block boundary inside.
			b.WriteString("locals {\n  doc = <<EOT\n}\nresource \"thing\" \"fake\" {\nEOT\n}\n")
		}
	}
	src := b.String()
	if len(cutPoints([]byte(src))) < 2 {
		t.Fatal("want the file cut in pieces")
	}
	cfg, errs := load(t, src, Options{})
	if errs != "" {
		t.Fatal(errs)
	}
	if len(cfg.Resources) != n || cfg.Locals["doc"] == nil {
		t.Fatalf("%d resources, want %d", len(cfg.Resources), n)
	}
	last := fmt.Sprintf("thing.r%d", n-1)
	if got, want := cfg.Resources[last].DeclRange.Start.Line, strings.Count(src, "\n")-2; got != want {
		t.Fatalf("%s at line %d, want %d", last, got, want)
	}
	// An error near the end is reported at its true line.
	bad := src + "resource \"thing\" \"x\" {\n  name = \n}\n"
	_, errs = load(t, bad, Options{})
	if want := fmt.Sprintf("main.hcl:%d,", strings.Count(src, "\n")+2); !strings.Contains(errs, want) {
		t.Fatalf("want %s in %s", want, errs)
	}
	// An unknown reference in the last piece too.
	bad = src + "resource \"thing\" \"y\" {\n  name = thing.nope.name\n}\n"
	_, errs = load(t, bad, Options{})
	if want := fmt.Sprintf("main.hcl:%d,10-25: Reference to undeclared resource", strings.Count(src, "\n")+2); !strings.Contains(errs, want) {
		t.Fatalf("want %s in %s", want, errs)
	}
}

func TestUnsetVariablesAreUnknownForValidate(t *testing.T) {
	cfg, errs := load(t, "variable \"region\" {\n  type = string\n}\nresource \"thing\" \"a\" {\n  name = var.region\n}\n", Options{Unset: true})
	if errs != "" {
		t.Fatal(errs)
	}
	v, diags := cfg.EvalResource("thing.a", thingSpec, nil)
	if diags.HasErrors() || v.GetAttr("name").IsKnown() {
		t.Fatalf("%v %#v", diags, v)
	}
}

// A 100,000-long chain orders without recursion (no stack overflow) and
// with every dependency first.
func TestOrderLongChain(t *testing.T) {
	if testing.Short() {
		t.Skip("a 100,000-resource config takes seconds; it runs without -short (make test)")
	}
	const n = 100000
	b := &strings.Builder{}
	for i := 0; i < n; i++ {
		if i == 0 {
			b.WriteString("resource \"thing\" \"r0\" {\n  name = \"x\"\n}\n")
			continue
		}
		fmt.Fprintf(b, "resource \"thing\" \"r%d\" {\n  name = thing.r%d.name\n}\n", i, i-1)
	}
	cfg, diags := LoadFiles("", map[string][]byte{"main.hcl": []byte(b.String())}, Options{Env: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	order := cfg.Order()
	if len(order) != n {
		t.Fatalf("order has %d of %d", len(order), n)
	}
	pos := make(map[string]int, n)
	for i, a := range order {
		pos[a] = i
	}
	for i := 1; i < n; i++ {
		if pos[fmt.Sprintf("thing.r%d", i)] < pos[fmt.Sprintf("thing.r%d", i-1)] {
			t.Fatalf("thing.r%d ordered before its dependency", i)
		}
	}
}
