package planner

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"fiat/hcl"
	"fiat/providers"
	"fiat/providers/builtin"
	"fiat/providers/fake"
	"fiat/state"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

// allSchemas has the fake provider, fiat's builtin one, and "test" with a
// list-of-objects attribute (for nested and dynamic blocks).
func allSchemas() map[string]providers.Schema {
	disk := cty.ObjectWithOptionalAttrs(map[string]cty.Type{"size": cty.Number, "label": cty.String}, []string{"label"})
	return map[string]providers.Schema{
		"fake": fake.New().Schema(),
		"fiat": builtin.New().Schema(),
		"test": {Resources: map[string]providers.ResourceSchema{
			"test_vm": {Attributes: map[string]providers.Attribute{
				"name":     {Type: cty.String, Required: true},
				"disks":    {Type: cty.List(disk), Optional: true},
				"memory":   {Type: cty.Number, Optional: true, RestartNeeded: true},
				"password": {Type: cty.String, Optional: true, Sensitive: true},
				"id":       {Type: cty.String, Computed: true},
				"free":     {Type: cty.Number, Computed: true, Volatile: true},
			}},
		}},
	}
}

func modifiers() map[string]providers.PlanModifier {
	return map[string]providers.PlanModifier{builtin.Name: builtin.New()}
}

// files loads a multi-file config (path → source).
func files(t *testing.T, srcs map[string]string, opts hcl.Options) *hcl.Config {
	t.Helper()
	fs := map[string][]byte{}
	for k, v := range srcs {
		fs[k] = []byte(v)
	}
	if opts.Env == nil {
		opts.Env = []string{}
	}
	cfg, diags := hcl.LoadFiles("", fs, opts)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func build(t *testing.T, in Input) *Plan {
	t.Helper()
	if in.Stack == "" {
		in.Stack = "s"
	}
	if in.Schemas == nil {
		in.Schemas = allSchemas()
	}
	if in.Modifiers == nil {
		in.Modifiers = modifiers()
	}
	p, diags := Build(in)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

func buildErr(t *testing.T, in Input) string {
	t.Helper()
	if in.Stack == "" {
		in.Stack = "s"
	}
	if in.Schemas == nil {
		in.Schemas = allSchemas()
	}
	_, diags := Build(in)
	if !diags.HasErrors() {
		t.Fatal("want an error, got none")
	}
	var msgs []string
	for _, d := range diags {
		msgs = append(msgs, d.Error())
	}
	return strings.Join(msgs, "\n")
}

// stored makes an entity for address (within stack "s") holding v.
func storedEnt(t *testing.T, addr, typ string, v cty.Value, rev uint64) state.Entity {
	t.Helper()
	b, err := value.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	res, _, _ := hcl.SplitInstance(addr)
	name := res[strings.LastIndexByte(res, '.')+1:]
	prov := typ[:strings.IndexByte(typ, '_')]
	return state.Entity{Address: "s/" + addr, Stack: "s", Type: typ, Name: name, Provider: prov,
		ID: "id-" + addr, Attributes: b, Revision: rev, Source: "main.hcl:1"}
}

// data is a fiat_data state.
func data(input cty.Value, id string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"input": input, "output": input, "triggers_replace": cty.NullVal(cty.DynamicPseudoType), "id": cty.StringVal(id),
	})
}

// applyAll turns a plan into the entities an apply would leave, with the
// builtin provider's behaviour, so a second plan can be checked.
func applyAll(t *testing.T, p *Plan) []state.Entity {
	t.Helper()
	var out []state.Entity
	put, del, err := p.StoreChanges()
	if err != nil {
		t.Fatal(err)
	}
	gone := map[string]bool{}
	for _, d := range del {
		gone[d] = true
	}
	for _, e := range put {
		out = append(out, e)
		gone[e.Address] = true
	}
	for _, s := range p.Steps {
		if gone["s/"+s.Address] {
			continue
		}
		var v cty.Value
		switch s.Action {
		case Delete, Read, Forget:
			continue
		case NoOp:
			v = s.Before
		default:
			v = s.After
			if !v.IsWhollyKnown() {
				m := v.AsValueMap()
				m["id"] = cty.StringVal("new-" + s.Address)
				if !m["output"].IsKnown() {
					m["output"] = m["input"]
				}
				v = cty.ObjectVal(m)
			}
		}
		e := storedEnt(t, s.Address, s.Type, v, 9)
		e.Name = s.Name
		out = append(out, e)
	}
	return out
}

