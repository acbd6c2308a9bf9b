package planner_test

import (
	"fmt"
	"io"
	"testing"

	"fiat/hcl"
	"fiat/internal/gen"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/builtin"
)

// BenchmarkPlan loads and plans N fiat_data resources per shape, from an
// empty store and with no changes. `make bench` runs the same cases one
// process each (internal/benchplan) to report peak RSS too.
func BenchmarkPlan(b *testing.B) {
	schemas := map[string]providers.Schema{builtin.Name: builtin.New().Schema()}
	mods := map[string]providers.PlanModifier{builtin.Name: builtin.New()}
	for _, shape := range gen.Shapes {
		for _, n := range []int{1000, 10000} {
			for _, mode := range []string{"empty", "nochange"} {
				b.Run(fmt.Sprintf("%s/%d/%s", shape, n, mode), func(b *testing.B) {
					dir := b.TempDir()
					if err := gen.Write(dir, shape, n); err != nil {
						b.Fatal(err)
					}
					ents, err := gen.Entities("bench", shape, n)
					if err != nil || mode == "empty" {
						ents = nil
					}
					b.ReportAllocs()
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						cfg, diags := hcl.Load(dir, hcl.Options{Env: []string{}})
						if diags.HasErrors() {
							b.Fatal(diags)
						}
						p, diags := planner.Build(planner.Input{Stack: "bench", Config: cfg, Entities: ents, Schemas: schemas, Modifiers: mods})
						if diags.HasErrors() {
							b.Fatal(diags)
						}
						if err := planner.RenderText(io.Discard, p); err != nil {
							b.Fatal(err)
						}
					}
					b.ReportMetric(float64(n), "resources")
				})
			}
		}
	}
}
