package executor

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"strings"
	"time"

	"fiat/providers"
	"fiat/state"
	"fiat/value"
)

// Recovery reports what was done about one transaction a crashed run left.
type Recovery struct {
	TxID       string    `json:"tx"`
	PlanID     string    `json:"plan_id,omitempty"`
	Started    time.Time `json:"started"`
	Committed  bool      `json:"committed"` // it had committed: only its purge was finished
	Settled    []string  `json:"settled,omitempty"`
	RolledBack []Undone  `json:"rolled_back,omitempty"`
	Purged     []string  `json:"purged,omitempty"`
	Stuck      []Stuck   `json:"needs_attention,omitempty"`
	Pending    []string  `json:"pending_cleanup,omitempty"` // purges that failed again
}

func (r *Recovery) String() string {
	b := &strings.Builder{}
	if r.Committed {
		fmt.Fprintf(b, "Transaction %s (plan %s, started %s) had committed; finishing its cleanup.", r.TxID, r.PlanID, r.Started.Format(time.RFC3339))
	} else {
		fmt.Fprintf(b, "Transaction %s (plan %s, started %s) did not commit; rolled it back.", r.TxID, r.PlanID, r.Started.Format(time.RFC3339))
	}
	for _, s := range r.Settled {
		fmt.Fprintf(b, "\n  %s: outcome was unknown; read the real object", s)
	}
	for _, u := range r.RolledBack {
		fmt.Fprintf(b, "\n  %s: %s undone", u.Address, u.Operation)
	}
	for _, p := range r.Purged {
		fmt.Fprintf(b, "\n  %s: purged", p)
	}
	for _, p := range r.Pending {
		fmt.Fprintf(b, "\n  %s: purge failed again; left for the next apply or `fiat recover`", p)
	}
	for _, s := range r.Stuck {
		fmt.Fprintf(b, "\n  %s: undo of %s FAILED (marked needs-attention): %s", s.Address, s.Operation, s.Err)
	}
	return b.String()
}

// RecoverOptions configures Recover.
type RecoverOptions struct {
	Store     Store
	Providers map[string]providers.Provider
	Events    func(Event)
	LockTTL   time.Duration
	Holder    string // names the lock holder; default Holder()
	// RetryAttention also retries the failed undos of needs-attention
	// entities (fiat recover); plan and apply only settle crashed runs.
	RetryAttention bool
}

// Recover settles a stack: it rolls back every transaction a crashed run left
// open (or finishes the purge of one that had committed), then retries the
// undo of every entity marked needs-attention. It is what `fiat recover` runs;
// apply runs the first half itself.
func Recover(ctx context.Context, stack string, opts RecoverOptions) ([]*Recovery, *AttentionReport, error) {
	if opts.Events == nil {
		opts.Events = func(Event) {}
	}
	ev := newEmitter(opts.Events)
	ls, err := acquire(ctx, opts.Store, stack, cmp.Or(opts.Holder, Holder()), opts.LockTTL)
	if err != nil {
		return nil, nil, fmt.Errorf("lock stack %s: %w", stack, err)
	}
	defer func() {
		if rerr := ls.release(ctx); rerr != nil {
			ev.emit(Event{Kind: EventWarning, Err: rerr.Error()})
		}
	}()
	recs, err := recoverOpen(ctx, opts.Store, ls, stack, opts.Providers, ev)
	if err != nil || !opts.RetryAttention {
		return recs, nil, err
	}
	att, err := retryAttention(ctx, opts.Store, ls.current(), stack, opts.Providers, ev)
	return recs, att, err
}

// journalOp is one operation as the journal tells it.
type journalOp struct {
	intent  record
	result  *record // done or failed
	undone  bool
	purged  bool
	effect  int // journal position at which it took effect
	settled bool
}

