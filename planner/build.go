package planner

import (
	"fmt"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/providers"
	"fiat/state"
	"fiat/value"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Input is everything a plan is computed from.
type Input struct {
	Stack    string
	Config   *hcl.Config
	Entities []state.Entity // the stack's stored entities
	Revision uint64         // the store revision they were read at
	// Schemas maps a provider name ("libvirt") to its schema.
	Schemas map[string]providers.Schema

	// Refreshed holds what provider reads found for stored entities, by
	// stored address (within the stack). An entity missing here was not
	// read (plan -refresh=false): the store is taken as the truth.
	Refreshed map[string]Refresh
	// AdoptDrift writes drift into the store (Adopt, Forget) instead of
	// planning to change the objects back.
	AdoptDrift bool
	// Data holds data source reads, by instance address. A data source
	// whose config is known but which is missing here is listed in
	// Plan.PendingReads: read it and Build again.
	Data map[string]cty.Value
	// Imported holds what the providers' Import found for import blocks,
	// by instance address.
	Imported map[string]Imported
	// Targets and Excludes restrict the plan to some addresses plus what
	// they depend on (-target), or leave some out with everything that
	// depends on them (-exclude).
	Targets, Excludes []string
	// Modifiers predict computed attributes while planning, by provider
	// name (providers.Registry.Modifiers).
	Modifiers map[string]providers.PlanModifier
	// Validators check each resource's configuration against what its
	// backend accepts, by provider name (providers.Registry.Validators).
	Validators map[string]providers.ConfigValidator
	// Validate plans without any provider reads and without failing on
	// values known only after apply (fiat validate).
	Validate bool
}

// Refresh is what a provider's Read found for one stored entity.
type Refresh struct {
	Exists bool
	State  cty.Value
}

// Imported is what a provider's Import found for one import block.
type Imported struct {
	ID    string
	State cty.Value
}

// stored is one stored entity as the planner sees it.
type stored struct {
	e         state.Entity
	addr      string // its stored address within the stack
	movedFrom string // set when a moved block renamed it
	planned   bool
}

type builder struct {
	in      Input
	cfg     *hcl.Config
	ev      *hcl.Evaluator
	plan    *Plan
	stored  map[string]*stored // by (moved) address
	specs   specCache
	diags   hcl2.Diagnostics
	scope   *scope
	pending map[string]bool // resources waiting for data reads, or after them
	instOf  map[string][]string
}

// Build computes the plan. It has no side effects.
func Build(in Input) (*Plan, hcl2.Diagnostics) {
	cfg := in.Config
	b := &builder{
		in: in, cfg: cfg, ev: cfg.NewEvaluator(nil),
		plan:    &Plan{Stack: in.Stack, BaseRevision: in.Revision, Reads: map[string]uint64{}, Refreshed: in.Refreshed != nil, AdoptDrift: in.AdoptDrift},
		stored:  make(map[string]*stored, len(in.Entities)),
		specs:   specCache{},
		pending: map[string]bool{},
		instOf:  make(map[string][]string, len(cfg.Resources)),
	}
	prefix := in.Stack + "/"
	for _, e := range in.Entities {
		addr := strings.TrimPrefix(e.Address, prefix)
		b.stored[addr] = &stored{e: e, addr: addr}
	}
	b.ev.SetLenient(in.Validate)
	// Every provider fiat lacks is named once, with what needs it, rather
	// than once per resource.
	if msg, rng := cfg.MissingProviders(func(name string) bool { _, ok := in.Schemas[name]; return ok }); msg != "" {
		b.errorf(rng, "Providers fiat does not have", "%s", msg)
		return nil, b.diags
	}
	b.applyMoves()
	sc, d := newScope(cfg, in.Targets, in.Excludes)
	b.diags = append(b.diags, d...)
	if d.HasErrors() {
		return nil, b.diags
	}
	b.scope = sc
	b.plan.Targets, b.plan.Excludes = in.Targets, in.Excludes
	if sc.partial() {
		b.plan.Warnings = append(b.plan.Warnings, "This plan covers only part of the configuration (-target/-exclude): what it leaves out may differ from the configuration. Use it for exceptional cases, then plan everything.")
	}
	for _, addr := range cfg.Order() {
		if !sc.includes(addr) {
			continue
		}
		b.planResource(addr)
	}
	if b.diags.HasErrors() {
		return nil, b.diags
	}
	if len(b.plan.PendingReads) > 0 {
		// The rest cannot be planned until those are read.
		return b.plan, b.diags
	}
	b.planOrphans()
	b.planOutputs()
	// One object, one entity: an import may not adopt an object the stack
	// already manages, nor one another import block adopts.
	owner := map[string]string{} // type + id → address
	for _, st := range b.stored {
		owner[st.e.Type+"\x00"+st.e.ID] = st.addr
	}
	for _, im := range b.cfg.Imports {
		addr := im.To.String()
		got, ok := b.in.Imported[addr]
		if ok && b.plan.Step(addr) == nil && b.scope.all && !b.scope.hasExclude {
			b.errorf(im.DeclRange.Ptr(), "Import to an address the configuration does not have",
				"An import block names %s, but the resource has no such instance (check its count or for_each keys).", addr)
		}
		step := b.plan.Step(addr)
		if !ok || step == nil || !step.Imported {
			continue
		}
		key := step.Type + "\x00" + got.ID
		if other, taken := owner[key]; taken && other != addr {
			b.errorf(im.DeclRange.Ptr(), "Object already managed",
				"The import block for %s finds %s %s, which %s already manages. Two entities for one object would destroy it under each other; remove this import, or move the entity with a moved block.", addr, step.Type, got.ID, other)
			continue
		}
		owner[key] = addr
	}
	if b.diags.HasErrors() {
		return nil, b.diags
	}
	sort.Slice(b.plan.Steps, func(i, j int) bool { return b.plan.Steps[i].Address < b.plan.Steps[j].Address })
	sort.Slice(b.plan.Drift, func(i, j int) bool { return b.plan.Drift[i].Address < b.plan.Drift[j].Address })
	b.plan.reindex()
	return b.plan, b.diags
}

func (b *builder) errorf(rng *hcl2.Range, summary, format string, args ...any) {
	b.diags = append(b.diags, &hcl2.Diagnostic{Severity: hcl2.DiagError, Summary: summary, Detail: fmt.Sprintf(format, args...), Subject: rng})
}

func (b *builder) schemaFor(r *hcl.Resource) (providers.ResourceSchema, bool) {
	pname, _, _ := strings.Cut(r.Provider, ".")
	ps, ok := b.in.Schemas[pname]
	if !ok {
		b.errorf(r.TypeRange.Ptr(), "Unknown provider", "%s needs provider %q, which fiat does not have.%s", r.Addr(), pname, hcl.DidYouMean(pname, keysOf(b.in.Schemas)))
		return providers.ResourceSchema{}, false
	}
	set, kind := ps.Resources, "resource type"
	if r.Mode == hcl.Data {
		set, kind = ps.DataSources, "data source"
	}
	rs, ok := set[r.Type]
	if !ok {
		b.errorf(r.TypeRange.Ptr(), "Unknown "+kind, "Provider %q has no %s %q.%s", pname, kind, r.Type, hcl.DidYouMean(r.Type, keysOf(set)))
		return providers.ResourceSchema{}, false
	}
	return rs, true
}

func (b *builder) planResource(addr string) {
	r := b.cfg.Resources[addr]
	rs, ok := b.schemaFor(r)
	if !ok {
		return
	}
	for _, d := range b.cfg.Dependencies(addr) {
		if b.pending[d] {
			b.pending[addr] = true // planned once the data it needs is read
			return
		}
	}
	x, d := b.ev.Expand(addr)
	b.diags = append(b.diags, d...)
	if d.HasErrors() {
		return
	}
	b.implicitMoves(addr, x)
	insts := x.Instances(addr)
	b.instOf[addr] = insts
	deps := b.instanceDeps(addr)
	for i, inst := range insts {
		if !b.scope.includesInstance(addr, inst) {
			continue
		}
		var key cty.Value
		if x.Mode != hcl.Single {
			key = x.Keys[i]
		}
		if r.Mode == hcl.Data {
			b.planData(r, rs, inst, deps)
		} else {
			b.planManaged(r, rs, inst, key, deps)
		}
	}
}

// instanceDeps lists the instances of everything a resource depends on.
func (b *builder) instanceDeps(addr string) []string {
	deps := b.cfg.Dependencies(addr)
	if len(deps) == 0 {
		return nil
	}
	out := make([]string, 0, len(deps))
	for _, d := range deps {
		if insts, ok := b.instOf[d]; ok {
			out = append(out, insts...)
		}
	}
	return out
}

func (b *builder) newStep(r *hcl.Resource, rs providers.ResourceSchema, inst string, deps []string) *Step {
	return &Step{
		Address: inst, Resource: r.Addr(), Type: r.Type, Name: r.Name, Provider: r.Provider,
		DependsOn: deps, Source: r.Source(), Sensitive: sensitiveAttrs(rs),
	}
}

func (b *builder) configValue(r *hcl.Resource, rs providers.ResourceSchema, inst string) (cty.Value, []string, bool) {
	key := "r:" + r.Type
	if r.Mode == hcl.Data {
		key = "d:" + r.Type
	}
	cv, sens, d := ConfigValueSensitive(b.ev, inst, rs, b.specs.get(key, rs))
	if !d.HasErrors() && r.Mode == hcl.Managed {
		d = append(d, b.validateConfig(r, cv)...)
	}
	b.diags = append(b.diags, d...)
	return cv, sens, !d.HasErrors()
}

// validateConfig asks the resource's provider whether its backend will
// accept the configuration, so what it would refuse or round fails now.
func (b *builder) validateConfig(r *hcl.Resource, cv cty.Value) hcl2.Diagnostics {
	v, ok := b.in.Validators[providers.NameOf(r.Provider)]
	if !ok {
		return nil
	}
	var diags hcl2.Diagnostics
	for _, p := range v.ValidateConfig(providers.ValidateConfigRequest{Type: r.Type, Config: cv}).Problems {
		rng := r.DeclRange
		if body, ok := r.Body.(*hclsyntax.Body); ok && p.Attribute != "" {
			if a, ok := body.Attributes[p.Attribute]; ok {
				rng = a.SrcRange
			}
		}
		summary := "Invalid " + r.Type
		if p.Attribute != "" {
			summary = fmt.Sprintf("Invalid %s of %s", p.Attribute, r.Type)
		}
		diags = append(diags, errorDiag(summary, p.Message, &rng)...)
	}
	return diags
}

func (b *builder) planData(r *hcl.Resource, rs providers.ResourceSchema, inst string, deps []string) {
	cv, sens, ok := b.configValue(r, rs, inst)
	if !ok {
		return
	}
	step := b.newStep(r, rs, inst, deps)
	step.Action, step.Sensitive = Read, mergeNames(step.Sensitive, sens)
	switch v, read := b.in.Data[inst]; {
	case read:
		step.After = v
	case b.in.Validate:
		step.After = Planned(cv, cty.NilVal, rs)
	case cv.IsWhollyKnown():
		b.plan.PendingReads = append(b.plan.PendingReads, DataRequest{Address: inst, Type: r.Type, Provider: r.Provider, Config: cv})
		b.pending[r.Addr()] = true
		return
	default:
		// Its arguments wait for objects this plan makes: read it in the
		// apply, once they exist; what it returns is unknown until then.
		step.After, step.ReadAtApply = Planned(cv, cty.NilVal, rs), true
	}
	b.set(inst, step.After, step.Sensitive)
	b.plan.Steps = append(b.plan.Steps, step)
}

func (b *builder) planManaged(r *hcl.Resource, rs providers.ResourceSchema, inst string, key cty.Value, deps []string) {
	cv, sens, ok := b.configValue(r, rs, inst)
	if !ok {
		return
	}
	if b.in.Modifiers[providers.NameOf(r.Provider)] != nil && len(sens) > 0 {
		// A plan modifier may copy a sensitive input into a computed attribute.
		for name, a := range rs.Attributes {
			if a.Computed {
				sens = append(sens, name)
			}
		}
	}
	step := b.newStep(r, rs, inst, deps)
	step.Sensitive = mergeNames(step.Sensitive, sens)
	st := b.stored[inst]
	if st != nil {
		// What was sensitive when stored stays hidden in Before.
		step.Sensitive = mergeNames(step.Sensitive, st.e.Sensitive)
	}
	b.plan.Reads[inst] = 0 // the plan relies on it not existing, unless stored
	var prior cty.Value
	drifted := false
	if st != nil {
		st.planned = true
		b.plan.Reads[st.addr] = st.e.Revision
		step.ID, step.MovedFrom = st.e.ID, st.movedFrom
		var err error
		if prior, err = value.Decode(st.e.Attributes); err != nil {
			b.errorf(r.DeclRange.Ptr(), fmt.Sprintf("Cannot read stored state of %s", inst), "%s", err)
			return
		}
		prior = withNewDefaults(prior, rs)
		if rf, ok := b.in.Refreshed[st.addr]; ok {
			var dr *Drift
			if dr = b.drift(st, prior, rf, rs, step.Sensitive); dr != nil {
				drifted = true
				if b.in.AdoptDrift {
					b.adopt(step, prior, rf)
					return
				}
				if rf.Exists {
					prior = rf.State
				} else {
					prior, step.ID = cty.NilVal, ""
					step.Reason = "deleted outside fiat"
				}
			} else if rf.Exists {
				prior = withVolatile(prior, rf.State, rs)
			}
		}
	} else if im, ok := b.in.Imported[inst]; ok {
		prior, step.ID, step.Imported = im.State, im.ID, true
	}
	step.Before = prior
	if prior == cty.NilVal {
		step.Action, step.After = Create, b.modify(r, cty.NilVal, Planned(cv, cty.NilVal, rs))
		step.Reversibility = providers.Reversible
		b.finish(r, step)
		return
	}
	cv = ignoreChanges(cv, prior, r.Lifecycle, rs)
	changed := changedAttrs(cv, prior, rs)
	if len(changed) > 0 {
		// Written in another form than the backend's, a value may be
		// no change at all (a value equal to the stored one is never
		// normalised: it is the backend's own).
		cv = b.normalize(r, rs, prior, cv)
		changed = changedAttrs(cv, prior, rs)
	}
	step.ForceNew = forceNew(changed, rs)
	switch {
	case len(step.ForceNew) > 0:
		step.Action, step.After = Replace, b.modify(r, cty.NilVal, Planned(cv, cty.NilVal, rs))
		step.Reversibility = rs.Delete
		step.CreateBeforeDestroy = r.Lifecycle.CreateBeforeDestroy
		if r.Lifecycle.PreventDestroy {
			b.errorf(r.Lifecycle.PreventRange.Ptr(), "Instance cannot be destroyed",
				"%s has lifecycle { prevent_destroy = true }, but this plan would replace it (a change to %s forces a new object). Remove prevent_destroy, or change the configuration so it is not replaced.",
				inst, strings.Join(step.ForceNew, ", "))
		}
	case len(changed) > 0:
		step.Action, step.After = Update, b.modify(r, prior, Planned(cv, prior, rs))
		step.Reversibility = rs.Update
		for _, n := range changed {
			if rs.Attributes[n].RestartNeeded {
				step.RestartNeeded = append(step.RestartNeeded, n)
			}
		}
	default:
		step.After = prior
		switch {
		case step.Imported:
			step.Action = Import
		case drifted:
			// Config already matches the changed object: record it.
			step.Action = Adopt
		case step.MovedFrom != "":
			step.Action = Move
		default:
			step.Action = NoOp
		}
	}
	b.finish(r, step)
}

func (b *builder) finish(r *hcl.Resource, step *Step) {
	if step.Action == Create || step.Action == Replace {
		for _, p := range r.Provisioners {
			ps := ProvisionerStep{Type: p.Type}
			if p.Type == "local-exec" && !p.HasUndo() {
				ps.Reversibility = providers.Irreversible
			}
			step.Provisioners = append(step.Provisioners, ps)
		}
	}
	b.set(step.Address, step.After, step.Sensitive)
	b.plan.Steps = append(b.plan.Steps, step)
}

// set makes a resource's planned value visible to the expressions that
// reference it, with its sensitive attributes marked, so whatever is derived
// from them (other resources, outputs) is sensitive too.
func (b *builder) set(addr string, v cty.Value, sensitive []string) {
	b.ev.Set(addr, markAttrs(v, sensitive))
}

// markAttrs marks the named attributes of an object value sensitive.
func markAttrs(v cty.Value, names []string) cty.Value {
	if len(names) == 0 || v == cty.NilVal || v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
		return v
	}
	attrs := v.AsValueMap()
	for _, n := range names {
		if a, ok := attrs[n]; ok {
			attrs[n] = a.Mark(hcl.Sensitive)
		}
	}
	return cty.ObjectVal(attrs)
}

