package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"sort"
	"strings"

	"fiat/planner"
	"fiat/state"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

func (m *Main) state(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return errors.New("state needs a subcommand: list, or show ADDRESS")
	}
	sub := args[0]
	fs := flag.NewFlagSet("state "+sub, flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, "state "+sub, fs, args[1:], &c)
	}
	var addr string
	rest := fs.Args()
	switch sub {
	case "list":
	case "show", "forget":
		if len(rest) == 0 {
			return errors.New("state show needs an ADDRESS, e.g. libvirt_pool.images")
		}
		addr, rest = rest[0], rest[1:]
	default:
		return fmt.Errorf("unknown state subcommand %q: use list, show or forget", sub)
	}
	dir := "."
	if len(rest) > 0 {
		dir = rest[0]
	}
	stack, st, err := c.openExistingStack(ctx, dir)
	if err != nil {
		return err
	}
	defer c.release(st)
	if sub == "list" {
		ents, err := st.List(ctx, stack)
		if err != nil {
			return fmt.Errorf("list stack %s: %w", stack, err)
		}
		for _, e := range ents {
			fmt.Fprintf(m.Stdout, "%s\n", strings.TrimPrefix(e.Address, stack+"/"))
		}
		return nil
	}
	if sub == "forget" {
		return m.forget(ctx, st, stack, addr)
	}
	full := addr
	if !strings.Contains(addr, "/") {
		full = stack + "/" + addr
	}
	e, err := st.Get(ctx, full)
	if err != nil {
		return fmt.Errorf("show %s: %w", full, err)
	}
	return m.showEntity(e)
}

func (m *Main) showEntity(e state.Entity) error {
	v, err := value.Decode(e.Attributes)
	if err != nil {
		return fmt.Errorf("show %s: %w", e.Address, err)
	}
	fmt.Fprintf(m.Stdout, "# %s\n", e.Address)
	fmt.Fprintf(m.Stdout, "provider = %s\nid       = %s\nrevision = %d\nstatus   = %s\n", e.Provider, e.ID, e.Revision, e.Status)
	if e.Reason != "" {
		fmt.Fprintf(m.Stdout, "reason   = %s\n", e.Reason)
	}
	if e.Source != "" {
		fmt.Fprintf(m.Stdout, "source   = %s\n", e.Source)
	}
	if len(e.Dependencies) > 0 {
		fmt.Fprintf(m.Stdout, "depends  = %s\n", strings.Join(e.Dependencies, ", "))
	}
	fmt.Fprintf(m.Stdout, "resource %q %q {\n", e.Type, e.Name)
	if v != cty.NilVal && !v.IsNull() {
		attrs := v.AsValueMap()
		sensitive := map[string]bool{}
		for _, n := range e.Sensitive {
			sensitive[n] = true
		}
		for _, n := range sortedNames(attrs) {
			val := planner.FormatValue(attrs[n])
			if sensitive[n] && !attrs[n].IsNull() {
				val = "(sensitive)"
			}
			fmt.Fprintf(m.Stdout, "  %s = %s\n", n, val)
		}
	}
	fmt.Fprintln(m.Stdout, "}")
	return nil
}

func (m *Main) history(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("history", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, "history", fs, args, &c)
	}
	dir := dirArg(fs)
	stack, st, err := c.openExistingStack(ctx, dir)
	if err != nil {
		return err
	}
	defer c.release(st)
	revs, err := st.History(ctx, stack)
	if err != nil {
		return fmt.Errorf("read history of %s: %w", stack, err)
	}
	for _, r := range revs {
		fmt.Fprintf(m.Stdout, "revision %d  %s  %s by %s (plan %s)\n", r.Revision, r.Meta.Time.Format("2006-01-02 15:04:05Z"), r.Meta.Command, r.Meta.Actor, r.Meta.PlanID)
		for _, ch := range r.Changes {
			fmt.Fprintf(m.Stdout, "  %-6s %s\n", ch.Action, ch.Address)
		}
	}
	return nil
}

func sortedNames[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
