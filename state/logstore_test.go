package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	wal "github.com/hashicorp/raft-wal"
	"github.com/hashicorp/raft-wal/metadb"
	"github.com/hashicorp/raft-wal/segment"
	"github.com/hashicorp/raft-wal/types"
)

// A batch larger than walAppendBytes goes in as several appends, all of it
// readable after a reopen; when a part fails, the parts before it are
// taken back, so a failed StoreLogs leaves the log as it was.
func TestLargeAppendsAreSplit(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir)
	batch := func(from, n int) []*raft.Log {
		var logs []*raft.Log
		for i := range n {
			logs = append(logs, &raft.Log{Index: uint64(from + i), Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(i)}, 100<<10)})
		}
		return logs
	}
	if err := w.StoreLogs(batch(1, 10)); err != nil {
		t.Fatal(err)
	}
	bad := batch(11, 6)
	bad[4].Index = 40 // a gap: raft-wal refuses the part holding it
	if err := w.StoreLogs(bad); err == nil {
		t.Fatal("a batch with a gap was stored")
	}
	if last, _ := w.LastIndex(); last != 10 {
		t.Errorf("after the failed batch the log ends at %d, want 10", last)
	}
	if err := w.StoreLogs(batch(11, 3)); err != nil {
		t.Fatalf("append after the failed batch: %v", err)
	}
	closeLogStore(w)
	w = openTestWAL(t, dir)
	defer w.Close()
	for i := uint64(1); i <= 13; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil || len(l.Data) != 100<<10 || l.Data[0] != byte((i-1)%10) {
			t.Fatalf("entry %d: %v, %d bytes", i, err, len(l.Data))
		}
	}
}

// A follower drops uncommitted entries from its log's tail when a new
// leader's differ; the log must still read after a restart. (raft-wal
// v0.4.0 sealed the segment without its index, and every entry before the
// cut was unreadable after a reopen: hashicorp/raft-wal#31, fixed in
// v0.4.1.)
func TestTailTruncationSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir)
	var logs []*raft.Log
	for i := 1; i <= 10; i++ {
		logs = append(logs, &raft.Log{Index: uint64(i), Term: 1, Type: raft.LogCommand, Data: []byte("x")})
	}
	if err := w.StoreLogs(logs); err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(9, 10); err != nil {
		t.Fatal(err)
	}
	if err := w.StoreLogs([]*raft.Log{{Index: 9, Term: 2, Type: raft.LogCommand, Data: []byte("y")}}); err != nil {
		t.Fatal(err)
	}
	closeLogStore(w)
	w = openTestWAL(t, dir)
	defer w.Close()
	for i := uint64(1); i <= 9; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d after a reopen: %v", i, err)
		}
	}
	if last, _ := w.LastIndex(); last != 9 {
		t.Errorf("last index %d, want 9", last)
	}
}

// A sealed segment cut short is damage at open, not an error the first
// time raft reads an entry from it.
func TestCutSealedSegmentIsDamage(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "a")
	for i := range 30 { // ~6 MB of entries: more than one 4 MiB segment
		mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", fmt.Sprint(i), 200<<10)}})
	}
	s.Close()
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if len(segs) < 2 {
		t.Fatalf("%d segments, want a sealed one and the tail", len(segs))
	}
	if err := os.Truncate(segs[0], 1<<20); err != nil {
		t.Fatal(err)
	}
	_, err := Open(context.Background(), Options{Dir: dir})
	var de *DamagedError
	if !errors.As(err, &de) || de.File != segs[0] {
		t.Fatalf("Open with a cut sealed segment: %v, want a DamagedError naming %s", err, segs[0])
	}
}

