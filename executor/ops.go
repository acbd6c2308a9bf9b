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
// A replacement is retire(old) then create(new), both before the commit;
// with create_before_destroy (cbd) it is create(new) then retire(old).
func buildOps(plan *planner.Plan, cbd bool) []*op {
	var retires, barrier, applies []*op
	retireOf := map[string]*op{}
	applyOf := map[string]*op{}
	for _, s := range plan.Steps {
		switch s.Action {
		case planner.Delete, planner.Replace:
			o := &op{kind: opRetire, step: s}
			retires = append(retires, o)
			retireOf[s.Address] = o
			if !(cbd && s.CreateBeforeDestroy && s.Action == planner.Replace) {
				barrier = append(barrier, o)
			}
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
		if cbd && o.step.CreateBeforeDestroy && o.step.Action == planner.Replace {
			o.deps = append(o.deps, applyOf[o.step.Address])
		}
	}
	for _, o := range applies {
		for _, dep := range o.step.DependsOn {
			if d, ok := applyOf[dep]; ok {
				o.deps = append(o.deps, d)
			}
		}
		o.deps = append(o.deps, barrier...)
	}
	all := append(retires, applies...)
	for _, o := range all {
		sort.SliceStable(o.deps, func(i, j int) bool { return o.deps[i].step.Address < o.deps[j].step.Address })
	}
	return all
}

// orderOps builds the operations, honouring create_before_destroy unless
// that would make the order cyclic (a create-before-destroy resource that
// depends on one replaced destroy-first): then every replacement retires
// first, which is always possible, and warn says so.
func orderOps(plan *planner.Plan) (ops []*op, warn string) {
	ops = buildOps(plan, true)
	if acyclic(ops) {
		return ops, ""
	}
	return buildOps(plan, false), "create_before_destroy could not be honoured (it conflicts with a dependency replaced destroy-first); every replacement retires the old object first"
}

func acyclic(ops []*op) bool {
	indeg := make(map[*op]int, len(ops))
	dependents := map[*op][]*op{}
	var ready []*op
	for _, o := range ops {
		indeg[o] = len(o.deps)
		for _, d := range o.deps {
			dependents[d] = append(dependents[d], o)
		}
		if len(o.deps) == 0 {
			ready = append(ready, o)
		}
	}
	seen := 0
	for len(ready) > 0 {
		o := ready[len(ready)-1]
		ready = ready[:len(ready)-1]
		seen++
		for _, d := range dependents[o] {
			if indeg[d]--; indeg[d] == 0 {
				ready = append(ready, d)
			}
		}
	}
	return seen == len(ops)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
