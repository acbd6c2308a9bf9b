package planner

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fiat/hcl"
	"fiat/providers"
	"fiat/providers/fake"
	"fiat/state"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

var update = flag.Bool("update", false, "rewrite golden files")

func schemas() map[string]providers.Schema {
	return map[string]providers.Schema{"fake": fake.New().Schema()}
}

func loadCfg(t *testing.T, src string) *hcl.Config {
	t.Helper()
	cfg, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return cfg
}

func entity(t *testing.T, name, val, forced string, rev uint64) state.Entity {
	t.Helper()
	v := cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal(name), "value": cty.StringVal(val),
		"forced": cty.StringVal(forced), "id": cty.StringVal("id-" + name),
	})
	b, err := value.Encode(v)
	if err != nil {
		t.Fatal(err)
	}
	return state.Entity{Address: "s/fake_thing." + name, Stack: "s", Type: fake.Type, Name: name,
		Provider: "fake", ID: "id-" + name, Attributes: b, Revision: rev, Source: "main.hcl:1"}
}

const mixed = `
resource "fake_thing" "keep" {
  name   = "keep"
  value  = "v"
  forced = "f"
}
resource "fake_thing" "upd" {
  name   = "upd"
  value  = "new"
  forced = "f"
}
resource "fake_thing" "repl" {
  name   = "repl"
  value  = "v"
  forced = "g"
}
resource "fake_thing" "fresh" {
  name  = fake_thing.repl.id
  value = "v"
}
`

func mixedPlan(t *testing.T) *Plan {
	ents := []state.Entity{
		entity(t, "keep", "v", "f", 1), entity(t, "upd", "old", "f", 2),
		entity(t, "repl", "v", "f", 1), entity(t, "gone", "v", "f", 3),
	}
	p, diags := Build(Input{Stack: "s", Config: loadCfg(t, mixed), Entities: ents, Revision: 3, Schemas: schemas()})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	return p
}

func TestBuildActions(t *testing.T) {
	p := mixedPlan(t)
	want := map[string]Action{
		"fake_thing.keep": NoOp, "fake_thing.upd": Update, "fake_thing.repl": Replace,
		"fake_thing.fresh": Create, "fake_thing.gone": Delete,
	}
	for addr, a := range want {
		s := p.Step(addr)
		if s == nil || s.Action != a {
			t.Errorf("%s: want %s, got %+v", addr, a, s)
		}
	}
	if fn := p.Step("fake_thing.repl").ForceNew; len(fn) != 1 || fn[0] != "forced" {
		t.Errorf("repl forced by %v", fn)
	}
	if p.Reads["fake_thing.upd"] != 2 || p.Reads["fake_thing.fresh"] != 0 {
		t.Errorf("reads = %v", p.Reads)
	}
	if v := p.Step("fake_thing.fresh").After.GetAttr("name"); v.IsKnown() {
		t.Errorf("fresh.name depends on a replaced id and must be unknown, got %#v", v)
	}
}

func TestRenderTextGolden(t *testing.T) {
	var buf bytes.Buffer
	if err := RenderText(&buf, mixedPlan(t)); err != nil {
		t.Fatal(err)
	}
	golden(t, "mixed.txt", buf.Bytes())
}

func TestSavedPlanRoundTrip(t *testing.T) {
	p := mixedPlan(t)
	enc, _ := value.Encode(cty.StringVal("b"))
	f := &File{Plan: p, ConfigDir: "x", Files: map[string][]byte{"main.hcl": []byte(mixed)}, Variables: map[string]SavedVariable{"a": {Value: enc, Source: "-var a"}}}
	path := filepath.Join(t.TempDir(), "p.plan")
	key := []byte("store key")
	digest, err := f.Save(path, key)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := Load(path)
	if err != nil {
		t.Fatal(err)
	}
	if digest != sealed.Digest || len(digest) != 64 {
		t.Fatalf("digest %s vs %s", digest, sealed.Digest)
	}
	if err := sealed.Verify(key); err != nil {
		t.Fatal(err)
	}
	if err := sealed.Verify([]byte("another store's key")); !errors.Is(err, ErrTampered) {
		t.Fatalf("a plan signed by another store verified: %v", err)
	}
	g := sealed.File
	var a, b bytes.Buffer
	RenderText(&a, p)
	RenderText(&b, g.Plan)
	if a.String() != b.String() {
		t.Fatalf("round trip changed the plan:\n%s\nvs\n%s", a.String(), b.String())
	}
	if v, _ := value.Decode(g.Variables["a"].Value); v.AsString() != "b" || string(g.Files["main.hcl"]) != mixed {
		t.Fatal("config snapshot or vars lost")
	}
}

