package builtin

import (
	"context"
	"testing"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

func TestFiatData(t *testing.T) {
	ctx := context.Background()
	p := New()
	s := p.Schema()
	rs := s.Resources[TypeData]
	if !s.Local || !rs.Attributes["triggers_replace"].ForceNew || !rs.Attributes["output"].Computed || rs.Attributes["input"].Type != cty.DynamicPseudoType {
		t.Fatalf("schema %+v", s)
	}
	in := cty.ObjectVal(map[string]cty.Value{"a": cty.ListVal([]cty.Value{cty.NumberIntVal(1)})})
	cfg := cty.ObjectVal(map[string]cty.Value{"input": in, "triggers_replace": cty.NullVal(cty.DynamicPseudoType),
		"output": cty.NullVal(cty.DynamicPseudoType), "id": cty.NullVal(cty.String)})
	c1, err := p.Create(ctx, providers.CreateRequest{Address: "fiat_data.x", Type: TypeData, OpID: "plan/x/create", Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	c2, _ := p.Create(ctx, providers.CreateRequest{Address: "fiat_data.x", Type: TypeData, OpID: "plan/x/create", Config: cfg})
	if c1.ID == "" || c1.ID != c2.ID || !c1.State.GetAttr("output").RawEquals(in) {
		t.Fatalf("create: %+v", c1)
	}
	u, err := p.Update(ctx, providers.UpdateRequest{Address: "fiat_data.x", Type: TypeData, ID: c1.ID, Config: cfg})
	if err != nil || u.State.GetAttr("id").AsString() != c1.ID {
		t.Fatalf("update: %+v %v", u, err)
	}
	if r, _ := p.Read(ctx, providers.ReadRequest{ID: c1.ID, State: c1.State}); !r.Exists || !r.State.RawEquals(c1.State) {
		t.Fatal("read is the stored state")
	}
	d, err := p.ReadData(ctx, providers.ReadDataRequest{Type: TypeData, Config: cty.ObjectVal(map[string]cty.Value{"input": cty.StringVal("v")})})
	if err != nil || d.State.GetAttr("output").AsString() != "v" {
		t.Fatalf("read data: %+v %v", d, err)
	}
	if _, ok := any(p).(providers.Importer); ok {
		t.Fatal("fiat_data has nothing to import: the provider must not claim the capability")
	}
	planned := p.ModifyPlan(providers.ModifyPlanRequest{Type: TypeData, Planned: cfg}).Planned
	if !planned.GetAttr("output").RawEquals(in) {
		t.Fatalf("modify plan: %#v", planned)
	}
}
