// Package provision runs provisioners — local-exec, remote-exec (ssh) and
// file — as a provider of the transaction, so a provisioner is a step like
// any other: journaled before it runs, undone on a rollback, settled after
// a crash.
//
// A provisioner's "create" is its run; its undo is, for remote-exec and
// file, nothing (they acted on the object they were attached to, which its
// own undo removes) and, for a local-exec, the undo command it declares.
// An operation whose outcome is unknown (fiat was killed while it ran) is
// taken as having run: its undo runs on the rollback, so undo commands must
// tolerate a command that did not run.
package provision

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// Address is the provider address provisioner steps use in the journal.
const Address = providers.ProvisionerAddress

// Spec is what one provisioner run is given: the evaluated provisioner
// block and its connection.
type Spec struct {
	Type       string    // "local-exec", "remote-exec", "file"
	OnFailure  string    // "fail" or "continue"
	Config     cty.Value // the block's arguments (hcl.ProvisionerSpecs)
	Connection cty.Value // the connection block's (cty.NilVal: none)
}

// Value is the spec as the executor carries it.
func (s Spec) Value() cty.Value {
	conn := s.Connection
	if conn == cty.NilVal {
		conn = cty.NullVal(cty.DynamicPseudoType)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"type": cty.StringVal(s.Type), "on_failure": cty.StringVal(s.OnFailure), "config": s.Config, "connection": conn,
	})
}

func specOf(v cty.Value) (Spec, error) {
	if v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() || !v.Type().HasAttribute("type") {
		return Spec{}, errors.New("no provisioner spec")
	}
	s := Spec{Type: v.GetAttr("type").AsString(), OnFailure: "fail", Config: v.GetAttr("config"), Connection: v.GetAttr("connection")}
	if v.Type().HasAttribute("on_failure") {
		s.OnFailure = v.GetAttr("on_failure").AsString()
	}
	return s, nil
}

// undoRecord is what a run's undo needs.
type undoRecord struct {
	Type    string            `json:"type"`
	Command string            `json:"command,omitempty"` // local-exec's undo
	Interp  []string          `json:"interpreter,omitempty"`
	Dir     string            `json:"working_dir,omitempty"`
	Env     map[string]string `json:"environment,omitempty"`
}

func undoOf(s Spec) json.RawMessage {
	u := undoRecord{Type: s.Type}
	if s.Type == "local-exec" {
		c := s.Config
		u.Command = optString(c, "undo")
		u.Interp = optStrings(c, "interpreter")
		u.Dir = optString(c, "working_dir")
		u.Env = optMap(c, "environment")
	}
	b, _ := json.Marshal(u)
	return b
}

// Provider is the provisioner runner.
type Provider struct {
	// Output receives the lines provisioners print, prefixed; nil drops
	// them.
	Output func(address, line string)
}

var (
	_ providers.Provider = (*Provider)(nil)
	_ providers.Settler  = (*Provider)(nil)
)

func New() *Provider { return &Provider{} }

func (p *Provider) Schema() providers.Schema { return providers.Schema{} }

func (p *Provider) Configure(context.Context, providers.ConfigureRequest) (providers.ConfigureResponse, error) {
	return providers.ConfigureResponse{}, nil
}

func (p *Provider) Preflight(context.Context, providers.PreflightRequest) (providers.PreflightResponse, error) {
	return providers.PreflightResponse{}, nil
}

// Create runs the provisioner.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	s, err := specOf(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("provision %s: %w", req.Address, err)
	}
	resp := providers.CreateResponse{ID: req.OpID, State: req.Config, Undo: undoOf(s)}
	out := func(line string) {
		if p.Output != nil {
			p.Output(req.Address, line)
		}
	}
	if s.Type == "local-exec" && optBool(s.Config, "quiet") {
		out = func(string) {} // quiet = true: the command's output is not shown
	}
	switch s.Type {
	case "local-exec":
		err = localExec(ctx, s.Config, out)
	case "remote-exec":
		err = remoteExec(ctx, s.Connection, s.Config, out)
	case "file":
		err = copyFile(ctx, s.Connection, s.Config)
	default:
		err = fmt.Errorf("unknown provisioner %q", s.Type)
	}
	if err != nil && s.OnFailure == "continue" {
		return resp, fmt.Errorf("%s %w: %v", s.Type, providers.ErrContinued, err)
	}
	if err != nil {
		// A command that failed half-way may have done something: its
		// undo still runs on the rollback.
		return resp, fmt.Errorf("%s: %w", s.Type, err)
	}
	return resp, nil
}

func (p *Provider) Update(context.Context, providers.UpdateRequest) (providers.UpdateResponse, error) {
	return providers.UpdateResponse{}, errors.New("a provisioner is never updated")
}

func (p *Provider) Retire(context.Context, providers.RetireRequest) (providers.RetireResponse, error) {
	return providers.RetireResponse{}, errors.New("a provisioner is never retired")
}

func (p *Provider) Purge(context.Context, providers.PurgeRequest) (providers.PurgeResponse, error) {
	return providers.PurgeResponse{}, nil
}

// Undo runs a local-exec's undo command; remote-exec and file are undone
// with their object.
func (p *Provider) Undo(ctx context.Context, req providers.UndoRequest) (providers.UndoResponse, error) {
	var u undoRecord
	if err := json.Unmarshal(req.Undo, &u); err != nil {
		return providers.UndoResponse{}, fmt.Errorf("undo provisioner of %s: %w", req.Address, err)
	}
	if u.Type != "local-exec" || u.Command == "" {
		return providers.UndoResponse{}, nil
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	if err := runLocal(ctx, u.Command, u.Interp, u.Dir, u.Env, func(string) {}); err != nil {
		return providers.UndoResponse{}, fmt.Errorf("undo local-exec of %s (%s): %w", req.Address, u.Command, err)
	}
	return providers.UndoResponse{}, nil
}

func (p *Provider) Read(context.Context, providers.ReadRequest) (providers.ReadResponse, error) {
	return providers.ReadResponse{}, nil
}

// Settle cannot know whether a command ran: it takes it as run, so its
// undo runs.
func (p *Provider) Settle(_ context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	s, err := specOf(req.Config)
	if err != nil {
		return providers.SettleResponse{}, nil
	}
	return providers.SettleResponse{TookEffect: true, ID: req.OpID, State: req.Config, Undo: undoOf(s)}, nil
}

func (p *Provider) Close() error { return nil }

func optString(v cty.Value, name string) string {
	if v == cty.NilVal || v.IsNull() || !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return ""
	}
	return v.GetAttr(name).AsString()
}

func optStrings(v cty.Value, name string) []string {
	if v == cty.NilVal || v.IsNull() || !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return nil
	}
	var out []string
	for _, e := range v.GetAttr(name).AsValueSlice() {
		out = append(out, e.AsString())
	}
	return out
}

func optMap(v cty.Value, name string) map[string]string {
	if v == cty.NilVal || v.IsNull() || !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return nil
	}
	out := map[string]string{}
	for k, e := range v.GetAttr(name).AsValueMap() {
		out[k] = e.AsString()
	}
	return out
}

func optBool(v cty.Value, name string) bool {
	if v == cty.NilVal || v.IsNull() || !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return false
	}
	return v.GetAttr(name).True()
}
