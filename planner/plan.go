// Package planner diffs a Config against the stored entities of its stack and
// produces a Plan. It is pure: (config, stored entities, provider schemas) →
// Plan, with no side effects; rendering and saved plan files live here too.
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
)

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
	}
	return " "
}

// Step is one resource's change.
type Step struct {
	Address       string // "type.name", within the stack
	Type          string
	Name          string
	Provider      string // provider address: "libvirt", "libvirt.host2"
	Action        Action
	Reversibility providers.Reversibility
	ID            string    // the existing object's identity (update, replace, delete)
	Before        cty.Value // stored state; cty.NilVal for create
	After         cty.Value // planned state, unknown where computed; cty.NilVal for delete
	ForceNew      []string  // attributes whose change forces the replacement
	DependsOn     []string  // addresses this resource depends on (config, or stored for delete)
	Source        string    // file:line of the resource block (stored for delete)
	Sensitive     []string  // attribute names never to show
}

// Plan is a set of steps against one stack at one store revision.
type Plan struct {
	Stack        string
	BaseRevision uint64
	// Reads maps every address the plan read to the revision it read
	// (0: it did not exist). Apply refuses the plan if any has changed.
	Reads map[string]uint64
	Steps []*Step // sorted by address
}

// Counts tallies steps by action.
func (p *Plan) Counts() map[Action]int {
	c := map[Action]int{}
	for _, s := range p.Steps {
		c[s.Action]++
	}
	return c
}

// HasChanges says whether applying the plan would change anything.
func (p *Plan) HasChanges() bool {
	for _, s := range p.Steps {
		if s.Action != NoOp {
			return true
		}
	}
	return false
}

// Step returns the step for an address, or nil.
func (p *Plan) Step(addr string) *Step {
	for _, s := range p.Steps {
		if s.Address == addr {
			return s
		}
	}
	return nil
}
