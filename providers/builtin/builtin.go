// Package builtin is fiat's own provider, "fiat": resources that live only in
// the store and need no backend.
//
// fiat_data holds a value: `input` (any type) is copied to the computed
// `output`, and a change to `triggers_replace` (any type) replaces it. Use it
// to pass values between resources and modules, or to force the replacement
// of resources that depend on it (like terraform_data in other tools). The
// data source of the same name returns its input as output, read while
// planning.
package builtin

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// Name is the provider's name; its types start with "fiat_".
const Name = "fiat"

// TypeData is the one resource (and data source) type.
const TypeData = "fiat_data"

// Provider has no connection and no state of its own.
type Provider struct{}

var (
	_ providers.Provider     = (*Provider)(nil)
	_ providers.PlanModifier = (*Provider)(nil)
	_ providers.DataReader   = (*Provider)(nil)
	_ providers.Settler      = (*Provider)(nil)
)

// New returns the provider.
func New() *Provider { return &Provider{} }

var dataSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"input":            {Type: cty.DynamicPseudoType, Optional: true, Description: "any value; copied to output"},
		"triggers_replace": {Type: cty.DynamicPseudoType, Optional: true, ForceNew: true, Description: "any value; a change replaces the resource"},
		"output":           {Type: cty.DynamicPseudoType, Computed: true, Description: "equal to input"},
		"id":               {Type: cty.String, Computed: true, Description: "a unique id, new on each replacement"},
	},
	Delete: providers.Reversible,
	Update: providers.Reversible,
}

var dataSourceSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"input":  {Type: cty.DynamicPseudoType, Optional: true, Description: "any value; returned as output"},
		"output": {Type: cty.DynamicPseudoType, Computed: true, Description: "equal to input"},
	},
}

// Schema lists fiat_data.
func (p *Provider) Schema() providers.Schema {
	return providers.Schema{
		Local:       true,
		Resources:   map[string]providers.ResourceSchema{TypeData: dataSchema},
		DataSources: map[string]providers.ResourceSchema{TypeData: dataSourceSchema},
	}
}

// ModifyPlan predicts output while planning: it is input, so it is known
// whenever input is.
func (p *Provider) ModifyPlan(req providers.ModifyPlanRequest) providers.ModifyPlanResponse {
	if req.Type != TypeData || !req.Planned.Type().IsObjectType() || req.Planned.IsNull() || !req.Planned.IsKnown() {
		return providers.ModifyPlanResponse{Planned: req.Planned}
	}
	attrs := req.Planned.AsValueMap()
	attrs["output"] = attrs["input"]
	return providers.ModifyPlanResponse{Planned: cty.ObjectVal(attrs)}
}

func (p *Provider) Configure(context.Context, providers.ConfigureRequest) (providers.ConfigureResponse, error) {
	return providers.ConfigureResponse{}, nil
}

func (p *Provider) Preflight(_ context.Context, req providers.PreflightRequest) (providers.PreflightResponse, error) {
	var resp providers.PreflightResponse
	for _, s := range req.Steps {
		if s.Type != TypeData {
			resp.Problems = append(resp.Problems, providers.Problem{Address: s.Address, Message: fmt.Sprintf("provider fiat has no resource type %q", s.Type)})
		}
	}
	return resp, nil
}

// noUndo is the undo of every fiat_data call: there is nothing outside the
// store to put back.
var noUndo = json.RawMessage(`{}`)

// Create derives the id from the operation id, so it is stable across a
// retried operation.
func (p *Provider) Create(_ context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	sum := sha256.Sum256([]byte(req.OpID + "\x00" + req.Address))
	id := hex.EncodeToString(sum[:16])
	st, err := state(req.Config, id)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	return providers.CreateResponse{ID: id, State: st, Undo: noUndo}, nil
}

func (p *Provider) Update(_ context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	st, err := state(req.Config, req.ID)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update %s: %w", req.Address, err)
	}
	return providers.UpdateResponse{State: st, Undo: noUndo}, nil
}

func (p *Provider) Retire(context.Context, providers.RetireRequest) (providers.RetireResponse, error) {
	return providers.RetireResponse{Undo: noUndo}, nil
}

func (p *Provider) Purge(context.Context, providers.PurgeRequest) (providers.PurgeResponse, error) {
	return providers.PurgeResponse{}, nil
}

func (p *Provider) Undo(context.Context, providers.UndoRequest) (providers.UndoResponse, error) {
	return providers.UndoResponse{}, nil
}

// Read finds the object where it lives: in the store. It never drifts.
func (p *Provider) Read(_ context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	if req.State == cty.NilVal || req.State.IsNull() {
		return providers.ReadResponse{}, nil
	}
	return providers.ReadResponse{Exists: true, State: req.State}, nil
}

// Settle: fiat_data calls change nothing outside the store, so an operation
// whose outcome is unknown had no effect to undo.
func (p *Provider) Settle(context.Context, providers.SettleRequest) (providers.SettleResponse, error) {
	return providers.SettleResponse{}, nil
}

func (p *Provider) ReadData(_ context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	if req.Type != TypeData {
		return providers.ReadDataResponse{}, fmt.Errorf("read data %s: provider fiat has no data source %q", req.Address, req.Type)
	}
	attrs := map[string]cty.Value{"input": cty.NullVal(cty.DynamicPseudoType)}
	if req.Config != cty.NilVal && !req.Config.IsNull() && req.Config.Type().HasAttribute("input") {
		attrs["input"] = req.Config.GetAttr("input")
	}
	attrs["output"] = attrs["input"]
	return providers.ReadDataResponse{State: cty.ObjectVal(attrs)}, nil
}

func (p *Provider) Close() error { return nil }

func state(config cty.Value, id string) (cty.Value, error) {
	if config == cty.NilVal || config.IsNull() || !config.Type().IsObjectType() {
		return cty.NilVal, fmt.Errorf("no configuration")
	}
	attrs := config.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	for _, n := range []string{"input", "triggers_replace"} {
		if _, ok := attrs[n]; !ok {
			attrs[n] = cty.NullVal(cty.DynamicPseudoType)
		}
	}
	attrs["output"] = attrs["input"]
	attrs["id"] = cty.StringVal(id)
	return cty.ObjectVal(attrs), nil
}
