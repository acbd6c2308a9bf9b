// Package utility holds the small providers Terraform configurations lean
// on — random, tls, null, terraform, time, template, local and ignition
// (data sources only, ignition.go) — as
// transaction citizens: every create has an undo, every delete a retire
// and a purge, and a failed apply takes them back with everything else.
//
// All but local keep their objects only in fiat's store (Schema().Local):
// a random string or a key pair exists nowhere else, so undoing its create
// is forgetting it. local_file writes a file where fiat runs; its undo
// removes it, and a replacement retires the old file (renamed aside) until
// the commit, so a rollback restores the previous content.
package utility

import (
	"context"
	"encoding/json"
	"fmt"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// Names are the provider names this package implements.
var Names = []string{"random", "tls", "null", "terraform", "time", "template", "local", "ignition"}

// resource is one resource type of a store-only provider: make computes
// its full state from the config at create (random values, keys).
type resource struct {
	schema providers.ResourceSchema
	make   func(ctx context.Context, config cty.Value) (cty.Value, error)
	// purge runs when a retired object is destroyed (time_sleep's
	// destroy_duration); nil for nothing.
	purge func(ctx context.Context, state cty.Value) error
}

// dataSource is one data source: read computes its state from the config.
type dataSource struct {
	schema providers.ResourceSchema
	read   func(config cty.Value) (cty.Value, error)
}

// Provider is one of the utility providers.
type Provider struct {
	name      string
	resources map[string]resource
	data      map[string]dataSource
	files     *files // local only
}

var (
	_ providers.Provider     = (*Provider)(nil)
	_ providers.Settler      = (*Provider)(nil)
	_ providers.DataReader   = (*Provider)(nil)
	_ providers.PlanModifier = (*Provider)(nil)
)

// New returns the provider of that name (one of Names).
func New(name string) *Provider {
	p := &Provider{name: name, resources: map[string]resource{}, data: map[string]dataSource{}}
	switch name {
	case "random":
		p.resources = randomResources
	case "tls":
		p.resources = map[string]resource{"tls_private_key": tlsPrivateKey}
	case "null":
		p.resources = map[string]resource{"null_resource": nullResource}
	case "terraform":
		p.resources = map[string]resource{"terraform_data": terraformData}
	case "time":
		p.resources = map[string]resource{"time_sleep": timeSleep}
	case "template":
		p.data = map[string]dataSource{"template_file": templateFile}
	case "local":
		p.files = &files{}
	case "ignition":
		p.data = ignitionData
	}
	return p
}

func (p *Provider) Schema() providers.Schema {
	s := providers.Schema{Local: p.files == nil, Resources: map[string]providers.ResourceSchema{}, DataSources: map[string]providers.ResourceSchema{}}
	for t, r := range p.resources {
		s.Resources[t] = r.schema
	}
	for t, d := range p.data {
		s.DataSources[t] = d.schema
	}
	if p.files != nil {
		s.Resources["local_file"] = localFileSchema
		s.DataSources["local_file"] = localFileDataSchema
	}
	return s
}

func (p *Provider) Configure(context.Context, providers.ConfigureRequest) (providers.ConfigureResponse, error) {
	return providers.ConfigureResponse{}, nil
}

func (p *Provider) Preflight(ctx context.Context, req providers.PreflightRequest) (providers.PreflightResponse, error) {
	var resp providers.PreflightResponse
	for _, s := range req.Steps {
		if s.Type == "local_file" && p.files != nil {
			resp.Problems = append(resp.Problems, p.files.preflight(s, req.Steps)...)
			continue
		}
		if _, ok := p.resources[s.Type]; !ok {
			resp.Problems = append(resp.Problems, providers.Problem{Address: s.Address, Message: fmt.Sprintf("provider %s has no resource type %q", p.name, s.Type)})
		}
	}
	return resp, nil
}

// noUndo is the undo of a store-only object's calls: nothing outside the
// store changed.
var noUndo = json.RawMessage(`{}`)

func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		return p.files.create(req)
	}
	r, ok := p.resources[req.Type]
	if !ok {
		return providers.CreateResponse{}, fmt.Errorf("create %s: provider %s has no resource type %q", req.Address, p.name, req.Type)
	}
	st, err := r.make(ctx, req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	return providers.CreateResponse{ID: st.GetAttr("id").AsString(), State: st, Undo: noUndo}, nil
}