func TestCountAndForEach(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
variable "names" {
  type    = set(string)
  default = ["web", "db"]
}
resource "fiat_data" "n" {
  count = 3
  input = "n${count.index}"
}
resource "fiat_data" "byname" {
  for_each = var.names
  input    = "${each.key}:${fiat_data.n[1].output}"
}
resource "fiat_data" "bymap" {
  for_each = { a = 1, b = 2 }
  input    = each.value * 10
}
resource "fiat_data" "all" {
  input = [for d in fiat_data.n : d.output]
  triggers_replace = fiat_data.byname["db"].output
}
`}, hcl.Options{})
	p := build(t, Input{Config: cfg})
	want := map[string]string{
		`fiat_data.n[0]`: `"n0"`, `fiat_data.n[2]`: `"n2"`,
		`fiat_data.byname["db"]`: `"db:n1"`, `fiat_data.byname["web"]`: `"web:n1"`,
		`fiat_data.bymap["b"]`: `20`, `fiat_data.all`: `["n0", "n1", "n2"]`,
	}
	for addr, w := range want {
		s := p.Step(addr)
		if s == nil || s.Action != Create {
			t.Fatalf("%s: %+v", addr, s)
		}
		if got := FormatValue(s.After.GetAttr("output")); got != w {
			t.Errorf("%s.output = %s, want %s", addr, got, w)
		}
	}
	deps := strings.Join(p.Step("fiat_data.all").DependsOn, " ")
	if deps != `fiat_data.byname["db"] fiat_data.byname["web"] fiat_data.n[0] fiat_data.n[1] fiat_data.n[2]` {
		t.Errorf("instance dependencies: %s", deps)
	}
	// Applied, then count shrinks and a key goes: exactly those are deleted.
	ents := applyAll(t, p)
	cfg2 := files(t, map[string]string{"main.hcl": strings.NewReplacer("count = 3", "count = 2", `["web", "db"]`, `["db"]`).Replace(string(cfg.Files["main.hcl"]))}, hcl.Options{})
	p2 := build(t, Input{Config: cfg2, Entities: ents})
	c := p2.Counts()
	if c[Delete] != 2 || p2.Step("fiat_data.n[2]").Action != Delete || p2.Step(`fiat_data.byname["web"]`).Action != Delete {
		t.Fatalf("want n[2] and byname[web] deleted, got %v", c)
	}
	if r := p2.Step("fiat_data.n[2]").Reason; !strings.Contains(r, "count") {
		t.Errorf("delete reason %q", r)
	}
	if s := p2.Step("fiat_data.all"); s.Action != Update {
		t.Errorf("all should update (its input lost n2): %s", s.Action)
	}
}

func TestForEachDiagnostics(t *testing.T) {
	cases := map[string]struct{ expr, want string }{
		"list":      {`["a", "b"]`, `main.hcl:3,14-24: Invalid for_each argument; for_each supports maps and sets of strings, but this is a list`},
		"null key":  {`toset(["a", null])`, `Invalid for_each set argument; The for_each set holds a null value`},
		"numbers":   {`toset([1, 2])`, `Invalid for_each set argument; for_each supports sets of strings, but this set holds number values`},
		"unknown":   {`toset([fiat_data.src.id])`, `Invalid for_each argument; The for_each set includes values that are known only after apply`},
		"sensitive": {`sensitive(toset(["a"]))`, `Invalid for_each argument; for_each is derived from a sensitive value`},
		"null":      {`null`, `for_each must be a map or a set of strings, not null`},
		"string":    {`"a"`, `for_each supports maps and sets of strings, not string`},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			cfg := files(t, map[string]string{"main.hcl": "resource \"fiat_data\" \"src\" {}\nresource \"fiat_data\" \"x\" {\n  for_each = " + c.expr + "\n  input = each.key\n}\n"}, hcl.Options{})
			if got := buildErr(t, Input{Config: cfg}); !strings.Contains(got, c.want) {
				t.Fatalf("got %s\nwant %s", got, c.want)
			}
		})
	}
	cfg := files(t, map[string]string{"main.hcl": "resource \"fiat_data\" \"x\" {\n  count = -1\n}\n"}, hcl.Options{})
	if got := buildErr(t, Input{Config: cfg}); !strings.Contains(got, "main.hcl:2,11-13: Invalid count argument; count must be a whole number, 0 or more, not -1") {
		t.Fatal(got)
	}
}

func TestImplicitMoveWhenCountAdded(t *testing.T) {
	ents := []state.Entity{storedEnt(t, "fiat_data.a", "fiat_data", data(cty.StringVal("x"), "i1"), 4)}
	cfg := files(t, map[string]string{"main.hcl": "resource \"fiat_data\" \"a\" {\n  count = 2\n  input = \"x\"\n}\n"}, hcl.Options{})
	p := build(t, Input{Config: cfg, Entities: ents})
	s := p.Step("fiat_data.a[0]")
	if s.Action != Move || s.MovedFrom != "fiat_data.a" || p.Step("fiat_data.a[1]").Action != Create || p.Step("fiat_data.a") != nil {
		t.Fatalf("steps: %+v", p.Steps)
	}
}

func TestMovedBlocks(t *testing.T) {
	ents := []state.Entity{
		storedEnt(t, "fiat_data.old", "fiat_data", data(cty.StringVal("v"), "i1"), 4),
		storedEnt(t, "fiat_data.other", "fiat_data", data(cty.StringVal("w"), "i2"), 5),
		storedEnt(t, "module.a.fiat_data.x", "fiat_data", data(cty.StringVal("m"), "i3"), 6),
	}
	cfg := files(t, map[string]string{
		"main.hcl": `
resource "fiat_data" "new" { input = "v" }
resource "fiat_data" "renamed" { input = "changed" }
module "b" {
  source = "./mod"
}
moved {
  from = fiat_data.old
  to   = fiat_data.new
}
moved {
  from = fiat_data.other
  to   = fiat_data.renamed
}
moved {
  from = module.a
  to   = module.b
}
`,
		"mod/main.hcl": `resource "fiat_data" "x" { input = "m" }`,
	}, hcl.Options{})
	p := build(t, Input{Config: cfg, Entities: ents})
	if s := p.Step("fiat_data.new"); s.Action != Move || s.MovedFrom != "fiat_data.old" || s.ID != "id-fiat_data.old" {
		t.Fatalf("new: %+v", s)
	}
	if s := p.Step("fiat_data.renamed"); s.Action != Update || s.MovedFrom != "fiat_data.other" {
		t.Fatalf("renamed: %+v", s)
	}
	if s := p.Step("module.b.fiat_data.x"); s.Action != Move || s.MovedFrom != "module.a.fiat_data.x" {
		t.Fatalf("module move: %+v", s)
	}
	if c := p.Counts(); c[Delete] != 0 || c[Create] != 0 {
		t.Fatalf("a move must not destroy or create: %v", c)
	}
	if p.Reads["fiat_data.old"] != 4 || p.Reads["fiat_data.new"] != 0 {
		t.Errorf("reads %v", p.Reads)
	}
	put, del, err := p.StoreChanges()
	if err != nil || len(put) != 2 || strings.Join(del, " ") != "s/module.a.fiat_data.x s/fiat_data.old s/fiat_data.other" && strings.Join(del, " ") != "s/fiat_data.old s/fiat_data.other s/module.a.fiat_data.x" {
		t.Fatalf("store changes: put %d del %v err %v", len(put), del, err)
	}
	var text bytes.Buffer
	RenderText(&text, p)
	if !strings.Contains(text.String(), "# fiat_data.new will be moved") || !strings.Contains(text.String(), "# (moved from fiat_data.old)") {
		t.Fatalf("text:\n%s", text.String())
	}
	// After the apply the moved blocks are no-ops.
	p2 := build(t, Input{Config: cfg, Entities: applyAll(t, p)})
	if p2.HasChanges() {
		t.Fatalf("re-plan has changes: %v", p2.Counts())
	}
}

func TestImport(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "fake_thing" "a" {
  name  = "a"
  value = "v"
}
resource "fake_thing" "b" {
  name  = "b"
  value = "new"
}
import {
  to = fake_thing.a
  id = "fake-1"
}
import {
  to = fake_thing.b
  id = "fake-2"
}
`}, hcl.Options{})
	obj := func(name, value, id string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "value": cty.StringVal(value), "forced": cty.NullVal(cty.String), "id": cty.StringVal(id)})
	}
	p := build(t, Input{Config: cfg, Imported: map[string]Imported{
		"fake_thing.a": {ID: "fake-1", State: obj("a", "v", "fake-1")},
		"fake_thing.b": {ID: "fake-2", State: obj("b", "old", "fake-2")},
	}})
	if s := p.Step("fake_thing.a"); s.Action != Import || s.ID != "fake-1" {
		t.Fatalf("a: %+v", s)
	}
	if s := p.Step("fake_thing.b"); s.Action != Update || !s.Imported || s.ID != "fake-2" {
		t.Fatalf("b: %+v", s)
	}
	if p.Reads["fake_thing.a"] != 0 {
		t.Fatal("an import relies on the address being free")
	}
	var text bytes.Buffer
	RenderText(&text, p)
	if !strings.Contains(text.String(), "fake_thing.a will be imported") || !strings.Contains(text.String(), "1 to import") {
		t.Fatalf("text:\n%s", text.String())
	}
	// An import to an address not declared is a diagnostic at load.
	_, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte("import {\n  to = fake_thing.zz\n  id = \"x\"\n}\n")}, hcl.Options{Env: []string{}})
	if !strings.Contains(diags.Error(), "main.hcl:1,1-7: Import to undeclared resource") {
		t.Fatal(diags)
	}
}

