package state

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/dgraph-io/badger/v4"
)

func openStore(t testing.TB, dir string) *Store {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func mustLock(t testing.TB, s *Store, stack string) Lock {
	t.Helper()
	l, err := s.Lock(context.Background(), stack, "tester", time.Hour)
	if err != nil {
		t.Fatalf("Lock: %v", err)
	}
	return l
}

func mustCommit(t testing.TB, s *Store, l Lock, c Commit) uint64 {
	t.Helper()
	rev, err := s.Commit(context.Background(), l, c)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return rev
}

// entity builds an entity with an attribute payload of about size bytes.
func entity(stack, name string, size int) Entity {
	attrs, _ := json.Marshal(map[string]any{
		"type":  "object",
		"value": map[string]string{"name": name, "pad": strings.Repeat("x", size)},
	})
	return Entity{
		Address:    stack + "/libvirt_volume." + name,
		Type:       "libvirt_volume",
		Name:       name,
		Provider:   "libvirt",
		ID:         "uuid-" + name,
		Attributes: attrs,
	}
}

func TestCommitGetListHistory(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())

	if rev, err := s.Revision(ctx); err != nil || rev != 0 {
		t.Fatalf("empty store Revision = %d, %v; want 0", rev, err)
	}
	la, lb := mustLock(t, s, "a"), mustLock(t, s, "b")
	rev := mustCommit(t, s, la, Commit{
		Stack: "a",
		Put:   []Entity{entity("a", "z", 10), entity("a", "m", 10), entity("a", "c", 10)},
		Meta:  Meta{PlanID: "p1", Actor: "alice", Command: "apply"},
	})
	if rev != 1 {
		t.Fatalf("first commit revision = %d, want 1", rev)
	}
	if rev := mustCommit(t, s, lb, Commit{Stack: "b", Put: []Entity{entity("b", "x", 10)}}); rev != 2 {
		t.Fatalf("second commit revision = %d, want 2", rev)
	}

	e, err := s.Get(ctx, "a/libvirt_volume.m")
	if err != nil {
		t.Fatal(err)
	}
	if e.Revision != 1 || e.Stack != "a" || e.Status != StatusOK || e.ID != "uuid-m" {
		t.Errorf("Get = %+v", e)
	}
	if _, err := s.Get(ctx, "a/libvirt_volume.nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Get missing: %v, want ErrNotFound", err)
	}

	list, err := s.List(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	if got := addresses(list); !reflect.DeepEqual(got, []string{"a/libvirt_volume.c", "a/libvirt_volume.m", "a/libvirt_volume.z"}) {
		t.Errorf("List(a) = %v", got)
	}
	all, _ := s.List(ctx, "")
	if len(all) != 4 {
		t.Errorf("List(\"\") has %d entities, want 4", len(all))
	}

	upd := entity("a", "m", 20)
	rev = mustCommit(t, s, la, Commit{
		Stack:  "a",
		Put:    []Entity{upd, entity("a", "n", 10)},
		Delete: []string{"a/libvirt_volume.z", "a/libvirt_volume.never"},
		Meta:   Meta{PlanID: "p2"},
	})
	if rev != 3 {
		t.Fatalf("third commit revision = %d, want 3", rev)
	}
	if _, err := s.Get(ctx, "a/libvirt_volume.z"); !errors.Is(err, ErrNotFound) {
		t.Errorf("deleted entity still there: %v", err)
	}
	if e, _ := s.Get(ctx, "a/libvirt_volume.m"); e.Revision != 3 || string(e.Attributes) != string(upd.Attributes) {
		t.Errorf("updated entity = rev %d attrs %s", e.Revision, e.Attributes)
	}
	if e, _ := s.Get(ctx, "a/libvirt_volume.c"); e.Revision != 1 {
		t.Errorf("untouched entity revision = %d, want 1", e.Revision)
	}

	hist, err := s.History(ctx, "a")
	if err != nil {
		t.Fatal(err)
	}
	want := []Revision{
		{Revision: 1, Stack: "a", Meta: Meta{PlanID: "p1", Actor: "alice", Command: "apply"}, Changes: []Change{
			{"a/libvirt_volume.c", "create"}, {"a/libvirt_volume.m", "create"}, {"a/libvirt_volume.z", "create"}}},
		{Revision: 3, Stack: "a", Meta: Meta{PlanID: "p2"}, Changes: []Change{
			{"a/libvirt_volume.m", "update"}, {"a/libvirt_volume.n", "create"}, {"a/libvirt_volume.z", "delete"}}},
	}
	for i := range hist {
		hist[i].Meta.Time = time.Time{}
	}
	if !reflect.DeepEqual(hist, want) {
		t.Errorf("History(a) =\n%+v\nwant\n%+v", hist, want)
	}
	if all, _ := s.History(ctx, ""); len(all) != 3 || all[1].Stack != "b" {
		t.Errorf("History(\"\") = %+v", all)
	}
	if rev, _ := s.Revision(ctx); rev != 3 {
		t.Errorf("Revision = %d, want 3", rev)
	}
}

