package state

import (
	"context"
	"encoding/json"
	"fmt"
	"sort"
	"time"

	"github.com/dgraph-io/badger/v4"
)

// Tx is one apply transaction. The executor writes its journal (intents,
// results, undo records) while it runs; the store keeps the records in
// order without reading them. A tx lives until EndTx, so a crashed apply
// is found by OpenTxs and rolled back (open) or cleaned up (committed).
type Tx struct {
	ID      string    `json:"id"`
	Stack   string    `json:"stack"`
	PlanID  string    `json:"plan_id,omitempty"`
	LockID  string    `json:"lock_id"` // the lock it began under; later writes may carry another (recovery)
	State   TxState   `json:"state"`
	Started time.Time `json:"started"`
	// Revision is the revision its Commit made; 0 while open.
	Revision uint64 `json:"revision,omitempty"`
}

// TxState is where a Tx is. An ended Tx is deleted with its journal.
type TxState string

const (
	TxOpen      TxState = "open"
	TxCommitted TxState = "committed"
)

// txRecord is what tx/<id> holds.
type txRecord struct {
	Tx   Tx     `json:"tx"`
	Next uint64 `json:"next"` // sequence number of the next journal record
}

// BeginTx records tx as open. tx.Stack must be the lock's stack (empty
// means the lock's); an empty LockID or Started is filled in.
func (s *Store) BeginTx(ctx context.Context, lock Lock, tx Tx) error {
	if tx.Stack == "" {
		tx.Stack = lock.Stack
	}
	if err := checkName("tx id", tx.ID); err != nil {
		return fmt.Errorf("begin tx %s: %w", tx.ID, err)
	}
	if tx.Stack != lock.Stack {
		return fmt.Errorf("begin tx %s: tx is for stack %q but the lock is for stack %q", tx.ID, tx.Stack, lock.Stack)
	}
	if tx.LockID == "" {
		tx.LockID = lock.ID
	}
	now := s.now()
	if tx.Started.IsZero() {
		tx.Started = now
	}
	tx.Started = tx.Started.UTC()
	tx.State, tx.Revision = TxOpen, 0
	if _, err := s.run(ctx, cmdBeginTx, &beginTxCmd{Lock: lock, At: unixNano(now), Tx: tx}); err != nil {
		return fmt.Errorf("begin tx %s: %w", tx.ID, err)
	}
	return nil
}

// AppendJournal appends records to tx's journal durably, in order. All
// records go in one raft entry (one disk sync) unless they exceed the entry
// size limit; then they are split into as few entries as fit, and a failure
// part way leaves a prefix of them appended.
func (s *Store) AppendJournal(ctx context.Context, lock Lock, txID string, records ...json.RawMessage) error {
	groups, err := groupRecords(records)
	if err != nil {
		return fmt.Errorf("append journal of tx %s: %w", txID, err)
	}
	cmds := make([]any, len(groups))
	at := unixNano(s.now())
	for i, g := range groups {
		cmds[i] = &appendCmd{Lock: lock, At: at, TxID: txID, Records: g}
	}
	if _, err := s.runAll(ctx, cmdAppend, cmds); err != nil {
		return fmt.Errorf("append journal of tx %s: %w", txID, err)
	}
	return nil
}

// groupRecords splits records into groups that each fit one entry.
func groupRecords(records []json.RawMessage) ([][]json.RawMessage, error) {
	var groups [][]json.RawMessage
	var cur []json.RawMessage
	size := 0
	for i, r := range records {
		if !json.Valid(r) {
			return nil, fmt.Errorf("record %d is not valid JSON", i)
		}
		if len(r) > chunkTarget {
			return nil, fmt.Errorf("record %d is %d bytes; a journal record may be at most %d", i, len(r), chunkTarget)
		}
		if size+len(r)+1 > chunkTarget && len(cur) > 0 {
			groups, cur, size = append(groups, cur), nil, 0
		}
		cur = append(cur, r)
		size += len(r) + 1
	}
	if len(cur) > 0 {
		groups = append(groups, cur)
	}
	return groups, nil
}

