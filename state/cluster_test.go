package state

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"
)

// freeAddr returns a loopback address nobody listens on (yet).
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// startCluster opens n cluster nodes in one process and bootstraps them.
func startCluster(t *testing.T, n int) []*Store {
	t.Helper()
	var peers []Peer
	for i := range n {
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: freeAddr(t)})
	}
	stores := make([]*Store, n)
	for i, p := range peers {
		s, err := Open(context.Background(), Options{Dir: t.TempDir(), Cluster: &Cluster{ID: p.ID, RaftAddr: p.RaftAddr}})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		stores[i] = s
	}
	for _, s := range stores {
		if err := s.Bootstrap(peers); err != nil {
			t.Fatal(err)
		}
	}
	return stores
}

func waitLeader(t *testing.T, stores []*Store) *Store {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		for _, s := range stores {
			if s.IsLeader() {
				if _, err := s.Identity(context.Background()); err == nil {
					return s
				}
			}
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatal("no leader with an identity after 10s")
	return nil
}

func TestClusterWritesOnLeaderReadsLinearizable(t *testing.T) {
	ctx := context.Background()
	stores := startCluster(t, 3)
	leader := waitLeader(t, stores)
	lock, err := leader.Lock(ctx, "s", "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	rev, err := leader.Commit(ctx, lock, Commit{Stack: "s", Put: []Entity{{Address: "s/x.a", Provider: "p", ID: "1"}}})
	if err != nil || rev != 1 {
		t.Fatalf("commit: rev %d, %v", rev, err)
	}
	ids := map[string]bool{}
	for _, s := range stores {
		id, err := s.Identity(WithStale(ctx))
		for deadline := time.Now().Add(5 * time.Second); err != nil && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
			id, err = s.Identity(WithStale(ctx))
		}
		if err != nil {
			t.Fatal(err)
		}
		ids[id.ID] = true
		if s == leader {
			continue
		}
		if _, err := s.Revision(ctx); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s: linearizable read on a follower: %v, want ErrNotLeader", s.NodeID(), err)
		}
		if _, err := s.Lock(ctx, "t", "test", time.Minute); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s: write on a follower: %v, want ErrNotLeader", s.NodeID(), err)
		}
		// A stale read catches up with the commit soon.
		var got uint64
		for deadline := time.Now().Add(5 * time.Second); got != 1 && time.Now().Before(deadline); {
			got, _ = s.Revision(WithStale(ctx))
		}
		if got != 1 {
			t.Errorf("%s: stale read never reached revision 1", s.NodeID())
		}
	}
	if len(ids) != 1 {
		t.Errorf("nodes disagree on the store identity: %v", ids)
	}
}

func TestBackupRoundTrip(t *testing.T) {
	ctx := context.Background()
	src := openStore(t, t.TempDir())
	lock, _ := src.Lock(ctx, "s", "test", time.Minute)
	if _, err := src.Commit(ctx, lock, Commit{Stack: "s", Put: []Entity{{Address: "s/x.a", Provider: "p", ID: "1"}}}); err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := src.SaveBackup(ctx, &buf); err != nil {
		t.Fatal(err)
	}
	dst := openStore(t, t.TempDir())
	// Damaged and cut-short backups are refused, and the store keeps its state.
	bad := bytes.Clone(buf.Bytes())
	bad[len(bad)/2] ^= 0x40
	for name, b := range map[string][]byte{"flipped": bad, "truncated": buf.Bytes()[:buf.Len()-20], "empty": nil} {
		if err := dst.RestoreBackup(ctx, bytes.NewReader(b)); err == nil {
			t.Errorf("%s backup restored", name)
		}
	}
	if rev, _ := dst.Revision(ctx); rev != 0 {
		t.Fatalf("refused restore changed the store: revision %d", rev)
	}
	if err := dst.RestoreBackup(ctx, bytes.NewReader(buf.Bytes())); err != nil {
		t.Fatal(err)
	}
	e, err := dst.Get(ctx, "s/x.a")
	if err != nil || e.ID != "1" {
		t.Fatalf("after restore: %+v, %v", e, err)
	}
	srcID, _ := src.Identity(ctx)
	dstID, _ := dst.Identity(ctx)
	if srcID.ID != dstID.ID {
		t.Errorf("restored identity %s, want %s", dstID.ID, srcID.ID)
	}
	// Writes after the restore apply (the log was moved past the backup).
	lock, err = dst.Lock(ctx, "u", "test", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if rev, err := dst.Commit(ctx, lock, Commit{Stack: "u", Put: []Entity{{Address: "u/x.b", Provider: "p", ID: "2"}}}); err != nil || rev != 2 {
		t.Fatalf("commit after restore: rev %d, %v", rev, err)
	}
}

// A leader cut off from the others steps down and refuses writes with
// ErrNotLeader; the majority elects a leader and takes writes; no write
// the old leader accepted while cut off survives; once healed, every node
// holds the same state.
func TestPartitionedLeaderStepsDownAndHealingConverges(t *testing.T) {
	ctx := context.Background()
	stores := startCluster(t, 3)
	old := waitLeader(t, stores)
	var rest []*Store
	var restAddrs []string
	for _, s := range stores {
		if s != old {
			rest = append(rest, s)
			restAddrs = append(restAddrs, s.cluster.RaftAddr)
		}
	}
	old.node.stream.partition(restAddrs)
	for _, s := range rest {
		s.node.stream.partition([]string{old.cluster.RaftAddr})
	}
	// The old leader accepts no write: at first it may still believe it
	// leads, but nothing commits without a majority.
	wctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	err := old.PutDoc(wctx, "t", "minority", []byte("x"))
	cancel()
	if err == nil {
		t.Fatal("a write on the partitioned leader succeeded")
	}
	deadline := time.Now().Add(5 * time.Second)
	for old.RaftState() == "Leader" && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if err := old.PutDoc(ctx, "t", "minority2", []byte("x")); !errors.Is(err, ErrNotLeader) {
		t.Errorf("write on the cut-off node: %v, want ErrNotLeader", err)
	}
	if _, err := old.Revision(ctx); !errors.Is(err, ErrNotLeader) {
		t.Errorf("linearizable read on the cut-off node: %v, want ErrNotLeader", err)
	}
	lead := waitLeader(t, rest)
	if err := lead.PutDoc(ctx, "t", "majority", []byte("y")); err != nil {
		t.Fatalf("write on the majority's leader: %v", err)
	}
	// Heal: the old leader rejoins as a follower and converges.
	for _, s := range stores {
		s.node.stream.partition(nil)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		var digests []string
		for _, s := range stores {
			_, d, err := s.Digest(ctx)
			if err != nil {
				t.Fatal(err)
			}
			digests = append(digests, d)
		}
		if digests[0] == digests[1] && digests[1] == digests[2] {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("nodes did not converge after healing: %v", digests)
		}
		time.Sleep(20 * time.Millisecond)
	}
	for _, key := range []string{"minority", "minority2"} {
		if _, err := old.GetDoc(WithStale(ctx), "t", key); !errors.Is(err, ErrNotFound) {
			t.Errorf("the minority's write %q survived: %v", key, err)
		}
	}
	if b, err := old.GetDoc(WithStale(ctx), "t", "majority"); err != nil || string(b) != "y" {
		t.Errorf("the healed node lacks the majority's write: %q, %v", b, err)
	}
}
