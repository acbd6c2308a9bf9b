package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/builtin"
	"fiat/providers/libvirt"
	"fiat/state"
	"fiat/value"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// registry lists the providers fiat has, by name.
var registry = map[string]func() providers.Provider{
	"libvirt":    func() providers.Provider { return libvirt.New() },
	builtin.Name: func() providers.Provider { return builtin.New() },
}

// common flags of commands that read a config directory.
type common struct {
	dataDir string
	stack   string
	vars    varFlags     // -var values by name
	args    []hcl.VarArg // -var and -var-file in command-line order
	plan    planFlags
}

// planFlags are the flags of commands that plan (plan, apply, destroy).
type planFlags struct {
	refresh    bool
	adoptDrift bool
	targets    listFlag
	excludes   listFlag
	noColor    bool
}

func (c *common) register(fs *flag.FlagSet) {
	c.vars = varFlags{}
	c.plan.refresh = true
	fs.StringVar(&c.dataDir, "data-dir", "", "state directory (default DIR/.fiat)")
	fs.StringVar(&c.stack, "stack", "", "stack name (default: the config directory's name)")
	fs.Var(orderedVar{c}, "var", "set a variable: -var name=value (repeatable; a later -var or -var-file wins)")
	fs.Var(varFile{c}, "var-file", "set variables from an HCL file of name = value lines (repeatable)")
}

// registerPlan adds the planning flags.
func (c *common) registerPlan(fs *flag.FlagSet) {
	fs.BoolVar(&c.plan.refresh, "refresh", true, "read every managed object to detect changes made outside fiat (-refresh=false trusts the store)")
	fs.BoolVar(&c.plan.adoptDrift, "adopt-drift", false, "record objects changed outside fiat in the store as they are, instead of changing them back")
	fs.Var(&c.plan.targets, "target", "plan only this address (resource, instance or module) and what it depends on (repeatable)")
	fs.Var(&c.plan.excludes, "exclude", "leave this address and everything that depends on it out of the plan (repeatable)")
	fs.BoolVar(&c.plan.noColor, "no-color", false, "no colours in the output")
}

type orderedVar struct{ c *common }

func (v orderedVar) String() string { return "" }
func (v orderedVar) Set(s string) error {
	if err := v.c.vars.Set(s); err != nil {
		return err
	}
	name, val, _ := strings.Cut(s, "=")
	v.c.args = append(v.c.args, hcl.VarArg{Name: name, Value: val})
	return nil
}

type varFile struct{ c *common }

func (v varFile) String() string { return "" }
func (v varFile) Set(s string) error {
	if s == "" {
		return fmt.Errorf("-var-file wants a file name")
	}
	v.c.args = append(v.c.args, hcl.VarArg{File: s})
	return nil
}

// listFlag collects a repeatable string flag.
type listFlag []string

func (l *listFlag) String() string     { return strings.Join(*l, ",") }
func (l *listFlag) Set(s string) error { *l = append(*l, s); return nil }

func (c *common) stackFor(dir string) (string, error) {
	if c.stack != "" {
		return c.stack, nil
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", fmt.Errorf("resolve config directory %s: %w", dir, err)
	}
	return filepath.Base(abs), nil
}

func (c *common) dataDirFor(dir string) string {
	if c.dataDir != "" {
		return c.dataDir
	}
	return filepath.Join(dir, ".fiat")
}

// load parses a directory with the command's variables.
func (c *common) load(dir string) (*hcl.Config, error) {
	cfg, diags := hcl.Load(dir, hcl.Options{Args: c.args})
	if diags.HasErrors() {
		return nil, newDiagError(diags, nil)
	}
	return cfg, nil
}

// newDiagError carries diagnostics with the sources to quote: from the
// snapshot (matched by path relative to the config directory) or the disk.
func newDiagError(diags hcl2.Diagnostics, snapshot map[string][]byte) error {
	files := map[string]*hcl2.File{}
	for _, d := range diags {
		if d.Subject == nil {
			continue
		}
		name := d.Subject.Filename
		if _, ok := files[name]; ok {
			continue
		}
		b, ok := snapshotFile(snapshot, name)
		if !ok {
			b, _ = os.ReadFile(name)
		}
		files[name] = &hcl2.File{Bytes: b}
	}
	return &diagError{diags: diags, files: files}
}