func driftCfg(t *testing.T) *hcl.Config {
	return files(t, map[string]string{"main.hcl": `
resource "fake_thing" "a" {
  name  = "a"
  value = "v"
}
resource "fake_thing" "gone" {
  name  = "gone"
  value = "v"
}
resource "fake_thing" "same" {
  name  = "same"
  value = "v"
}
`}, hcl.Options{})
}

func driftEntities(t *testing.T) ([]state.Entity, map[string]Refresh) {
	obj := func(name, value string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "value": cty.StringVal(value), "forced": cty.NullVal(cty.String), "id": cty.StringVal("id-" + name)})
	}
	ents := []state.Entity{
		storedEnt(t, "fake_thing.a", "fake_thing", obj("a", "v"), 2),
		storedEnt(t, "fake_thing.gone", "fake_thing", obj("gone", "v"), 3),
		storedEnt(t, "fake_thing.same", "fake_thing", obj("same", "v"), 3),
	}
	return ents, map[string]Refresh{
		"fake_thing.a":    {Exists: true, State: obj("a", "edited")},
		"fake_thing.gone": {Exists: false},
		"fake_thing.same": {Exists: true, State: obj("same", "v")},
	}
}

func TestDriftRevert(t *testing.T) {
	ents, reads := driftEntities(t)
	p := build(t, Input{Config: driftCfg(t), Entities: ents, Refreshed: reads})
	if len(p.Drift) != 2 || p.Drift[0].Address != "fake_thing.a" || strings.Join(p.Drift[0].Changed, ",") != "value" || !p.Drift[1].Deleted() {
		t.Fatalf("drift: %+v", p.Drift)
	}
	if s := p.Step("fake_thing.a"); s.Action != Update || s.Before.GetAttr("value").AsString() != "edited" {
		t.Fatalf("a should be changed back: %+v", s)
	}
	if s := p.Step("fake_thing.gone"); s.Action != Create || s.Reason != "deleted outside fiat" || s.ID != "" {
		t.Fatalf("gone should be created again: %+v", s)
	}
	if p.Step("fake_thing.same").Action != NoOp {
		t.Fatal("no drift, no change")
	}
	var text bytes.Buffer
	RenderText(&text, p)
	for _, w := range []string{"Objects changed outside fiat", "# fake_thing.a changed outside fiat (stored at revision 2)", `~ value = "v" -> "edited"`, "fake_thing.gone was deleted outside fiat", "plan with -adopt-drift"} {
		if !strings.Contains(text.String(), w) {
			t.Fatalf("text lacks %q:\n%s", w, text.String())
		}
	}
	// Without reads (-refresh=false), the store is the truth: no drift.
	if p := build(t, Input{Config: driftCfg(t), Entities: ents}); len(p.Drift) != 0 || p.HasChanges() {
		t.Fatalf("-refresh=false plan: %v %v", p.Drift, p.Counts())
	}
}

