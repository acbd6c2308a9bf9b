package state

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"syscall"
)

// MinFreeBytes is the free space an apply needs in the data directory's
// file system before it writes anything: room for the journal, a Badger
// memtable flush and a new value log file. FIAT_MIN_FREE_BYTES overrides it
// (a store on a small disk, tests).
const MinFreeBytes = 64 << 20

// ErrLowSpace marks an apply refused because the store's disk is nearly
// full: running out mid-apply would leave the rollback itself without room.
var ErrLowSpace = errors.New("not enough free disk space")

// CheckFreeSpace refuses, with the numbers, when the data directory's file
// system has less than the minimum free: before an apply starts.
func (s *Store) CheckFreeSpace() error {
	need, free, err := s.space()
	if err != nil {
		return err
	}
	if free < need {
		return fmt.Errorf("%w in %s: %s free, an apply needs at least %s (the journal, the store's tables and logs, and room to roll back); free some space or move the store (-data-dir), then apply again. Nothing was changed",
			ErrLowSpace, s.dir, megabytes(free), megabytes(need))
	}
	return nil
}

// CheckSpaceReserve is the check made while an apply runs, before each
// step and the commit: half the minimum must still be free, the room the
// rollback needs. Badger writes through memory-mapped files, and a write
// the disk cannot hold kills the process (SIGBUS) rather than fail; so the
// apply stops, and rolls back, before the disk is full.
// writes is what the next step is about to write (a commit's entities;
// 0 for a journal record, which is small): it must fit with the reserve
// left over, counted three times (the raft log, Badger's log and its
// tables).
func (s *Store) CheckSpaceReserve(writes uint64) error {
	need, free, err := s.space()
	if err != nil {
		return err
	}
	if reserve := need / 2; free < reserve+3*writes {
		return fmt.Errorf("%w in %s: %s left, and the apply keeps %s in reserve to roll back (plus %s for what it is about to write); it stops here and rolls back. Free some space or move the store (-data-dir), then apply again",
			ErrLowSpace, s.dir, megabytes(free), megabytes(reserve), megabytes(3*writes))
	}
	return nil
}

func (s *Store) space() (need, free uint64, err error) {
	need = MinFreeBytes
	if v := os.Getenv("FIAT_MIN_FREE_BYTES"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return 0, 0, fmt.Errorf("FIAT_MIN_FREE_BYTES=%q: want a number of bytes", v)
		}
		need = n
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fs); err != nil {
		return 0, 0, fmt.Errorf("check free space in %s: %w", s.dir, err)
	}
	return need, fs.Bavail * uint64(fs.Bsize), nil
}

func megabytes(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
