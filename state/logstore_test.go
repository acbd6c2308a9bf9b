package state

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/raft"
)

// boltLogFixture unpacks a store written by fiat before raft-wal: its log
// in raft.db (entries 386–597), a snapshot at 513, a stack "stack" of five
// fiat_data resources at revision 85, fiat_data.r0's input last set to
// "v0-85".
func boltLogFixture(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("tar", "-xzf", "testdata/store-boltlog.tar.gz", "-C", dir).CombinedOutput(); err != nil {
		t.Fatalf("tar: %v %s", err, out)
	}
	return filepath.Join(dir, ".fiat")
}

func checkBoltLogFixture(t *testing.T, s *Store, wantRev uint64) {
	t.Helper()
	ctx := context.Background()
	if rev, err := s.Revision(ctx); err != nil || rev != wantRev {
		t.Fatalf("revision %d (%v), want %d", rev, err, wantRev)
	}
	ents, err := s.List(ctx, "stack")
	if err != nil || len(ents) != 5 {
		t.Fatalf("%d entities (%v), want 5", len(ents), err)
	}
	for _, e := range ents {
		if e.Address == "stack/fiat_data.r0" && !strings.Contains(string(e.Attributes), `"v0-85"`) {
			t.Errorf("r0 = %s, want its input v0-85", e.Attributes)
		}
	}
}

// A store whose log is in raft.db opens: the log, term and vote move into
// raft-wal/, raft.db goes, and the store reads and writes as before.
func TestBoltLogIsMovedToWAL(t *testing.T) {
	dir := boltLogFixture(t)
	s := openStore(t, dir)
	checkBoltLogFixture(t, s, 85)
	mustCommit(t, s, mustLock(t, s, "other"), Commit{Stack: "other", Put: []Entity{entity("other", "x", 10)}})
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, boltLog)); !os.IsNotExist(err) {
		t.Errorf("raft.db is still there (%v)", err)
	}
	last, term := raftLogState(t, dir)
	if last <= 597 || term == 0 {
		t.Errorf("raft-wal: last index %d, term %d; want past the old log's 597 and a term", last, term)
	}
	s = openStore(t, dir)
	defer s.Close()
	checkBoltLogFixture(t, s, 86)
	if ents, err := s.List(context.Background(), "other"); err != nil || len(ents) != 1 {
		t.Errorf("the commit after the move: %d entities (%v)", len(ents), err)
	}
}

// The move survives a crash at either point: a half-written raft-wal.new/
// is written again, and a raft.db left beside a finished raft-wal/ goes.
func TestBoltLogMoveResumes(t *testing.T) {
	t.Run("copy cut short", func(t *testing.T) {
		dir := boltLogFixture(t)
		if err := os.MkdirAll(filepath.Join(dir, walDir+".new"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, walDir+".new", "wal-meta.db"), []byte("half"), 0o600); err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir)
		defer s.Close()
		checkBoltLogFixture(t, s, 85)
	})
	t.Run("removal missed", func(t *testing.T) {
		dir := boltLogFixture(t)
		old, err := os.ReadFile(filepath.Join(dir, boltLog))
		if err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir)
		mustCommit(t, s, mustLock(t, s, "other"), Commit{Stack: "other", Put: []Entity{entity("other", "x", 10)}})
		s.Close()
		if err := os.WriteFile(filepath.Join(dir, boltLog), old, 0o600); err != nil {
			t.Fatal(err)
		}
		s = openStore(t, dir)
		defer s.Close()
		checkBoltLogFixture(t, s, 86) // the later commit kept: raft.db was not moved again
		if _, err := os.Stat(filepath.Join(dir, boltLog)); !os.IsNotExist(err) {
			t.Errorf("raft.db is still there (%v)", err)
		}
	})
}

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
