package state

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Snapshot format: snapMagic, then for each key in order uvarint(len(key)),
// key, uvarint(len(value)), value; then uvarint(0) and uvarint(count of keys).
// The trailer lets Restore tell a whole snapshot from a truncated one.
const snapMagic = "fiat-state-snapshot-1\n"

// Snapshot implements raft.FSM. Raft calls it on the FSM goroutine, between
// applies, so a Badger read transaction opened here is a consistent point in
// time; Persist streams it later, concurrently with new applies.
func (f *fsm) Snapshot() (raft.FSMSnapshot, error) {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if f.failed != nil {
		return nil, fmt.Errorf("snapshot state: %w", f.failed)
	}
	return &fsmSnapshot{txn: f.db.NewTransaction(false)}, nil
}

type fsmSnapshot struct {
	txn *badger.Txn
}

func (s *fsmSnapshot) Persist(sink raft.SnapshotSink) error {
	if err := writeSnapshot(s.txn, sink); err != nil {
		sink.Cancel()
		return fmt.Errorf("persist snapshot: %w", err)
	}
	return sink.Close()
}

func (s *fsmSnapshot) Release() { s.txn.Discard() }

func writeSnapshot(txn *badger.Txn, w io.Writer) error {
	bw := bufio.NewWriterSize(w, 256<<10)
	if _, err := bw.WriteString(snapMagic); err != nil {
		return err
	}
	var n uint64
	var buf []byte
	it := txn.NewIterator(badger.DefaultIteratorOptions)
	defer it.Close()
	for it.Rewind(); it.Valid(); it.Next() {
		item := it.Item()
		err := item.Value(func(val []byte) error {
			buf = binary.AppendUvarint(buf[:0], uint64(len(item.Key())))
			buf = append(buf, item.Key()...)
			buf = binary.AppendUvarint(buf, uint64(len(val)))
			_, err := bw.Write(buf)
			if err == nil {
				_, err = bw.Write(val)
			}
			return err
		})
		if err != nil {
			return err
		}
		n++
	}
	buf = binary.AppendUvarint(buf[:0], 0)
	buf = binary.AppendUvarint(buf, n)
	if _, err := bw.Write(buf); err != nil {
		return err
	}
	return bw.Flush()
}

// Restore implements raft.FSM: it replaces the whole state with the
// snapshot. keyApplied is written last, so a crash part way leaves an FSM
// that claims nothing applied, and the next start restores again.
func (f *fsm) Restore(rc io.ReadCloser) error {
	defer rc.Close()
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := f.restore(rc); err != nil {
		// The old state is gone and the new one incomplete.
		f.failed = fmt.Errorf("restore snapshot: %w", err)
		return f.failed
	}
	f.failed = nil
	return nil
}

func (f *fsm) restore(r io.Reader) error {
	br := bufio.NewReaderSize(r, 256<<10)
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(br, magic); err != nil || string(magic) != snapMagic {
		return errors.New("not a fiat state snapshot")
	}
	if err := f.db.DropAll(); err != nil {
		return err
	}
	wb := f.db.NewWriteBatch()
	defer wb.Cancel()
	var applied []byte
	var n uint64
	for {
		klen, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("read key length: %w", err)
		}
		if klen == 0 {
			break
		}
		key, err := readN(br, klen)
		if err != nil {
			return fmt.Errorf("read key: %w", err)
		}
		vlen, err := binary.ReadUvarint(br)
		if err != nil {
			return fmt.Errorf("read value length: %w", err)
		}
		val, err := readN(br, vlen)
		if err != nil {
			return fmt.Errorf("read value of %s: %w", key, err)
		}
		n++
		if string(key) == keyApplied {
			applied = val
			continue
		}
		if err := wb.Set(key, val); err != nil {
			return err
		}
	}
	count, err := binary.ReadUvarint(br)
	if err != nil {
		return fmt.Errorf("read trailer: %w", err)
	}
	if count != n {
		return fmt.Errorf("snapshot holds %d keys but its trailer says %d", n, count)
	}
	if err := wb.Flush(); err != nil {
		return err
	}
	f.applied = 0
	if applied != nil {
		if f.applied, err = decodeUint(applied); err != nil {
			return err
		}
		return f.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte(keyApplied), applied) })
	}
	return nil
}

// readN reads exactly n bytes; n comes from the stream, so it is bounded
// before allocating.
func readN(r io.Reader, n uint64) ([]byte, error) {
	if n > maxEntryBytes*4 {
		return nil, fmt.Errorf("length %d is implausible", n)
	}
	b := make([]byte, n)
	_, err := io.ReadFull(r, b)
	return b, err
}
