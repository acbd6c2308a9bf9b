package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"fiat/engine"
	"fiat/planner"
)

func (m *Main) plan(ctx context.Context, args []string) (int, error) {
	fs := flag.NewFlagSet("plan", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	c.registerPlan(fs)
	out := fs.String("out", "", "save the plan to FILE for a later `fiat apply FILE`")
	detailed := fs.Bool("detailed-exitcode", false, "exit 0 for no changes, 2 for changes, 1 for errors")
	asJSON := fs.Bool("json", false, "print the plan as JSON (docs/plan-json.md)")
	asMD := fs.Bool("markdown", false, "print the plan as Markdown, for a pull-request comment")
	destroy := fs.Bool("destroy", false, "plan to delete everything the stack manages")
	base := fs.String("base-commit", os.Getenv("FIAT_BASE_COMMIT"), "with -server: the commit this branch is based on; the plan warns if the stack was last applied from another (default $FIAT_BASE_COMMIT)")
	if err := fs.Parse(args); err != nil {
		return exitError, err
	}
	if c.server != "" {
		return exitError, m.remote(ctx, "plan", fs, args, &c)
	}
	if *asJSON && *asMD {
		return exitError, errors.New("plan: -json and -markdown are alternatives; pick one")
	}
	dir := dirArg(fs)
	cfg, err := c.load(dir, m.Stderr)
	if err != nil {
		return exitError, err
	}
	stack, st, err := c.openStack(ctx, dir)
	if err != nil {
		return exitError, err
	}
	defer c.release(st)
	// Embedded, a transaction left open is a crashed run's: settle it
	// first. On a server an open transaction is a running apply's (the
	// leader settles a lost one itself): a plan reads the committed
	// revision beside it and never waits.
	if m.inv == nil {
		if _, err := m.recoverFirst(ctx, st, stack, cfg, false); err != nil {
			return exitError, err
		}
	}
	po := c.planOptions(stack, cfg)
	po.Destroy = *destroy
	plan, err := m.engine().Plan(ctx, st, po)
	if err != nil {
		return exitError, err
	}
	digest := ""
	if *out != "" {
		if digest, err = engine.SavePlan(ctx, st, plan, dir, cfg, *out); err != nil {
			return exitError, err
		}
	}
	m.outcome.PlanDigest = digest
	if m.inv != nil && digest == "" {
		// A run records the digest of the plan it made (shown only with -out).
		if m.outcome.PlanDigest, err = engine.PlanDigest(ctx, st, plan, dir, cfg); err != nil {
			return exitError, err
		}
	}
	format := "text"
	switch {
	case *asJSON:
		format = "json"
	case *asMD:
		format = "markdown"
	}
	if w := m.baseWarning(stack, *base); w != "" {
		switch format {
		case "markdown":
			fmt.Fprintf(m.Stdout, "> [!WARNING]\n> %s\n\n", w)
		case "text":
			fmt.Fprintf(m.Stdout, "Warning: %s\n\n", w)
		default:
			fmt.Fprintf(m.Stderr, "Warning: %s\n", w)
		}
	}
	if err := m.renderPlan(plan, format, digest, c.plan.noColor); err != nil {
		return exitError, err
	}
	if *out != "" {
		// Machine-readable output stays pure on stdout.
		w := m.Stdout
		if format != "text" {
			w = m.Stderr
		}
		fmt.Fprintf(w, "\nSaved the plan to %s (sha256:%s).\nApply exactly this plan with: fiat apply %s\n", *out, digest, *out)
	}
	if *detailed && plan.HasChanges() {
		return exitChanges, nil
	}
	return exitOK, nil
}

// baseWarning says when a preview's branch is not based on the commit the
// stack was last applied from: the diff a reviewer sees is then not what
// merging will apply.
func (m *Main) baseWarning(stack, base string) string {
	if base == "" || m.inv == nil || m.inv.LastApplied == nil {
		return ""
	}
	last := m.inv.LastApplied(stack)
	if last == "" || strings.HasPrefix(last, base) || strings.HasPrefix(base, last) {
		return ""
	}
	return fmt.Sprintf("this branch is based on commit %s, but stack %q was last applied from commit %s: rebase on it, or the merge may apply more than this plan shows.", short(base), stack, short(last))
}

func short(commit string) string { return commit[:min(len(commit), 12)] }

// renderPlan prints a plan as text, JSON or Markdown.
func (m *Main) renderPlan(plan *planner.Plan, format, digest string, noColor bool) error {
	switch format {
	case "json":
		return planner.RenderJSON(m.Stdout, plan, planner.JSONOptions{Digest: digest, Indent: true})
	case "markdown":
		return planner.RenderMarkdown(m.Stdout, plan, planner.MarkdownOptions{Digest: digest})
	}
	return planner.RenderTextOpts(m.Stdout, plan, planner.TextOptions{Color: !noColor && colorTerminal(m.Stdout)})
}

// colorTerminal says whether w is a terminal that takes colours.
func colorTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok || os.Getenv("NO_COLOR") != "" || os.Getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func dirArg(fs *flag.FlagSet) string {
	if fs.NArg() > 0 {
		return fs.Arg(0)
	}
	return "."
}
