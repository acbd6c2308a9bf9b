package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/libvirt"
	"fiat/state"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hcldec"
	"github.com/zclconf/go-cty/cty"
)

// registry lists the providers fiat has, by name.
var registry = map[string]func() providers.Provider{
	"libvirt": func() providers.Provider { return libvirt.New() },
}

// common flags of commands that read a config directory.
type common struct {
	dataDir string
	stack   string
	vars    varFlags
}

func (c *common) register(fs *flag.FlagSet) {
	c.vars = varFlags{}
	fs.StringVar(&c.dataDir, "data-dir", "", "state directory (default DIR/.fiat)")
	fs.StringVar(&c.stack, "stack", "", "stack name (default: the config directory's name)")
	fs.Var(c.vars, "var", "set a variable: -var name=value (repeatable)")
}

// workspace is a config directory with its store.
type workspace struct {
	dir   string
	stack string
	cfg   *hcl.Config
	store *state.Store
}

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

// loadConfig parses a directory, returning diagnostics as a *diagError.
func loadConfig(dir string, vars map[string]string) (*hcl.Config, error) {
	cfg, diags := hcl.Load(dir, hcl.Options{Vars: vars})
	if diags.HasErrors() {
		return nil, newDiagError(diags, nil)
	}
	return cfg, nil
}

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
		b, ok := snapshot[filepath.Base(name)]
		if !ok {
			b, _ = os.ReadFile(name)
		}
		files[name] = &hcl2.File{Bytes: b}
	}
	return &diagError{diags: diags, files: files}
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

// buildPlan diffs cfg against the stack in the store.
func buildPlan(ctx context.Context, st *state.Store, stack string, cfg *hcl.Config) (*planner.Plan, error) {
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
	plan, diags := planner.Build(planner.Input{Stack: stack, Config: cfg, Entities: ents, Revision: rev, Schemas: schemas()})
	if diags.HasErrors() {
		return nil, newDiagError(diags, cfg.Files)
	}
	return plan, nil
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
		name, _, _ := strings.Cut(addr, ".")
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

// evalFunc re-evaluates a resource's config at apply time.
func evalFunc(cfg *hcl.Config) func(string, map[string]cty.Value) (cty.Value, error) {
	sch := schemas()
	return func(addr string, vals map[string]cty.Value) (cty.Value, error) {
		r := cfg.Resources[addr]
		if r == nil {
			return cty.NilVal, fmt.Errorf("no resource %s in the configuration", addr)
		}
		pname, _, _ := strings.Cut(r.Provider, ".")
		rs := sch[pname].Resources[r.Type]
		v, diags := planner.ConfigValue(cfg, addr, rs, hcl.Values(vals))
		if diags.HasErrors() {
			return cty.NilVal, diags
		}
		return v, nil
	}
}
