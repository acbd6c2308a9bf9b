package executor

import (
	"sort"

	"fiat/planner"

	"github.com/zclconf/go-cty/cty"
)

// opKind is one side effect of the reversible phase.
type opKind string

const (
	opCreate opKind = "create"
	opUpdate opKind = "update"
	opRetire opKind = "retire" // deletes, and the old half of a replacement
)

// op is one provider call and, once done, what undoes it.
type op struct {
	kind opKind
	step *planner.Step
	deps []*op // must be done before this starts
	// Set when done:
	id    string
	undo  []byte
	state cty.Value // for create/update
}

// buildOps turns steps into operations with their ordering. Retirements come
// first, dependents before what they depend on, so names and paths are free
// before anything new is made; then creates and updates in dependency order.
// A replacement is retire(old) then create(new), both before the commit.
func buildOps(plan *planner.Plan) []*op {
	var retires, applies []*op
	retireOf := map[string]*op{}
	applyOf := map[string]*op{}
	for _, s := range plan.Steps {
		switch s.Action {
		case planner.Delete, planner.Replace:
			o := &op{kind: opRetire, step: s}
			retires = append(retires, o)
			retireOf[s.Address] = o
		}
		switch s.Action {
		case planner.Create, planner.Replace:
			o := &op{kind: opCreate, step: s}
			applies = append(applies, o)
			applyOf[s.Address] = o
		case planner.Update:
			o := &op{kind: opUpdate, step: s}
			applies = append(applies, o)
			applyOf[s.Address] = o
		}
	}
	// retire(X) waits for the retirement of everything that depends on X.
	for _, o := range retires {
		for _, dep := range o.step.DependsOn {
			if target, ok := retireOf[dep]; ok {
				target.deps = append(target.deps, o)
			}
		}
	}
	for _, o := range applies {
		for _, dep := range o.step.DependsOn {
			if d, ok := applyOf[dep]; ok {
				o.deps = append(o.deps, d)
			}
		}
		o.deps = append(o.deps, retires...)
	}
	all := append(retires, applies...)
	for _, o := range all {
		sort.SliceStable(o.deps, func(i, j int) bool { return o.deps[i].step.Address < o.deps[j].step.Address })
	}
	return all
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
