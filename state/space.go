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
// system has less than the minimum free.
func (s *Store) CheckFreeSpace() error {
	need := uint64(MinFreeBytes)
	if v := os.Getenv("FIAT_MIN_FREE_BYTES"); v != "" {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			return fmt.Errorf("FIAT_MIN_FREE_BYTES=%q: want a number of bytes", v)
		}
		need = n
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(s.dir, &fs); err != nil {
		return fmt.Errorf("check free space in %s: %w", s.dir, err)
	}
	free := fs.Bavail * uint64(fs.Bsize)
	if free < need {
		return fmt.Errorf("%w in %s: %s free, an apply needs at least %s (the journal, the store's tables and logs, and room to roll back); free some space or move the store (-data-dir), then apply again. Nothing was changed",
			ErrLowSpace, s.dir, megabytes(free), megabytes(need))
	}
	return nil
}

func megabytes(n uint64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }
