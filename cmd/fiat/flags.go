package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"fiat/engine"
	"fiat/hcl"
	"fiat/state"
)

// common flags of commands that read a config directory.
type common struct {
	m       *Main
	dataDir string
	server  string // -server: run the command on a fiat server
	stale   bool   // -stale: a read may be served by any node, possibly behind
	noWait  bool   // -no-wait: refuse at once if the stack is busy
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

func (c *common) register(fs *flag.FlagSet, m *Main) {
	c.m = m
	c.vars = varFlags{}
	c.plan.refresh = true
	fs.StringVar(&c.dataDir, "data-dir", "", "state directory (default DIR/.fiat)")
	if m.inv == nil {
		fs.StringVar(&c.server, "server", os.Getenv("FIAT_ADDR"), "run on a fiat server: URL[,URL...] of its nodes (default $FIAT_ADDR; token in $FIAT_TOKEN)")
		fs.BoolVar(&c.stale, "stale", false, "with -server: let any node answer a read from its own copy, possibly behind the leader")
		fs.BoolVar(&c.noWait, "no-wait", false, "with -server: refuse at once, naming the running run, if another run holds the stack")
	}
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
// Warnings (a -var-file value for an undeclared variable, ...) are printed
// to warn, and loading goes on.
func (c *common) load(dir string, warn io.Writer) (*hcl.Config, error) {
	cfg, diags := hcl.Load(dir, hcl.Options{Args: c.args})
	if diags.HasErrors() {
		return nil, hcl.NewDiagError(diags, nil)
	}
	if len(diags) > 0 {
		de := hcl.NewDiagError(diags, nil)
		writeDiagnostics(warn, de.Diags, de.Files)
	}
	return cfg, nil
}

// openStack resolves the stack name of a config directory and opens its store.
func (c *common) openStack(ctx context.Context, dir string) (string, *state.Store, error) {
	stack, err := c.stackFor(dir)
	if err != nil {
		return "", nil, err
	}
	st, err := c.openStore(ctx, c.dataDirFor(dir))
	if err != nil {
		return "", nil, err
	}
	return stack, st, nil
}

// openExistingStack opens the store of a config directory for a command
// that only reads or fixes what is there: it creates no store on a
// mistyped path, and refuses a stack the store has never held.
func (c *common) openExistingStack(ctx context.Context, dir string) (string, *state.Store, error) {
	stack, err := c.stackFor(dir)
	if err != nil {
		return "", nil, err
	}
	st, err := c.openExistingStore(ctx, c.dataDirFor(dir))
	if err != nil {
		return "", nil, err
	}
	ok, err := st.StackExists(ctx, stack)
	if err == nil && !ok {
		err = fmt.Errorf("stack %q does not exist in the store in %s: nothing was ever applied to it (check the directory, or -stack)", stack, st.Dir())
	}
	if err != nil {
		c.release(st)
		return "", nil, err
	}
	return stack, st, nil
}

// openStore opens the store in dataDir, or, when a server runs the
// command, returns the server's store.
func (c *common) openStore(ctx context.Context, dataDir string) (*state.Store, error) {
	if st, err := c.serverStore(); st != nil || err != nil {
		return st, err
	}
	st, err := state.Open(ctx, state.Options{Dir: dataDir})
	if err != nil {
		return nil, fmt.Errorf("open state in %s: %w", dataDir, err)
	}
	return st, nil
}

// openExistingStore opens a store that must already exist.
func (c *common) openExistingStore(ctx context.Context, dataDir string) (*state.Store, error) {
	if st, err := c.serverStore(); st != nil || err != nil {
		return st, err
	}
	st, err := state.Open(ctx, state.Options{Dir: dataDir, MustExist: true})
	if errors.Is(err, state.ErrNoStore) {
		return nil, fmt.Errorf("%s holds no fiat store: nothing was ever planned or applied there (check the directory, or -data-dir)", dataDir)
	}
	if err != nil {
		return nil, fmt.Errorf("open state in %s: %w", dataDir, err)
	}
	return st, nil
}

// planOptions are the planning flags as the engine takes them.
func (c *common) planOptions(stack string, cfg *hcl.Config) engine.PlanOptions {
	return engine.PlanOptions{Stack: stack, Config: cfg, NoRefresh: !c.plan.refresh, AdoptDrift: c.plan.adoptDrift,
		Targets: c.plan.targets, Excludes: c.plan.excludes}
}

// serverStore is the server's store when a server runs the command; a
// -data-dir makes no sense there and is refused.
func (c *common) serverStore() (*state.Store, error) {
	if c.m == nil || c.m.inv == nil {
		return nil, nil
	}
	if c.dataDir != "" {
		return nil, errors.New("-data-dir does not apply to a command run on a fiat server: the server's store is the stack's")
	}
	return c.m.inv.Store, nil
}

// release closes a store the command opened (never the server's).
func (c *common) release(st *state.Store) {
	if c.m != nil && c.m.inv != nil && st == c.m.inv.Store {
		return
	}
	st.Close()
}
