package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/dgraph-io/badger/v4"
)

// Commit makes c visible as one new revision and returns it. lock must be
// c.Stack's current lock (else ErrFenced). If c.Expect names an entity whose
// revision differs now, nothing changes and the error is a *StaleError
// naming every such entity. With c.TxID set, the same write marks that tx
// committed: the apply's point of no return.
//
// A commit bigger than one raft entry is sent as several "stage" entries
// followed by one small "commit" entry; readers see all of it or none.
func (s *Store) Commit(ctx context.Context, lock Lock, c Commit) (uint64, error) {
	if c.Stack != lock.Stack {
		return 0, fmt.Errorf("commit stack %s: the lock is for stack %q", c.Stack, lock.Stack)
	}
	chunks, err := buildChunks(c)
	if err != nil {
		return 0, fmt.Errorf("commit stack %s: %w", c.Stack, err)
	}
	now := s.now()
	if c.Meta.Time.IsZero() {
		c.Meta.Time = now
	}
	c.Meta.Time = c.Meta.Time.UTC()
	commitID, at := newID(), unixNano(now)
	cmd := &commitCmd{Lock: lock, At: at, CommitID: commitID, Stack: c.Stack, TxID: c.TxID, Meta: c.Meta}
	var ops []op
	if len(chunks) == 1 {
		cmd.inline = chunks[0]
	} else {
		for i, ch := range chunks {
			ops = append(ops, op{cmdStage, &stageCmd{Lock: lock, At: at, CommitID: commitID, Seq: i, chunk: ch}})
		}
		cmd.Staged = len(chunks)
	}
	ops = append(ops, op{cmdCommit, cmd})
	res, err := s.runOps(ctx, ops)
	if err != nil {
		return 0, fmt.Errorf("commit stack %s: %w", c.Stack, err)
	}
	return res[len(res)-1].Revision, nil
}

// buildChunks validates c and packs its puts, deletes and expectations into
// chunks of at most chunkTarget bytes each (always at least one).
func buildChunks(c Commit) ([][]byte, error) {
	if err := checkName("stack", c.Stack); err != nil {
		return nil, err
	}
	if c.TxID != "" {
		if err := checkName("tx id", c.TxID); err != nil {
			return nil, err
		}
	}
	prefix := c.Stack + "/"
	seen := make(map[string]bool, len(c.Put)+len(c.Delete))
	check := func(addr string) error {
		switch {
		case !strings.HasPrefix(addr, prefix) || len(addr) == len(prefix):
			return fmt.Errorf("address %q is not in stack %q", addr, c.Stack)
		case len(addr) > 4096:
			return fmt.Errorf("address %.60q... is %d bytes long", addr, len(addr))
		case seen[addr]:
			return fmt.Errorf("address %q appears more than once", addr)
		}
		seen[addr] = true
		return nil
	}

	var w chunkWriter
	puts := slices.Clone(c.Put)
	sort.Slice(puts, func(i, j int) bool { return puts[i].Address < puts[j].Address })
	for _, e := range puts {
		if err := check(e.Address); err != nil {
			return nil, err
		}
		if e.Stack == "" {
			e.Stack = c.Stack
		}
		if e.Stack != c.Stack {
			return nil, fmt.Errorf("entity %s has stack %q", e.Address, e.Stack)
		}
		if e.Status == "" {
			e.Status = StatusOK
		}
		e.Revision = 0 // the store sets it
		raw, err := json.Marshal(e)
		if err != nil {
			return nil, fmt.Errorf("encode entity %s: %w", e.Address, err)
		}
		if len(raw) > maxEntityBytes {
			return nil, fmt.Errorf("entity %s is %d bytes; an entity may be at most %d", e.Address, len(raw), maxEntityBytes)
		}
		w.add(recPut, e.Address, raw, 0)
	}
	dels := slices.Clone(c.Delete)
	slices.Sort(dels)
	for _, addr := range dels {
		if err := check(addr); err != nil {
			return nil, err
		}
		w.add(recDelete, addr, nil, 0)
	}
	addrs := make([]string, 0, len(c.Expect))
	for a := range c.Expect {
		if len(a) > 4096 {
			return nil, fmt.Errorf("expected address %.60q... is %d bytes long", a, len(a))
		}
		addrs = append(addrs, a)
	}
	slices.Sort(addrs)
	for _, addr := range addrs {
		w.add(recExpect, addr, nil, c.Expect[addr])
	}
	return w.chunks(), nil
}

