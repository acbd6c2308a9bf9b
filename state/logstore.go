package state

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/migrate"
)

// The raft log (and raft's term and vote) live in raft-wal/: HashiCorp's
// segmented write-ahead log, Consul's log store. An append is one write and
// one fdatasync; raft-boltdb's copy-on-write B-tree, which fiat used
// before, took two syncs and rewrote pages, and cost twice as long per
// commit (see README "Store performance").
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
		if errors.Is(err, fs.ErrPermission) {
			return nil, fmt.Errorf("open raft log: %w", err)
		}
		return nil, &DamagedError{Dir: dir, File: path, Cause: err}
	}
	want, err := w.GetUint64(keyCleanLast)
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

// raftLog is raft-wal's log, with its metadata database: WAL.Close leaves
// that open (and locked), so raftLog closes it.
type raftLog struct {
	*wal.WAL
	meta *metadb.BoltMetaDB
}

func openWAL(path string, logger hclog.Logger, segmentSize int) (*raftLog, error) {
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, err
	}
	meta := &metadb.BoltMetaDB{}
	w, err := wal.Open(path, wal.WithSegmentSize(segmentSize), wal.WithLogger(logger.Named("wal")), wal.WithMetaStore(meta))
	if err != nil {
		return nil, errors.Join(err, meta.Close())
	}
	return &raftLog{WAL: w, meta: meta}, nil
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

func (l *raftLog) Close() error {
	return errors.Join(l.WAL.Close(), l.meta.Close())
}

// closeLogStore records the last index for the next open's check, then
// closes the log. Raft has shut down.
func closeLogStore(w *raftLog) error {
	last, err := w.LastIndex()
	if err == nil {
		err = w.SetUint64(keyCleanLast, last)
	}
	return errors.Join(err, w.Close())
}

// checkWALFiles refuses segments whose metadata is gone: raft-wal would
// start an empty log and delete them as leftovers.
func checkWALFiles(dir string) error {
	path := filepath.Join(dir, walDir)
	meta := filepath.Join(path, "wal-meta.db")
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

// migrateBoltLog moves a raft.db (raft's log, term and vote) into
// raft-wal/: it copies into raft-wal.new/, renames that into place and
// only then removes raft.db, so a crash at any point leaves one complete
// log (a leftover raft-wal.new/ is started again).
func migrateBoltLog(ctx context.Context, dir string, logger hclog.Logger) error {
	old := filepath.Join(dir, boltLog)
	if _, err := os.Stat(old); errors.Is(err, fs.ErrNotExist) {
		return nil
	} else if err != nil {
		return fmt.Errorf("check %s: %w", old, err)
	}
	dst := filepath.Join(dir, walDir)
	if _, err := os.Stat(dst); err == nil {
		return removeSynced(old) // the rename happened; the removal did not
	}
	tmp := dst + ".new"
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("move raft log to raft-wal: %w", err)
	}
	err := guard(dir, old, func() error { return copyBoltLog(ctx, tmp, old, logger) })
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err == nil {
		err = syncDir(dir)
	}
	if err != nil {
		return fmt.Errorf("move raft log %s to raft-wal: %w", old, err)
	}
	logger.Info("moved the raft log into raft-wal", "from", old)
	return removeSynced(old)
}

func copyBoltLog(ctx context.Context, tmp, old string, logger hclog.Logger) error {
	src, err := raftboltdb.NewBoltStore(old)
	if err != nil {
		return &DamagedError{Dir: filepath.Dir(old), File: old, Cause: err}
	}
	defer src.Close()
	w, err := openWAL(tmp, logger, walSegmentSize)
	if err != nil {
		return err
	}
	var last uint64
	if last, err = src.LastIndex(); err == nil && last > 0 {
		err = migrate.CopyLogs(ctx, w, src, 1<<20, nil)
	}
	if err == nil {
		err = migrate.CopyStable(ctx, w, src, nil, nil, nil)
	}
	if err == nil {
		err = w.SetUint64(keyCleanLast, last)
	}
	return errors.Join(err, w.Close())
}

func removeSynced(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", path, err)
	}
	return syncDir(filepath.Dir(path))
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

var (
	_ raft.LogStore          = (*raftLog)(nil)
	_ raft.MonotonicLogStore = (*raftLog)(nil)
)