// modify lets the resource's provider predict computed attributes.
func (b *builder) modify(r *hcl.Resource, prior, planned cty.Value) cty.Value {
	if m := b.in.Modifiers[providers.NameOf(r.Provider)]; m != nil {
		return m.ModifyPlan(providers.ModifyPlanRequest{Type: r.Type, Prior: prior, Planned: planned}).Planned
	}
	return planned
}

// normalize gives the attributes config sets the values the provider's
// plan modifier predicts for them (a MAC in the case libvirt writes, a size
// rounded as the backend rounds it), before they are compared with the
// prior state: a value the backend normalises would otherwise differ from
// what it reports back, and plan a change, forever.
func (b *builder) normalize(r *hcl.Resource, rs providers.ResourceSchema, prior, cv cty.Value) cty.Value {
	if b.in.Modifiers[providers.NameOf(r.Provider)] == nil {
		return cv
	}
	m := b.modify(r, prior, Planned(cv, prior, rs))
	if m == cty.NilVal || m.IsNull() || !m.IsKnown() || !m.Type().IsObjectType() {
		return cv
	}
	attrs := cv.AsValueMap()
	for name, a := range rs.Attributes {
		if a.Computed && !a.Optional && !a.Required {
			continue // not config: a prediction, compared by no one
		}
		if !attrs[name].IsNull() && m.Type().HasAttribute(name) {
			attrs[name] = m.GetAttr(name)
		}
	}
	return cty.ObjectVal(attrs)
}