func snapshotFile(snapshot map[string][]byte, name string) ([]byte, bool) {
	slash := filepath.ToSlash(name)
	best := ""
	for k := range snapshot {
		if (slash == k || strings.HasSuffix(slash, "/"+k)) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, false
	}
	return snapshot[best], true
}

// openStack resolves the stack name of a config directory and opens its store.
func (c *common) openStack(ctx context.Context, dir string) (string, *state.Store, error) {
	stack, err := c.stackFor(dir)
	if err != nil {
		return "", nil, err
	}
	st, err := openStore(ctx, c.dataDirFor(dir))
	if err != nil {
		return "", nil, err
	}
	return stack, st, nil
}

func openStore(ctx context.Context, dataDir string) (*state.Store, error) {
	st, err := state.Open(ctx, state.Options{Dir: dataDir})
	if err != nil {
		return nil, fmt.Errorf("open state in %s: %w", dataDir, err)
	}
	return st, nil
}

// schemas returns every registered provider's schema, by provider name.
func schemas() map[string]providers.Schema {
	out := map[string]providers.Schema{}
	for name, mk := range registry {
		out[name] = mk().Schema()
	}
	return out
}

func planHooks() map[string]planner.Hook {
	out := map[string]planner.Hook{}
	for typ, h := range builtin.Hooks() {
		out[typ] = h
	}
	return out
}

// planOptions says how to plan.
type planOptions struct {
	refresh    bool
	adoptDrift bool
	targets    []string
	excludes   []string
}

func (c *common) planOptions() planOptions {
	return planOptions{refresh: c.plan.refresh, adoptDrift: c.plan.adoptDrift, targets: c.plan.targets, excludes: c.plan.excludes}
}

// buildPlan diffs cfg against the stack in the store. Before the pure
// planner runs it does the provider reads it needs: every stored entity
// (drift; unless -refresh=false), the import blocks' objects, and data
// sources (as many rounds as data sources depend on each other).
func buildPlan(ctx context.Context, st *state.Store, stack string, cfg *hcl.Config, opts ...planOptions) (*planner.Plan, error) {
	po := planOptions{refresh: true}
	if len(opts) > 0 {
		po = opts[0]
	}
	// Revision first: entities read after it are at or after it, and the
	// commit's per-entity check catches anything newer.
	rev, err := st.Revision(ctx)
	if err != nil {
		return nil, fmt.Errorf("read store revision: %w", err)
	}
	ents, err := st.List(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read stack %s: %w", stack, err)
	}
	in := planner.Input{
		Stack: stack, Config: cfg, Entities: ents, Revision: rev, Schemas: schemas(),
		AdoptDrift: po.adoptDrift, Targets: po.targets, Excludes: po.excludes, Hooks: planHooks(),
		Data: map[string]cty.Value{},
	}
	pr := &providerSet{ctx: ctx, cfg: cfg}
	defer pr.close()
	if po.refresh {
		if in.Refreshed, err = refresh(ctx, pr, stack, ents); err != nil {
			return nil, err
		}
	}
	if in.Imported, err = importObjects(ctx, pr, cfg, stack, ents); err != nil {
		return nil, err
	}
	for round := 0; ; round++ {
		plan, diags := planner.Build(in)
		if diags.HasErrors() {
			return nil, newDiagError(diags, cfg.Files)
		}
		if len(plan.PendingReads) == 0 {
			return plan, nil
		}
		if round > len(cfg.Resources) {
			return nil, fmt.Errorf("plan: data sources still unread after %d rounds", round)
		}
		for _, req := range plan.PendingReads {
			p, err := pr.get(req.Provider)
			if err != nil {
				return nil, err
			}
			resp, err := p.ReadData(ctx, providers.ReadDataRequest{Address: req.Address, Type: req.Type, Config: req.Config})
			if err != nil {
				return nil, fmt.Errorf("read data source %s: %w", req.Address, err)
			}
			in.Data[req.Address] = resp.State
		}
	}
}

