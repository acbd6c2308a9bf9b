package executor

import (
	"encoding/json"
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
	// opProvision runs one provisioner of a created object, after it and
	// before anything that depends on the object.
	opProvision opKind = "provision"
	// opRead reads a data source whose arguments waited for this apply
	// (planner.Step.ReadAtApply): no side effect, nothing to journal or
	// undo; what it read feeds the configs that depend on it.
	opRead opKind = "read"
)

// op is one provider call and, once done, what undoes it.
type op struct {
	kind opKind
	step *planner.Step
	deps []*op // must be done before this starts
	// For opProvision: which provisioner of the step, and the create whose
	// object it runs on.
	prov   int
	parent *op
	// Set when done:
	id    string
	undo  []byte
	state cty.Value // for create/update
	// stored is the encoded state rollback and purge work from: the new
	// state of a create or update, the prior state of a retire.
	stored json.RawMessage
}

// ordering says which optional constraints buildOps applies.
type ordering struct {
	cbd     bool // honour create_before_destroy
	barrier bool // every create waits for every retirement (frees names and paths first)
}

// buildOps turns steps into operations with their ordering:
//   - retire(X) waits for the retirement of everything that depends on X,
//     and for the update of everything that depended on X (stored
//     dependencies) and no longer does, so nothing in use is retired;
//   - a create or update waits for the creates and updates of its
//     dependencies;
//   - a replacement is retire(old) then create(new), both before the commit,
//     or with create_before_destroy create(new) then retire(old);
//   - with barrier, creates wait for every other retirement too, so names
//     and paths a deleted object held are free before anything new is made.
//
// storedDeps maps an address to the dependencies the store recorded for it.
func buildOps(plan *planner.Plan, storedDeps map[string][]string, ord ordering) []*op {
	var retires, barrier, applies []*op
	retireOf := map[string]*op{}
	applyOf := map[string]*op{}
	cbd := func(s *planner.Step) bool { return ord.cbd && s.CreateBeforeDestroy && s.Action == planner.Replace }
	for _, s := range plan.Steps {
		switch s.Action {
		case planner.Delete, planner.Replace:
			o := &op{kind: opRetire, step: s}
			retires = append(retires, o)
			retireOf[s.Address] = o
			if !cbd(s) {
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
		case planner.Read:
			if s.ReadAtApply {
				o := &op{kind: opRead, step: s}
				applies = append(applies, o)
				applyOf[s.Address] = o
			}
		}
	}
	for _, o := range retires {
		for _, dep := range o.step.DependsOn {
			if target, ok := retireOf[dep]; ok {
				target.deps = append(target.deps, o)
			}
		}
		if cbd(o.step) {
			o.deps = append(o.deps, applyOf[o.step.Address])
		}
	}
	for _, o := range applies {
		configDeps := map[string]bool{}
		for _, dep := range o.step.DependsOn {
			configDeps[dep] = true
			if d, ok := applyOf[dep]; ok {
				o.deps = append(o.deps, d)
			}
		}
		for _, dep := range storedDeps[o.step.Address] {
			if r, ok := retireOf[dep]; ok && !configDeps[dep] && dep != o.step.Address {
				r.deps = append(r.deps, o) // stop using it, then retire it
			}
		}
		switch {
		case o.kind == opCreate && ord.barrier:
			o.deps = append(o.deps, barrier...)
		case o.kind == opCreate:
			if r, ok := retireOf[o.step.Address]; ok && !cbd(o.step) {
				o.deps = append(o.deps, r) // the old half goes first
			}
		}
	}
	// A created object's provisioners run after it, in order; whatever
	// depended on the create waits for the last of them.
	var provs []*op
	for _, o := range applies {
		if o.kind != opCreate || len(o.step.Provisioners) == 0 {
			continue
		}
		last := o
		for i := range o.step.Provisioners {
			p := &op{kind: opProvision, step: o.step, prov: i, parent: o, deps: []*op{last}}
			provs = append(provs, p)
			last = p
		}
		for _, other := range append(retires, applies...) {
			for j, d := range other.deps {
				if d == o && other != last {
					other.deps[j] = last
				}
			}
		}
	}
	all := append(append(retires, applies...), provs...)
	for _, o := range all {
		sort.SliceStable(o.deps, func(i, j int) bool { return o.deps[i].step.Address < o.deps[j].step.Address })
	}
	return all
}

// orderOps builds the operations with as many of the optional constraints
// as keep the order acyclic. The barrier is dropped first (a create must then
// not reuse a name a deleted object still holds); create_before_destroy last
// (a create-before-destroy resource depending on one replaced destroy-first),
// with a warning.
func orderOps(plan *planner.Plan, storedDeps map[string][]string) (ops []*op, warn string) {
	for _, ord := range []ordering{{cbd: true, barrier: true}, {cbd: true}} {
		if ops = buildOps(plan, storedDeps, ord); acyclic(ops) {
			return ops, ""
		}
	}
	for _, ord := range []ordering{{barrier: true}, {}} {
		if ops = buildOps(plan, storedDeps, ord); acyclic(ops) {
			return ops, "create_before_destroy could not be honoured (it conflicts with a dependency replaced destroy-first); every replacement retires the old object first"
		}
	}
	return ops, ""
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

// name is the operation as reports name it: "create", "provision local-exec".
func (o *op) name() string {
	if o.kind == opProvision {
		return "provision " + o.step.Provisioners[o.prov].Type
	}
	return string(o.kind)
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