// drift compares a stored entity with what its provider read found.
func (b *builder) drift(st *stored, prior cty.Value, rf Refresh, rs providers.ResourceSchema, sensitive []string) *Drift {
	d := &Drift{Address: st.addr, Type: st.e.Type, Name: st.e.Name, Revision: st.e.Revision, Before: prior, Sensitive: sensitive}
	if rf.Exists {
		d.After = rf.State
		if d.Changed = diffAttrs(prior, rf.State, rs); len(d.Changed) == 0 {
			return nil
		}
	}
	b.plan.Drift = append(b.plan.Drift, d)
	return d
}

// adopt makes the step record the drift in the store (-adopt-drift).
func (b *builder) adopt(step *Step, prior cty.Value, rf Refresh) {
	step.Before = prior
	if rf.Exists {
		step.Action, step.After = Adopt, rf.State
	} else {
		// Dependents are planned against what the store held; the next
		// plan creates the object again if the config still has it.
		step.Action, step.Reason = Forget, "deleted outside fiat"
		b.set(step.Address, prior, step.Sensitive)
		b.plan.Steps = append(b.plan.Steps, step)
		return
	}
	b.set(step.Address, step.After, step.Sensitive)
	b.plan.Steps = append(b.plan.Steps, step)
}

// ignoreChanges keeps prior values for attributes lifecycle says to ignore.
func ignoreChanges(cv, prior cty.Value, lc hcl.Lifecycle, rs providers.ResourceSchema) cty.Value {
	if !lc.IgnoreAll && len(lc.IgnoreChanges) == 0 {
		return cv
	}
	attrs := cv.AsValueMap()
	for name, a := range rs.Attributes {
		if a.Computed && !a.Optional && !a.Required {
			continue
		}
		ignored := lc.IgnoreAll
		for _, n := range lc.IgnoreChanges {
			ignored = ignored || n == name
		}
		if ignored {
			attrs[name] = attr(prior, name)
			if attrs[name].IsNull() {
				attrs[name] = cty.NullVal(attrType(a))
			}
		}
	}
	return cty.ObjectVal(attrs)
}

