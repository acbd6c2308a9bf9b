package engine

import (
	"context"
	"fmt"

	"fiat/executor"
	"fiat/hcl"
	"fiat/state"
)

// RecoverOptions says which stack to settle.
type RecoverOptions struct {
	Stack  string
	Config *hcl.Config // for the provider blocks
	// RetryAttention also retries the failed undo of every entity marked
	// needs-attention (fiat recover); plan and apply settle only open
	// transactions first.
	RetryAttention bool
	Events         func(executor.Event)
	Holder         string // names the stack lock's holder; default executor.Holder()
	// Starting, if set, is called once before anything is settled, with
	// the number of open transactions found.
	Starting func(openTxs int)
}

// RecoverResult is what Recover did.
type RecoverResult struct {
	Recovered []*executor.Recovery
	Attention *executor.AttentionReport
	// Clean says nothing is left: no open transaction, no entity still
	// needing attention, no pending cleanup.
	Clean bool
}

// Recover rolls back every transaction a crashed run left open in the stack
// (or finishes the purge of one that had committed) and, with
// RetryAttention, retries the undos that failed before. With nothing to do
// it connects to no provider.
func (e *Engine) Recover(ctx context.Context, store Store, opts RecoverOptions) (*RecoverResult, error) {
	txs, err := store.OpenTxs(ctx, opts.Stack)
	if err != nil {
		return nil, fmt.Errorf("read open transactions of %s: %w", opts.Stack, err)
	}
	needAttention := false
	if opts.RetryAttention {
		ents, err := store.List(ctx, opts.Stack)
		if err != nil {
			return nil, fmt.Errorf("read stack %s: %w", opts.Stack, err)
		}
		for _, en := range ents {
			needAttention = needAttention || en.Status == state.StatusNeedsAttention
		}
	}
	if len(txs) == 0 && !needAttention {
		return &RecoverResult{Clean: true}, nil
	}
	addrs, err := executor.ProvidersNeeded(ctx, store, opts.Stack)
	if err != nil {
		return nil, err
	}
	provs, err := e.connect(ctx, opts.Config, addrs)
	if err != nil {
		return nil, fmt.Errorf("recover stack %s: %w", opts.Stack, err)
	}
	defer closeAll(provs)
	if opts.Starting != nil {
		opts.Starting(len(txs))
	}
	recs, att, err := executor.Recover(ctx, opts.Stack, executor.RecoverOptions{
		Store: store, Providers: provs, Events: opts.Events, RetryAttention: opts.RetryAttention, Holder: opts.Holder,
	})
	res := &RecoverResult{Recovered: recs, Attention: att, Clean: err == nil}
	for _, r := range recs {
		res.Clean = res.Clean && len(r.Stuck) == 0 && len(r.Pending) == 0
	}
	if att != nil {
		res.Clean = res.Clean && len(att.Stuck) == 0
	}
	return res, err
}
