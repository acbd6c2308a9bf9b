package state

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/dgraph-io/badger/v4/options"
	"github.com/dgraph-io/badger/v4/table"
	"github.com/dgraph-io/badger/v4/y"
	"github.com/dgraph-io/ristretto/v2/z"
	"go.etcd.io/bbolt"
)

// DamagedError is a store whose files are not what fiat wrote: truncated,
// bit-flipped, cut short by a full disk. Nothing is read from such a store;
// the error names the file and the way back.
type DamagedError struct {
	Dir   string // the data directory
	File  string // the damaged file
	Cause error
}

func (e *DamagedError) Error() string {
	return fmt.Sprintf("the store in %s is damaged: %s: %v\n"+
		"Nothing was read from it and nothing was changed. To get back: restore the data directory from a backup taken while no fiat ran "+
		"(README: \"When the store is damaged\"), then run `fiat recover` to settle any transaction that was open when the backup was taken.",
		e.Dir, e.File, e.Cause)
}

func (e *DamagedError) Unwrap() error { return e.Cause }

// ErrDamaged matches every *DamagedError.
var ErrDamaged = errors.New("store damaged")

func (e *DamagedError) Is(target error) bool { return target == ErrDamaged }

// guard runs fn, turning a panic of the storage libraries (a truncated
// table indexes past its end) and a fault on a memory-mapped file (SIGBUS
// on a truncated bolt file) into a DamagedError for file.
func guard(dir, file string, fn func() error) (err error) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if r := recover(); r != nil {
			err = &DamagedError{Dir: dir, File: file, Cause: fmt.Errorf("it cannot be read (truncated or overwritten): %s", firstLine(r))}
		}
	}()
	err = fn()
	var de *DamagedError
	// Badger wraps with %+v, not %w: its checksum error survives only
	// as text.
	if err != nil && !errors.As(err, &de) && strings.Contains(err.Error(), y.ErrChecksumMismatch.Error()) {
		err = &DamagedError{Dir: dir, File: file, Cause: err}
	}
	return err
}

// firstLine is the first non-empty line of a panic value: storage
// libraries panic with pages of diagnostics.
func firstLine(v any) string {
	for _, l := range strings.Split(fmt.Sprint(v), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "==") {
			return l
		}
	}
	return fmt.Sprint(v)
}

// checkFiles looks at the store's files before the storage libraries open
// them: those libraries panic on some damage, on goroutines of their own
// where it cannot be caught. It reads the bolt files (raft-wal's metadata,
// or an older store's raft.db) through bbolt (every page it maps must be
// in the file) and the index of every Badger table. Badger then verifies
// each block's checksum as it reads it; openLogStore checks the raft log's
// segments.
func checkFiles(dir string) error {
	if err := checkBolt(dir, filepath.Join(dir, boltLog)); err != nil {
		return err
	}
	if err := checkWALFiles(dir); err != nil {
		return err
	}
	tables, err := filepath.Glob(filepath.Join(dir, "fsm", "*.sst"))
	if err != nil {
		return err
	}
	for _, t := range tables {
		if err := checkTable(dir, t); err != nil {
			return err
		}
	}
	return nil
}

func checkBolt(dir, path string) error {
	st, err := os.Stat(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil // a new store
	}
	if err != nil {
		return fmt.Errorf("check %s: %w", path, err)
	}
	return guard(dir, path, func() error {
		db, err := bbolt.Open(path, 0o600, &bbolt.Options{ReadOnly: true, Timeout: time.Second})
		if err != nil {
			return &DamagedError{Dir: dir, File: path, Cause: err}
		}
		defer db.Close()
		return db.View(func(tx *bbolt.Tx) error {
			if tx.Size() > st.Size() {
				return &DamagedError{Dir: dir, File: path, Cause: fmt.Errorf("it is %d bytes, but its pages reach to byte %d (truncated)", st.Size(), tx.Size())}
			}
			return nil
		})
	})
}

func checkTable(dir, path string) error {
	return guard(dir, path, func() error {
		mf, err := z.OpenMmapFile(path, os.O_RDONLY, 0)
		if err != nil && !errors.Is(err, z.NewFile) {
			return &DamagedError{Dir: dir, File: path, Cause: err}
		}
		t, err := table.OpenTable(mf, table.Options{ReadOnly: true, BlockSize: badgerBlockSize, Compression: options.Snappy, ChkMode: options.NoVerification})
		if err != nil {
			return &DamagedError{Dir: dir, File: path, Cause: err}
		}
		return t.Close(-1)
	})
}
