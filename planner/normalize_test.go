package planner

import (
	"strings"
	"testing"

	"fiat/hcl"
	"fiat/providers"
	"fiat/state"

	"github.com/zclconf/go-cty/cty"
)

// "net" is a provider whose backend lower-cases MACs and has gained an
// attribute with a default (running) after objects were stored.
func netSchemas() map[string]providers.Schema {
	s := allSchemas()
	s["net"] = providers.Schema{Resources: map[string]providers.ResourceSchema{
		"net_nic": {Attributes: map[string]providers.Attribute{
			"name":    {Type: cty.String, Required: true, ForceNew: true},
			"mac":     {Type: cty.String, Optional: true},
			"running": {Type: cty.Bool, Optional: true, Default: cty.True},
			"id":      {Type: cty.String, Computed: true},
		}},
	}}
	return s
}

// lowerMAC is net's plan modifier: the MAC as the backend reports it.
type lowerMAC struct{}

func (lowerMAC) ModifyPlan(req providers.ModifyPlanRequest) providers.ModifyPlanResponse {
	v := req.Planned
	if v.IsNull() || !v.IsKnown() {
		return providers.ModifyPlanResponse{Planned: v}
	}
	attrs := v.AsValueMap()
	if m := attrs["mac"]; m.IsKnown() && !m.IsNull() {
		attrs["mac"] = cty.StringVal(strings.ToLower(m.AsString()))
	}
	return providers.ModifyPlanResponse{Planned: cty.ObjectVal(attrs)}
}

func nic(mac string, running bool) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("a"), "mac": cty.StringVal(mac), "running": cty.BoolVal(running), "id": cty.StringVal("n1")})
}

// A value the backend normalises, written in another form, plans no
// change against the stored (normalised) value, drift or not; a real
// change is planned normalised.
func TestModifierNormalisesBeforeCompare(t *testing.T) {
	cfg := func(mac string) *hcl.Config {
		return files(t, map[string]string{"main.hcl": "resource \"net_nic\" \"a\" {\n  name = \"a\"\n  mac  = \"" + mac + "\"\n}\n"}, hcl.Options{})
	}
	mods := map[string]providers.PlanModifier{"net": lowerMAC{}}
	ents := []state.Entity{storedEnt(t, "net_nic.a", "net_nic", nic("52:54:00:ab:cd:ef", true), 1)}
	reads := map[string]Refresh{"net_nic.a": {Exists: true, State: nic("52:54:00:ab:cd:ef", true)}}

	for _, refreshed := range []map[string]Refresh{nil, reads} {
		p := build(t, Input{Config: cfg("52:54:00:AB:CD:EF"), Schemas: netSchemas(), Modifiers: mods, Entities: ents, Refreshed: refreshed})
		if s := p.Step("net_nic.a"); s.Action != NoOp || len(p.Drift) != 0 {
			t.Fatalf("refreshed=%v: %s %#v, drift %+v; want no change", refreshed != nil, s.Action, s.After, p.Drift)
		}
	}
	p := build(t, Input{Config: cfg("52:54:00:AB:CD:01"), Schemas: netSchemas(), Modifiers: mods, Entities: ents, Refreshed: reads})
	if s := p.Step("net_nic.a"); s.Action != Update || s.After.GetAttr("mac").AsString() != "52:54:00:ab:cd:01" {
		t.Fatalf("changed MAC: %s %#v", s.Action, s.After)
	}
	// Created: planned as the backend will report it.
	p = build(t, Input{Config: cfg("52:54:00:AB:CD:EF"), Schemas: netSchemas(), Modifiers: mods})
	if s := p.Step("net_nic.a"); s.Action != Create || s.After.GetAttr("mac").AsString() != "52:54:00:ab:cd:ef" {
		t.Fatalf("create: %s %#v", s.Action, s.After)
	}
}

// An entity stored before its schema gained an attribute with a default
// re-plans clean, read or not; a read that finds the object otherwise is
// drift, changed back.
func TestAttributeAddedWithDefault(t *testing.T) {
	cfg := files(t, map[string]string{"main.hcl": "resource \"net_nic\" \"a\" {\n  name = \"a\"\n  mac  = \"52:54:00:ab:cd:ef\"\n}\n"}, hcl.Options{})
	old := cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("a"), "mac": cty.StringVal("52:54:00:ab:cd:ef"), "id": cty.StringVal("n1")})
	ents := []state.Entity{storedEnt(t, "net_nic.a", "net_nic", old, 1)}

	for _, refreshed := range []map[string]Refresh{nil, {"net_nic.a": {Exists: true, State: nic("52:54:00:ab:cd:ef", true)}}} {
		p := build(t, Input{Config: cfg, Schemas: netSchemas(), Entities: ents, Refreshed: refreshed})
		if s := p.Step("net_nic.a"); s.Action != NoOp || len(p.Drift) != 0 || p.HasChanges() {
			t.Fatalf("refreshed=%v: %s, drift %+v; want no change", refreshed != nil, s.Action, p.Drift)
		}
	}
	p := build(t, Input{Config: cfg, Schemas: netSchemas(), Entities: ents,
		Refreshed: map[string]Refresh{"net_nic.a": {Exists: true, State: nic("52:54:00:ab:cd:ef", false)}}})
	if len(p.Drift) != 1 || strings.Join(p.Drift[0].Changed, ",") != "running" {
		t.Fatalf("drift: %+v", p.Drift)
	}
	if s := p.Step("net_nic.a"); s.Action != Update || !s.After.GetAttr("running").True() {
		t.Fatalf("stopped outside fiat: %s %#v, want an update to running = true", s.Action, s.After)
	}
}