func TestCommitRejectsBadInput(t *testing.T) {
	s := openStore(t, t.TempDir())
	l := mustLock(t, s, "a")
	for name, c := range map[string]Commit{
		"other stack":     {Stack: "a", Put: []Entity{entity("b", "x", 1)}},
		"duplicate":       {Stack: "a", Put: []Entity{entity("a", "x", 1), entity("a", "x", 1)}},
		"put and delete":  {Stack: "a", Put: []Entity{entity("a", "x", 1)}, Delete: []string{"a/libvirt_volume.x"}},
		"lock of a stack": {Stack: "b"},
		"huge entity":     {Stack: "a", Put: []Entity{entity("a", "x", chunkTarget)}},
	} {
		if _, err := s.Commit(context.Background(), l, c); err == nil {
			t.Errorf("%s: commit succeeded", name)
		}
	}
	if rev, _ := s.Revision(context.Background()); rev != 0 {
		t.Errorf("revision = %d after rejected commits", rev)
	}
}

func addresses(es []Entity) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.Address
	}
	return out
}

func TestReopenKeepsStateWithoutReapplying(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "a")
	for i := range 5 {
		mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", fmt.Sprint(i), 100)}})
	}
	if err := s.BeginTx(ctx, l, Tx{ID: "tx1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.AppendJournal(ctx, l, "tx1", json.RawMessage(`{"n":1}`)); err != nil {
		t.Fatal(err)
	}
	before := dump(t, s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = openStore(t, dir)
	if s.fsm.replayed == 0 {
		t.Error("raft replayed no entries on reopen; the test proves nothing")
	}
	if rev, _ := s.Revision(ctx); rev != 5 {
		t.Errorf("revision after reopen = %d, want 5", rev)
	}
	if h, _ := s.History(ctx, ""); len(h) != 5 {
		t.Errorf("history after reopen has %d revisions, want 5", len(h))
	}
	if j, _ := s.Journal(ctx, "tx1"); len(j) != 1 {
		t.Errorf("journal after reopen has %d records, want 1", len(j))
	}
	if after := dump(t, s); !reflect.DeepEqual(before, after) {
		t.Error("state differs after reopen")
	}
	// The lock survives too, and still fences.
	if rev := mustCommit(t, s, l, Commit{Stack: "a"}); rev != 6 {
		t.Errorf("commit after reopen = revision %d, want 6", rev)
	}
}

// A crash in the middle of a big commit's apply is finished by the replay
// of the same raft entry on the next start: exactly once, all of it.
func TestHalfAppliedCommitIsFinishedOnReplay(t *testing.T) {
	for _, step := range []string{"history", "pending", "entities"} {
		t.Run(step, func(t *testing.T) {
			ctx := context.Background()
			dir := t.TempDir()
			s := openStore(t, dir)
			l := mustLock(t, s, "a")
			mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "old", 10)}})
			if err := s.BeginTx(ctx, l, Tx{ID: "tx1"}); err != nil {
				t.Fatal(err)
			}
			var puts []Entity
			for i := range 600 {
				puts = append(puts, entity("a", fmt.Sprintf("e%04d", i), 1000))
			}
			s.fsm.hook = func(at string) error {
				if at == step {
					return errors.New("simulated crash at " + at)
				}
				return nil
			}
			_, err := s.Commit(ctx, l, Commit{Stack: "a", TxID: "tx1", Put: puts,
				Delete: []string{"a/libvirt_volume.old"}, Expect: map[string]uint64{"a/libvirt_volume.old": 1}})
			if err == nil || !strings.Contains(err.Error(), "simulated crash") {
				t.Fatalf("commit error = %v, want the simulated crash", err)
			}
			if _, err := s.Revision(ctx); err == nil {
				t.Error("a failed FSM still serves reads")
			}
			s.Close()

			s = openStore(t, dir)
			if rev, err := s.Revision(ctx); err != nil || rev != 2 {
				t.Fatalf("revision after replay = %d, %v; want 2", rev, err)
			}
			list, _ := s.List(ctx, "a")
			if len(list) != 600 || list[0].Revision != 2 {
				t.Fatalf("after replay: %d entities, first at revision %d", len(list), list[0].Revision)
			}
			h, _ := s.History(ctx, "a")
			if len(h) != 2 || len(h[1].Changes) != 601 || h[1].Changes[600] != (Change{"a/libvirt_volume.old", "delete"}) {
				t.Fatalf("history after replay: %d revisions, last has %d changes", len(h), len(h[len(h)-1].Changes))
			}
			txs, _ := s.OpenTxs(ctx, "a")
			if len(txs) != 1 || txs[0].State != TxCommitted || txs[0].Revision != 2 {
				t.Errorf("tx after replay = %+v", txs)
			}
			assertNoKeys(t, s, prefixStage)
			assertNoKeys(t, s, keyPending)
		})
	}
}

