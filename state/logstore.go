package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	walfs "github.com/hashicorp/raft-wal/fs"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
	"go.etcd.io/bbolt"
)

// The raft log (and raft's term and vote) live in raft-wal/: HashiCorp's
// segmented write-ahead log, Consul's log store. An append is one write and
// one fdatasync; raft-boltdb's copy-on-write B-tree, which fiat used
// before, took two syncs and rewrote pages, and cost twice as long per
// commit (README, "Performance").
const (
	walDir = "raft-wal"
	// boltLog is the log of stores written by fiat before raft-wal; open
	// moves it into raft-wal/ once.
	boltLog = "raft.db"
	// walSegmentSize is the size of a log segment, preallocated: small for
	// the embedded store, which snapshots at close and so holds one or two,
	// and raft-wal's default for a server. An append larger than what is
	// left goes in anyway, and the next starts a new segment.
	walSegmentSize        = 4 << 20
	walClusterSegmentSize = 64 << 20
	// walAppendBytes bounds one append to raft-wal: each segment keeps a
	// write buffer the size of the largest append it took for as long as
	// it is in the log (~230 MB on a leader holding 50,000 entities, when
	// a commit's entries went in as one append). Larger batches are split;
	// each part is synced, and a crash between them leaves a prefix, which
	// raft handles as it does any append cut short.
	walAppendBytes = 256 << 10
)

// keyCleanLast is the log's last index when it was last closed cleanly.
// raft-wal cannot tell a tail segment cut short by damage from one cut by
// a crash (it trusts its last commit frame); after a clean close a shorter
// log can only be damage.
var keyCleanLast = []byte("fiat.CleanLastIndex")

// openLogStore opens dir's raft log, first moving a raft.db into it if the
// store predates raft-wal. A log shorter than at its last clean close, or
// segments without their metadata, are a DamagedError. A cluster node
// clears the mark once checked: a follower may drop uncommitted entries
// from its tail, as a single voter never does.
func openLogStore(ctx context.Context, dir string, logger hclog.Logger, cluster bool) (*raftLog, error) {
	if err := migrateBoltLog(ctx, dir, logger); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, walDir)
	size := walSegmentSize
	if cluster {
		size = walClusterSegmentSize
	}
	w, err := openWAL(path, logger, size)
	if err != nil {
		return nil, walError(dir, path, err)
	}
	err = w.checkSegments(dir)
	var want uint64
	if err == nil {
		want, err = w.GetUint64(keyCleanLast)
	}
	if err == nil {
		var last uint64
		if last, err = w.LastIndex(); err == nil && last < want {
			err = &DamagedError{Dir: dir, File: path, Cause: fmt.Errorf("the log ends at index %d, but it ended at %d when it was last closed (a segment was cut short or lost)", last, want)}
		}
	}
	if err == nil && cluster && want != 0 {
		err = w.SetUint64(keyCleanLast, 0)
	}
	if err != nil {
		w.Close()
		return nil, err
	}
	return w, nil
}

// raftLog is raft-wal's log, and its metadata database, which lists the
// segments for checkSegments.
type raftLog struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
	path string
}

// walError says whether raft-wal failed to open a log because it is
// damaged (a DamagedError) or for some other reason (a full disk, a
// permission): only the first means a backup is needed.
func walError(dir, path string, err error) error {
	if !isDamage(err) {
		return fmt.Errorf("open raft log %s: %w", path, err)
	}
	return &DamagedError{Dir: dir, File: path, Cause: err}
}

// isDamage tells the errors of files that are not what was written from
// those of a disk or system in trouble.
func isDamage(err error) bool {
	var corrupt bool
	for _, e := range []error{types.ErrCorrupt, io.EOF, io.ErrUnexpectedEOF, fs.ErrNotExist,
		bbolt.ErrInvalid, bbolt.ErrChecksum, bbolt.ErrVersionMismatch} {
		corrupt = corrupt || errors.Is(err, e)
	}
	// raft-wal's checks of its segments and its metadata say so in words.
	for _, m := range []string{"unsealed segment is not at tail", "uses an unknown codec", "has no index block"} {
		corrupt = corrupt || strings.Contains(err.Error(), m)
	}
	for _, e := range []error{syscall.ENOSPC, syscall.EDQUOT, syscall.EIO, syscall.EMFILE, syscall.ENFILE, fs.ErrPermission} {
		corrupt = corrupt && !errors.Is(err, e)
	}
	return corrupt
}

// checkSegments reads the first entry of every segment and the last of
// every sealed one. raft-wal checks only a sealed segment's header when it
// opens it, and a sealed segment cut short loses its index (at its end)
// first: without this its entries would fail only when raft reads them.
func (l *raftLog) checkSegments(dir string) error {
	st, err := l.meta.Load(l.path)
	if err != nil {
		return walError(dir, l.path, err)
	}
	first, err := l.FirstIndex()
	if err != nil {
		return walError(dir, l.path, err)
	}
	for _, seg := range st.Segments {
		check := []uint64{max(seg.BaseIndex, seg.MinIndex, first)}
		if !seg.SealTime.IsZero() {
			check = append(check, seg.MaxIndex)
		}
		for _, i := range check {
			if i < first || !seg.SealTime.IsZero() && i > seg.MaxIndex {
				continue // all of it before the log's start, or empty
			}
			var e raft.Log
			err := l.GetLog(i, &e)
			switch {
			case err == nil || errors.Is(err, raft.ErrLogNotFound) && seg.SealTime.IsZero():
			case isDamage(err) || errors.Is(err, raft.ErrLogNotFound):
				name := filepath.Join(l.path, segment.FileName(seg))
				return &DamagedError{Dir: dir, File: name, Cause: fmt.Errorf("its entry %d cannot be read (cut short or overwritten): %w", i, err)}
			default:
				return fmt.Errorf("read raft log entry %d: %w", i, err)
			}
		}
	}
	return nil
}