func TestDriftAdopt(t *testing.T) {
	ents, reads := driftEntities(t)
	p := build(t, Input{Config: driftCfg(t), Entities: ents, Refreshed: reads, AdoptDrift: true})
	if s := p.Step("fake_thing.a"); s.Action != Adopt || s.After.GetAttr("value").AsString() != "edited" {
		t.Fatalf("a: %+v", s)
	}
	if s := p.Step("fake_thing.gone"); s.Action != Forget {
		t.Fatalf("gone: %+v", s)
	}
	put, del, _ := p.StoreChanges()
	if len(put) != 1 || put[0].Address != "s/fake_thing.a" || len(del) != 1 || del[0] != "s/fake_thing.gone" {
		t.Fatalf("store changes %v %v", put, del)
	}
	var text bytes.Buffer
	RenderText(&text, p)
	if !strings.Contains(text.String(), "With -adopt-drift this plan records") || !strings.Contains(text.String(), "1 to record as found, 1 to forget") {
		t.Fatalf("text:\n%s", text.String())
	}
}

func TestDataSources(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
data "fiat_data" "base" {
  input = "base"
}
data "fiat_data" "next" {
  input = "${data.fiat_data.base.output}-next"
}
resource "fiat_data" "use" {
  input = data.fiat_data.next.output
}
`}, hcl.Options{})
	in := Input{Config: cfg, Data: map[string]cty.Value{}}
	p := build(t, in)
	if len(p.PendingReads) != 1 || p.PendingReads[0].Address != "data.fiat_data.base" {
		t.Fatalf("round 1 pending: %+v", p.PendingReads)
	}
	// The caller reads, and plans again, until nothing is pending.
	bp := builtin.New()
	for round := 0; len(p.PendingReads) > 0; round++ {
		for _, r := range p.PendingReads {
			resp, err := bp.ReadData(nil, providers.ReadDataRequest{Address: r.Address, Type: r.Type, Config: r.Config})
			if err != nil {
				t.Fatal(err)
			}
			in.Data[r.Address] = resp.State
		}
		p = build(t, in)
		if round > 3 {
			t.Fatal("reads do not converge")
		}
	}
	if s := p.Step("data.fiat_data.next"); s.Action != Read || s.After.GetAttr("output").AsString() != "base-next" {
		t.Fatalf("next: %+v", s)
	}
	if s := p.Step("fiat_data.use"); s.After.GetAttr("input").AsString() != "base-next" || strings.Join(s.DependsOn, ",") != "data.fiat_data.next" {
		t.Fatalf("use: %+v", s)
	}
	if p.Counts()[Create] != 1 {
		t.Fatal(p.Counts())
	}
	// A data source whose arguments wait for a resource is read in the
	// apply; until then what it gives is unknown.
	cfg = files(t, map[string]string{"main.hcl": `
resource "fiat_data" "r" {}
data "fiat_data" "d" {
  input = fiat_data.r.id
}
resource "fiat_data" "u" {
  input = data.fiat_data.d.output
}
`}, hcl.Options{})
	p = build(t, Input{Config: cfg, Data: map[string]cty.Value{}})
	if len(p.PendingReads) != 0 {
		t.Fatalf("pending: %+v", p.PendingReads)
	}
	d := p.Step("data.fiat_data.d")
	if d == nil || d.Action != Read || !d.ReadAtApply || d.After.GetAttr("output").IsKnown() || strings.Join(d.DependsOn, ",") != "fiat_data.r" {
		t.Fatalf("d: %+v", d)
	}
	if u := p.Step("fiat_data.u"); u.After.GetAttr("input").IsKnown() || strings.Join(u.DependsOn, ",") != "data.fiat_data.d" {
		t.Fatalf("u: %+v", u)
	}
	var out strings.Builder
	if err := RenderText(&out, p); err != nil || !strings.Contains(out.String(), "data.fiat_data.d will be read during apply") {
		t.Errorf("the plan does not say the read waits for the apply (%v):\n%s", err, out.String())
	}
	// A saved plan keeps it.
	body, err := (&File{Plan: p, Files: map[string][]byte{}}).Body()
	if err != nil {
		t.Fatal(err)
	}
	f, err := decodeBody(body)
	if err != nil || !f.Plan.Step("data.fiat_data.d").ReadAtApply {
		t.Errorf("a saved plan lost ReadAtApply (%v)", err)
	}
}

func TestLifecycle(t *testing.T) {
	src := `
resource "fake_thing" "keep" {
  name   = "keep"
  forced = "g"
  lifecycle {
    prevent_destroy = true
  }
}
resource "fake_thing" "cbd" {
  name   = "cbd"
  forced = "g"
  lifecycle {
    create_before_destroy = true
  }
}
resource "fake_thing" "ign" {
  name   = "ign"
  value  = "config"
  forced = "f"
  lifecycle {
    ignore_changes = [value]
  }
}
`
	obj := func(name, value, forced string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "value": cty.StringVal(value), "forced": cty.StringVal(forced), "id": cty.StringVal("id-" + name)})
	}
	ents := []state.Entity{
		storedEnt(t, "fake_thing.keep", "fake_thing", obj("keep", "v", "f"), 1),
		storedEnt(t, "fake_thing.cbd", "fake_thing", obj("cbd", "v", "f"), 1),
		storedEnt(t, "fake_thing.ign", "fake_thing", obj("ign", "outside", "f"), 1),
	}
	got := buildErr(t, Input{Config: files(t, map[string]string{"main.hcl": src}, hcl.Options{}), Entities: ents})
	if !strings.Contains(got, "main.hcl:6,5-27: Instance cannot be destroyed; fake_thing.keep has lifecycle { prevent_destroy = true }, but this plan would replace it") {
		t.Fatal(got)
	}
	src = strings.Replace(src, `forced = "g"`, `forced = "f"`, 1)
	p := build(t, Input{Config: files(t, map[string]string{"main.hcl": src}, hcl.Options{}), Entities: ents})
	if s := p.Step("fake_thing.cbd"); s.Action != Replace || !s.CreateBeforeDestroy {
		t.Fatalf("cbd: %+v", s)
	}
	if s := p.Step("fake_thing.ign"); s.Action != NoOp {
		t.Fatalf("ignore_changes: %+v", s)
	}
	var text bytes.Buffer
	RenderText(&text, p)
	if !strings.Contains(text.String(), `+/- resource "fake_thing" "cbd"`) {
		t.Fatalf("text:\n%s", text.String())
	}
	// prevent_destroy also guards an instance that count drops.
	cfg := files(t, map[string]string{"main.hcl": "resource \"fiat_data\" \"x\" {\n  count = 1\n  lifecycle {\n    prevent_destroy = true\n  }\n}\n"}, hcl.Options{})
	ents = []state.Entity{storedEnt(t, "fiat_data.x[0]", "fiat_data", data(cty.NullVal(cty.DynamicPseudoType), "a"), 1), storedEnt(t, "fiat_data.x[1]", "fiat_data", data(cty.NullVal(cty.DynamicPseudoType), "b"), 1)}
	if got := buildErr(t, Input{Config: cfg, Entities: ents}); !strings.Contains(got, "fiat_data.x[1] has lifecycle { prevent_destroy = true }, but this plan would delete it") {
		t.Fatal(got)
	}
}

func TestTargetAndExclude(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "fiat_data" "root" { input = "r" }
resource "fiat_data" "mid" { input = fiat_data.root.output }
resource "fiat_data" "leaf" { input = fiat_data.mid.output }
resource "fiat_data" "free" { input = "f" }
resource "fiat_data" "many" {
  count = 2
  input = count.index
}
`}, hcl.Options{})
	addrs := func(p *Plan) string {
		var out []string
		for _, s := range p.Steps {
			out = append(out, s.Address)
		}
		return strings.Join(out, " ")
	}
	ents := []state.Entity{storedEnt(t, "fiat_data.orphan", "fiat_data", data(cty.StringVal("o"), "o"), 2)}
	p := build(t, Input{Config: cfg, Entities: ents, Targets: []string{"fiat_data.mid", "fiat_data.many[1]"}})
	if got := addrs(p); got != "fiat_data.many[1] fiat_data.mid fiat_data.root" {
		t.Fatalf("-target: %s", got)
	}
	if _, ok := p.Reads["fiat_data.orphan"]; ok || len(p.Warnings) == 0 {
		t.Fatalf("a targeted plan reads only what it covers and warns: %v %v", p.Reads, p.Warnings)
	}
	p = build(t, Input{Config: cfg, Entities: ents, Excludes: []string{"fiat_data.mid"}})
	if got := addrs(p); got != "fiat_data.free fiat_data.many[0] fiat_data.many[1] fiat_data.orphan fiat_data.root" {
		t.Fatalf("-exclude: %s", got)
	}
	p = build(t, Input{Config: cfg, Entities: ents, Targets: []string{"fiat_data.orphan"}})
	if got := addrs(p); got != "fiat_data.orphan" || p.Step("fiat_data.orphan").Action != Delete {
		t.Fatalf("-target of a removed resource: %s", got)
	}
	if got := buildErr(t, Input{Config: cfg, Targets: []string{"fiat_data["}}); !strings.Contains(got, "Invalid address") {
		t.Fatal(got)
	}
}