func TestStaleCommit(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	l := mustLock(t, s, "a")
	mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "x", 1), entity("a", "y", 1)}})
	// Someone else's apply changes x after our plan read it at revision 1.
	mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "x", 2)}})

	_, err := s.Commit(ctx, l, Commit{
		Stack: "a",
		Put:   []Entity{entity("a", "x", 3), entity("a", "z", 3)},
		Expect: map[string]uint64{
			"a/libvirt_volume.x": 1, // now 2
			"a/libvirt_volume.y": 1, // unchanged
			"a/libvirt_volume.z": 0, // absent, as read
			"a/libvirt_volume.w": 1, // read at 1, deleted since
		},
	})
	var stale *StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("commit error = %v, want *StaleError", err)
	}
	want := []StaleEntity{{"a/libvirt_volume.w", 1, 0}, {"a/libvirt_volume.x", 1, 2}}
	if !reflect.DeepEqual(stale.Entities, want) {
		t.Errorf("stale entities = %+v, want %+v", stale.Entities, want)
	}
	if msg := err.Error(); !strings.Contains(msg, "a/libvirt_volume.x changed since the plan read it (read at revision 1, now at revision 2)") {
		t.Errorf("message does not name the entity and both revisions: %s", msg)
	}
	if rev, _ := s.Revision(ctx); rev != 2 {
		t.Errorf("revision after stale commit = %d, want 2", rev)
	}
	if _, err := s.Get(ctx, "a/libvirt_volume.z"); !errors.Is(err, ErrNotFound) {
		t.Error("stale commit wrote an entity")
	}
	if h, _ := s.History(ctx, "a"); len(h) != 2 {
		t.Errorf("stale commit made history: %d revisions", len(h))
	}

	// A plan that read only y is not stale because x changed.
	rev := mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "y", 4)},
		Expect: map[string]uint64{"a/libvirt_volume.y": 1, "a/libvirt_volume.z": 0}})
	if rev != 3 {
		t.Errorf("unrelated commit revision = %d, want 3", rev)
	}
}

