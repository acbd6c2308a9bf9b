// Package fake is an in-memory provider for testing the planner and executor:
// real bookkeeping of objects, and func fields to inject failures. It is not
// registered with the CLI.
package fake

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"sync"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Type is the one resource type: fake_thing { name, value, forced; computed id }.
const Type = "fake_thing"

// Provider keeps objects in memory.
type Provider struct {
	mu      sync.Mutex
	next    int
	Objects map[string]cty.Value // id → state
	Retired map[string]bool
	Calls   []string // "create fake_thing.a", in call order

	// Fail, if set, is asked before each mutating call ("create", "update",
	// "retire", "undo", "purge") and its error is returned instead.
	Fail func(op, address string) error
}

var _ providers.Provider = (*Provider)(nil)

// New returns an empty fake.
func New() *Provider {
	return &Provider{Objects: map[string]cty.Value{}, Retired: map[string]bool{}}
}

// Schema of fake_thing.
func (p *Provider) Schema() providers.Schema {
	return providers.Schema{Resources: map[string]providers.ResourceSchema{
		Type: {Attributes: map[string]providers.Attribute{
			"name":   {Type: cty.String, Required: true},
			"value":  {Type: cty.String, Optional: true},
			"forced": {Type: cty.String, Optional: true, ForceNew: true},
			"id":     {Type: cty.String, Computed: true},
		}, Delete: providers.Lossy},
	}}
}

func (p *Provider) Configure(ctx context.Context, req providers.ConfigureRequest) (providers.ConfigureResponse, error) {
	return providers.ConfigureResponse{}, p.configure(ctx, req)
}

func (p *Provider) configure(ctx context.Context, req providers.ConfigureRequest) error { return nil }

func (p *Provider) Preflight(context.Context, providers.PreflightRequest) (providers.PreflightResponse, error) {
	return providers.PreflightResponse{}, nil
}

func (p *Provider) fail(op, addr string) error {
	p.mu.Lock()
	p.Calls = append(p.Calls, op+" "+addr)
	p.mu.Unlock()
	if p.Fail != nil {
		return p.Fail(op, addr)
	}
	return nil
}

type undo struct {
	Op    string          `json:"op"`
	ID    string          `json:"id"`
	Prior json.RawMessage `json:"prior,omitempty"`
}

