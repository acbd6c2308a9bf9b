package utility

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math/big"
	"time"

	"fiat/providers"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

var nullResource = resource{schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"triggers": {Type: cty.Map(cty.String), Optional: true, ForceNew: true, Description: "A change replaces the resource."},
	"id":       {Type: cty.String, Computed: true},
}}, make: func(_ context.Context, c cty.Value) (cty.Value, error) {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return cty.NilVal, err
	}
	return withComputed(c, map[string]cty.Value{"id": cty.StringVal(n.String())}), nil
}}

// terraformData is Terraform's terraform_data: fiat_data under its
// Terraform name.
var terraformData = resource{schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"input":            {Type: cty.DynamicPseudoType, Optional: true},
	"triggers_replace": {Type: cty.DynamicPseudoType, Optional: true, ForceNew: true},
	"output":           {Type: cty.DynamicPseudoType, Computed: true},
	"id":               {Type: cty.String, Computed: true},
}}, make: func(_ context.Context, c cty.Value) (cty.Value, error) {
	id := make([]byte, 16)
	if _, err := rand.Read(id); err != nil {
		return cty.NilVal, err
	}
	attrs := c.AsValueMap()
	return withComputed(c, map[string]cty.Value{"output": attrs["input"], "id": cty.StringVal(hex.EncodeToString(id))}), nil
}}

// timeSleep waits create_duration when it is created and destroy_duration
// when it is destroyed (at the purge, after the commit), stopping early
// if the apply is cancelled.
var timeSleep = resource{schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"create_duration":  {Type: cty.String, Optional: true, Description: `e.g. "30s"`},
	"destroy_duration": {Type: cty.String, Optional: true},
	"triggers":         {Type: cty.Map(cty.String), Optional: true, ForceNew: true},
	"id":               {Type: cty.String, Computed: true},
}}, make: func(ctx context.Context, c cty.Value) (cty.Value, error) {
	if err := sleepAttr(ctx, c, "create_duration"); err != nil {
		return cty.NilVal, err
	}
	return withComputed(c, map[string]cty.Value{"id": cty.StringVal(time.Now().UTC().Format(time.RFC3339))}), nil
}, purge: func(ctx context.Context, st cty.Value) error { return sleepAttr(ctx, st, "destroy_duration") }}

func sleepAttr(ctx context.Context, v cty.Value, name string) error {
	if !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return nil
	}
	d, err := time.ParseDuration(v.GetAttr(name).AsString())
	if err != nil || d < 0 {
		return fmt.Errorf("%s %q: want a duration such as \"30s\"", name, v.GetAttr(name).AsString())
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("wait %s: %w", name, ctx.Err())
	}
}

// templateFile is the template provider's data source: template rendered
// as an HCL template (${name}, %{ if } ...) with vars.
var templateFile = dataSource{schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"template": {Type: cty.String, Required: true},
	"vars":     {Type: cty.Map(cty.DynamicPseudoType), Optional: true},
	"rendered": {Type: cty.String, Computed: true},
	"id":       {Type: cty.String, Computed: true},
}}, read: func(c cty.Value) (cty.Value, error) {
	src := c.GetAttr("template").AsString()
	expr, diags := hclsyntax.ParseTemplate([]byte(src), "template", hcl2.InitialPos)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("parse template: %s", diags.Error())
	}
	vars := map[string]cty.Value{}
	if v := c.GetAttr("vars"); !v.IsNull() {
		for k, val := range v.AsValueMap() {
			vars[k] = val
		}
	}
	for _, t := range expr.Variables() {
		if _, ok := vars[t.RootName()]; !ok {
			return cty.NilVal, fmt.Errorf("the template refers to %q, which vars does not hold", t.RootName())
		}
	}
	out, diags := expr.Value(&hcl2.EvalContext{Variables: vars})
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("render template: %s", diags.Error())
	}
	s, err := convert.Convert(out, cty.String)
	if err != nil {
		return cty.NilVal, fmt.Errorf("render template: %w", err)
	}
	return renderedText(c, s.AsString()), nil
}}

// renderedText is c with what a rendering data source computes: the text, and
// its sha256 as the id.
func renderedText(c cty.Value, s string) cty.Value {
	sum := sha256.Sum256([]byte(s))
	return withComputed(c, map[string]cty.Value{"rendered": cty.StringVal(s), "id": cty.StringVal(hex.EncodeToString(sum[:]))})
}
