package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"

	"fiat/state"
)

// record is one journal entry. The journal lives in the replicated store, so
// another process can roll back a transaction this one left open: an intent
// carries everything needed to settle its operation without the plan.
type record struct {
	Kind     string          `json:"k"` // see the kind constants
	Op       opKind          `json:"op,omitempty"`
	Address  string          `json:"a,omitempty"`
	Type     string          `json:"t,omitempty"`
	Provider string          `json:"p,omitempty"`
	ID       string          `json:"id,omitempty"`
	OpID     string          `json:"o,omitempty"`
	Config   json.RawMessage `json:"c,omitempty"` // intent of create/update: what was asked
	State    json.RawMessage `json:"s,omitempty"` // done of create/update: the object's state
	Undo     json.RawMessage `json:"u,omitempty"`
	Err      string          `json:"e,omitempty"`
	Source   string          `json:"src,omitempty"`
	Deps     []string        `json:"deps,omitempty"`
	Action   string          `json:"act,omitempty"` // the plan step's action (delete vs replace)
}

const (
	recIntent     = "intent"      // about to call the provider
	recDone       = "done"        // the call succeeded; Undo reverses it
	recFailed     = "failed"      // the call failed; Undo (if any) reverses its partial effect
	recUndone     = "undone"      // the Undo ran
	recUndoFailed = "undo-failed" // the Undo failed
	recPurged     = "purged"      // a retired object was destroyed after the commit
)

// journal writes records with group commit: every record queued while a
// write is in flight goes into the next single store write. Callers that
// need durability (an intent, before its side effect) wait; others (a
// result, which only has to be durable before the commit) do not, and ride
// along with the next write.
type journal struct {
	store  Store
	lock   func() state.Lock
	txID   string
	writes atomic.Int64 // store writes made
	recs   atomic.Int64 // records written

	mu      sync.Mutex
	queue   []json.RawMessage
	waiters []chan error
	busy    bool
	err     error // first write error; every later write fails with it
}

func newJournal(store Store, lock func() state.Lock, txID string) *journal {
	return &journal{store: store, lock: lock, txID: txID}
}

// write makes recs durable before returning.
func (j *journal) write(ctx context.Context, recs ...record) error {
	done, err := j.enqueue(recs)
	if err != nil {
		return err
	}
	return j.flushUntil(ctx, done)
}

// post queues recs; they are made durable by the next write or flush.
func (j *journal) post(recs ...record) error {
	_, err := j.enqueue(recs)
	return err
}

// flush makes every queued record durable.
func (j *journal) flush(ctx context.Context) error {
	done, err := j.enqueue(nil)
	if err != nil {
		return err
	}
	return j.flushUntil(ctx, done)
}

func (j *journal) enqueue(recs []record) (chan error, error) {
	raw := make([]json.RawMessage, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			return nil, fmt.Errorf("encode journal record: %w", err)
		}
		raw[i] = b
	}
	done := make(chan error, 1)
	j.mu.Lock()
	j.queue = append(j.queue, raw...)
	j.waiters = append(j.waiters, done)
	j.mu.Unlock()
	return done, nil
}

// flushUntil returns once the caller's records are written. Whoever finds
// no write in flight becomes the writer and keeps writing batches until the
// queue is empty, so every waiter is served by some writer.
func (j *journal) flushUntil(ctx context.Context, done chan error) error {
	j.mu.Lock()
	if j.busy {
		j.mu.Unlock()
		select {
		case err := <-done:
			return err
		case <-ctx.Done():
			// The records may still be written; the caller must
			// treat its operation as not started.
			return fmt.Errorf("write journal: %w", ctx.Err())
		}
	}
	j.busy = true
	for len(j.waiters) > 0 {
		batch, waiters := j.queue, j.waiters
		j.queue, j.waiters = nil, nil
		prevErr := j.err
		j.mu.Unlock()

		err := prevErr
		if err == nil && len(batch) > 0 {
			// A started write completes even if ctx ends: the
			// store waits for it, and so must we.
			err = j.store.AppendJournal(context.WithoutCancel(ctx), j.lock(), j.txID, batch...)
			j.writes.Add(1)
			j.recs.Add(int64(len(batch)))
			if err != nil {
				err = fmt.Errorf("write journal: %w", err)
			}
		}
		for _, w := range waiters {
			w <- err
		}
		j.mu.Lock()
		if err != nil && j.err == nil {
			j.err = err
		}
	}
	j.busy = false
	j.mu.Unlock()
	return <-done
}