// planOrphans deletes stored entities the configuration no longer has.
func (b *builder) planOrphans() {
	prefix := b.in.Stack + "/"
	for _, addr := range sortedKeys(b.stored) {
		st := b.stored[addr]
		if st.planned {
			continue
		}
		res, _, _ := hcl.SplitInstance(addr)
		if !b.scope.includesOrphan(res, addr) {
			continue
		}
		e := st.e
		before, err := value.Decode(e.Attributes)
		if err != nil {
			b.errorf(nil, fmt.Sprintf("Cannot read stored state of %s", st.addr), "%s", err)
			continue
		}
		rs := schemaForType(b.in.Schemas, e.Type)
		deps := make([]string, len(e.Dependencies))
		for i, d := range e.Dependencies {
			deps[i] = strings.TrimPrefix(d, prefix)
		}
		b.plan.Reads[st.addr] = e.Revision
		step := &Step{
			Address: st.addr, Resource: res, Type: e.Type, Name: e.Name, Provider: e.Provider,
			Action: Delete, Reversibility: rs.Delete, ID: e.ID, Before: before,
			DependsOn: deps, Source: e.Source, Sensitive: mergeNames(sensitiveAttrs(rs), e.Sensitive), Reason: "not in the configuration",
		}
		if rf, ok := b.in.Refreshed[st.addr]; ok {
			if dr := b.drift(st, before, rf, rs, step.Sensitive); dr != nil && !rf.Exists {
				// Already gone: only the store still has it.
				step.Action, step.Reason, step.Reversibility = Forget, "deleted outside fiat", providers.Reversible
			}
		}
		if r := b.cfg.Resources[res]; r != nil {
			step.Reason = "its key is not in count / for_each any more"
			if r.Lifecycle.PreventDestroy && step.Action == Delete {
				b.errorf(r.Lifecycle.PreventRange.Ptr(), "Instance cannot be destroyed",
					"%s has lifecycle { prevent_destroy = true }, but this plan would delete it.", st.addr)
			}
		}
		b.plan.Steps = append(b.plan.Steps, step)
	}
}

