package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"fiat/executor"
	"fiat/state"
)

// ForgetOptions names the entity to stop managing.
type ForgetOptions struct {
	Stack   string
	Address string // within the stack ("libvirt_pool.images"), or full ("stack/...")
	Actor   string // recorded in history; default executor.Holder()
}

// Forget removes one entity from the store, under the stack's lock, without
// touching the object it stands for: fiat stops managing it. It returns the
// entity as it was and the new store revision.
func (e *Engine) Forget(ctx context.Context, store Store, opts ForgetOptions) (state.Entity, uint64, error) {
	full := opts.Address
	if !strings.Contains(full, "/") {
		full = opts.Stack + "/" + full
	}
	actor := opts.Actor
	if actor == "" {
		actor = executor.Holder()
	}
	ent, err := store.Get(ctx, full)
	if err != nil {
		return state.Entity{}, 0, fmt.Errorf("forget %s: %w", full, err)
	}
	lock, err := store.Lock(ctx, opts.Stack, actor, time.Minute)
	if err != nil {
		return state.Entity{}, 0, fmt.Errorf("forget %s: %w", full, err)
	}
	defer store.Unlock(context.WithoutCancel(ctx), lock) // a failed release expires with the minute's lease
	rev, err := store.Commit(ctx, lock, state.Commit{
		Stack: opts.Stack, Expect: map[string]uint64{full: ent.Revision}, Delete: []string{full},
		Meta: state.Meta{Actor: actor, Command: "state forget", Time: time.Now().UTC()},
	})
	if err != nil {
		return state.Entity{}, 0, fmt.Errorf("forget %s: %w", full, err)
	}
	return ent, rev, nil
}