func openWAL(path string, logger hclog.Logger, segmentSize int) (*raftLog, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	meta := &metadb.BoltMetaDB{}
	if err := finishRotation(meta, path, segmentSize); err != nil {
		return nil, errors.Join(err, meta.Close())
	}
	w, err := wal.Open(path, wal.WithSegmentSize(segmentSize), wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta))
	if err != nil {
		return nil, errors.Join(err, meta.Close())
	}
	return &raftLog{WAL: w, meta: meta, path: path}, nil
}

// finishRotation completes a segment rotation left half done. When an
// append fills the tail segment, raft-wal seals the file at once and
// records it in its metadata (with a new tail) later, on a goroutine of
// its own; a crash in between, or a Close that wins the race, leaves a
// sealed file listed as the tail. raft-wal v0.4.1 opens that log and then
// refuses every append ("segment is sealed"). This does what its
// rotation would have: records the seal and a new, empty tail, which
// raft-wal creates when it opens the log.
//
// It loads meta for the path, as wal.Open then does again, cheaply, with
// the same meta.
func finishRotation(meta *metadb.BoltMetaDB, path string, segmentSize int) error {
	if _, err := os.Stat(filepath.Join(path, metadb.FileName)); err != nil {
		return nil // a new log; or damage, which the checks report
	}
	st, err := meta.Load(path)
	if err != nil || len(st.Segments) == 0 {
		return err
	}
	tail := st.Segments[len(st.Segments)-1]
	if !tail.SealTime.IsZero() {
		return nil
	}
	sw, err := segment.NewFiler(path, walfs.New()).RecoverTail(tail)
	if err != nil {
		return nil // missing or unreadable: raft-wal's open handles it or reports it
	}
	sealed, indexStart, err := sw.Sealed()
	last := sw.LastIndex()
	sw.Close()
	if err != nil || !sealed {
		return err
	}
	tail.SealTime, tail.MaxIndex, tail.IndexStart = time.Now(), last, indexStart
	st.Segments[len(st.Segments)-1] = tail
	st.Segments = append(st.Segments, types.SegmentInfo{
		ID: st.NextSegmentID, BaseIndex: last + 1, MinIndex: last + 1, SizeLimit: uint32(segmentSize),
		Codec: wal.CodecBinaryV1, CreateTime: time.Now(),
	})
	st.NextSegmentID++
	if err := meta.CommitState(st); err != nil {
		return fmt.Errorf("finish the rotation of raft log segment %d: %w", tail.ID, err)
	}
	return nil
}

func (l *raftLog) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

// StoreLogs appends logs in parts of about walAppendBytes. If a part
// fails, the parts before it are taken back: raft expects all or nothing
// of a failed StoreLogs, and would else try to append them again, which
// raft-wal refuses.
func (l *raftLog) StoreLogs(logs []*raft.Log) error {
	for done := 0; done < len(logs); {
		n, size := done+1, len(logs[done].Data)
		for n < len(logs) && size+len(logs[n].Data) <= walAppendBytes {
			size += len(logs[n].Data)
			n++
		}
		if err := l.WAL.StoreLogs(logs[done:n]); err != nil {
			if done > 0 {
				err = errors.Join(err, l.WAL.DeleteRange(logs[0].Index, logs[done-1].Index))
			}
			return err
		}
		done = n
	}
	return nil
}

// DeleteRange clears the clean-close mark before it empties the log (a
// restore does, before its first entry): a crash in between must not read
// as a log cut short.
func (l *raftLog) DeleteRange(min, max uint64) error {
	if last, err := l.LastIndex(); err != nil {
		return err
	} else if max >= last {
		if err := l.SetUint64(keyCleanLast, 0); err != nil {
			return err
		}
	}
	return l.WAL.DeleteRange(min, max)
}

// Close closes the log; raft-wal closes its metadata database with it.
func (l *raftLog) Close() error { return l.WAL.Close() }

// closeLogStore records the last index for the next open's check, then
// closes the log. Raft has shut down.
func closeLogStore(w *raftLog) error {
	last, err := w.LastIndex()
	if err == nil {
		// Deleting past the end changes nothing but waits for a rotation
		// raft-wal has queued, which Close would drop (finishRotation).
		err = w.WAL.DeleteRange(last+1, last+1)
	}
	if err == nil {
		err = w.SetUint64(keyCleanLast, last)
	}
	return errors.Join(err, w.Close())
}

// checkWALFiles refuses segments whose metadata is gone: raft-wal would
// start an empty log and delete them as leftovers.
func checkWALFiles(dir string) error {
	path := filepath.Join(dir, walDir)
	meta := filepath.Join(path, metadb.FileName)
	if err := checkBolt(dir, meta); err != nil {
		return err
	}
	segs, err := filepath.Glob(filepath.Join(path, "*.wal"))
	if err != nil {
		return err
	}
	if _, err := os.Stat(meta); errors.Is(err, fs.ErrNotExist) && len(segs) > 0 {
		return &DamagedError{Dir: dir, File: meta, Cause: fmt.Errorf("it is missing, and without it the %d log segments beside it cannot be read", len(segs))}
	}
	return nil
}

var (
	_ raft.LogStore          = (*raftLog)(nil)
	_ raft.MonotonicLogStore = (*raftLog)(nil)
)