func (b *builder) planOutputs() {
	if b.scope.partial() {
		return
	}
	outs, diags := b.ev.EvalOutputs()
	b.diags = append(b.diags, diags...)
	if diags.HasErrors() {
		return
	}
	b.plan.Outputs = make(map[string]OutputValue, len(outs))
	for name, v := range outs {
		v, _ := v.UnmarkDeep()
		b.plan.Outputs[name] = OutputValue{Value: v, Sensitive: b.cfg.Outputs[name].Sensitive}
	}
}

func schemaForType(schemas map[string]providers.Schema, typ string) providers.ResourceSchema {
	for _, ps := range schemas {
		if rs, ok := ps.Resources[typ]; ok {
			return rs
		}
	}
	// A type no provider knows any more: deleting it is of unknown cost.
	return providers.ResourceSchema{Delete: providers.Irreversible}
}

func forceNew(changed []string, rs providers.ResourceSchema) []string {
	var out []string
	for _, name := range changed {
		if rs.Attributes[name].ForceNew {
			out = append(out, name)
		}
	}
	return out
}

func sensitiveAttrs(rs providers.ResourceSchema) []string {
	var out []string
	for name, a := range rs.Attributes {
		if a.Sensitive {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}

func mergeNames(a, b []string) []string {
	if len(b) == 0 {
		return a
	}
	set := map[string]bool{}
	for _, n := range a {
		set[n] = true
	}
	for _, n := range b {
		set[n] = true
	}
	return sortedKeys(set)
}

func errorDiag(summary, detail string, rng *hcl2.Range) hcl2.Diagnostics {
	return hcl2.Diagnostics{{Severity: hcl2.DiagError, Summary: summary, Detail: detail, Subject: rng}}
}

func sortedKeys[V any](m map[string]V) []string {
	out := keysOf(m)
	sort.Strings(out)
	return out
}

func keysOf[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