// A restore empties the log before it appends; a crash in between is not
// a log cut short.
func TestEmptiedLogIsNotDamage(t *testing.T) {
	dir := t.TempDir()
	w := openTestWAL(t, dir)
	if err := w.StoreLogs([]*raft.Log{{Index: 1, Term: 1, Data: []byte("a")}, {Index: 2, Term: 1, Data: []byte("b")}}); err != nil {
		t.Fatal(err)
	}
	closeLogStore(w) // clean close: the mark says 2
	w, err := openLogStore(context.Background(), dir, hclog.NewNullLogger(), false)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.DeleteRange(1, 2); err != nil {
		t.Fatal(err)
	}
	w.Close() // a crash: no mark written
	w, err = openLogStore(context.Background(), dir, hclog.NewNullLogger(), false)
	if err != nil {
		t.Fatalf("open after the log was emptied: %v", err)
	}
	w.Close()
}

// Only a log that is damaged reads as damage: a full disk or a permission
// is an error to fix, not a reason to restore a backup.
func TestWALErrorSaysDamageOnlyForDamage(t *testing.T) {
	for _, c := range []struct {
		err     error
		damaged bool
	}{
		{fmt.Errorf("open segment: %w", types.ErrCorrupt), true},
		{errors.New("sealed segment has no index block"), true},
		{&os.PathError{Op: "open", Path: "x.wal", Err: fs.ErrNotExist}, true},
		{fmt.Errorf("failed to create segment: %w", &os.PathError{Op: "fallocate", Path: "x.wal", Err: syscall.ENOSPC}), false},
		{&os.PathError{Op: "open", Path: "wal-meta.db", Err: syscall.EACCES}, false},
		{errors.New("something else"), false},
	} {
		if got := errors.Is(walError("d", "d/raft-wal", c.err), ErrDamaged); got != c.damaged {
			t.Errorf("%v: damaged %v, want %v", c.err, got, c.damaged)
		}
	}
}

// A crash between raft-wal sealing a full segment and recording the seal
// (its rotation runs on a goroutine of its own) leaves a sealed file
// listed as the tail; the log must still take appends after a reopen.
func TestHalfDoneRotationIsFinished(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, walDir)
	w, err := openWAL(path, hclog.NewNullLogger(), 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	var next uint64 = 1
	appendN := func(w *raftLog, n int) {
		t.Helper()
		for range n {
			if err := w.StoreLogs([]*raft.Log{{Index: next, Term: 1, Type: raft.LogCommand, Data: bytes.Repeat([]byte{byte(next)}, 1000)}}); err != nil {
				t.Fatalf("append %d: %v", next, err)
			}
			next++
		}
	}
	appendN(w, 20) // 20 KB: the first 8 KiB segment sealed, rotated
	closeLogStore(w)
	// Undo the rotation in the metadata, as a crash before it would have.
	meta := &metadb.BoltMetaDB{}
	st, err := meta.Load(path)
	if err != nil || len(st.Segments) < 2 {
		t.Fatalf("segments %v (%v), want a sealed one and a tail", st.Segments, err)
	}
	if n := len(st.Segments); st.Segments[n-2].SealTime.IsZero() || !st.Segments[n-1].SealTime.IsZero() {
		t.Fatalf("segments %+v, want a sealed one, then the tail", st.Segments)
	}
	gone := st.Segments[len(st.Segments)-1]
	os.Remove(filepath.Join(path, segment.FileName(gone)))
	st.Segments = st.Segments[:len(st.Segments)-1]
	tail := &st.Segments[len(st.Segments)-1]
	tail.SealTime, tail.MaxIndex, tail.IndexStart = time.Time{}, 0, 0
	if err := errors.Join(meta.CommitState(st), meta.Close()); err != nil {
		t.Fatal(err)
	}
	next = lastOf(t, path) + 1
	w, err = openWAL(path, hclog.NewNullLogger(), 8<<10)
	if err != nil {
		t.Fatal(err)
	}
	appendN(w, 5)
	for i := uint64(1); i < next; i++ {
		var l raft.Log
		if err := w.GetLog(i, &l); err != nil {
			t.Fatalf("entry %d: %v", i, err)
		}
	}
	w.Close()
}

func lastOf(t *testing.T, path string) uint64 {
	t.Helper()
	w, err := wal.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	last, _ := w.LastIndex()
	return last
}