// recoverOpen settles every open transaction of the stack. The caller holds
// the stack's lock, so any open transaction belongs to a run that is gone.
func recoverOpen(ctx context.Context, store Store, ls *lease, stack string, provs map[string]providers.Provider, ev *emitter) ([]*Recovery, error) {
	txs, err := store.OpenTxs(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read open transactions of %s: %w", stack, err)
	}
	var out []*Recovery
	for _, tx := range txs {
		ev.emit(Event{Kind: EventRecovering, TxID: tx.ID})
		r, err := recoverTx(context.WithoutCancel(ctx), store, ls, tx, provs, ev)
		out = append(out, r)
		if err != nil {
			return out, fmt.Errorf("recover transaction %s: %w", tx.ID, err)
		}
	}
	return out, nil
}

func recoverTx(ctx context.Context, store Store, ls *lease, tx state.Tx, provs map[string]providers.Provider, ev *emitter) (*Recovery, error) {
	r := &Recovery{TxID: tx.ID, PlanID: tx.PlanID, Started: tx.Started, Committed: tx.State == state.TxCommitted}
	raw, err := store.Journal(ctx, tx.ID)
	if err != nil {
		return r, err
	}
	ops, err := replay(raw)
	if err != nil {
		return r, err
	}
	j := newJournal(store, ls.current, tx.ID)
	if r.Committed {
		var retired []undoItem
		for _, o := range ops {
			if o.intent.Op == opRetire && o.result != nil && o.result.Kind == recDone && !o.purged {
				retired = append(retired, journalItem(o))
			}
		}
		for _, e := range purgeAll(ctx, provs, retired, j, ev) {
			r.Pending = append(r.Pending, e.Error())
		}
		for _, it := range retired {
			if !containsPrefix(r.Pending, "purge "+it.Address+":") {
				r.Purged = append(r.Purged, it.Address)
			}
		}
		if err := j.flush(ctx); err != nil {
			return r, err
		}
		if len(r.Pending) > 0 {
			return r, nil // stays open: pending cleanup
		}
		failpoint("before-end")
		return r, store.EndTx(ctx, ls.current(), tx.ID)
	}

	// Not committed: everything that took effect is undone, last first.
	var items []undoItem
	for _, o := range ops {
		if o.undone {
			continue
		}
		if o.result == nil {
			if err := settleFromJournal(ctx, store, tx.Stack, o, provs); err != nil {
				return r, err
			}
			if o.settled {
				r.Settled = append(r.Settled, o.intent.Address)
			}
		}
		if o.result != nil && len(o.result.Undo) > 0 {
			items = append(items, journalItem(o))
		}
	}
	sortByEffect(items, ops)
	r.RolledBack, r.Stuck = undoAll(ctx, provs, items, j, ev)
	if err := j.flush(ctx); err != nil {
		return r, err
	}
	return r, settleStuck(ctx, store, ls.current(), tx.Stack, tx.ID, r.Stuck, items)
}

// replay reads a journal into operations, in the order they took effect.
func replay(raw []json.RawMessage) ([]*journalOp, error) {
	var ops []*journalOp
	open := map[string]*journalOp{} // address+op → latest
	for i, b := range raw {
		var rec record
		if err := json.Unmarshal(b, &rec); err != nil {
			return nil, fmt.Errorf("read journal record %d: %w", i, err)
		}
		key := rec.Address + " " + string(rec.Op)
		switch rec.Kind {
		case recIntent:
			o := &journalOp{intent: rec, effect: i}
			ops = append(ops, o)
			open[key] = o
		case recDone, recFailed:
			if o := open[key]; o != nil {
				rc := rec
				o.result, o.effect = &rc, i
			}
		case recUndone:
			if o := open[key]; o != nil {
				o.undone = true
			}
		case recPurged:
			if o := open[key]; o != nil {
				o.purged = true
			}
		}
	}
	return ops, nil
}