// Update keeps the computed values and takes the config's: every argument
// that would change them forces a replacement.
func (p *Provider) Update(_ context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	attrs := req.Prior.AsValueMap()
	for name, v := range req.Config.AsValueMap() {
		if !v.IsNull() || attrs[name] == cty.NilVal {
			attrs[name] = v
		}
	}
	return providers.UpdateResponse{State: cty.ObjectVal(attrs), Undo: noUndo}, nil
}

func (p *Provider) Retire(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		return p.files.retire(req)
	}
	return providers.RetireResponse{Undo: noUndo}, nil
}

func (p *Provider) Purge(ctx context.Context, req providers.PurgeRequest) (providers.PurgeResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		return providers.PurgeResponse{}, p.files.purge(req)
	}
	if r, ok := p.resources[req.Type]; ok && r.purge != nil && req.State != cty.NilVal {
		if err := r.purge(ctx, req.State); err != nil {
			return providers.PurgeResponse{}, fmt.Errorf("purge %s: %w", req.Address, err)
		}
	}
	return providers.PurgeResponse{}, nil
}

func (p *Provider) Undo(ctx context.Context, req providers.UndoRequest) (providers.UndoResponse, error) {
	if p.files != nil {
		return providers.UndoResponse{}, p.files.undo(req)
	}
	return providers.UndoResponse{}, nil
}

// Read finds a store-only object where it lives: in the store. It never
// drifts. A local file is read from disk.
func (p *Provider) Read(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		return p.files.read(req)
	}
	if req.State == cty.NilVal || req.State.IsNull() {
		return providers.ReadResponse{}, nil
	}
	return providers.ReadResponse{Exists: true, State: req.State}, nil
}

// Settle: a store-only call whose outcome is unknown changed nothing
// outside the store. A local file is looked at.
func (p *Provider) Settle(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		return p.files.settle(req)
	}
	return providers.SettleResponse{}, nil
}

func (p *Provider) ReadData(_ context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	if req.Type == "local_file" && p.files != nil {
		st, err := readLocalFileData(req.Config)
		if err != nil {
			return providers.ReadDataResponse{}, fmt.Errorf("read data %s: %w", req.Address, err)
		}
		return providers.ReadDataResponse{State: st}, nil
	}
	d, ok := p.data[req.Type]
	if !ok {
		return providers.ReadDataResponse{}, fmt.Errorf("read data %s: provider %s has no data source %q", req.Address, p.name, req.Type)
	}
	st, err := d.read(req.Config)
	if err != nil {
		return providers.ReadDataResponse{}, fmt.Errorf("read data %s: %w", req.Address, err)
	}
	return providers.ReadDataResponse{State: st}, nil
}

// ModifyPlan predicts terraform_data's output: it is its input.
func (p *Provider) ModifyPlan(req providers.ModifyPlanRequest) providers.ModifyPlanResponse {
	if req.Type != "terraform_data" || req.Planned.IsNull() || !req.Planned.IsKnown() {
		return providers.ModifyPlanResponse{Planned: req.Planned}
	}
	attrs := req.Planned.AsValueMap()
	attrs["output"] = attrs["input"]
	return providers.ModifyPlanResponse{Planned: cty.ObjectVal(attrs)}
}

func (p *Provider) Close() error { return nil }

// withComputed is config with the computed attributes set.
func withComputed(config cty.Value, computed map[string]cty.Value) cty.Value {
	attrs := config.AsValueMap()
	if attrs == nil {
		attrs = map[string]cty.Value{}
	}
	for k, v := range computed {
		attrs[k] = v
	}
	return cty.ObjectVal(attrs)
}
