// Package providers holds the contract between fiat's executor and the systems
// it changes. A provider declares its resource types and their schemas and
// implements the side effects; the planner and executor decide what to change
// and in which order. One subpackage per provider (providers/libvirt).
//
// Every call takes a context and a request struct and returns a response
// struct, so a new field breaks no caller. Calls on one Provider may run
// concurrently for unrelated objects; the provider serialises what its backend
// needs serialised (for libvirt: one job per storage pool at a time).
//
// Undo with an error: when Create, Update or Retire fails after something may
// have taken effect (the outcome is unknown, or the provider's own cleanup
// failed), the response still carries the Undo that takes it back; the
// executor journals it and runs it. Undos are idempotent, so running one for a
// call that did nothing succeeds.
//
// Errors: a provider returns *Error (or wraps one) for failures the backend
// reported, so the user sees the backend's own message and code. Any error that
// leaves the outcome of a mutating call in doubt (lost connection, timeout)
// must satisfy errors.Is(err, ErrOutcomeUnknown): the executor then reads the
// object before deciding what happened. It is never treated as success.
package providers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"
)

// Provider is one configured connection to a backend (one libvirt URI).
// Every provider implements these calls; the optional capabilities below
// (Settler, Importer, DataReader, PlanModifier) are checked by type
// assertion, so a provider that lacks one still works for every plan that
// does not need it.
type Provider interface {
	// Schema lists the resource types this provider manages. It needs no
	// Configure and may be called on a fresh value.
	Schema() Schema

	// Configure connects the provider. It is called once before any other
	// call except Schema.
	Configure(ctx context.Context, req ConfigureRequest) (ConfigureResponse, error)

	// Preflight checks, read-only, that every step of a plan can be
	// applied: the backend can be reached, names are free, referenced
	// objects exist or are created by an earlier step of the same plan.
	// Problems are returned in the response, one per offending step; err
	// is for failing to check at all.
	Preflight(ctx context.Context, req PreflightRequest) (PreflightResponse, error)

	// Create makes a new object and returns its identity, its full state
	// (config plus computed attributes) and the Undo that deletes it.
	Create(ctx context.Context, req CreateRequest) (CreateResponse, error)

	// Update changes an object in place and returns its new state and the
	// Undo that restores the prior definition.
	Update(ctx context.Context, req UpdateRequest) (UpdateResponse, error)

	// Retire makes an object that is to be deleted inert but recoverable
	// (stopped, kept defined). It runs before the commit; its Undo brings
	// the object back. Purge destroys it after the commit.
	Retire(ctx context.Context, req RetireRequest) (RetireResponse, error)

	// Purge destroys a retired object for good. It runs after the commit
	// and must be idempotent: purging an object that is gone succeeds.
	Purge(ctx context.Context, req PurgeRequest) (PurgeResponse, error)

	// Undo reverses one earlier Create, Update or Retire, given the Undo
	// bytes that call returned. It must be idempotent: undoing an undo
	// that already took effect succeeds.
	Undo(ctx context.Context, req UndoRequest) (UndoResponse, error)

	// Read reports the real object: for drift, and to settle a mutating
	// call whose outcome is unknown. With an empty ID it looks the object
	// up by the identifying attributes in State (e.g. its name).
	Read(ctx context.Context, req ReadRequest) (ReadResponse, error)

	// Close releases the connection.
	Close() error
}

// Settler is a provider that can decide what became of a Create, Update or
// Retire whose outcome is unknown (the connection dropped, or the fiat
// process died between journaling the intent and the result). Without it
// such an operation cannot be settled: the executor reports it and marks
// the entity needs-attention instead of guessing.
type Settler interface {
	// Settle reads the real object and says whether the operation took
	// effect; if it did, it returns the Undo that reverses it, exactly as
	// the original call would have. Read-only.
	Settle(ctx context.Context, req SettleRequest) (SettleResponse, error)
}

// Importer is a provider whose existing objects fiat can adopt (import
// blocks).
type Importer interface {
	// Import finds an existing object by the identity a user gives (a
	// UUID, a name, a path: whatever the type documents) and returns its
	// canonical ID and full state, so fiat can start managing it.
	Import(ctx context.Context, req ImportRequest) (ImportResponse, error)
}

// DataReader is a provider with data sources (Schema().DataSources).
type DataReader interface {
	// ReadData evaluates a data source: it reads an existing object that
	// fiat does not manage, found by the data block's arguments.
	ReadData(ctx context.Context, req ReadDataRequest) (ReadDataResponse, error)
}

// PlanModifier is a provider that predicts computed attributes while
// planning (fiat_data's output is its input), and the values its backend
// will report for what config sets when the backend normalises them (a MAC
// in lower case, a size rounded up): the planner compares the normalised
// config with the prior state, so a value written in another form than the
// backend's plans no change. The planner calls it for every planned
// resource of the provider; it must be pure and fast, and idempotent.
// Create and Update still receive the config as written, so a provider
// normalises it there the same way.
type PlanModifier interface {
	ModifyPlan(req ModifyPlanRequest) ModifyPlanResponse
}