func TestSensitive(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
variable "secret" {
  type      = string
  sensitive = true
}
resource "test_vm" "a" {
  name     = "a-${var.secret}"
  password = "literal"
}
resource "fiat_data" "copy" {
  input = var.secret
}
output "pw" {
  value     = var.secret
  sensitive = true
}
`}, hcl.Options{Vars: map[string]string{"secret": "hunter2"}})
	p := build(t, Input{Config: cfg})
	if s := p.Step("test_vm.a"); strings.Join(s.Sensitive, ",") != "name,password" {
		t.Fatalf("sensitive attributes: %v", s.Sensitive)
	}
	if s := p.Step("fiat_data.copy"); strings.Join(s.Sensitive, ",") != "id,input,output" {
		t.Fatalf("a hooked computed attribute copies a sensitive input: %v", s.Sensitive)
	}
	var text, js, md bytes.Buffer
	RenderText(&text, p)
	RenderJSON(&js, p, JSONOptions{})
	RenderMarkdown(&md, p, MarkdownOptions{})
	f := &File{Plan: p, Files: cfg.Files}
	var err error
	if f.Variables, err = SaveVariables(cfg); err != nil {
		t.Fatal(err)
	}
	enc, err := f.Body()
	if err != nil {
		t.Fatal(err)
	}
	for name, out := range map[string]string{"text": text.String(), "json": js.String(), "markdown": md.String(), "plan file": string(enc)} {
		if strings.Contains(out, "hunter2") || strings.Contains(out, "literal") {
			t.Errorf("%s shows a sensitive value:\n%s", name, out)
		}
	}
	if !strings.Contains(text.String(), "+ name     = (sensitive)") {
		t.Errorf("text:\n%s", text.String())
	}
	if !strings.Contains(js.String(), `"password":"(sensitive)"`) || !strings.Contains(js.String(), `"pw":{"sensitive":true,"known":true,"value":"(sensitive)"}`) {
		t.Errorf("json:\n%s", js.String())
	}
	// The saved plan needs the sensitive value again, and the same one.
	g, err := decodeBody(enc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := g.LoadOptions([]string{}); err == nil || !strings.Contains(err.Error(), "FIAT_VAR_secret") {
		t.Fatalf("want a request for FIAT_VAR_secret, got %v", err)
	}
	for val, ok := range map[string]bool{"hunter2": true, "hunter3": false} {
		opts, err := g.LoadOptions([]string{"FIAT_VAR_secret=" + val, "FIAT_VAR_other=x"})
		if err != nil {
			t.Fatal(err)
		}
		cfg2, diags := hcl.LoadFiles("", g.Files, opts)
		if diags.HasErrors() {
			t.Fatal(diags)
		}
		if err := g.CheckVariables(cfg2); (err == nil) != ok {
			t.Fatalf("value %s: check %v", val, err)
		}
	}
	// A plain output of a sensitive value is refused.
	cfg = files(t, map[string]string{"main.hcl": "variable \"s\" {\n  sensitive = true\n  default = \"x\"\n}\noutput \"o\" {\n  value = var.s\n}\n"}, hcl.Options{})
	if got := buildErr(t, Input{Config: cfg}); !strings.Contains(got, "main.hcl:5,1-11: Output refers to sensitive values") || strings.Contains(got, `"x"`) {
		t.Fatal(got)
	}
}

func TestModules(t *testing.T) {
	cfg := files(t, map[string]string{
		"main.hcl": `
provider "fake" {
  alias = "two"
}
module "net" {
  source = "./modules/net"
  prefix = "p"
  providers = {
    fake = fake.two
  }
}
resource "fiat_data" "top" {
  input = module.net.name
}
output "name" {
  value = module.net.name
}
`,
		"modules/net/main.hcl": `
variable "prefix" {
  type = string
}
module "inner" {
  source = "../inner"
  x      = "${var.prefix}-in"
}
resource "fake_thing" "t" {
  name = module.inner.out
}
output "name" {
  value = fake_thing.t.name
}
`,
		"modules/inner/main.hcl": `
variable "x" {}
locals {
  upper = upper(var.x)
}
resource "fiat_data" "d" {
  input = local.upper
}
output "out" {
  value = fiat_data.d.output
}
`,
	}, hcl.Options{})
	p := build(t, Input{Config: cfg})
	d := p.Step("module.net.module.inner.fiat_data.d")
	if d == nil || d.After.GetAttr("output").AsString() != "P-IN" {
		t.Fatalf("inner: %+v", d)
	}
	tt := p.Step("module.net.fake_thing.t")
	if tt.Provider != "fake.two" || tt.After.GetAttr("name").AsString() != "P-IN" || strings.Join(tt.DependsOn, ",") != "module.net.module.inner.fiat_data.d" {
		t.Fatalf("t: %+v", tt)
	}
	if top := p.Step("fiat_data.top"); strings.Join(top.DependsOn, ",") != "module.net.fake_thing.t" {
		t.Fatalf("top deps %v", top.DependsOn)
	}
	if o := p.Outputs["name"]; o.Value.AsString() != "P-IN" {
		t.Fatalf("output %#v", o)
	}
	for name, c := range map[string]struct{ main, want string }{
		"unknown input":   {"module \"m\" {\n  source = \"./m\"\n  nope = 1\n}\n", `main.hcl:3,3-7: Unsupported argument; Module "m" has no variable "nope".`},
		"missing input":   {"module \"m\" {\n  source = \"./m\"\n}\n", `Missing required argument; Module "m" needs a value for its variable "x"`},
		"unknown output":  {"module \"m\" {\n  source = \"./m\"\n  x = 1\n}\noutput \"o\" {\n  value = module.m.y\n}\n", `Module "m" has no output "y". Did you mean "z"?`},
		"remote source":   {"module \"m\" {\n  source = \"git::x\"\n}\n", `Invalid module source`},
		"missing dir":     {"module \"m\" {\n  source = \"./nowhere\"\n}\n", `Module has no configuration`},
		"inner reference": {"module \"m\" {\n  source = \"./m\"\n  x = 1\n}\noutput \"o\" {\n  value = fiat_data.in.id\n}\n", `"fiat_data" is not a variable, local value, module, data source or resource type of this module (resources of other modules are reached through their outputs)`},
	} {
		t.Run(name, func(t *testing.T) {
			_, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(c.main),
				"m/main.hcl": []byte("variable \"x\" {}\nresource \"fiat_data\" \"in\" {}\noutput \"z\" {\n  value = 1\n}\n")}, hcl.Options{Env: []string{}})
			if !strings.Contains(diags.Error(), c.want) {
				t.Fatalf("got %s\nwant %s", diags.Error(), c.want)
			}
		})
	}
}

func TestNestedAndDynamicBlocks(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
variable "sizes" {
  default = { a = 1, b = 2 }
}
resource "test_vm" "blocks" {
  name = "b"
  disks {
    size = 10
  }
  dynamic "disks" {
    for_each = var.sizes
    iterator = d
    content {
      size  = d.value
      label = d.key
    }
  }
}
resource "test_vm" "attr" {
  name  = "a"
  disks = [{ size = 5 }]
}
`}, hcl.Options{})
	p := build(t, Input{Config: cfg})
	if got := FormatValue(p.Step("test_vm.blocks").After.GetAttr("disks")); got != `[{ label = null, size = 10 }, { label = "a", size = 1 }, { label = "b", size = 2 }]` {
		t.Fatalf("blocks: %s", got)
	}
	if got := FormatValue(p.Step("test_vm.attr").After.GetAttr("disks")); got != `[{ label = null, size = 5 }]` {
		t.Fatalf("attribute: %s", got)
	}
	cfg = files(t, map[string]string{"main.hcl": "resource \"test_vm\" \"x\" {\n  name = \"x\"\n  disks = []\n  disks {\n    size = 1\n  }\n}\n"}, hcl.Options{})
	if got := buildErr(t, Input{Config: cfg}); !strings.Contains(got, "Conflicting arguments") {
		t.Fatal(got)
	}
}

