package planner

import (
	"testing"

	"fiat/providers"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

var (
	fwdType  = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"address": cty.String, "domain": cty.String}, []string{"address", "domain"})
	dnsType  = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"enabled": cty.Bool, "forwarders": cty.List(fwdType)}, []string{"enabled", "forwarders"})
	nicType  = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"net": cty.String, "mac": cty.String, "addresses": cty.List(cty.String)}, []string{"mac", "addresses"})
	nestedRS = providers.ResourceSchema{Attributes: map[string]providers.Attribute{
		"dns": {Type: cty.List(dnsType), Optional: true},
		"nic": {Type: cty.List(nicType), Optional: true, VolatileNested: []string{"addresses"}},
	}}
)

// Blocks nest in blocks as the upstream libvirt provider writes them:
// dns { forwarders { address = ... } }, with the attribute form inside too.
func TestNestedBlocks(t *testing.T) {
	src := `
dns {
  enabled = true
  forwarders {
    address = "9.9.9.9"
  }
  forwarders {
    domain = "example.com"
  }
}
dns {
  forwarders = [{ address = "1.1.1.1" }]
}
`
	f, diags := hclsyntax.ParseConfig([]byte(src), "t.tf", hcl.InitialPos)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	v, diags := hcldec.Decode(f.Body, Spec(nestedRS), nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got, diags := fromBlocks(nil, "dns", v.GetAttr("dns"), v.GetAttr("dns"+blockSuffix), nestedRS.Attributes["dns"])
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	dns := got.AsValueSlice()
	if len(dns) != 2 || dns[0].GetAttr("forwarders").LengthInt() != 2 ||
		dns[0].GetAttr("forwarders").Index(cty.NumberIntVal(1)).GetAttr("domain").AsString() != "example.com" ||
		dns[1].GetAttr("forwarders").Index(cty.NumberIntVal(0)).GetAttr("address").AsString() != "1.1.1.1" || !dns[1].GetAttr("enabled").IsNull() {
		t.Errorf("dns blocks: %#v", got)
	}

	both := "dns {\n  forwarders = []\n  forwarders {\n    address = \"x\"\n  }\n}\n"
	f, _ = hclsyntax.ParseConfig([]byte(both), "t.tf", hcl.InitialPos)
	v, _ = hcldec.Decode(f.Body, Spec(nestedRS), nil)
	if _, diags := fromBlocks(nil, "dns", v.GetAttr("dns"), v.GetAttr("dns"+blockSuffix), nestedRS.Attributes["dns"]); !diags.HasErrors() {
		t.Error("forwarders as attribute and blocks at once: no error")
	}
}

// A stored state whose nested objects lack optional attributes the schema
// gained takes them null; only a nested volatile attribute that differs is
// no drift, and the store takes the read's value.
func TestNestedNewAttributesAndVolatile(t *testing.T) {
	old := cty.ObjectVal(map[string]cty.Value{
		"dns": cty.NullVal(cty.List(dnsType.WithoutOptionalAttributesDeep())),
		"nic": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"net": cty.StringVal("lan"), "mac": cty.NullVal(cty.String)})}),
	})
	up := withNewDefaults(old, nestedRS)
	nic := up.GetAttr("nic").Index(cty.NumberIntVal(0))
	if !nic.Type().HasAttribute("addresses") || !nic.GetAttr("addresses").IsNull() || nic.GetAttr("net").AsString() != "lan" {
		t.Fatalf("upgraded state: %#v", up)
	}
	read := cty.ObjectVal(map[string]cty.Value{
		"dns": up.GetAttr("dns"),
		"nic": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"net": cty.StringVal("lan"), "mac": cty.NullVal(cty.String),
			"addresses": cty.ListVal([]cty.Value{cty.StringVal("10.0.0.5")})})}),
	})
	if d := diffAttrs(up, read, nestedRS); len(d) != 0 {
		t.Errorf("a leased address is drift: %v", d)
	}
	if got := withVolatile(up, read, nestedRS); !got.RawEquals(read) {
		t.Errorf("store after the read: %#v", got)
	}
	moved := cty.ObjectVal(map[string]cty.Value{
		"dns": up.GetAttr("dns"),
		"nic": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"net": cty.StringVal("wan"), "mac": cty.NullVal(cty.String),
			"addresses": cty.NullVal(cty.List(cty.String))})}),
	})
	if d := diffAttrs(up, moved, nestedRS); len(d) != 1 || d[0] != "nic" {
		t.Errorf("an interface on another network: drift %v, want nic", d)
	}
}