func (p *Provider) Create(_ context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	if err := p.fail("create", req.Address); err != nil {
		return providers.CreateResponse{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.next++
	id := fmt.Sprintf("fake-%d", p.next)
	st := withID(req.Config, id)
	p.Objects[id] = st
	u, _ := json.Marshal(undo{Op: "delete", ID: id})
	return providers.CreateResponse{ID: id, State: st, Undo: u}, nil
}

func (p *Provider) Update(_ context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	if err := p.fail("update", req.Address); err != nil {
		return providers.UpdateResponse{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	prior, ok := p.Objects[req.ID]
	if !ok {
		return providers.UpdateResponse{}, &providers.Error{Op: "update " + req.Address, Code: 404, Message: "no such object " + req.ID}
	}
	pb, err := json.Marshal(ctyjson.SimpleJSONValue{Value: prior})
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update %s: %w", req.Address, err)
	}
	st := withID(req.Config, req.ID)
	p.Objects[req.ID] = st
	u, _ := json.Marshal(undo{Op: "restore", ID: req.ID, Prior: pb})
	return providers.UpdateResponse{State: st, Undo: u}, nil
}

func (p *Provider) Retire(_ context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	if err := p.fail("retire", req.Address); err != nil {
		return providers.RetireResponse{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if _, ok := p.Objects[req.ID]; !ok {
		return providers.RetireResponse{}, &providers.Error{Op: "retire " + req.Address, Code: 404, Message: "no such object " + req.ID}
	}
	p.Retired[req.ID] = true
	u, _ := json.Marshal(undo{Op: "unretire", ID: req.ID})
	return providers.RetireResponse{Undo: u}, nil
}

func (p *Provider) Purge(ctx context.Context, req providers.PurgeRequest) (providers.PurgeResponse, error) {
	return providers.PurgeResponse{}, p.purge(ctx, req)
}

func (p *Provider) purge(ctx context.Context, req providers.PurgeRequest) error {
	if err := p.fail("purge", req.Address); err != nil {
		return err
	}
	// The executor hands the purge what the retire returned.
	var u undo
	if err := json.Unmarshal(req.Undo, &u); err != nil || u.Op != "unretire" || u.ID != req.ID {
		return fmt.Errorf("purge %s: the request does not carry its retire's undo (%s)", req.Address, req.Undo)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	delete(p.Objects, req.ID)
	delete(p.Retired, req.ID)
	return nil
}

func (p *Provider) Undo(ctx context.Context, req providers.UndoRequest) (providers.UndoResponse, error) {
	return providers.UndoResponse{}, p.undo(ctx, req)
}

func (p *Provider) undo(ctx context.Context, req providers.UndoRequest) error {
	if err := p.fail("undo", req.Address); err != nil {
		return err
	}
	var u undo
	if err := json.Unmarshal(req.Undo, &u); err != nil {
		return fmt.Errorf("decode undo of %s: %w", req.Address, err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	switch u.Op {
	case "delete":
		delete(p.Objects, u.ID)
	case "unretire":
		delete(p.Retired, u.ID)
	case "restore":
		var prior ctyjson.SimpleJSONValue
		if err := json.Unmarshal(u.Prior, &prior); err != nil {
			return fmt.Errorf("decode undo of %s: %w", req.Address, err)
		}
		p.Objects[u.ID] = prior.Value
	}
	return nil
}

func (p *Provider) Read(_ context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	st, ok := p.Objects[req.ID]
	return providers.ReadResponse{Exists: ok, State: st}, nil
}

func (p *Provider) Close() error { return nil }

// Snapshot lists objects as "id=value" lines for comparing states in tests.
func (p *Provider) Snapshot() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []string
	for id, v := range p.Objects {
		out = append(out, fmt.Sprintf("%s name=%s value=%s forced=%s retired=%v", id,
			v.GetAttr("name").GoString(), v.GetAttr("value").GoString(), v.GetAttr("forced").GoString(), p.Retired[id]))
	}
	sort.Strings(out)
	return out
}

func withID(v cty.Value, id string) cty.Value {
	m := v.AsValueMap()
	m["id"] = cty.StringVal(id)
	return cty.ObjectVal(m)
}

// Settle reports a create as having taken effect if an object with the
// requested name exists (the fake's stand-in for an OpID-derived identity).
func (p *Provider) Settle(_ context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch req.Action {
	case providers.ActionCreate:
		for id, v := range p.Objects {
			if !p.Retired[id] && v.GetAttr("name").RawEquals(req.Config.GetAttr("name")) {
				u, _ := json.Marshal(undo{Op: "delete", ID: id})
				return providers.SettleResponse{TookEffect: true, ID: id, State: v, Undo: u}, nil
			}
		}
	case providers.ActionUpdate:
		if v, ok := p.Objects[req.ID]; ok && v.GetAttr("value").RawEquals(req.Config.GetAttr("value")) {
			pb, _ := json.Marshal(ctyjson.SimpleJSONValue{Value: req.Prior})
			u, _ := json.Marshal(undo{Op: "restore", ID: req.ID, Prior: pb})
			return providers.SettleResponse{TookEffect: true, ID: req.ID, State: v, Undo: u}, nil
		}
	case providers.ActionDelete:
		if p.Retired[req.ID] {
			u, _ := json.Marshal(undo{Op: "unretire", ID: req.ID})
			return providers.SettleResponse{TookEffect: true, ID: req.ID, Undo: u}, nil
		}
	}
	return providers.SettleResponse{}, nil
}

// Import adopts an object by id.
func (p *Provider) Import(_ context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	v, ok := p.Objects[req.ID]
	if !ok {
		return providers.ImportResponse{}, &providers.Error{Op: "import " + req.Address, Code: 404, Message: "no such object " + req.ID}
	}
	return providers.ImportResponse{ID: req.ID, State: v}, nil
}

// ReadData: the fake has no data sources.
func (p *Provider) ReadData(_ context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	return providers.ReadDataResponse{}, fmt.Errorf("read data %s: fake has no data sources", req.Address)
}
