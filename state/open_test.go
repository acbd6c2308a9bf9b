package state

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
)

func openTestWAL(t *testing.T, dir string) *raftLog {
	t.Helper()
	w, err := openWAL(filepath.Join(dir, walDir), hclog.NewNullLogger(), walSegmentSize)
	if err != nil {
		t.Fatal(err)
	}
	return w
}

// raftLogState returns the last index and the saved term of dir's raft log.
func raftLogState(t *testing.T, dir string) (last, term uint64) {
	t.Helper()
	b := openTestWAL(t, dir)
	defer b.Close()
	var err error
	if last, err = b.LastIndex(); err != nil {
		t.Fatal(err)
	}
	if term, err = b.GetUint64(keyCurrentTerm); err != nil {
		t.Fatal(err)
	}
	return last, term
}

// An existing store opens raft while Badger opens; the checks of the FSM
// against the log still come before raft writes anything: a raft log
// older than the FSM is refused and left exactly as long as it was.
func TestOlderRaftLogIsRefusedUntouched(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustCommit(t, s, mustLock(t, s, "a"), Commit{Stack: "a"})
	s.Close()
	old := copyDir(t, filepath.Join(dir, walDir))
	s = openStore(t, dir)
	mustCommit(t, s, mustLock(t, s, "b"), Commit{Stack: "b"})
	s.Close()
	if err := os.RemoveAll(filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(old, filepath.Join(dir, walDir)); err != nil {
		t.Fatal(err)
	}
	before, _ := raftLogState(t, dir)
	for range 2 {
		if _, err := Open(context.Background(), Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "older than the state") {
			t.Fatalf("Open with an older raft log: %v", err)
		}
	}
	if after, _ := raftLogState(t, dir); after != before {
		t.Errorf("the refused open wrote to the raft log: last index %d, was %d", after, before)
	}
}

// The embedded voter keeps its term in memory and saves it at close; when
// a crash loses it, the term is taken from the log, so it never goes back.
func TestVoterTermNeverGoesBack(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustCommit(t, s, mustLock(t, s, "a"), Commit{Stack: "a"})
	s.Close()
	last, term := raftLogState(t, dir)
	if term == 0 {
		t.Fatal("close saved no term")
	}
	// As if the process died before close: the saved term is behind.
	b := openTestWAL(t, dir)
	var l raft.Log
	if err := b.GetLog(last, &l); err != nil {
		t.Fatal(err)
	}
	if err := b.SetUint64(keyCurrentTerm, 0); err != nil {
		t.Fatal(err)
	}
	vs, err := newVoterStable(b, raft.NewInmemSnapshotStore())
	if err != nil {
		t.Fatal(err)
	}
	if got, _ := vs.GetUint64(keyCurrentTerm); got != l.Term {
		t.Errorf("term after a lost save: %d, want the last entry's %d", got, l.Term)
	}
	b.Close()

	s = openStore(t, dir)
	mustCommit(t, s, mustLock(t, s, "b"), Commit{Stack: "b"})
	s.Close()
	last2, term2 := raftLogState(t, dir)
	if err := func() error {
		b := openTestWAL(t, dir)
		defer b.Close()
		return b.GetLog(last2, &l)
	}(); err != nil {
		t.Fatal(err)
	}
	if term2 <= term || l.Term != term2 {
		t.Errorf("terms: before %d, after %d, last entry's %d; want a new, greater term on the entries", term, term2, l.Term)
	}
}

// A store whose FSM lost everything (its directory removed) but whose log
// holds every entry is rebuilt by the replay before Open returns: the
// first read sees all of it. (Raft counts an entry applied when it hands
// it to the FSM's goroutine; Open waits for the FSM itself.)
func TestOpenWaitsForTheReplay(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "a")
	for i := range 20 {
		mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", fmt.Sprint(i), 100)}})
	}
	s.Close()
	for range 5 {
		if err := os.RemoveAll(filepath.Join(dir, "fsm")); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir)
		ents, err := s.List(context.Background(), "a")
		s.Close()
		if err != nil || len(ents) != 20 {
			t.Fatalf("right after Open: %d entities (%v), want the 20 the log holds", len(ents), err)
		}
	}
}

// A store a crash left with an unflushed memtable of the old, larger size
// (8 MiB, before the memtable shrank) opens: Badger replays the memtable
// into one of the size its write-ahead file shows, not a smaller one.
func TestOpenReplaysALargerMemtable(t *testing.T) {
	dir := t.TempDir()
	fsmDir := filepath.Join(dir, "fsm")
	opts := badgerOptions(fsmDir).WithMemTableSize(8 << 20).WithValueThreshold(1 << 20)
	db, err := badger.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	// 5 MB of entries: more than a 4 MiB memtable holds.
	wb := db.NewWriteBatch()
	for i := range 5000 {
		if err := wb.Set([]byte(fmt.Sprintf("x/%05d", i)), make([]byte, 1000)); err != nil {
			t.Fatal(err)
		}
	}
	if err := wb.Flush(); err != nil {
		t.Fatal(err)
	}
	// As a crash would leave it: the memtable's write-ahead file, unflushed.
	mems, _ := filepath.Glob(filepath.Join(fsmDir, "*.mem"))
	if len(mems) == 0 {
		t.Fatal("no memtable file to replay")
	}
	saved := map[string][]byte{}
	for _, m := range mems {
		b, err := os.ReadFile(m)
		if err != nil {
			t.Fatal(err)
		}
		saved[m] = b
	}
	db.Close()
	for m, b := range saved {
		os.WriteFile(m, b, 0o600)
	}
	if got := memTableSize(fsmDir); got < 8<<20 {
		t.Fatalf("memtable size %d for a store with 8 MiB memtables", got)
	}
	db, err = badger.Open(badgerOptions(fsmDir))
	if err != nil {
		t.Fatal(err)
	}
	db.Close()
}
