package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"github.com/hashicorp/raft-wal/migrate"
)

// Stores written by fiat before raft-wal keep raft's log, term and vote in
// raft.db (raft-boltdb). Their first open moves them into raft-wal/.

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
		return removeMovedBoltLog(dir, old, dst, logger)
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

// removeMovedBoltLog removes a raft.db found beside raft-wal/: the copy a
// crash kept from being removed after the move, or one an older fiat
// created (empty when it refused the store). If its last entry is not the
// same entry in raft-wal/, an older fiat wrote to the store after the
// move; those writes are not dropped silently.
func removeMovedBoltLog(dir, old, dst string, logger hclog.Logger) error {
	return guard(dir, old, func() error {
		src, err := raftboltdb.NewBoltStore(old)
		if err != nil {
			return walError(dir, old, err)
		}
		var last uint64
		var want, got raft.Log
		if last, err = src.LastIndex(); err == nil && last > 0 {
			err = src.GetLog(last, &want)
		}
		src.Close()
		if err != nil {
			return fmt.Errorf("read %s: %w", old, err)
		}
		if last > 0 {
			w, err := openWAL(dst, logger, walSegmentSize)
			if err != nil {
				return walError(dir, dst, err)
			}
			err = w.GetLog(last, &got)
			w.Close()
			if err != nil || got.Term != want.Term || got.Type != want.Type || !bytes.Equal(got.Data, want.Data) {
				return fmt.Errorf("%s holds raft entries up to index %d that %s does not: a fiat older than raft-wal wrote to this store after its log moved. "+
					"Run the older fiat on it, or remove %s to drop what that fiat wrote", old, last, dst, old)
			}
		}
		return removeSynced(old)
	})
}

func copyBoltLog(ctx context.Context, tmp, old string, logger hclog.Logger) error {
	src, err := raftboltdb.NewBoltStore(old)
	if err != nil {
		return walError(filepath.Dir(old), old, err)
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
		err = copyStable(w, src)
	}
	if err == nil {
		err = w.SetUint64(keyCleanLast, last)
	}
	return errors.Join(err, w.Close())
}

// copyStable copies raft's term and vote. raft-wal's migrate.CopyStable
// fails on a missing key, and a node that never voted (or never started)
// has none.
func copyStable(dst, src raft.StableStore) error {
	for _, k := range []string{"CurrentTerm", "LastVoteTerm"} {
		v, err := src.GetUint64([]byte(k))
		if errors.Is(err, raftboltdb.ErrKeyNotFound) {
			continue
		} else if err != nil {
			return fmt.Errorf("read %s: %w", k, err)
		}
		if err := dst.SetUint64([]byte(k), v); err != nil {
			return fmt.Errorf("write %s: %w", k, err)
		}
	}
	v, err := src.Get([]byte("LastVoteCand"))
	if errors.Is(err, raftboltdb.ErrKeyNotFound) {
		return nil
	} else if err != nil {
		return fmt.Errorf("read LastVoteCand: %w", err)
	}
	return dst.Set([]byte("LastVoteCand"), v)
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