func TestCycleNamesEveryMember(t *testing.T) {
	_, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(`
resource "fake_thing" "a" { name = fake_thing.c.id }
resource "fake_thing" "b" { name = local.bid }
resource "fake_thing" "c" { name = fake_thing.b.id }
resource "fake_thing" "d" { name = "free" }
locals {
  bid = fake_thing.a.id
}
`)}, hcl.Options{Env: []string{}})
	msg := diags.Error()
	for _, m := range []string{"fake_thing.a (main.hcl:2)", "fake_thing.b (main.hcl:3)", "fake_thing.c (main.hcl:4)", "local.bid (main.hcl:7)"} {
		if !strings.Contains(msg, m) {
			t.Fatalf("cycle diagnostic %q does not name %s", msg, m)
		}
	}
	if strings.Contains(msg, "fake_thing.d") {
		t.Fatalf("cycle diagnostic names a non-member: %s", msg)
	}
}

func TestUnknownTypeAndAttribute(t *testing.T) {
	cfg := loadCfg(t, "resource \"fake_thin\" \"a\" {\n  name = \"x\"\n}\n")
	_, diags := Build(Input{Stack: "s", Config: cfg, Schemas: map[string]providers.Schema{"fake": fake.New().Schema()}})
	if !strings.Contains(diags.Error(), `main.hcl:1,10-21: Unknown resource type; Provider "fake" has no resource type "fake_thin". Did you mean "fake_thing"?`) {
		t.Fatalf("got %s", diags.Error())
	}
	cfg = loadCfg(t, "resource \"fake_thing\" \"a\" {\n  name = \"x\"\n  nmae = \"y\"\n}\n")
	_, diags = Build(Input{Stack: "s", Config: cfg, Schemas: schemas()})
	if !strings.Contains(diags.Error(), `main.hcl:3,3-7: Unsupported argument`) {
		t.Fatalf("got %s", diags.Error())
	}
	cfg = loadCfg(t, "resource \"fake_thing\" \"a\" {\n  name = [1]\n}\n")
	_, diags = Build(Input{Stack: "s", Config: cfg, Schemas: schemas()})
	if !strings.Contains(diags.Error(), `main.hcl:2,10-13: Incorrect attribute value type`) {
		t.Fatalf("got %s", diags.Error())
	}
}

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("%s differs (go test -update rewrites it):\n--- got\n%s\n--- want\n%s", name, got, want)
	}
}

// Every single-byte edit of a sealed plan is refused: a flipped bit in the
// body, the digest, the signature or the envelope.
func TestSealedPlanRefusesAnyEdit(t *testing.T) {
	f := &File{Plan: mixedPlan(t), ConfigDir: "/x", StoreID: "s1", DataDir: "/x/.fiat", Files: map[string][]byte{"main.hcl": []byte(mixed)}}
	data, digest, err := f.Seal([]byte("k"))
	if err != nil {
		t.Fatal(err)
	}
	if s, err := Unseal(data); err != nil || s.Digest != digest {
		t.Fatalf("unseal: %v", err)
	}
	for i := range data {
		edited := append([]byte(nil), data...)
		edited[i] ^= 0x01
		s, err := Unseal(edited)
		if err == nil {
			err = s.Verify([]byte("k"))
		}
		if err == nil {
			t.Fatalf("an edit at byte %d (%q) was accepted", i, data[max(0, i-20):min(len(data), i+20)])
		}
	}
	// A plan rebuilt with a changed base revision and a fresh digest,
	// but no store key, fails the signature.
	f.Plan.BaseRevision++
	forged, _, err := f.Seal([]byte("guessed key"))
	if err != nil {
		t.Fatal(err)
	}
	s, err := Unseal(forged)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Verify([]byte("k")); !errors.Is(err, ErrTampered) {
		t.Fatalf("a forged plan verified: %v", err)
	}
}

// FuzzUnseal: no file makes the saved-plan loader panic; whatever it
// accepts re-seals to the same digest.
func FuzzUnseal(f *testing.F) {
	p := &File{Plan: &Plan{Stack: "s", Reads: map[string]uint64{}}, ConfigDir: "/x", StoreID: "id", DataDir: "/x/.fiat",
		Files: map[string][]byte{"main.hcl": []byte("resource \"fiat_data\" \"a\" {}\n")}}
	data, _, err := p.Seal([]byte("k"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte(`{"format_version":3,"digest":"sha256:00","signature":"hmac-sha256:00","plan":{}}`))
	f.Add([]byte(`{"format_version":2}`))
	f.Add([]byte(`not json`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := Unseal(b)
		if err != nil {
			return
		}
		if s.Digest == "" || s.File == nil || s.File.Plan == nil {
			t.Fatalf("accepted a plan without a digest or body")
		}
		s.Verify([]byte("k"))
	})
}