// ConfigValidator is a provider that can tell, without a connection, that
// a resource's configuration will be refused (or silently changed) by its
// backend: a size the backend rounds, a name it cannot hold. The planner
// calls it for every resource instance, also in fiat validate, so such a
// value fails before anything is created. It must be pure; unknown values
// (known only after apply) are to be skipped.
type ConfigValidator interface {
	ValidateConfig(req ValidateConfigRequest) ValidateConfigResponse
}

type ValidateConfigRequest struct {
	Type   string
	Config cty.Value // may hold unknown values
}

type ValidateConfigResponse struct {
	Problems []ConfigProblem
}

// ConfigProblem is one reason a configuration will be refused.
type ConfigProblem struct {
	Attribute string // the top-level attribute at fault ("" for the whole block)
	Message   string
}

// ModifyPlanRequest is one resource's planned state: Prior is the stored
// state (cty.NilVal on create), Planned the config with computed attributes
// unknown or kept from Prior.
type ModifyPlanRequest struct {
	Type    string
	Prior   cty.Value
	Planned cty.Value
}

// ModifyPlanResponse carries the adjusted planned state (Planned unchanged
// when the provider has nothing to predict for the type).
type ModifyPlanResponse struct {
	Planned cty.Value
}

// Schema is what a provider manages.
type Schema struct {
	// Provider describes the provider block's attributes (e.g. uri).
	Provider    map[string]Attribute
	Resources   map[string]ResourceSchema
	DataSources map[string]ResourceSchema // data "type" "name" { ... }
	// Local says the provider's objects live only in fiat's store: its
	// calls have no effect outside it (fiat_data). The executor then need
	// not make an intent durable before each call, since a crash leaves
	// nothing outside the store to undo; the journal still records it.
	Local bool
}

// ResourceSchema describes one resource type.
type ResourceSchema struct {
	Attributes map[string]Attribute
	// Delete says what deleting an object of this type loses once the
	// purge runs: a volume's data is Irreversible, a pool's definition
	// Lossy, and so on. Shown in the plan before approval.
	Delete Reversibility
	// Update says what an in-place update loses (usually Reversible).
	Update Reversibility
}

// Attribute describes one attribute of a resource type.
type Attribute struct {
	Type      cty.Type
	Required  bool // must be set in config
	Optional  bool // may be set in config
	Computed  bool // set by the provider (may also be Optional)
	ForceNew  bool // a change replaces the object instead of updating it
	Sensitive bool // never shown in output
	// RestartNeeded says that an in-place change of this attribute is
	// stored at once but takes effect only when the object next restarts
	// (e.g. a running VM's memory). The plan shows it beside the change.
	RestartNeeded bool
	// Volatile says a computed attribute changes by itself, while nobody
	// changes the object (a pool's free space, a VM's DHCP address): a
	// read that differs from the store only in volatile attributes is not
	// drift. The new value is simply what the object has now.
	Volatile bool
	// VolatileNested names attributes of the objects of a list-of-objects
	// attribute that change by themselves (a network interface's leased
	// addresses): like Volatile, a read that differs from the store only
	// there is not drift, and the store takes the read's values.
	VolatileNested []string
	// LocalPath says a string attribute names a file where fiat runs: a
	// relative path is resolved against the directory of the module that
	// sets it (as path.module would), so the plan does not depend on the
	// working directory.
	LocalPath bool
	// LocalPathNested names string attributes of the objects of a
	// list-of-objects attribute that are LocalPaths (a disk's file).
	LocalPathNested []string
	// TerraformDefault, if set, gives the attribute's value when config
	// leaves it null in a resource declared in a *.tf file: the default
	// of the Terraform provider this one stands in for, where it differs
	// from the provider's own. It gets the resource's config (the other
	// attributes) and returns the value (null to leave it unset).
	TerraformDefault func(config cty.Value) cty.Value
	// Default is used when an Optional attribute is not set in config
	// (cty.NilVal: no default; the attribute is null, or computed). An
	// attribute added to a schema later must have a default that
	// describes the objects the provider made before it existed: the
	// planner gives entities stored without it that default.
	Default     cty.Value
	Description string
}

// ImpliedType is the object type of a resource's full state. Attribute
// types may mark nested object attributes optional
// (cty.ObjectWithOptionalAttrs) so config can leave them out; values never
// carry those marks, so the implied type drops them.
func (s ResourceSchema) ImpliedType() cty.Type {
	attrs := make(map[string]cty.Type, len(s.Attributes))
	for name, a := range s.Attributes {
		attrs[name] = a.Type.WithoutOptionalAttributesDeep()
	}
	return cty.Object(attrs)
}

// Reversibility says what an undo of a step can restore.
type Reversibility int

