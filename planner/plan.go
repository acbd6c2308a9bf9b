// Package planner diffs a Config against the stored entities of its stack and
// produces a Plan. It is pure: (config, stored entities, provider schemas,
// provider reads) → Plan, with no side effects; rendering (text, JSON,
// Markdown) and saved plan files live here too.
package planner

import (
	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// Action is what a step does.
type Action string

const (
	NoOp    Action = "no-op"
	Create  Action = "create"
	Update  Action = "update"
	Replace Action = "replace"
	Delete  Action = "delete"
	// Read is a data source read while planning; After holds what was
	// read. The executor has nothing to do for it, unless ReadAtApply.
	Read Action = "read"
	// Import adopts an existing object (found by the provider's Import
	// while planning) into the store as Address, with ID and After. No
	// provider call at apply; the commit puts the entity.
	Import Action = "import"
	// Move renames a stored entity from MovedFrom to Address without
	// touching the object. The commit puts Address (After, ID) and deletes
	// MovedFrom.
	Move Action = "move"
	// Adopt writes into the store what a provider read found (the object
	// was changed outside fiat): the commit puts Address with After. No
	// provider call.
	Adopt Action = "adopt"
	// Forget removes from the store an entity whose object was deleted
	// outside fiat (with -adopt-drift). No provider call.
	Forget Action = "forget"
)

// StoreOnly says whether the action changes the store but no object: the
// executor commits it without calling a provider.
func (a Action) StoreOnly() bool {
	switch a {
	case Import, Move, Adopt, Forget:
		return true
	}
	return false
}

// Symbol is the action's mark in plan output.
func (a Action) Symbol() string {
	switch a {
	case Create:
		return "+"
	case Update:
		return "~"
	case Replace:
		return "-/+"
	case Delete:
		return "-"
	case Read:
		return "<="
	case Import:
		return "<-"
	case Move:
		return "->"
	case Adopt:
		return "<~"
	case Forget:
		return "x"
	}
	return " "
}

// Step is one resource instance's change.
type Step struct {
	Address  string // instance address within the stack: "type.name", "type.name[0]", "module.m.type.name[\"k\"]"
	Resource string // its resource's address: Address without the key
	Type     string
	Name     string
	Provider string // provider address: "libvirt", "libvirt.host2"
	Action   Action
	// Reversibility says what undoing the step can restore: deletes and
	// replacements lose what the resource type's delete loses.
	Reversibility providers.Reversibility
	ID            string    // the existing object's identity (update, replace, delete, import, move, adopt)
	Before        cty.Value // stored state (or what a provider read/import found); cty.NilVal for create
	After         cty.Value // planned state, unknown where computed; cty.NilVal for delete and forget
	ForceNew      []string  // attributes whose change forces the replacement
	// DependsOn lists the instance addresses this step depends on (config,
	// or stored for delete); data source addresses included.
	DependsOn []string
	Source    string   // file:line of the resource block (stored for delete)
	Sensitive []string // attribute names never to show
	// CreateBeforeDestroy (replace only): make the new object before
	// retiring the old (lifecycle { create_before_destroy = true }).
	CreateBeforeDestroy bool
	// MovedFrom is the stored address of an entity a moved block renamed:
	// whatever the action, the commit deletes MovedFrom.
	MovedFrom string
	// Imported (update, replace, import): Before came from the provider's
	// Import, not from the store.
	Imported bool
	// RestartNeeded (update only) lists changed attributes that take effect
	// only when the object next restarts (e.g. a running VM's memory).
	RestartNeeded []string
	// Reason explains a delete or a create the config did not ask for
	// ("not in the configuration", "deleted outside fiat", ...).
	Reason string
	// Provisioners (create, replace) run, in order, once the new object
	// exists, as steps of the same transaction.
	Provisioners []ProvisionerStep
	// ReadAtApply (read only): the data source's arguments depend on
	// objects this plan creates or changes, so the executor reads it once
	// they are done, as Terraform does; After is unknown where computed.
	ReadAtApply bool
}

// ProvisionerStep is one provisioner a step runs.
type ProvisionerStep struct {
	Type string // "local-exec", "remote-exec", "file"
	// Reversibility: a remote-exec or file provisioner is undone with the
	// object it ran on; a local-exec only if it declares its undo command.
	Reversibility providers.Reversibility
}

func (p ProvisionerStep) describe() string {
	switch {
	case p.Reversibility == providers.Irreversible:
		return p.Type + " (irreversible: it declares no undo)"
	case p.Type == "local-exec":
		return p.Type + " (its undo command takes it back)"
	}
	return p.Type + " (undone with the object)"
}

// Drift is a stored entity whose real object differs from the store: a
// provider read found other values, or no object at all.
type Drift struct {
	Address   string
	Type      string
	Name      string
	Revision  uint64    // the entity's stored revision
	Before    cty.Value // stored state
	After     cty.Value // what the read found; cty.NilVal: the object is gone
	Changed   []string  // attributes that differ
	Sensitive []string
}

// Deleted says whether the object was deleted outside fiat.
func (d *Drift) Deleted() bool { return d.After == cty.NilVal }

// OutputValue is a root output as planned.
type OutputValue struct {
	Value     cty.Value // unknown parts are known after apply
	Sensitive bool
}

// DataRequest is a data source the planner needs read before it can finish:
// its config is known, its value is not.
type DataRequest struct {
	Address  string
	Type     string
	Provider string
	Config   cty.Value
}

// Plan is a set of steps against one stack at one store revision.
type Plan struct {
	Stack        string
	BaseRevision uint64
	// Reads maps every address the plan read to the revision it read
	// (0: it did not exist). Apply refuses the plan if any has changed.
	Reads map[string]uint64
	Steps []*Step // sorted by address
	// Drift lists objects changed outside fiat (from provider reads).
	Drift []*Drift
	// Refreshed says whether stored entities were read from providers.
	Refreshed bool
	// AdoptDrift: drift is written into the store instead of reverted.
	AdoptDrift bool
	// Targets and Excludes restrict the plan (-target, -exclude).
	Targets, Excludes []string
	// Outputs are the root outputs, as far as they are known.
	Outputs map[string]OutputValue
	// PendingReads lists data sources to read before the plan is
	// complete; Build with their values in Input.Data again.
	PendingReads []DataRequest
	// Warnings are things the operator should know, e.g. that the plan is
	// partial.
	Warnings []string

	index map[string]*Step
}

// Counts tallies steps by action.
func (p *Plan) Counts() map[Action]int {
	c := map[Action]int{}
	for _, s := range p.Steps {
		c[s.Action]++
	}
	return c
}

// HasChanges says whether applying the plan would change anything: an
// object, or the store.
func (p *Plan) HasChanges() bool {
	for _, s := range p.Steps {
		if s.Action != NoOp && s.Action != Read {
			return true
		}
	}
	return false
}

// Step returns the step for an address, or nil.
func (p *Plan) Step(addr string) *Step {
	if p.index == nil || len(p.index) != len(p.Steps) {
		p.reindex()
	}
	return p.index[addr]
}

func (p *Plan) reindex() {
	p.index = make(map[string]*Step, len(p.Steps))
	for _, s := range p.Steps {
		p.index[s.Address] = s
	}
}

// KnownValues are the values of steps the executor does not apply but a
// resource's config or an output may reference: data sources read while
// planning, and objects imported, moved or adopted (store-only steps).
func (p *Plan) KnownValues() map[string]cty.Value {
	out := map[string]cty.Value{}
	if p == nil {
		return out
	}
	for _, s := range p.Steps {
		switch {
		case s.Action == Read || s.Action.StoreOnly() && s.Action != Forget:
			out[s.Address] = s.After
		case s.Action == Forget:
			out[s.Address] = s.Before
		}
	}
	return out
}
