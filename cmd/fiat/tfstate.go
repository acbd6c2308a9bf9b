package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"fiat/engine"
	"fiat/planner"
)

// importTFState adopts a Terraform state's objects: fiat import-tfstate
// FILE [DIR].
func (m *Main) importTFState(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("import-tfstate", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, "import-tfstate", fs, args, &c)
	}
	if fs.NArg() < 1 {
		return errors.New("import-tfstate needs the state FILE (terraform.tfstate) and the configuration directory that manages its objects")
	}
	state, err := engine.ReadTFState(fs.Arg(0))
	if err != nil {
		return err
	}
	dir := "."
	if fs.NArg() > 1 {
		dir = fs.Arg(1)
	}
	cfg, err := c.load(dir, m.Stderr)
	if err != nil {
		return err
	}
	stack, st, err := c.openStack(ctx, dir)
	if err != nil {
		return err
	}
	defer c.release(st)
	if _, err := m.recoverFirst(ctx, st, stack, cfg, false); err != nil {
		return err
	}
	plan, res, err := m.engine().ImportTFState(ctx, st, engine.ImportTFStateOptions{Stack: stack, Config: cfg, State: state, Events: m.printEvent})
	if err != nil {
		return err
	}
	n := plan.Counts()[planner.Import]
	fmt.Fprintf(m.Stdout, "Imported %d object(s) from %s into stack %q (store revision %d); no object was changed.\nRun `fiat plan` to see what differs from the configuration.\n",
		n, fs.Arg(0), stack, res.Revision)
	return nil
}
