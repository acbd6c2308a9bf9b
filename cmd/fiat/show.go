package main

import (
	"context"
	"errors"
	"flag"
	"fmt"

	"fiat/planner"
)

// show renders a saved plan: fiat show [-json | -markdown] FILE.
func (m *Main) show(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("show", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	asJSON := fs.Bool("json", false, "print the plan as JSON (docs/plan-json.md)")
	asMD := fs.Bool("markdown", false, "print the plan as Markdown")
	noColor := fs.Bool("no-color", false, "no colours in the output")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New("show needs the plan FILE saved with plan -out")
	}
	sealed, err := planner.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	f, digest := sealed.File, sealed.Digest
	format := "text"
	switch {
	case *asJSON && *asMD:
		return errors.New("show: -json and -markdown are alternatives; pick one")
	case *asJSON:
		format = "json"
	case *asMD:
		format = "markdown"
	default:
		fmt.Fprintf(m.Stdout, "Saved plan %s (sha256:%s) of stack %q (%s), made against store %s in %s.\n\n",
			fs.Arg(0), digest, f.Plan.Stack, f.ConfigDir, f.StoreID, f.DataDir)
	}
	return m.renderPlan(f.Plan, format, digest, *noColor)
}