func TestBigCommit(t *testing.T) {
	if testing.Short() {
		t.Skip("big commit")
	}
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "big")
	const n = 20000
	puts := make([]Entity, n)
	for i := range puts {
		puts[i] = entity("big", fmt.Sprintf("e%05d", i), 1024)
	}
	start := time.Now()
	rev := mustCommit(t, s, l, Commit{Stack: "big", Put: puts})
	t.Logf("commit of %d entities (~1 KiB each): %s, %d raft entries, largest %d bytes",
		n, time.Since(start), s.entries.Load(), s.maxEntry.Load())
	if s.entries.Load() < 20 {
		t.Errorf("only %d raft entries for ~20 MiB", s.entries.Load())
	}
	if m := s.maxEntry.Load(); m >= 512<<10 || m > maxEntryBytes {
		t.Errorf("largest raft entry = %d bytes", m)
	}

	list, err := s.List(ctx, "big")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != n || list[0].Revision != rev || list[n-1].Address != "big/libvirt_volume.e19999" {
		t.Fatalf("List: %d entities", len(list))
	}
	h, _ := s.History(ctx, "big")
	if len(h) != 1 || len(h[0].Changes) != n {
		t.Fatalf("history: %+v revisions", len(h))
	}
	assertNoKeys(t, s, prefixStage)

	// Update all of them, expecting every one at the revision just made:
	// the expectations alone are over one entry.
	expect := make(map[string]uint64, n)
	for i := range puts {
		puts[i].Attributes = json.RawMessage(`{"type":"string","value":"v2"}`)
		expect[puts[i].Address] = rev
	}
	start = time.Now()
	rev2 := mustCommit(t, s, l, Commit{Stack: "big", Put: puts, Expect: expect})
	t.Logf("update of %d entities with %d expectations: %s", n, n, time.Since(start))
	if e, _ := s.Get(ctx, "big/libvirt_volume.e12345"); e.Revision != rev2 || string(e.Attributes) != `{"type":"string","value":"v2"}` {
		t.Errorf("updated entity = %+v", e)
	}
	if s.maxEntry.Load() >= 512<<10 {
		t.Errorf("largest raft entry = %d bytes", s.maxEntry.Load())
	}

	s.Close()
	start = time.Now()
	s = openStore(t, dir)
	t.Logf("reopen after big commits: %s", time.Since(start))
	if rev, _ := s.Revision(ctx); rev != rev2 {
		t.Errorf("revision after reopen = %d, want %d", rev, rev2)
	}
}

func TestLocks(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	clock := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	s.now = func() time.Time { return clock }

	alice, err := s.Lock(ctx, "prod", "alice@host1", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if alice.Token != 1 || alice.Holder != "alice@host1" || !alice.Expires.Equal(clock.Add(time.Minute)) {
		t.Errorf("lock = %+v", alice)
	}

	// Held: bob is told who holds it and how to break it.
	_, err = s.Lock(ctx, "prod", "bob", time.Minute)
	var locked *LockedError
	if !errors.As(err, &locked) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	for _, want := range []string{"alice@host1", alice.ID, "2025-01-02T03:04:05Z", "fiat unlock " + alice.ID} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("locked error %q does not mention %q", err, want)
		}
	}
	// Other stacks are independent.
	other := mustLock(t, s, "dev")

	// Renew moves the expiry.
	clock = clock.Add(30 * time.Second)
	if alice, err = s.Renew(ctx, alice, time.Minute); err != nil || !alice.Expires.Equal(clock.Add(time.Minute)) {
		t.Fatalf("renew = %+v, %v", alice, err)
	}

	// Expired: bob takes over with a new token; alice is fenced.
	clock = clock.Add(61 * time.Second)
	if _, err := s.Renew(ctx, alice, time.Minute); !errors.Is(err, ErrFenced) {
		t.Errorf("renew of expired lock: %v, want ErrFenced", err)
	}
	if err := s.BeginTx(ctx, alice, Tx{ID: "late"}); !errors.Is(err, ErrFenced) {
		t.Errorf("begin tx with expired lock: %v, want ErrFenced", err)
	}
	bob, err := s.Lock(ctx, "prod", "bob", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if bob.Token != 2 {
		t.Errorf("bob's token = %d, want 2", bob.Token)
	}
	if _, err := s.Commit(ctx, alice, Commit{Stack: "prod", Put: []Entity{entity("prod", "x", 1)}}); !errors.Is(err, ErrFenced) {
		t.Errorf("commit with taken-over lock: %v, want ErrFenced", err)
	}
	if err := s.Unlock(ctx, alice); !errors.Is(err, ErrFenced) {
		t.Errorf("unlock with taken-over lock: %v, want ErrFenced", err)
	}
	if rev := mustCommit(t, s, bob, Commit{Stack: "prod", Put: []Entity{entity("prod", "x", 1)}}); rev != 1 {
		t.Errorf("bob's commit = revision %d", rev)
	}

	locks, err := s.Locks(ctx)
	if err != nil || len(locks) != 2 || locks[0].ID != other.ID || locks[1].ID != bob.ID {
		t.Fatalf("Locks = %+v, %v", locks, err)
	}

	// ForceUnlock needs the exact id and says whose lock it broke.
	if _, err := s.ForceUnlock(ctx, bob.ID[:8]); !errors.Is(err, ErrNotFound) {
		t.Errorf("force unlock of a prefix: %v, want ErrNotFound", err)
	}
	broken, err := s.ForceUnlock(ctx, bob.ID)
	if err != nil || broken.Holder != "bob" || broken.Stack != "prod" {
		t.Fatalf("ForceUnlock = %+v, %v", broken, err)
	}
	if _, err := s.Commit(ctx, bob, Commit{Stack: "prod"}); !errors.Is(err, ErrFenced) {
		t.Errorf("commit after force unlock: %v, want ErrFenced", err)
	}
	if err := s.Unlock(ctx, other); err != nil {
		t.Errorf("unlock: %v", err)
	}
	if err := s.Unlock(ctx, other); err != nil {
		t.Errorf("second unlock: %v", err)
	}
	if locks, _ := s.Locks(ctx); len(locks) != 0 {
		t.Errorf("locks after release: %+v", locks)
	}

	// Tokens never repeat, across restarts too.
	s.Close()
	s = openStore(t, dir)
	if l := mustLock(t, s, "prod"); l.Token != 3 {
		t.Errorf("token after restart = %d, want 3", l.Token)
	}
}

