package executor_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/state"

	"github.com/zclconf/go-cty/cty"
)

// A resource and a data source of the same type name have different
// schemas: evaluating one must not decode the other with its spec.
func TestEvaluatorTellsDataSourceFromResource(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	if err := os.WriteFile(in, []byte("hello"), 0o600); err != nil {
		t.Fatal(err)
	}
	src := `data "local_file" "d" {
  filename = "` + in + `"
}
resource "local_file" "b" {
  content  = data.local_file.d.content
  filename = "` + filepath.Join(dir, "out") + `"
}
`
	cfg, diags := hcl.LoadFiles("", map[string][]byte{"main.tf": []byte(src)}, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	st, err := state.Open(context.Background(), state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := engine.Default()
	plan, err := eng.Plan(context.Background(), st, engine.PlanOptions{Stack: "s", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	eval := executor.NewEvaluator(cfg, plan, eng.Providers().Schemas())
	if _, err := eval("data.local_file.d", nil); err != nil {
		t.Fatalf("the data source: %v", err)
	}
	d := cty.ObjectVal(map[string]cty.Value{"content": cty.StringVal("hello")}) // what its read returned
	b, err := eval("local_file.b", map[string]cty.Value{"data.local_file.d": d})
	if err != nil {
		t.Fatalf("the resource after the data source: %v", err)
	}
	if got := b.GetAttr("content"); !got.RawEquals(cty.StringVal("hello")) {
		t.Errorf("content = %#v", got)
	}
}
