package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"strings"
	"time"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/planner"
	"fiat/state"
)

// maxParallelism bounds -parallelism: past it, more concurrent provider
// calls only queue in the backend (and open that many connections).
const maxParallelism = 256

func (m *Main) apply(ctx context.Context, args []string, destroy bool) error {
	name := "apply"
	if destroy {
		name = "destroy"
	}
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	c.registerPlan(fs)
	auto := fs.Bool("auto-approve", false, "apply without asking for approval")
	par := fs.Int("parallelism", 10, "run at most N operations at once")
	jsonOut := fs.Bool("json", false, "print progress and the outcome as JSON lines (one object per line) instead of text")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, name, fs, args, &c)
	}
	if *par < 1 || *par > maxParallelism {
		return fmt.Errorf("-parallelism %d: give a number of operations from 1 to %d", *par, maxParallelism)
	}
	arg := dirArg(fs)
	if *jsonOut {
		m.jsonOut = json.NewEncoder(m.Stdout)
	}

	var (
		cfg    *hcl.Config
		plan   *planner.Plan
		dir    string
		stack  string
		store  *state.Store
		digest string
	)
	eng := m.engine()
	saved := false
	if st, err := os.Stat(arg); err == nil && st.Mode().IsRegular() {
		if destroy {
			return fmt.Errorf("destroy takes a config directory, not a plan file (%s)", arg)
		}
		sv, st, err := m.openSaved(ctx, arg, &c)
		if err != nil {
			return err
		}
		store, saved = st, true
		defer c.release(store)
		cfg, plan, dir, stack, digest = sv.Config, sv.File.Plan, sv.File.ConfigDir, sv.File.Plan.Stack, sv.Digest
		fmt.Fprintf(m.Stdout, "Applying saved plan %s (sha256:%s) to stack %q, made at store revision %d.\n", arg, digest, stack, plan.BaseRevision)
	} else {
		dir = arg
		if cfg, err = c.load(dir, m.Stderr); err != nil {
			return err
		}
		if stack, err = c.stackFor(dir); err != nil {
			return err
		}
		if store, err = c.openStore(ctx, c.dataDirFor(dir)); err != nil {
			return err
		}
		defer c.release(store)
	}
	if _, err := m.recoverFirst(ctx, store, stack, cfg, false); err != nil {
		return err
	}
	if !saved {
		po := c.planOptions(stack, cfg)
		po.Destroy = destroy
		var err error
		if plan, err = eng.Plan(ctx, store, po); err != nil {
			return err
		}
		if digest, err = engine.PlanDigest(ctx, store, plan, dir, cfg); err != nil {
			return err
		}
	}
	if m.jsonOut != nil {
		cnt := plan.Counts()
		m.jsonOut.Encode(map[string]any{"type": "plan", "stack": plan.Stack, "base_revision": plan.BaseRevision,
			"create": cnt[planner.Create], "update": cnt[planner.Update], "replace": cnt[planner.Replace], "delete": cnt[planner.Delete]})
	} else if err := m.renderPlan(plan, "text", "", c.plan.noColor); err != nil {
		return err
	}
	if !plan.HasChanges() {
		return nil
	}
	if !saved && !*auto {
		if err := m.approve(name); err != nil {
			return err
		}
	}
	if m.jsonOut == nil {
		fmt.Fprintln(m.Stdout)
	}
	res, err := eng.Apply(ctx, store, engine.ApplyOptions{
		Stack: stack, Config: cfg, Plan: plan, Saved: saved, PlanID: digest[:16], Command: name,
		Events: m.printEvent, Parallelism: *par, Actor: m.actor(), Holder: m.holder(),
	})
	m.outcome.PlanDigest = digest
	if res != nil {
		m.outcome.Revision = res.Revision
	}
	if res == nil {
		return err
	}
	if m.jsonOut != nil {
		perrs := []string{}
		for _, e := range res.PurgeErrors {
			perrs = append(perrs, e.Error())
		}
		m.jsonOut.Encode(map[string]any{"type": "result", "revision": res.Revision, "pending_cleanup": perrs,
			"journal_writes": res.JournalWrites, "journal_records": res.JournalRecords})
		return err
	}
	cnt := plan.Counts()
	fmt.Fprintf(m.Stdout, "\n%s complete: %d created, %d updated, %d replaced, %d deleted. Store revision %d.\n",
		strings.ToUpper(name[:1])+name[1:], cnt[planner.Create], cnt[planner.Update], cnt[planner.Replace], cnt[planner.Delete], res.Revision)
	for _, perr := range res.PurgeErrors {
		fmt.Fprintf(m.Stderr, "Warning: %v\n  The apply is committed and the object is inert; it is left for cleanup.\n", perr)
	}
	if err != nil {
		m.printError(err) // only the outputs are missing; the apply stands
		return nil
	}
	m.printOutputs(res.Outputs)
	return nil
}

