package engine_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/builtin"
	"fiat/providers/fake"
	"fiat/state"
)

const stack = "lib"

// world is a store and an engine with the fake and the builtin provider:
// no CLI anywhere.
type world struct {
	t     *testing.T
	store *state.Store
	fake  *fake.Provider
	eng   *engine.Engine
}

func newWorld(t *testing.T, wrap func(*fake.Provider) providers.Provider) *world {
	t.Helper()
	st, err := state.Open(context.Background(), state.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	w := &world{t: t, store: st, fake: fake.New()}
	var fp providers.Provider = w.fake
	if wrap != nil {
		fp = wrap(w.fake)
	}
	w.eng = engine.New(providers.NewRegistry(map[string]providers.Factory{
		"fake":       func() providers.Provider { return fp },
		builtin.Name: func() providers.Provider { return builtin.New() },
	}))
	return w
}

func (w *world) config(src string) *hcl.Config {
	w.t.Helper()
	cfg, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		w.t.Fatal(diags)
	}
	return cfg
}

func (w *world) plan(cfg *hcl.Config, destroy bool) *planner.Plan {
	w.t.Helper()
	p, err := w.eng.Plan(context.Background(), w.store, engine.PlanOptions{Stack: stack, Config: cfg, Destroy: destroy})
	if err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *world) apply(cfg *hcl.Config, p *planner.Plan) (*engine.ApplyResult, error) {
	return w.eng.Apply(context.Background(), w.store, engine.ApplyOptions{Stack: stack, Config: cfg, Plan: p, PlanID: "test", Command: "apply"})
}

func (w *world) entities() []state.Entity {
	w.t.Helper()
	ents, err := w.store.List(context.Background(), stack)
	if err != nil {
		w.t.Fatal(err)
	}
	return ents
}

const twoProviders = `
resource "fiat_data" "name" {
  input = "web"
}
resource "fake_thing" "a" {
  name  = fiat_data.name.output
  value = "v1"
}
resource "fake_thing" "b" {
  name  = "${fake_thing.a.id}-b"
}
output "a_id" {
  value = fake_thing.a.id
}
`

func TestPlanApplyDestroyThroughTheLibrary(t *testing.T) {
	w := newWorld(t, nil)
	cfg := w.config(twoProviders)
	p := w.plan(cfg, false)
	if c := p.Counts(); c[planner.Create] != 3 {
		t.Fatalf("plan: %v, want 3 creates", c)
	}
	res, err := w.apply(cfg, p)
	if err != nil {
		t.Fatal(err)
	}
	if res.Revision == 0 || len(w.fake.Objects) != 2 || len(w.entities()) != 3 {
		t.Fatalf("after apply: revision %d, %d fake objects, %d entities", res.Revision, len(w.fake.Objects), len(w.entities()))
	}
	// The plan modifier made fiat_data's output known at plan time, and
	// the apply-time evaluator resolved a's id into b's name.
	if len(res.Outputs) != 1 || res.Outputs[0].Name != "a_id" || res.Outputs[0].Value.AsString() == "" {
		t.Fatalf("outputs: %+v", res.Outputs)
	}
	b := res.Values["fake_thing.b"].GetAttr("name").AsString()
	if want := res.Outputs[0].Value.AsString() + "-b"; b != want {
		t.Fatalf("b's name %q, want %q", b, want)
	}
	if again := w.plan(cfg, false); again.HasChanges() {
		t.Fatalf("re-plan after apply has changes: %v", again.Counts())
	}
	dp, dres, err := w.eng.Destroy(context.Background(), w.store, engine.DestroyOptions{Stack: stack, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if dp.Counts()[planner.Delete] != 3 || dres.Outputs != nil || len(w.fake.Objects) != 0 || len(w.entities()) != 0 {
		t.Fatalf("after destroy: %v, outputs %v, %d objects, %d entities", dp.Counts(), dres.Outputs, len(w.fake.Objects), len(w.entities()))
	}
}

// panicky panics in Create of the object named "boom", after the fake made
// it: a provider bug with a side effect.
type panicky struct{ *fake.Provider }

func (p panicky) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	resp, err := p.Provider.Create(ctx, req)
	if req.Config.GetAttr("name").AsString() == "boom" {
		var m map[string]int
		m["boom"]++ // nil map: a real runtime panic
	}
	return resp, err
}

func TestProviderPanicRollsBack(t *testing.T) {
	w := newWorld(t, func(f *fake.Provider) providers.Provider { return panicky{f} })
	cfg := w.config(`
resource "fake_thing" "a" {
  name = "a"
}
resource "fake_thing" "boom" {
  name  = "boom"
  value = fake_thing.a.id
}
`)
	_, err := w.apply(cfg, w.plan(cfg, false))
	var ae *executor.Error
	if !errors.As(err, &ae) {
		t.Fatalf("want *executor.Error, got %T: %v", err, err)
	}
	if ae.Address != "fake_thing.boom" || ae.Operation != "create" || ae.Source != "main.hcl:5" {
		t.Fatalf("error names %s %s at %s, want fake_thing.boom create at main.hcl:5", ae.Address, ae.Operation, ae.Source)
	}
	if msg := err.Error(); !strings.Contains(msg, "panicked") || !strings.Contains(msg, "nil map") {
		t.Fatalf("error does not say the provider panicked: %s", msg)
	}
	undone := map[string]bool{}
	for _, u := range ae.RolledBack {
		undone[u.Address] = true
	}
	if !undone["fake_thing.a"] || !undone["fake_thing.boom"] {
		t.Fatalf("rolled back %v; want a and the object boom's panicking create left", ae.RolledBack)
	}
	if len(w.fake.Objects) != 0 || len(w.entities()) != 0 {
		t.Fatalf("left behind: objects %v, entities %d", w.fake.Snapshot(), len(w.entities()))
	}
}

// bare is a provider with none of the optional capabilities.
type bare struct{ providers.Provider }

func TestMissingCapabilityIsAClearError(t *testing.T) {
	w := newWorld(t, func(f *fake.Provider) providers.Provider { return bare{f} })
	cfg := w.config(`
import {
  to = fake_thing.a
  id = "x"
}
resource "fake_thing" "a" {
  name = "a"
}
`)
	_, err := w.eng.Plan(context.Background(), w.store, engine.PlanOptions{Stack: stack, Config: cfg})
	if err == nil || !strings.Contains(err.Error(), "provider fake cannot import") || !strings.Contains(err.Error(), "main.hcl:2") {
		t.Fatalf("want a clear import-capability error naming the block, got %v", err)
	}
}