// settleFromJournal asks the provider what became of an operation whose
// intent is on record but whose result is not.
func settleFromJournal(ctx context.Context, store Store, stack string, o *journalOp, provs map[string]providers.Provider) error {
	in := o.intent
	p, ok := provs[in.Provider]
	if !ok {
		return fmt.Errorf("settle %s: provider %s is not configured (its provider block is needed to roll back)", in.Address, in.Provider)
	}
	req := providers.SettleRequest{Address: in.Address, Type: in.Type, OpID: in.OpID, ID: in.ID, Action: settleAction[in.Op]}
	var err error
	if req.Config, err = value.Decode(in.Config); err != nil {
		return err
	}
	switch in.Op {
	case opRetire:
		req.Prior, err = value.Decode(in.State)
	case opUpdate:
		// Not committed, so the store still holds the prior state.
		if e, gerr := store.Get(ctx, stack+"/"+in.Address); gerr == nil {
			req.Prior, err = value.Decode(e.Attributes)
		}
	}
	if err != nil {
		return err
	}
	resp, err := settleCall(ctx, in.Provider, p, req)
	if err != nil {
		return fmt.Errorf("settle %s %s: %w", in.Op, in.Address, err)
	}
	o.settled = true
	if !resp.TookEffect {
		if len(resp.Undo) > 0 { // a partial effect to remove
			o.result = &record{Kind: recFailed, Op: in.Op, Address: in.Address, ID: resp.ID, Undo: resp.Undo}
		}
		return nil
	}
	res := record{Kind: recDone, Op: in.Op, Address: in.Address, ID: resp.ID, Undo: resp.Undo}
	if res.ID == "" {
		res.ID = in.ID
	}
	if in.Op != opRetire {
		res.State, _ = value.Encode(resp.State)
	}
	o.result = &res
	return nil
}

func journalItem(o *journalOp) undoItem {
	it := undoItem{Address: o.intent.Address, Type: o.intent.Type, Provider: o.intent.Provider, Source: o.intent.Source,
		Op: o.intent.Op, ID: o.intent.ID}
	if o.result != nil {
		it.Undo = o.result.Undo
		if o.result.ID != "" {
			it.ID = o.result.ID
		}
		it.State = o.result.State
	}
	if o.intent.Op == opRetire {
		it.State = o.intent.State
	}
	return it
}

// sortByEffect orders items as their operations took effect. A dependency's
// result is journaled before its dependents' intents, so this keeps
// dependencies first; undoAll then reverses it.
func sortByEffect(items []undoItem, ops []*journalOp) {
	pos := map[string]int{}
	for _, o := range ops {
		pos[o.intent.Address+" "+string(o.intent.Op)] = o.effect
	}
	sort.SliceStable(items, func(a, b int) bool {
		return pos[items[a].Address+" "+string(items[a].Op)] < pos[items[b].Address+" "+string(items[b].Op)]
	})
}

func containsPrefix(list []string, prefix string) bool {
	for _, s := range list {
		if strings.HasPrefix(s, prefix) {
			return true
		}
	}
	return false
}

// ProvidersNeeded lists the provider addresses that recovering the stack
// would call: those of open transactions' journals and of entities that
// need attention.
func ProvidersNeeded(ctx context.Context, store Store, stack string) ([]string, error) {
	set := map[string]bool{}
	txs, err := store.OpenTxs(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read open transactions of %s: %w", stack, err)
	}
	for _, tx := range txs {
		raw, err := store.Journal(ctx, tx.ID)
		if err != nil {
			return nil, fmt.Errorf("read journal of %s: %w", tx.ID, err)
		}
		ops, err := replay(raw)
		if err != nil {
			return nil, err
		}
		for _, o := range ops {
			set[o.intent.Provider] = true
		}
	}
	ents, err := store.List(ctx, stack)
	if err != nil {
		return nil, fmt.Errorf("read stack %s: %w", stack, err)
	}
	for _, e := range ents {
		if e.Status == state.StatusNeedsAttention {
			set[e.Provider] = true
			if e.Attention != nil {
				for _, u := range e.Attention.Undos {
					if opKind(u.Operation) == opProvision {
						set[providers.ProvisionerAddress] = true
					}
				}
			}
		}
	}
	return sortedKeys(set), nil
}
