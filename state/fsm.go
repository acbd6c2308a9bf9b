package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/dgraph-io/badger/v4"
	"github.com/dgraph-io/badger/v4/options"
	"github.com/hashicorp/raft"
)

// fsm is the replicated state machine: every raft command is applied to a
// Badger database on disk.
//
// Concurrency: raft calls Apply, Snapshot and Restore from its single FSM
// goroutine; readers call view from any goroutine. Apply holds mu for
// writing for its whole duration, so a reader never sees half of a command,
// even a commit that spans many Badger transactions.
//
// Replay: raft re-applies every entry after its last snapshot when a node
// starts. Each command writes its raft index to keyApplied in the same Badger
// write as its final effect, and Apply skips entries at or below it.
type fsm struct {
	db  *badger.DB
	dir string

	mu      sync.RWMutex
	applied uint64 // == keyApplied
	seen    uint64 // the last command raft handed to Apply (see progress)
	// failed is set when Badger itself fails mid-apply. The FSM then refuses
	// everything: its state no longer matches the log. Reopening the store
	// replays the log from the last durable applied index.
	failed error

	replayed int                     // entries skipped as already applied (tests)
	hook     func(step string) error // fault injection between commit steps (tests)
}

var _ raft.FSM = (*fsm)(nil)

// memTableSize is 4 MiB, or the size of the memtables a store left
// unflushed (its write-ahead .mem files are twice that): Badger replays
// one into a memtable of the configured size and exits the process when
// it does not fit, and stores written before the memtable shrank used
// 8 MiB ones.
func memTableSize(dir string) int64 {
	size := int64(4 << 20)
	files, _ := filepath.Glob(filepath.Join(dir, "*.mem"))
	for _, f := range files {
		if st, err := os.Stat(f); err == nil {
			size = max(size, st.Size()/2)
		}
	}
	return size
}

// badgerBlockSize is Badger's default, set here because checkFiles opens
// tables with it too.
const badgerBlockSize = 4 << 10

// badgerOptions are sized for an embedded CLI that opens the store for a few
// seconds: small memtables and caches keep start-up RSS and open time low
// (Badger allocates and maps a whole memtable at open). A 4 MiB memtable
// lets one transaction hold ~600 KiB, above the largest raft entry
// (maxEntryBytes). All values the store writes are under ValueThreshold,
// so they live in the LSM tree and the value log needs no garbage
// collection.
func badgerOptions(dir string) badger.Options {
	return badger.DefaultOptions(dir).
		WithLogger(nil).
		WithMemTableSize(memTableSize(dir)).
		WithValueThreshold(512 << 10).
		WithNumMemtables(2).
		WithNumLevelZeroTables(2).
		WithNumLevelZeroTablesStall(8).
		WithBaseTableSize(2 << 20).
		WithBaseLevelSize(8 << 20).
		WithBlockCacheSize(4 << 20).
		WithIndexCacheSize(2 << 20).
		WithValueLogFileSize(1 << 20).
		WithNumCompactors(2).
		WithNumGoroutines(2).
		WithCompression(options.Snappy).
		WithMetricsEnabled(false).
		WithBlockSize(badgerBlockSize).
		// Every block read is checked against its checksum: a flipped bit
		// is an error, never a different state read silently.
		WithChecksumVerificationMode(options.OnBlockRead).
		WithDetectConflicts(false) // the FSM is the only writer
}

func openFSM(dir string) (*fsm, error) {
	db, err := badger.Open(badgerOptions(dir))
	if err != nil {
		return nil, fmt.Errorf("open badger %s: %w", dir, err)
	}
	f := &fsm{db: db, dir: dir}
	if err := db.View(func(txn *badger.Txn) error {
		var err error
		f.applied, err = getUint(txn, keyApplied)
		return err
	}); err != nil {
		db.Close()
		return nil, fmt.Errorf("read applied index: %w", err)
	}
	return f, nil
}

func (f *fsm) close() error { return f.db.Close() }

// step runs the test hook, if any, at a named point of a multi-step apply.
func (f *fsm) step(name string) error {
	if f.hook == nil {
		return nil
	}
	return f.hook(name)
}

// appliedIndex is the last raft index whose effect is in Badger.
func (f *fsm) appliedIndex() uint64 {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.applied
}

// progress is the last command raft has handed the FSM since it opened
// (applied, or skipped as a replay), and why the FSM refuses everything
// (nil while it works).
func (f *fsm) progress() (seen uint64, failed error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	return f.seen, f.failed
}

// view runs fn in a read transaction that sees only whole commands.
func (f *fsm) view(fn func(txn *badger.Txn) error) error {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.failed != nil {
		return fmt.Errorf("state store is unusable, reopen it: %w", f.failed)
	}
	return guard(filepath.Dir(f.dir), f.dir, func() error { return f.db.View(fn) })
}