// openSaved reads a saved plan, opens the store it names (or -data-dir's,
// which must be the same store) and checks the plan against it: whole,
// signed by that store, for the stack -stack names if given.
func (m *Main) openSaved(ctx context.Context, path string, c *common) (*engine.Saved, *state.Store, error) {
	if len(c.args) > 0 {
		return nil, nil, errors.New("a saved plan carries its variable values; -var and -var-file cannot change them (make a new plan instead)")
	}
	sealed, err := planner.Load(path)
	if err != nil {
		return nil, nil, err
	}
	f := sealed.File
	if c.stack != "" && c.stack != f.Plan.Stack {
		return nil, nil, fmt.Errorf("apply %s: the plan is for stack %q, not %q (-stack); make a plan for %q instead", path, f.Plan.Stack, c.stack, c.stack)
	}
	dataDir := f.DataDir
	if c.dataDir != "" {
		dataDir = c.dataDir
	}
	st, err := c.openExistingStore(ctx, dataDir)
	if err != nil {
		return nil, nil, fmt.Errorf("apply %s: %w", path, err)
	}
	sv, err := engine.LoadSaved(ctx, st, sealed, os.Environ())
	if err != nil {
		c.release(st)
		return nil, nil, fmt.Errorf("apply %s: %w", path, err)
	}
	return sv, st, nil
}

func (m *Main) approve(what string) error {
	if !m.interactive() {
		return fmt.Errorf("%s needs approval: run it at a terminal, or pass -auto-approve", what)
	}
	fmt.Fprintf(m.Stdout, "\nDo you want to %s these changes? Only 'yes' will be accepted: ", what)
	line, _ := bufio.NewReader(m.Stdin).ReadString('\n')
	if strings.TrimSpace(line) != "yes" {
		return fmt.Errorf("%s cancelled; nothing was changed", what)
	}
	return nil
}

var verbs = map[string][2]string{
	"create": {"Creating", "Created"},
	"update": {"Updating", "Updated"},
	"retire": {"Retiring", "Retired"},
	"purge":  {"Purging", "Purged"},
	"read":   {"Reading", "Read"},
}

func (m *Main) printEvent(ev executor.Event) {
	if m.inv != nil && m.inv.Events != nil {
		m.inv.Events(ev)
	}
	if m.jsonOut != nil {
		m.jsonOut.Encode(struct {
			Type string `json:"type"`
			executor.Event
		}{"event", ev})
		return
	}
	v := verbs[ev.Operation]
	if kind, ok := strings.CutPrefix(ev.Operation, "provision "); ok {
		v = [2]string{"Provisioning (" + kind + ")", "Provisioned (" + kind + ")"}
	}
	el := ev.Elapsed.Round(100 * time.Millisecond).Seconds()
	switch ev.Kind {
	case executor.EventStart:
		fmt.Fprintf(m.Stdout, "%s: %s...\n", ev.Address, v[0])
	case executor.EventDone, executor.EventPurged:
		fmt.Fprintf(m.Stdout, "%s: %s in %.1fs\n", ev.Address, v[1], el)
	case executor.EventCancelled:
		fmt.Fprintf(m.Stdout, "%s: %s cancelled after %.1fs\n", ev.Address, ev.Operation, el)
	case executor.EventFailed:
		fmt.Fprintf(m.Stdout, "%s: %s FAILED after %.1fs\n", ev.Address, ev.Operation, el)
	case executor.EventUndoStart:
		fmt.Fprintf(m.Stdout, "%s: Rolling back %s...\n", ev.Address, ev.Operation)
	case executor.EventUndone:
		fmt.Fprintf(m.Stdout, "%s: Rolled back in %.1fs\n", ev.Address, el)
	case executor.EventUndoFailed:
		fmt.Fprintf(m.Stdout, "%s: Roll back of %s FAILED: %s\n", ev.Address, ev.Operation, ev.Err)
	case executor.EventPurgeFailed:
		fmt.Fprintf(m.Stdout, "%s: purge FAILED: %s\n", ev.Address, ev.Err)
	case executor.EventProgress:
		fmt.Fprintf(m.Stdout, "%s: Still %s... %.0fs elapsed\n", ev.Address, strings.ToLower(v[0]), el)
	case executor.EventCommitted:
		fmt.Fprintf(m.Stdout, "Committed store revision %d.\n", ev.Revision)
	case executor.EventOutput:
		fmt.Fprintf(m.Stdout, "%s (output): %s\n", ev.Address, ev.Err)
	case executor.EventWarning:
		fmt.Fprintf(m.Stdout, "Warning: %s\n", ev.Err)
	case executor.EventRecovering:
		fmt.Fprintf(m.Stdout, "Settling transaction %s left by an interrupted run...\n", ev.TxID)
	}
}

func (m *Main) printOutputs(outs []engine.Output) {
	if len(outs) == 0 {
		return
	}
	fmt.Fprintln(m.Stdout, "\nOutputs:")
	for _, o := range outs {
		val := planner.FormatValue(o.Value)
		if o.Sensitive {
			val = "(sensitive)"
		}
		fmt.Fprintf(m.Stdout, "  %s = %s\n", o.Name, val)
	}
}