func TestJournal(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	l := mustLock(t, s, "a")
	started := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	if err := s.BeginTx(ctx, l, Tx{ID: "tx1", PlanID: "plan1", Started: started}); err != nil {
		t.Fatal(err)
	}
	if err := s.BeginTx(ctx, l, Tx{ID: "tx1"}); err == nil {
		t.Error("second BeginTx of tx1 succeeded")
	}
	if err := s.AppendJournal(ctx, l, "nope", json.RawMessage(`{}`)); !errors.Is(err, ErrNotFound) {
		t.Errorf("append to missing tx: %v", err)
	}

	recs := []json.RawMessage{json.RawMessage(`{"intent":1}`), json.RawMessage(`{"intent":2}`), json.RawMessage(`{"intent":3}`)}
	before := s.entries.Load()
	if err := s.AppendJournal(ctx, l, "tx1", recs...); err != nil {
		t.Fatal(err)
	}
	if n := s.entries.Load() - before; n != 1 {
		t.Errorf("3 small records took %d raft entries, want 1", n)
	}
	// Records over one entry are split, in order.
	big := make([]json.RawMessage, 5)
	for i := range big {
		big[i] = json.RawMessage(fmt.Sprintf(`{"result":%d,"undo":%q}`, 4+i, strings.Repeat("u", 150<<10)))
	}
	before = s.entries.Load()
	if err := s.AppendJournal(ctx, l, "tx1", big...); err != nil {
		t.Fatal(err)
	}
	if n := s.entries.Load() - before; n < 3 {
		t.Errorf("5 records of 150 KiB took %d raft entries", n)
	}
	if err := s.AppendJournal(ctx, l, "tx1", json.RawMessage(`not json`)); err == nil {
		t.Error("invalid JSON record accepted")
	}

	got, err := s.Journal(ctx, "tx1")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 8 {
		t.Fatalf("journal has %d records, want 8", len(got))
	}
	for i, r := range got {
		var v struct{ Intent, Result int }
		json.Unmarshal(r, &v)
		if v.Intent+v.Result != i+1 {
			t.Errorf("record %d = %.40s", i, r)
		}
	}

	txs, err := s.OpenTxs(ctx, "a")
	if err != nil || len(txs) != 1 {
		t.Fatalf("OpenTxs = %+v, %v", txs, err)
	}
	if tx := txs[0]; tx.State != TxOpen || tx.PlanID != "plan1" || tx.LockID != l.ID || !tx.Started.Equal(started) || tx.Stack != "a" {
		t.Errorf("open tx = %+v", tx)
	}
	if txs, _ := s.OpenTxs(ctx, "b"); len(txs) != 0 {
		t.Errorf("OpenTxs(b) = %+v", txs)
	}

	// The commit marks the tx committed in the same write.
	rev := mustCommit(t, s, l, Commit{Stack: "a", TxID: "tx1", Put: []Entity{entity("a", "x", 1)}})
	txs, _ = s.OpenTxs(ctx, "")
	if len(txs) != 1 || txs[0].State != TxCommitted || txs[0].Revision != rev {
		t.Errorf("after commit: %+v", txs)
	}
	if _, err := s.Commit(ctx, l, Commit{Stack: "a", TxID: "tx1"}); err == nil || !strings.Contains(err.Error(), "already committed") {
		t.Errorf("second commit of tx1: %v", err)
	}
	// Cleanup records go on after the commit.
	if err := s.AppendJournal(ctx, l, "tx1", json.RawMessage(`{"purged":true}`)); err != nil {
		t.Fatal(err)
	}

	// A recovery under a new lock may end it; the old lock may not.
	clock := time.Now().Add(2 * time.Hour)
	s.now = func() time.Time { return clock }
	if err := s.EndTx(ctx, l, "tx1"); !errors.Is(err, ErrFenced) {
		t.Errorf("EndTx with expired lock: %v", err)
	}
	l2 := mustLock(t, s, "a")
	if err := s.EndTx(ctx, l2, "tx1"); err != nil {
		t.Fatal(err)
	}
	if txs, _ := s.OpenTxs(ctx, ""); len(txs) != 0 {
		t.Errorf("OpenTxs after EndTx = %+v", txs)
	}
	if _, err := s.Journal(ctx, "tx1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Journal after EndTx: %v", err)
	}
	assertNoKeys(t, s, prefixJournal)
}