func TestRestartNeededShown(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": "resource \"test_vm\" \"x\" {\n  name = \"x\"\n  memory = 2\n}\n"}, hcl.Options{})
	prior := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x"), "memory": cty.NumberIntVal(1), "disks": cty.NullVal(cty.List(cty.Object(map[string]cty.Type{"size": cty.Number, "label": cty.String}))),
		"password": cty.NullVal(cty.String), "id": cty.StringVal("i"), "free": cty.NumberIntVal(1)})
	p := build(t, Input{Config: cfg, Entities: []state.Entity{storedEnt(t, "test_vm.x", "test_vm", prior, 1)}})
	var text bytes.Buffer
	RenderText(&text, p)
	if !strings.Contains(text.String(), "~ memory = 1 -> 2 # takes effect at the next restart") {
		t.Fatalf("text:\n%s", text.String())
	}
}

func TestFiatDataPlansOutput(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "fiat_data" "a" {
  input = { list = [1, 2], set = toset(["x"]) }
}
resource "fiat_data" "b" {
  input            = fiat_data.a.output.list
  triggers_replace = "v1"
}
`}, hcl.Options{})
	p := build(t, Input{Config: cfg})
	if got := FormatValue(p.Step("fiat_data.b").After.GetAttr("output")); got != "[1, 2]" {
		t.Fatalf("output is known while planning: %s", got)
	}
	// Stored and planned again: types survive the store (a set stays a set).
	ents := applyAll(t, p)
	if p2 := build(t, Input{Config: cfg, Entities: ents}); p2.HasChanges() {
		t.Fatalf("no-change plan has changes: %v", p2.Counts())
	}
	cfg2 := files(t, map[string]string{"main.hcl": strings.Replace(string(cfg.Files["main.hcl"]), `"v1"`, `"v2"`, 1)}, hcl.Options{})
	if s := build(t, Input{Config: cfg2, Entities: ents}).Step("fiat_data.b"); s.Action != Replace || strings.Join(s.ForceNew, ",") != "triggers_replace" {
		t.Fatalf("triggers_replace: %+v", s)
	}
}

func TestJSONDocument(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderJSON(&buf, mixedPlan(t), JSONOptions{Digest: "abc", Indent: true}); err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := json.Unmarshal(buf.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if doc["format_version"] != JSONFormatVersion {
		t.Fatalf("format_version %v", doc["format_version"])
	}
	golden(t, "mixed.json", buf.Bytes())
}

func TestMarkdownGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderMarkdown(&buf, mixedPlan(t), MarkdownOptions{Digest: "abc"}); err != nil {
		t.Fatal(err)
	}
	golden(t, "mixed.md", buf.Bytes())
}

func TestColorText(t *testing.T) {
	var plain, color bytes.Buffer
	p := mixedPlan(t)
	RenderTextOpts(&plain, p, TextOptions{})
	RenderTextOpts(&color, p, TextOptions{Color: true})
	if strings.Contains(plain.String(), "\x1b[") || !strings.Contains(color.String(), "\x1b[32m") {
		t.Fatal("colour only when asked")
	}
}

func TestDriftGolden(t *testing.T) {
	ents, reads := driftEntities(t)
	p := build(t, Input{Config: driftCfg(t), Entities: ents, Refreshed: reads})
	var text, js, md bytes.Buffer
	for _, err := range []error{
		RenderText(&text, p),
		RenderJSON(&js, p, JSONOptions{Indent: true}),
		RenderMarkdown(&md, p, MarkdownOptions{}),
	} {
		if err != nil {
			t.Fatalf("render: %v", err)
		}
	}
	golden(t, "drift.txt", text.Bytes())
	golden(t, "drift.json", js.Bytes())
	golden(t, "drift.md", md.Bytes())
}

func TestValidateIsLenientAboutApplyTimeValues(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "fiat_data" "src" {}
resource "fiat_data" "n" {
  count = length(fiat_data.src.id)
}
data "fiat_data" "d" {
  input = fiat_data.src.id
}
`}, hcl.Options{})
	if _, diags := Build(Input{Stack: "v", Config: cfg, Schemas: allSchemas(), Validate: true}); diags.HasErrors() {
		t.Fatal(diags)
	}
	if got := buildErr(t, Input{Config: cfg}); !strings.Contains(got, "Invalid count argument") {
		t.Fatal(got)
	}
}