// Journal returns tx's records in append order.
func (s *Store) Journal(ctx context.Context, txID string) ([]json.RawMessage, error) {
	var recs []json.RawMessage
	err := s.read(ctx, func(txn *badger.Txn) error {
		var rec txRecord
		ok, err := getJSON(txn, txKey(txID), &rec)
		if err != nil {
			return err
		}
		if !ok {
			return ErrNotFound
		}
		return scan(txn, journalPrefix(txID), func(_, val []byte) error {
			recs = append(recs, json.RawMessage(append([]byte(nil), val...)))
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("read journal of tx %s: %w", txID, err)
	}
	return recs, nil
}

// OpenTxs returns the txs not yet ended for stack ("" = all stacks), oldest first.
func (s *Store) OpenTxs(ctx context.Context, stack string) ([]Tx, error) {
	var txs []Tx
	err := s.read(ctx, func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(prefixTx), func(rec *txRecord) {
			if stack == "" || rec.Tx.Stack == stack {
				txs = append(txs, rec.Tx)
			}
		})
	})
	if err != nil {
		return nil, fmt.Errorf("list open txs: %w", err)
	}
	sort.Slice(txs, func(i, j int) bool {
		if !txs[i].Started.Equal(txs[j].Started) {
			return txs[i].Started.Before(txs[j].Started)
		}
		return txs[i].ID < txs[j].ID
	})
	return txs, nil
}

// EndTx deletes tx and its journal: the apply is over, committed or rolled back.
func (s *Store) EndTx(ctx context.Context, lock Lock, txID string) error {
	if _, err := s.run(ctx, cmdEndTx, &endTxCmd{Lock: lock, At: unixNano(s.now()), TxID: txID}); err != nil {
		return fmt.Errorf("end tx %s: %w", txID, err)
	}
	return nil
}

// lockedTx checks the fence and that txID exists in the lock's stack.
func lockedTx(txn *badger.Txn, lock Lock, at int64, txID string) (rec txRecord, refusal, err error) {
	if refusal, err = fence(txn, lock, at); refusal != nil || err != nil {
		return rec, refusal, err
	}
	ok, err := getJSON(txn, txKey(txID), &rec)
	switch {
	case err != nil:
		return rec, nil, err
	case !ok:
		return rec, fmt.Errorf("tx %s: %w", txID, ErrNotFound), nil
	case rec.Tx.Stack != lock.Stack:
		return rec, fmt.Errorf("tx %s belongs to stack %q, not the lock's stack %q", txID, rec.Tx.Stack, lock.Stack), nil
	}
	return rec, nil, nil
}

func (f *fsm) applyBeginTx(index uint64, c *beginTxCmd) (*result, error) {
	var refusal error
	err := f.db.Update(func(txn *badger.Txn) error {
		var err error
		if refusal, err = fence(txn, c.Lock, c.At); refusal != nil || err != nil {
			return err
		}
		var old txRecord
		ok, err := getJSON(txn, txKey(c.Tx.ID), &old)
		if err != nil {
			return err
		}
		if ok {
			refusal = fmt.Errorf("tx %s already exists (state %s)", c.Tx.ID, old.Tx.State)
			return nil
		}
		if err := setJSON(txn, txKey(c.Tx.ID), txRecord{Tx: c.Tx}); err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return f.refuse(index, refusal)
	}
	return &result{}, nil
}

// applyAppend writes all records of the entry in one Badger transaction:
// an entry is under maxEntryBytes, far below Badger's transaction limit.
func (f *fsm) applyAppend(index uint64, c *appendCmd) (*result, error) {
	var refusal error
	err := f.db.Update(func(txn *badger.Txn) error {
		rec, ref, err := lockedTx(txn, c.Lock, c.At, c.TxID)
		if refusal = ref; refusal != nil || err != nil {
			return err
		}
		for _, r := range c.Records {
			if err := txn.Set(journalKey(c.TxID, rec.Next), r); err != nil {
				return err
			}
			rec.Next++
		}
		if err := setJSON(txn, txKey(c.TxID), rec); err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		return f.refuse(index, refusal)
	}
	return &result{}, nil
}

// applyEndTx deletes the journal first (any number of records, idempotent
// on replay), then the tx record with the applied index.
func (f *fsm) applyEndTx(index uint64, c *endTxCmd) (*result, error) {
	var refusal error
	if err := f.db.View(func(txn *badger.Txn) (err error) {
		_, refusal, err = lockedTx(txn, c.Lock, c.At, c.TxID)
		return err
	}); err != nil {
		return nil, err
	}
	if refusal != nil {
		return f.refuse(index, refusal)
	}
	if err := f.deletePrefix(journalPrefix(c.TxID)); err != nil {
		return nil, err
	}
	err := f.db.Update(func(txn *badger.Txn) error {
		if err := txn.Delete(txKey(c.TxID)); err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	return &result{}, nil
}
