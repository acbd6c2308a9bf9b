package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"time"

	"fiat/engine"
	"fiat/hcl"
	"fiat/state"
)

// recoverFirst settles transactions a crashed run left open in the stack,
// before anything plans against it, and reports what it did.
func (m *Main) recoverFirst(ctx context.Context, st *state.Store, stack string, cfg *hcl.Config, retryAttention bool) (clean bool, err error) {
	res, err := m.engine().Recover(ctx, st, engine.RecoverOptions{
		Stack: stack, Config: cfg, RetryAttention: retryAttention, Events: m.printEvent, Holder: m.holder(),
		Starting: func(n int) {
			if n > 0 {
				fmt.Fprintf(m.Stdout, "Stack %q has %d transaction(s) left by an interrupted run; settling them first.\n", stack, n)
			}
		},
	})
	if res == nil {
		return false, err
	}
	m.outcome.Recovered = append(m.outcome.Recovered, res.Recovered...)
	m.outcome.Clean = res.Clean
	for _, r := range res.Recovered {
		fmt.Fprintln(m.Stdout, r.String())
	}
	if res.Attention != nil {
		fmt.Fprint(m.Stdout, res.Attention.String())
	}
	return res.Clean, err
}

func (m *Main) recover(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("recover", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, "recover", fs, args, &c)
	}
	dir := dirArg(fs)
	stack, st, err := c.openExistingStack(ctx, dir)
	if err != nil {
		return err
	}
	defer c.release(st)
	cfg, err := c.load(dir, m.Stderr) // its provider blocks say how to reach the objects
	if err != nil {
		return err
	}
	clean, err := m.recoverFirst(ctx, st, stack, cfg, true)
	if err != nil {
		return err
	}
	if !clean {
		return errors.New("recovery is incomplete: see above for what is left and how to resolve it")
	}
	fmt.Fprintf(m.Stdout, "Stack %q is consistent: no open transaction, nothing needs attention.\n", stack)
	return nil
}

func (m *Main) unlock(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("unlock", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	if err := fs.Parse(args); err != nil {
		return err
	}
	if c.server != "" {
		return m.remote(ctx, "unlock", fs, args, &c)
	}
	if fs.NArg() == 0 {
		return errors.New("unlock needs the exact LOCK_ID (shown in the error of the run that found the stack locked)")
	}
	id := fs.Arg(0)
	dir := "."
	if fs.NArg() > 1 {
		dir = fs.Arg(1)
	}
	st, err := c.openExistingStore(ctx, c.dataDirFor(dir))
	if err != nil {
		return err
	}
	defer c.release(st)
	l, err := st.ForceUnlock(ctx, id)
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "Released lock %s of stack %q, held by %s since %s.\nIf that run had started an apply, the next apply or `fiat recover` rolls it back.\n",
		l.ID, l.Stack, l.Holder, l.Acquired.Format(time.RFC3339))
	return nil
}

// forget removes an entity from the store without touching the object.
func (m *Main) forget(ctx context.Context, st *state.Store, stack, addr string) error {
	e, rev, err := m.engine().Forget(ctx, st, engine.ForgetOptions{Stack: stack, Address: addr, Actor: m.actor()})
	if err != nil {
		return err
	}
	fmt.Fprintf(m.Stdout, "Forgot %s (store revision %d). The %s object %s was not touched; fiat no longer manages it.\n", e.Address, rev, e.Type, e.ID)
	return nil
}