// refresh reads every stored entity from its provider, a few at a time.
// Objects of local providers (fiat_data) live only in the store: there is
// nothing else to read, so they are not read.
func refresh(ctx context.Context, pr *providerSet, stack string, all []state.Entity) (map[string]planner.Refresh, error) {
	out := make(map[string]planner.Refresh, len(all))
	sch := schemas()
	var ents []state.Entity
	for _, e := range all {
		if s, ok := sch[providerOf(e.Provider)]; ok && !s.Local {
			ents = append(ents, e)
		}
	}
	type result struct {
		addr string
		rf   planner.Refresh
		err  error
	}
	// Providers are configured first, here, so workers only read.
	for _, e := range ents {
		if _, ok := registry[providerOf(e.Provider)]; !ok {
			continue
		}
		if _, err := pr.get(e.Provider); err != nil {
			return nil, fmt.Errorf("refresh %s: %w (plan with -refresh=false to skip reading objects)", e.Address, err)
		}
	}
	jobs := make(chan state.Entity)
	results := make(chan result)
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for e := range jobs {
				r := result{addr: strings.TrimPrefix(e.Address, stack+"/")}
				p, err := pr.get(e.Provider)
				if err == nil {
					var prior cty.Value
					if prior, err = value.Decode(e.Attributes); err == nil {
						var resp providers.ReadResponse
						resp, err = p.Read(ctx, providers.ReadRequest{Address: r.addr, Type: e.Type, ID: e.ID, State: prior})
						r.rf = planner.Refresh{Exists: resp.Exists, State: resp.State}
					}
				}
				if err != nil {
					r.err = fmt.Errorf("refresh %s: %w (plan with -refresh=false to skip reading objects)", r.addr, err)
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, e := range ents {
			if _, ok := registry[providerOf(e.Provider)]; !ok {
				continue // a provider fiat lost: nothing can read it
			}
			select {
			case jobs <- e:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		out[r.addr] = r.rf
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}

// importObjects asks providers for the objects of import blocks whose
// address the store does not hold yet.
func importObjects(ctx context.Context, pr *providerSet, cfg *hcl.Config, stack string, ents []state.Entity) (map[string]planner.Imported, error) {
	if len(cfg.Imports) == 0 {
		return nil, nil
	}
	have := map[string]bool{}
	for _, e := range ents {
		have[strings.TrimPrefix(e.Address, stack+"/")] = true
	}
	out := map[string]planner.Imported{}
	ev := cfg.NewEvaluator(nil)
	for _, im := range cfg.Imports {
		addr := im.To.String()
		if have[addr] {
			continue // already managed: the import block has done its work
		}
		id, diags := ev.EvalImportID(im)
		if diags.HasErrors() {
			return nil, newDiagError(diags, cfg.Files)
		}
		prov := im.Provider
		if prov == "" {
			prov = cfg.Resources[im.To.Resource()].Provider
		}
		p, err := pr.get(prov)
		if err != nil {
			return nil, err
		}
		resp, err := p.Import(ctx, providers.ImportRequest{Address: addr, Type: im.To.Type, ID: id})
		if err != nil {
			return nil, fmt.Errorf("import %s (id %q, %s:%d): %w", addr, id, im.DeclRange.Filename, im.DeclRange.Start.Line, err)
		}
		out[addr] = planner.Imported{ID: resp.ID, State: resp.State}
	}
	return out, nil
}

func providerOf(addr string) string {
	name, _, _ := strings.Cut(addr, ".")
	return name
}

// providerSet configures providers on first use, for planning reads.
type providerSet struct {
	ctx   context.Context
	cfg   *hcl.Config
	mu    sync.Mutex
	provs map[string]providers.Provider
}

func (s *providerSet) get(addr string) (providers.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.provs[addr]; ok {
		return p, nil
	}
	if strings.Contains(addr, ".") {
		if _, ok := s.cfg.Providers[addr]; !ok {
			return nil, fmt.Errorf("provider %s has no provider block in the configuration", addr)
		}
	}
	provs, _, err := configureProviders(s.ctx, s.cfg, []string{addr})
	if err != nil {
		return nil, err
	}
	if s.provs == nil {
		s.provs = map[string]providers.Provider{}
	}
	s.provs[addr] = provs[addr]
	return provs[addr], nil
}

func (s *providerSet) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, p := range s.provs {
		p.Close()
	}
}

// planProviders lists the provider addresses a plan's steps use.
func planProviders(plan *planner.Plan) []string {
	var out []string
	for _, s := range plan.Steps {
		if s.Action != planner.NoOp {
			out = append(out, s.Provider)
		}
	}
	return out
}

// configureProviders connects each named provider address (duplicates ignored).
func configureProviders(ctx context.Context, cfg *hcl.Config, addrs []string) (map[string]providers.Provider, func(), error) {
	used := map[string]bool{}
	for _, a := range addrs {
		used[a] = true
	}
	out := map[string]providers.Provider{}
	closeAll := func() {
		for _, p := range out {
			p.Close()
		}
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, addr := range names {
		name := providerOf(addr)
		mk, ok := registry[name]
		if !ok {
			closeAll()
			return nil, nil, fmt.Errorf("configure provider %s: fiat has no provider %q", addr, name)
		}
		p := mk()
		val, diags := cfg.EvalProvider(addr, providerSpec(p.Schema()))
		if diags.HasErrors() {
			closeAll()
			return nil, nil, newDiagError(diags, cfg.Files)
		}
		if err := p.Configure(ctx, providers.ConfigureRequest{Config: val}); err != nil {
			closeAll()
			return nil, nil, fmt.Errorf("configure provider %s: %w", addr, err)
		}
		out[addr] = p
	}
	return out, closeAll, nil
}

func providerSpec(s providers.Schema) hcldec.Spec {
	return planner.Spec(providers.ResourceSchema{Attributes: s.Provider})
}

// planValues are the values of steps the executor does not apply but a
// resource's config or an output may reference: data sources read while
// planning, and objects imported, moved or adopted (store-only steps).
func planValues(plan *planner.Plan) map[string]cty.Value {
	out := map[string]cty.Value{}
	if plan == nil {
		return out
	}
	for _, s := range plan.Steps {
		switch {
		case s.Action == planner.Read || s.Action.StoreOnly() && s.Action != planner.Forget:
			out[s.Address] = s.After
		case s.Action == planner.Forget:
			out[s.Address] = s.Before
		}
	}
	return out
}

// withPlanValues adds planValues to the values an apply produced.
func withPlanValues(plan *planner.Plan, vals map[string]cty.Value) map[string]cty.Value {
	out := planValues(plan)
	for k, v := range vals {
		out[k] = v
	}
	return out
}

// evalFunc re-evaluates a resource instance's config at apply time, given
// the final values of what it depends on. Instance keys of other resources
// and values the executor does not pass (data sources, imports, moves) come
// from the plan.
func evalFunc(cfg *hcl.Config, plan ...*planner.Plan) func(string, map[string]cty.Value) (cty.Value, error) {
	sch := schemas()
	var p *planner.Plan
	if len(plan) > 0 {
		p = plan[0]
	}
	known := planValues(p)
	keys := map[string][]cty.Value{}
	if p != nil {
		for _, s := range p.Steps {
			if s.Action == planner.Delete || s.Action == planner.Forget {
				continue
			}
			res, key, err := hcl.SplitInstance(s.Address)
			if err == nil && key != cty.NilVal {
				keys[res] = append(keys[res], key)
			}
		}
	}
	for _, ks := range keys {
		hcl.SortKeys(ks)
	}
	specs := sync.Map{}
	return func(addr string, vals map[string]cty.Value) (cty.Value, error) {
		res, _, err := hcl.SplitInstance(addr)
		if err != nil {
			return cty.NilVal, err
		}
		r := cfg.Resources[res]
		if r == nil {
			return cty.NilVal, fmt.Errorf("no resource %s in the configuration", addr)
		}
		rs := sch[providerOf(r.Provider)].Resources[r.Type]
		in := make(hcl.Values, len(vals)+4)
		for k, v := range vals {
			in[k] = v
		}
		if p != nil {
			if s := p.Step(addr); s != nil {
				for _, d := range s.DependsOn {
					if _, ok := in[d]; !ok {
						if v, ok := known[d]; ok {
							in[d] = v
						}
					}
				}
			}
		}
		ev := cfg.NewEvaluator(in)
		for _, d := range cfg.Dependencies(res) {
			if dr := cfg.Resources[d]; dr != nil && dr.Expanded() {
				mode := hcl.ForEach
				if dr.Count != nil {
					mode = hcl.Counted
				}
				ev.SetInstances(d, mode, keys[d])
			}
		}
		spec, ok := specs.Load(r.Type)
		if !ok {
			spec, _ = specs.LoadOrStore(r.Type, planner.Spec(rs))
		}
		v, _, diags := planner.ConfigValueSensitive(ev, addr, rs, spec.(hcldec.Spec))
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		return v, nil
	}
}