func (f *fsm) applyStage(index uint64, c *stageCmd) (*result, error) {
	var refusal error
	err := f.db.Update(func(txn *badger.Txn) error {
		var err error
		if refusal, err = fence(txn, c.Lock, c.At); refusal != nil || err != nil {
			return err
		}
		if err := txn.Set(stageKey(c.Lock.ID, c.CommitID, c.Seq), c.chunk); err != nil {
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

// pendingCommit is keyPending while a commit is half applied: its history is
// written and its entities may be partly written. Only a replay of the same
// raft entry may run while it exists, and that replay finishes the commit
// instead of checking it again (its own writes would look stale).
type pendingCommit struct {
	Index    uint64 `json:"index"`
	Revision uint64 `json:"revision"`
}

// historyHeader is h/<rev>; its changes are in hc/<rev>/<n>, changesPerKey each.
type historyHeader struct {
	Revision uint64 `json:"revision"`
	Stack    string `json:"stack"`
	Meta     Meta   `json:"meta"`
	Chunks   int    `json:"chunks"`
}

const changesPerKey = 1000

// applyCommit applies a commit in phases, because a big commit exceeds what
// one Badger transaction holds:
//
//  1. check fence, tx and expectations; compute the changes;
//  2. write history for the new revision (invisible: above keyRevision);
//  3. write keyPending;
//  4. write the entities with a WriteBatch;
//  5. one transaction: keyRevision, the tx's state, staged chunks deleted,
//     keyPending deleted, keyApplied.
//
// Badger makes writes durable in the order they were issued, so a crash
// leaves a prefix of these steps; replaying the entry redoes 1-2 from
// scratch (nothing visible was touched) or, once keyPending exists, 4-5.
func (f *fsm) applyCommit(index uint64, c *commitCmd) (*result, error) {
	var p pendingCommit
	var pending bool
	if err := f.db.View(func(txn *badger.Txn) (err error) {
		pending, err = getJSON(txn, []byte(keyPending), &p)
		return err
	}); err != nil {
		return nil, err
	}
	if pending {
		if p.Index != index {
			return nil, fmt.Errorf("commit of raft entry %d is half applied but entry %d came next", p.Index, index)
		}
		return f.finishCommit(index, c, p.Revision)
	}

	var (
		refusal error
		rev     uint64
		changes []Change
	)
	err := f.db.View(func(txn *badger.Txn) error {
		var err error
		if refusal, err = checkCommit(txn, c); refusal != nil || err != nil {
			return err
		}
		var chunks [][]byte
		if chunks, refusal, err = loadChunks(txn, c); refusal != nil || err != nil {
			return err
		}
		if refusal, err = checkExpect(txn, chunks); refusal != nil || err != nil {
			return err
		}
		if changes, err = computeChanges(txn, chunks); err != nil {
			return err
		}
		rev, err = getUint(txn, keyRevision)
		rev++
		return err
	})
	if err != nil {
		return nil, err
	}
	if refusal != nil {
		if err := f.deletePrefix(stagePrefix(c.Lock.ID, c.CommitID)); err != nil {
			return nil, err
		}
		return f.refuse(index, refusal)
	}

	if err := f.writeHistory(rev, c, changes); err != nil {
		return nil, err
	}
	if err := f.step("history"); err != nil {
		return nil, err
	}
	if err := f.db.Update(func(txn *badger.Txn) error {
		return setJSON(txn, []byte(keyPending), pendingCommit{Index: index, Revision: rev})
	}); err != nil {
		return nil, err
	}
	if err := f.step("pending"); err != nil {
		return nil, err
	}
	return f.finishCommit(index, c, rev)
}

// checkCommit checks the fence and the tx a commit names.
func checkCommit(txn *badger.Txn, c *commitCmd) (refusal, err error) {
	if c.Stack != c.Lock.Stack {
		return fmt.Errorf("the lock is for stack %q, not %q", c.Lock.Stack, c.Stack), nil
	}
	if c.TxID == "" {
		return fence(txn, c.Lock, c.At)
	}
	rec, refusal, err := lockedTx(txn, c.Lock, c.At, c.TxID)
	if refusal == nil && err == nil && rec.Tx.State != TxOpen {
		refusal = fmt.Errorf("tx %s is already %s (revision %d)", c.TxID, rec.Tx.State, rec.Tx.Revision)
	}
	return refusal, err
}

// loadChunks returns the commit's chunks in order.
func loadChunks(txn *badger.Txn, c *commitCmd) (chunks [][]byte, refusal, err error) {
	if c.Staged == 0 {
		return [][]byte{c.inline}, nil, nil
	}
	err = scan(txn, stagePrefix(c.Lock.ID, c.CommitID), func(_, val []byte) error {
		chunks = append(chunks, slices.Clone(val))
		return nil
	})
	if err != nil {
		return nil, nil, err
	}
	if len(chunks) != c.Staged {
		return nil, fmt.Errorf("commit %s: %d of its %d chunks were staged", c.CommitID, len(chunks), c.Staged), nil
	}
	return chunks, nil, nil
}

// entityRevision returns the revision of the entity at addr, 0 if absent.
func entityRevision(txn *badger.Txn, addr string) (rev uint64, exists bool, err error) {
	item, err := txn.Get(entityKey(addr))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	err = item.Value(func(val []byte) (err error) {
		rev, err = valueRevision(val)
		return err
	})
	return rev, true, err
}

// checkExpect returns a *StaleError naming every expected entity whose
// revision differs now.
func checkExpect(txn *badger.Txn, chunks [][]byte) (refusal, err error) {
	var stale []StaleEntity
	for _, ch := range chunks {
		err := walkChunk(ch, chunkVisitor{expect: func(addr string, want uint64) error {
			now, _, err := entityRevision(txn, addr)
			if err == nil && now != want {
				stale = append(stale, StaleEntity{Address: addr, Read: want, Now: now})
			}
			return err
		}})
		if err != nil {
			return nil, err
		}
	}
	if len(stale) == 0 {
		return nil, nil
	}
	sort.Slice(stale, func(i, j int) bool { return stale[i].Address < stale[j].Address })
	return &StaleError{Entities: stale}, nil
}

// computeChanges says what each put and delete does to what exists now. A
// delete of an absent entity changes nothing and is not recorded.
func computeChanges(txn *badger.Txn, chunks [][]byte) ([]Change, error) {
	var changes []Change
	for _, ch := range chunks {
		err := walkChunk(ch, chunkVisitor{
			put: func(addr string, _ []byte) error {
				_, ok, err := entityRevision(txn, addr)
				action := "create"
				if ok {
					action = "update"
				}
				changes = append(changes, Change{Address: addr, Action: action})
				return err
			},
			delete: func(addr string) error {
				_, ok, err := entityRevision(txn, addr)
				if ok {
					changes = append(changes, Change{Address: addr, Action: "delete"})
				}
				return err
			},
		})
		if err != nil {
			return nil, err
		}
	}
	sort.Slice(changes, func(i, j int) bool { return changes[i].Address < changes[j].Address })
	return changes, nil
}

func (f *fsm) writeHistory(rev uint64, c *commitCmd, changes []Change) error {
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	n := 0
	for start := 0; start < len(changes); start += changesPerKey {
		b, err := json.Marshal(changes[start:min(start+changesPerKey, len(changes))])
		if err != nil {
			return err
		}
		if err := wb.Set(changesKey(rev, n), b); err != nil {
			return err
		}
		n++
	}
	h, err := json.Marshal(historyHeader{Revision: rev, Stack: c.Stack, Meta: c.Meta, Chunks: n})
	if err != nil {
		return err
	}
	if err := wb.Set(historyKey(rev), h); err != nil {
		return err
	}
	return wb.Flush()
}

// finishCommit writes the entities and then, in one transaction, makes the
// revision visible. Both are idempotent, so a replay may run it again.
func (f *fsm) finishCommit(index uint64, c *commitCmd, rev uint64) (*result, error) {
	var chunks [][]byte
	if err := f.db.View(func(txn *badger.Txn) error {
		var refusal, err error
		chunks, refusal, err = loadChunks(txn, c)
		if err == nil && refusal != nil {
			err = errors.New("staged chunks of a half-applied commit are missing")
		}
		return err
	}); err != nil {
		return nil, err
	}

	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	for _, ch := range chunks {
		err := walkChunk(ch, chunkVisitor{
			put: func(addr string, entity []byte) error {
				return wb.Set(entityKey(addr), entityValue(rev, entity))
			},
			delete: func(addr string) error { return wb.Delete(entityKey(addr)) },
		})
		if err != nil {
			return nil, err
		}
	}
	if err := wb.Flush(); err != nil {
		return nil, err
	}
	if err := f.step("entities"); err != nil {
		return nil, err
	}

	err := f.db.Update(func(txn *badger.Txn) error {
		if err := txn.Set([]byte(keyRevision), encodeUint(rev)); err != nil {
			return err
		}
		if c.TxID != "" {
			var rec txRecord
			if _, err := getJSON(txn, txKey(c.TxID), &rec); err != nil {
				return err
			}
			rec.Tx.State, rec.Tx.Revision = TxCommitted, rev
			if err := setJSON(txn, txKey(c.TxID), rec); err != nil {
				return err
			}
		}
		for _, k := range scanKeys(txn, stagePrefix(c.Lock.ID, c.CommitID)) {
			if err := txn.Delete(k); err != nil {
				return err
			}
		}
		if err := txn.Delete([]byte(keyPending)); err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	if err != nil {
		return nil, err
	}
	return &result{Revision: rev}, nil
}