func TestSnapshotRestore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "a")
	for i := range 3 {
		mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", fmt.Sprint(i), 100)}})
	}
	s.BeginTx(ctx, l, Tx{ID: "tx1"})
	s.AppendJournal(ctx, l, "tx1", json.RawMessage(`{"a":1}`), json.RawMessage(`{"b":2}`))
	if err := s.node.raft.Snapshot().Error(); err != nil {
		t.Fatalf("snapshot: %v", err)
	}
	atSnapshot := dump(t, s)

	// Restore the snapshot into a fresh FSM: same data.
	list, err := s.node.snaps.List()
	if err != nil || len(list) == 0 {
		t.Fatalf("snapshots: %v, %v", list, err)
	}
	_, rc, err := s.node.snaps.Open(list[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	f2, err := openFSM(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer f2.close()
	f2.db.Update(func(txn *badger.Txn) error { return txn.Set([]byte("e/junk"), []byte("{}")) })
	if err := f2.Restore(rc); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := dumpFSM(t, f2); !reflect.DeepEqual(got, atSnapshot) {
		t.Errorf("restored FSM differs: %d keys, want %d", len(got), len(atSnapshot))
	}
	if f2.appliedIndex() != s.fsm.appliedIndex() {
		t.Errorf("restored applied index = %d, want %d", f2.appliedIndex(), s.fsm.appliedIndex())
	}

	// A truncated snapshot is refused.
	_, rc, _ = s.node.snaps.Open(list[0].ID)
	b, _ := readAllClose(rc)
	if err := f2.Restore(nopCloser{strings.NewReader(string(b[:len(b)-3]))}); err == nil {
		t.Error("truncated snapshot restored")
	}

	// Start-up restore: lose the FSM; raft restores the snapshot and
	// replays the log after it.
	mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "after", 100)}})
	final := dump(t, s)
	s.Close()
	if err := os.RemoveAll(dir + "/fsm"); err != nil {
		t.Fatal(err)
	}
	s = openStore(t, dir)
	if got := dump(t, s); !reflect.DeepEqual(got, final) {
		t.Errorf("state after losing the FSM differs: %d keys, want %d", len(got), len(final))
	}
}

type nopCloser struct{ *strings.Reader }

func (nopCloser) Close() error { return nil }

func readAllClose(rc interface {
	Read([]byte) (int, error)
	Close() error
}) ([]byte, error) {
	defer rc.Close()
	var out []byte
	buf := make([]byte, 64<<10)
	for {
		n, err := rc.Read(buf)
		out = append(out, buf[:n]...)
		if err != nil {
			return out, nil
		}
	}
}

func TestSecondOpenFails(t *testing.T) {
	dir := t.TempDir()
	openStore(t, dir)
	// In another process, as a user would hit it.
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FIAT_STATE_HELPER_DIR="+dir)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("second process opened the store: %s", out)
	}
	if want := fmt.Sprintf("data directory %s is in use by another fiat process (pid %d)", dir, os.Getpid()); !strings.Contains(string(out), want) {
		t.Errorf("second process said %q, want %q", out, want)
	}
	// And in this one.
	if _, err := Open(context.Background(), Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "in use by another fiat process") {
		t.Errorf("second Open: %v", err)
	}
}