// Apply implements raft.FSM. It returns a *result, or an error when the
// FSM could not apply the entry at all.
func (f *fsm) Apply(l *raft.Log) any {
	if l.Type != raft.LogCommand {
		return nil
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen = max(f.seen, l.Index)
	if f.failed != nil {
		return fmt.Errorf("state store is unusable, reopen it: %w", f.failed)
	}
	if l.Index <= f.applied {
		f.replayed++
		return nil // replay of an entry whose effect is already on disk
	}
	res, err := f.apply(l.Index, l.Data)
	if err != nil {
		f.failed = fmt.Errorf("apply raft entry %d: %w", l.Index, err)
		return f.failed
	}
	f.applied = l.Index
	return res
}

// apply decodes and runs one command. A non-nil error means Badger failed
// and the FSM must stop; refusals travel in result.Err.
func (f *fsm) apply(index uint64, data []byte) (*result, error) {
	if len(data) == 0 {
		return nil, errors.New("empty command")
	}
	kind, body := cmdKind(data[0]), data[1:]
	switch kind {
	case cmdLock:
		return decodeApply(body, index, f.applyLock)
	case cmdRenew:
		return decodeApply(body, index, f.applyRenew)
	case cmdUnlock:
		return decodeApply(body, index, f.applyUnlock)
	case cmdForceUnlock:
		return decodeApply(body, index, f.applyForceUnlock)
	case cmdStage:
		return decodeApply(body, index, f.applyStage)
	case cmdCommit:
		return decodeApply(body, index, f.applyCommit)
	case cmdBeginTx:
		return decodeApply(body, index, f.applyBeginTx)
	case cmdAppend:
		return decodeApply(body, index, f.applyAppend)
	case cmdEndTx:
		return decodeApply(body, index, f.applyEndTx)
	case cmdInit:
		return decodeApply(body, index, f.applyInit)
	case cmdMember:
		return decodeApply(body, index, f.applyMember)
	case cmdDoc:
		return decodeApply(body, index, f.applyDoc)
	}
	// An unknown command means a newer fiat wrote the log; applying the rest
	// would diverge from it.
	return nil, fmt.Errorf("unknown command kind %d", kind)
}

func decodeApply[C any](body []byte, index uint64, fn func(uint64, *C) (*result, error)) (*result, error) {
	var c C
	if err := decodeCmd(body, &c); err != nil {
		return nil, fmt.Errorf("decode command: %w", err)
	}
	return fn(index, &c)
}

// refuse consumes an entry that changes nothing: it only records the index.
func (f *fsm) refuse(index uint64, err error) (*result, error) {
	if werr := f.db.Update(func(txn *badger.Txn) error {
		return setApplied(txn, index)
	}); werr != nil {
		return nil, werr
	}
	return &result{Err: err}, nil
}

func setApplied(txn *badger.Txn, index uint64) error {
	return txn.Set([]byte(keyApplied), encodeUint(index))
}

// getUint reads a counter; a missing key reads as 0.
func getUint(txn *badger.Txn, key string) (uint64, error) {
	item, err := txn.Get([]byte(key))
	if errors.Is(err, badger.ErrKeyNotFound) {
		return 0, nil
	}
	if err != nil {
		return 0, err
	}
	var v uint64
	err = item.Value(func(b []byte) error {
		v, err = decodeUint(b)
		return err
	})
	return v, err
}

// getJSON decodes the value at key into v and reports whether it exists.
func getJSON(txn *badger.Txn, key []byte, v any) (bool, error) {
	item, err := txn.Get(key)
	if errors.Is(err, badger.ErrKeyNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return true, item.Value(func(b []byte) error {
		if err := json.Unmarshal(b, v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		return nil
	})
}

func setJSON(txn *badger.Txn, key []byte, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encode %s: %w", key, err)
	}
	return txn.Set(key, b)
}

// scan calls fn for every key with prefix, in key order. key and val are
// only valid during the call.
func scan(txn *badger.Txn, prefix []byte, fn func(key, val []byte) error) error {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	it := txn.NewIterator(opts)
	defer it.Close()
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		item := it.Item()
		if err := item.Value(func(val []byte) error { return fn(item.Key(), val) }); err != nil {
			return err
		}
	}
	return nil
}

// scanKeys returns copies of every key with prefix.
func scanKeys(txn *badger.Txn, prefix []byte) [][]byte {
	opts := badger.DefaultIteratorOptions
	opts.Prefix = prefix
	opts.PrefetchValues = false
	it := txn.NewIterator(opts)
	defer it.Close()
	var keys [][]byte
	for it.Seek(prefix); it.ValidForPrefix(prefix); it.Next() {
		keys = append(keys, it.Item().KeyCopy(nil))
	}
	return keys
}

// deletePrefix deletes every key with prefix through a WriteBatch, so the
// number of keys is not bounded by one transaction's size. It is idempotent:
// replaying it after a crash deletes whatever is left.
func (f *fsm) deletePrefix(prefix []byte) error {
	var keys [][]byte
	if err := f.db.View(func(txn *badger.Txn) error {
		keys = scanKeys(txn, prefix)
		return nil
	}); err != nil {
		return err
	}
	if len(keys) == 0 {
		return nil
	}
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	for _, k := range keys {
		if err := wb.Delete(k); err != nil {
			return err
		}
	}
	return wb.Flush()
}

// scanJSON decodes every value under prefix into a fresh T and passes it to fn.
func scanJSON[T any](txn *badger.Txn, prefix []byte, fn func(*T)) error {
	return scan(txn, prefix, func(key, val []byte) error {
		v := new(T)
		if err := json.Unmarshal(val, v); err != nil {
			return fmt.Errorf("decode %s: %w", key, err)
		}
		fn(v)
		return nil
	})
}