const (
	Reversible   Reversibility = iota // undo restores everything
	Lossy                             // undo restores the definition, not the data
	Irreversible                      // nothing restores it
)

func (r Reversibility) String() string {
	switch r {
	case Reversible:
		return "reversible"
	case Lossy:
		return "lossy"
	case Irreversible:
		return "irreversible"
	}
	return fmt.Sprintf("Reversibility(%d)", int(r))
}

// ConfigureRequest carries the provider block's attributes.
type ConfigureRequest struct {
	Config cty.Value
}

type ConfigureResponse struct{}

// Action is what a plan step does to one object.
type Action string

const (
	ActionCreate Action = "create"
	ActionUpdate Action = "update"
	ActionDelete Action = "delete"
)

// PreflightStep is one step of a plan as the provider sees it. Config may
// hold unknown values (computed attributes of objects not created yet).
type PreflightStep struct {
	Address string
	Type    string
	Action  Action
	ID      string    // existing object's identity (update, delete)
	Prior   cty.Value // stored state (update, delete); cty.NilVal for create
	Config  cty.Value // planned state (create, update)
}

type PreflightRequest struct {
	Steps []PreflightStep
}

// Problem is one reason a step cannot be applied.
type Problem struct {
	Address string
	Message string
}

type PreflightResponse struct {
	Problems []Problem
}

type CreateRequest struct {
	Address string
	Type    string
	OpID    string    // stable id of this operation (plan id + step)
	Config  cty.Value // fully known
}

type CreateResponse struct {
	ID    string
	State cty.Value
	Undo  json.RawMessage
}

type UpdateRequest struct {
	Address string
	Type    string
	OpID    string
	ID      string
	Prior   cty.Value
	Config  cty.Value
}

type UpdateResponse struct {
	State cty.Value
	Undo  json.RawMessage
}

type RetireRequest struct {
	Address string
	Type    string
	OpID    string
	ID      string
	State   cty.Value
}

type RetireResponse struct {
	Undo json.RawMessage
}

type PurgeRequest struct {
	Address string
	Type    string
	ID      string
	State   cty.Value
	// Undo is what the object's Retire returned: it says what the retire
	// did (e.g. the name it gave the object), so the purge need not derive
	// it again. Empty when the executor has none.
	Undo json.RawMessage
}

type PurgeResponse struct{}

type UndoRequest struct {
	Address string
	Type    string
	Undo    json.RawMessage
}

type UndoResponse struct{}

type ReadRequest struct {
	Address string
	Type    string
	ID      string
	State   cty.Value // last known state, may be cty.NilVal
}

type ReadResponse struct {
	Exists bool
	State  cty.Value
}

// SettleRequest describes an operation whose outcome is unknown.
type SettleRequest struct {
	Address string
	Type    string
	Action  Action    // ActionCreate, ActionUpdate, or ActionDelete for a Retire
	OpID    string    // the OpID the original call carried
	ID      string    // the object's identity if known (update, retire; a create may not know it)
	Prior   cty.Value // state before the operation (update, retire); cty.NilVal for create
	Config  cty.Value // what the operation asked for (create, update)
}

type SettleResponse struct {
	TookEffect bool
	ID         string    // the object's identity (for a create that took effect)
	State      cty.Value // its state now
	Undo       json.RawMessage
}

type ImportRequest struct {
	Address string
	Type    string
	ID      string // as the user wrote it
}

type ImportResponse struct {
	ID    string
	State cty.Value
}

type ReadDataRequest struct {
	Address string
	Type    string
	Config  cty.Value
}

type ReadDataResponse struct {
	State cty.Value
}

// ProvisionerAddress is the provider address of provisioner steps: the
// executor runs a resource's provisioners as calls of the provider the
// engine registers under it (providers/provision).
const ProvisionerAddress = "provisioner"

// ErrContinued marks a failure the configuration says to go on after (a
// provisioner with on_failure = continue): the step succeeds, and the
// failure is reported as a warning.
var ErrContinued = errors.New("failed; on_failure = continue")

// ErrConflict marks a create refused because an object with the same name
// (or another unique property) exists; the message names that object.
var ErrConflict = errors.New("conflicts with an existing object")

// ErrOutcomeUnknown marks a failure after which the provider cannot tell
// whether a mutating call took effect.
var ErrOutcomeUnknown = errors.New("outcome unknown")

// Error is a failure reported by the backend itself.
type Error struct {
	Op      string // "create pool", "delete volume", ...
	Code    int    // the backend's error code, 0 if none
	Message string // the backend's own words
	Err     error  // the underlying error, if any
}

func (e *Error) Error() string {
	if e.Code != 0 {
		return fmt.Sprintf("%s: %s (code %d)", e.Op, e.Message, e.Code)
	}
	return fmt.Sprintf("%s: %s", e.Op, e.Message)
}

func (e *Error) Unwrap() error { return e.Err }
