package state

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
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
	// An older fiat, run on the store after the move, starts a raft.db of
	// its own and writes to it: that is refused, not dropped.
	t.Run("older fiat wrote after the move", func(t *testing.T) {
		dir := boltLogFixture(t)
		s := openStore(t, dir)
		s.Close()
		b, err := raftboltdb.NewBoltStore(filepath.Join(dir, boltLog))
		if err != nil {
			t.Fatal(err)
		}
		err = b.StoreLog(&raft.Log{Index: 598, Term: 99, Type: raft.LogCommand, Data: []byte("older fiat")})
		b.Close()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Open(context.Background(), Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "older than raft-wal") {
			t.Fatalf("Open: %v, want a refusal naming the older fiat", err)
		}
		if _, err := os.Stat(filepath.Join(dir, boltLog)); err != nil {
			t.Errorf("raft.db was removed: %v", err)
		}
	})
}

// A raft.db without a vote (a cluster node that never voted) or with
// nothing at all (a server never bootstrapped) moves too.
func TestBoltLogWithoutVoteIsMoved(t *testing.T) {
	t.Run("no vote", func(t *testing.T) {
		dir := boltLogFixture(t)
		db, err := bbolt.Open(filepath.Join(dir, boltLog), 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bbolt.Tx) error {
			b := tx.Bucket([]byte("conf")) // raft-boltdb's bucket of stable keys
			return errors.Join(b.Delete([]byte("LastVoteTerm")), b.Delete([]byte("LastVoteCand")))
		})
		db.Close()
		if err != nil {
			t.Fatal(err)
		}
		s := openStore(t, dir)
		defer s.Close()
		checkBoltLogFixture(t, s, 85)
	})
	t.Run("empty", func(t *testing.T) {
		dir := t.TempDir()
		b, err := raftboltdb.NewBoltStore(filepath.Join(dir, boltLog))
		if err != nil {
			t.Fatal(err)
		}
		b.Close()
		if err := migrateBoltLog(context.Background(), dir, hclog.NewNullLogger()); err != nil {
			t.Fatal(err)
		}
		w := openTestWAL(t, dir)
		defer w.Close()
		if last, _ := w.LastIndex(); last != 0 {
			t.Errorf("last index %d, want an empty log", last)
		}
	})
}
