package hcl

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// FuzzLoad: no input makes loading, expanding or evaluating a config panic
// (the fuzzer reports a panic as a failure); bad input is diagnostics.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{
		"resource \"thing\" \"a\" {\n  name = \"x\"\n}\n",
		"variable \"n\" {\n  default = 2\n}\nresource \"thing\" \"a\" {\n  count = var.n\n  name  = \"x${count.index}\"\n}\noutput \"o\" {\n  value = thing.a[*].name\n}\n",
		"locals {\n  m = { a = 1, b = 2 }\n}\nresource \"thing\" \"a\" {\n  for_each = local.m\n  name     = each.key\n  size     = each.value\n}\n",
		"module \"m\" {\n  source = \"./\"\n}\n",
		"resource \"thing\" \"a\" {\n  name = thing.a.name\n}\n",
		"resource \"thing\" \"a\" {\n  count = 1e300\n  name = \"x\"\n}\n",
		"data \"thing\" \"d\" {\n  name = \"q\"\n}\nresource \"thing\" \"a\" {\n  name = data.thing.d.name\n  depends_on = [data.thing.d]\n}\n",
		"moved {\n  from = thing.a\n  to   = thing.b\n}\nimport {\n  to = thing.b\n  id = \"x\"\n}\nresource \"thing\" \"b\" {\n  name = \"b\"\n}\n",
		"unknown_block {}\nresource \"thing\" {}\n",
		"resource \"thing\" \"a\" {\n  dynamic \"d\" {\n    for_each = [1]\n    content { x = d.value }\n  }\n  name = \"x\"\n}\n",
	} {
		f.Add(seed)
	}
	spec := hcldec.ObjectSpec{
		"name": &hcldec.AttrSpec{Name: "name", Type: cty.String},
		"size": &hcldec.AttrSpec{Name: "size", Type: cty.Number},
	}
	f.Fuzz(func(t *testing.T, src string) {
		cfg, diags := LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, Options{Env: []string{}, Unset: true})
		if diags.HasErrors() || cfg == nil {
			return
		}
		ev := cfg.NewEvaluator(nil)
		for _, addr := range cfg.Order() {
			x, d := ev.Expand(addr)
			if d.HasErrors() || x == nil {
				continue
			}
			for _, k := range x.Keys {
				ev.EvalInstance(addr, k, spec)
			}
		}
		ev.EvalOutputs()
	})
}

// FuzzVarFile: no -var-file content makes the variable loader panic.
func FuzzVarFile(f *testing.F) {
	for _, seed := range []string{"n = 10\nl = [\"x\", \"y\"]\n", "undeclared = 1\n", "m = { a = 1 }\n", "n = \n", "s = \"${\"\n", "n = 1e400\n"} {
		f.Add(seed)
	}
	cfgSrc := []byte("variable \"n\" {\n  type = number\n  default = 1\n}\nvariable \"l\" {\n  type = list(string)\n  default = []\n}\nvariable \"m\" {\n  type = map(number)\n  default = {}\n}\nvariable \"s\" {\n  default = \"\"\n}\n")
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, src string) {
		path := filepath.Join(dir, "f.fiatvars")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		LoadFiles("", map[string][]byte{"main.hcl": cfgSrc}, Options{Env: []string{}, Args: []VarArg{{File: path}}})
	})
}