func TestVolatileAttributesAreNotDrift(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "test_vm" "x" {
  name = "x"
}
resource "fiat_data" "free" {
  input = test_vm.x.free
}
`}, hcl.Options{})
	vm := func(free int64) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("x"), "memory": cty.NullVal(cty.Number),
			"disks":    cty.NullVal(cty.List(cty.Object(map[string]cty.Type{"size": cty.Number, "label": cty.String}))),
			"password": cty.NullVal(cty.String), "id": cty.StringVal("i"), "free": cty.NumberIntVal(free)})
	}
	ents := []state.Entity{storedEnt(t, "test_vm.x", "test_vm", vm(100), 1), storedEnt(t, "fiat_data.free", "fiat_data", data(cty.NumberIntVal(100), "d"), 1)}
	p := build(t, Input{Config: cfg, Entities: ents, Refreshed: map[string]Refresh{"test_vm.x": {Exists: true, State: vm(42)}}})
	if len(p.Drift) != 0 || p.Step("test_vm.x").Action != NoOp {
		t.Fatalf("volatile change taken for drift: %+v %v", p.Drift, p.Counts())
	}
	// What depends on it sees the value the object has now.
	if s := p.Step("fiat_data.free"); s.Action != Update || s.After.GetAttr("input").AsBigFloat().String() != "42" {
		t.Fatalf("dependent: %+v", s)
	}
}

func TestImportToMissingInstance(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": `
resource "fiat_data" "x" {
  for_each = toset(["a"])
}
import {
  to = fiat_data.x["b"]
  id = "i"
}
`}, hcl.Options{})
	got := buildErr(t, Input{Config: cfg, Imported: map[string]Imported{`fiat_data.x["b"]`: {ID: "i", State: data(cty.NullVal(cty.DynamicPseudoType), "i")}}})
	if !strings.Contains(got, `main.hcl:5,1-7: Import to an address the configuration does not have; An import block names fiat_data.x["b"]`) {
		t.Fatal(got)
	}
}

// An import may not adopt an object the stack already manages elsewhere, nor
// one another import block adopts: two entities for one object would
// destroy it under each other.
func TestImportOfManagedObjectRefused(t *testing.T) {
	obj := func(name, id string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "value": cty.NullVal(cty.String), "forced": cty.NullVal(cty.String), "id": cty.StringVal(id)})
	}
	cfg := files(t, map[string]string{"main.hcl": `
resource "fake_thing" "keep" {
  name = "keep"
}
resource "fake_thing" "twin" {
  name = "keep"
}
import {
  to = fake_thing.twin
  id = "id-keep"
}
`}, hcl.Options{})
	stored := entity(t, "keep", "", "", 1)
	v, _ := value.Encode(obj("keep", "id-keep"))
	stored.Attributes, stored.ID = v, "id-keep"
	got := buildErr(t, Input{Config: cfg, Entities: []state.Entity{stored},
		Imported: map[string]Imported{"fake_thing.twin": {ID: "id-keep", State: obj("keep", "id-keep")}}})
	if !strings.Contains(got, "Object already managed") || !strings.Contains(got, "fake_thing.keep already manages") {
		t.Fatal(got)
	}
}