// TestMain doubles as the child process of TestSecondOpenFails and
// BenchmarkOpen: with FIAT_STATE_HELPER_DIR set it opens that store, prints
// its memory figures and exits, running no test.
func TestMain(m *testing.M) {
	if dir := os.Getenv("FIAT_STATE_HELPER_DIR"); dir != "" {
		helperOpen(dir)
	}
	os.Exit(m.Run())
}

func helperOpen(dir string) {
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		fmt.Println(err)
		os.Exit(3)
	}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "VmRSS") || strings.HasPrefix(line, "VmHWM") {
				fmt.Println(line)
			}
		}
	}
	s.Close()
	os.Exit(0)
}

func TestClosedStore(t *testing.T) {
	s := openStore(t, t.TempDir())
	s.Close()
	if _, err := s.Revision(context.Background()); !errors.Is(err, ErrClosed) {
		t.Errorf("Revision after Close: %v", err)
	}
	if _, err := s.Lock(context.Background(), "a", "x", time.Minute); !errors.Is(err, ErrClosed) {
		t.Errorf("Lock after Close: %v", err)
	}
}

// dump returns every key and value in the store except keyApplied.
func dump(t testing.TB, s *Store) map[string]string { return dumpFSM(t, s.fsm) }

func dumpFSM(t testing.TB, f *fsm) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := f.view(func(txn *badger.Txn) error {
		return scan(txn, nil, func(k, v []byte) error {
			if string(k) != keyApplied {
				out[string(k)] = string(v)
			}
			return nil
		})
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func assertNoKeys(t testing.TB, s *Store, prefix string) {
	t.Helper()
	s.fsm.view(func(txn *badger.Txn) error {
		if keys := scanKeys(txn, []byte(prefix)); len(keys) > 0 {
			t.Errorf("%d keys left under %q, first %s", len(keys), prefix, keys[0])
		}
		return nil
	})
}

// Chunks staged for a commit that never comes (its process died) are
// dropped when the lock is taken over; a refused big commit drops its own.
func TestStagedChunksAreCleanedUp(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	clock := time.Now()
	s.now = func() time.Time { return clock }
	l, err := s.Lock(ctx, "a", "crasher", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var puts []Entity
	for i := range 600 {
		puts = append(puts, entity("a", fmt.Sprintf("e%04d", i), 1000))
	}

	// A big commit refused as stale leaves nothing staged.
	_, err = s.Commit(ctx, l, Commit{Stack: "a", Put: puts, Expect: map[string]uint64{"a/libvirt_volume.e0001": 7}})
	var stale *StaleError
	if !errors.As(err, &stale) {
		t.Fatalf("commit: %v, want *StaleError", err)
	}
	assertNoKeys(t, s, prefixStage)

	// Stage two chunks by hand and "crash" before the commit entry.
	chunks, err := buildChunks(Commit{Stack: "a", Put: puts})
	if err != nil || len(chunks) < 2 {
		t.Fatalf("buildChunks: %d chunks, %v", len(chunks), err)
	}
	for i, ch := range chunks[:2] {
		if _, err := s.run(ctx, cmdStage, &stageCmd{Lock: l, At: unixNano(clock), CommitID: "c1", Seq: i, chunk: ch}); err != nil {
			t.Fatal(err)
		}
	}
	s.fsm.view(func(txn *badger.Txn) error {
		if n := len(scanKeys(txn, []byte(prefixStage))); n != 2 {
			t.Errorf("%d chunks staged, want 2", n)
		}
		return nil
	})
	clock = clock.Add(2 * time.Minute)
	mustLock(t, s, "a")
	assertNoKeys(t, s, prefixStage)
	if rev, _ := s.Revision(ctx); rev != 0 {
		t.Errorf("revision = %d", rev)
	}
}

func TestMissingRaftLogIsRefused(t *testing.T) {
	dir := t.TempDir()
	s := openStore(t, dir)
	mustCommit(t, s, mustLock(t, s, "a"), Commit{Stack: "a"})
	s.Close()
	if err := os.RemoveAll(dir + "/" + walDir); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(context.Background(), Options{Dir: dir}); err == nil || !strings.Contains(err.Error(), "raft log") {
		t.Fatalf("Open without its raft log: %v", err)
	}
}
