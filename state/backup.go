package state

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"io"
	"os"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// A backup (fiat operator snapshot save) is one header line of JSON, then
// the FSM's snapshot stream (snapshot.go), then a line with the sha256 of
// that stream. The header's applied index lets a restore into a younger
// cluster put raft's log past it, so no replayed entry is skipped.
const backupMagic = "fiat-backup-1 "

type backupHeader struct {
	StoreID string    `json:"store_id"`
	Applied uint64    `json:"applied_index"`
	Time    time.Time `json:"time"`
	Node    string    `json:"node"`
}

// SaveBackup writes a consistent copy of the whole store to w (a
// linearizable read: on a cluster, only the leader serves it).
func (s *Store) SaveBackup(ctx context.Context, w io.Writer) error {
	id, err := s.Identity(ctx)
	if err != nil {
		return fmt.Errorf("save backup: %w", err)
	}
	err = s.read(ctx, func(txn *badger.Txn) error {
		applied, err := getUint(txn, keyApplied)
		if err != nil {
			return err
		}
		h, _ := json.Marshal(backupHeader{StoreID: id.ID, Applied: applied, Time: s.now().UTC(), Node: s.NodeID()})
		if _, err := fmt.Fprintf(w, "%s%s\n", backupMagic, h); err != nil {
			return err
		}
		sum := sha256.New()
		if err := writeSnapshot(txn, io.MultiWriter(w, sum)); err != nil {
			return err
		}
		_, err = fmt.Fprintf(w, "\nsha256 %x\n", sum.Sum(nil))
		return err
	})
	if err != nil {
		return fmt.Errorf("save backup: %w", err)
	}
	return nil
}

// RestoreBackup replaces the whole store with a backup, on every node. The
// file is read and checked to its end before anything changes: a damaged or
// truncated backup is refused and the store is left as it was.
func (s *Store) RestoreBackup(ctx context.Context, r io.Reader) error {
	tmp, err := os.CreateTemp(s.dir, "restore-*.tmp")
	if err != nil {
		return fmt.Errorf("restore backup: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	hdr, size, err := checkBackup(r, tmp)
	if err != nil {
		return fmt.Errorf("restore backup: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("restore backup: %w", err)
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.closed {
		return ErrClosed
	}
	meta := &raft.SnapshotMeta{Version: raft.SnapshotVersionMax, Index: hdr.Applied, Term: 1, Size: size}
	if err := s.node.raft.Restore(meta, tmp, timeoutOf(ctx)); err != nil {
		return fmt.Errorf("restore backup: %w", s.notLeader(err))
	}
	return nil
}

// checkBackup reads a whole backup, copying its snapshot stream to out,
// and checks its header, its structure and its checksum.
func checkBackup(r io.Reader, out io.Writer) (backupHeader, int64, error) {
	var hdr backupHeader
	br := bufio.NewReaderSize(r, 256<<10)
	line, err := br.ReadString('\n')
	if err != nil || len(line) < len(backupMagic) || line[:len(backupMagic)] != backupMagic {
		return hdr, 0, errors.New("not a fiat backup (made by `fiat operator snapshot save`)")
	}
	if err := json.Unmarshal([]byte(line[len(backupMagic):]), &hdr); err != nil {
		return hdr, 0, fmt.Errorf("read backup header: %w", err)
	}
	sum := sha256.New()
	cw := &countWriter{w: io.MultiWriter(out, sum)}
	if err := copySnapshot(br, cw); err != nil {
		return hdr, 0, fmt.Errorf("the backup is damaged or cut short: %w", err)
	}
	var want string
	if _, err := fmt.Fscanf(br, "\nsha256 %s\n", &want); err != nil {
		return hdr, 0, fmt.Errorf("the backup is cut short: no checksum at its end")
	}
	if got := hex.EncodeToString(sum.Sum(nil)); got != want {
		return hdr, 0, fmt.Errorf("the backup is damaged: its sha256 is %s, not %s", got, want)
	}
	return hdr, cw.n, nil
}

// copySnapshot copies one snapshot stream (snapMagic, records, trailer)
// from r to w, checking its structure as restore will read it.
func copySnapshot(r *bufio.Reader, w io.Writer) error {
	magic := make([]byte, len(snapMagic))
	if _, err := io.ReadFull(r, magic); err != nil || string(magic) != snapMagic {
		return errors.New("not a fiat state snapshot")
	}
	w.Write(magic)
	var n uint64
	for {
		klen, err := readUvarintTo(r, w)
		if err != nil {
			return err
		}
		if klen == 0 {
			break
		}
		if err := copyN(r, w, klen); err != nil {
			return err
		}
		vlen, err := readUvarintTo(r, w)
		if err != nil {
			return err
		}
		if err := copyN(r, w, vlen); err != nil {
			return err
		}
		n++
	}
	count, err := readUvarintTo(r, w)
	if err != nil {
		return err
	}
	if count != n {
		return fmt.Errorf("snapshot holds %d keys but its trailer says %d", n, count)
	}
	return nil
}

func readUvarintTo(r *bufio.Reader, w io.Writer) (uint64, error) {
	v, err := binary.ReadUvarint(r)
	if err != nil {
		return 0, err
	}
	_, err = w.Write(binary.AppendUvarint(nil, v))
	return v, err
}

func copyN(r io.Reader, w io.Writer, n uint64) error {
	if n > maxEntryBytes*4 {
		return fmt.Errorf("length %d is implausible", n)
	}
	_, err := io.CopyN(w, r, int64(n))
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// Digest is the sha256 of every key and value in this node's FSM, and its
// applied index: two nodes that applied the same log have the same. It
// reads this node's copy as it is (tests compare nodes after recovery).
func (s *Store) Digest(ctx context.Context) (applied uint64, digest string, err error) {
	err = s.read(WithStale(ctx), func(txn *badger.Txn) error {
		if applied, err = getUint(txn, keyApplied); err != nil {
			return err
		}
		h := sha256.New()
		if err := writeSnapshot(txn, h); err != nil {
			return err
		}
		digest = hex.EncodeToString(h.Sum(nil))
		return nil
	})
	return applied, digest, err
}
