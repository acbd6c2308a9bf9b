package main

import (
	"context"
	"flag"
	"fmt"

	"fiat/planner"
)

func (m *Main) validate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := dirArg(fs)
	cfg, err := loadConfig(dir, c.vars)
	if err != nil {
		return err
	}
	// Planning against an empty stack type-checks every resource
	// without touching the store or any provider.
	_, diags := planner.Build(planner.Input{Stack: "validate", Config: cfg, Schemas: schemas()})
	if diags.HasErrors() {
		return newDiagError(diags, cfg.Files)
	}
	fmt.Fprintf(m.Stdout, "The configuration in %s is valid: %d resource(s).\n", dir, len(cfg.Resources))
	return nil
}

func (m *Main) plan(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs)
	out := fs.String("out", "", "save the plan to FILE for a later `fiat apply FILE`")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 for no changes, 2 for changes, 1 for errors")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	dir := dirArg(fs)
	cfg, err := loadConfig(dir, c.vars)
	if err != nil {
		return exitError, err
	}
	stack, err := c.stackFor(dir)
	if err != nil {
		return exitError, err
	}
	st, err := openStore(ctx, c.dataDirFor(dir))
	if err != nil {
		return exitError, err
	}
	defer st.Close()
	if _, err := m.recoverFirst(ctx, st, stack, cfg, false); err != nil {
		return exitError, err
	}
	plan, err := buildPlan(ctx, st, stack, cfg)
	if err != nil {
		return exitError, err
	}
	if err := planner.RenderText(m.Stdout, plan); err != nil {
		return exitError, err
	}
	if *out != "" {
		f := &planner.File{Plan: plan, ConfigDir: dir, Files: cfg.Files, Vars: c.vars, Env: fiatVarEnv()}
		digest, err := f.Save(*out)
		if err != nil {
			return exitError, err
		}
		fmt.Fprintf(m.Stdout, "\nSaved the plan to %s (sha256:%s).\nApply exactly this plan with: fiat apply %s\n", *out, digest, *out)
	}
	if *detailed && plan.HasChanges() {
		return exitChanges, nil
	}
	return exitOK, nil
}

func dirArg(fs *flag.FlagSet) string {
	if fs.NArg() > 0 {
		return fs.Arg(0)
	}
	return "."
}
