package state

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestIdentityIsMadeOnceAndKept(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := openStore(t, dir)
	id, err := s.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(id.ID) != 32 || len(id.PlanKey) != 32 {
		t.Fatalf("identity %q with a %d-byte key", id.ID, len(id.PlanKey))
	}
	s.Close()
	s = openStore(t, dir)
	again, err := s.Identity(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if again.ID != id.ID || !bytes.Equal(again.PlanKey, id.PlanKey) {
		t.Fatalf("identity changed on reopen: %s → %s", id.ID, again.ID)
	}
	other := openStore(t, t.TempDir())
	if oid, _ := other.Identity(ctx); oid.ID == id.ID {
		t.Fatal("two stores share an identity")
	}
	// A later init (a second node, a race) never replaces the first.
	if _, err := s.run(ctx, cmdInit, &initCmd{Identity: Identity{ID: "intruder", PlanKey: []byte("k")}}); err != nil {
		t.Fatal(err)
	}
	if kept, _ := s.Identity(ctx); kept.ID != id.ID {
		t.Fatalf("a second init replaced the identity with %s", kept.ID)
	}
}

func TestMustExistCreatesNothing(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "typo", ".fiat")
	_, err := Open(context.Background(), Options{Dir: dir, MustExist: true})
	if !errors.Is(err, ErrNoStore) {
		t.Fatalf("want ErrNoStore, got %v", err)
	}
	if _, err := os.Stat(filepath.Dir(dir)); !os.IsNotExist(err) {
		t.Fatalf("Open with MustExist created %s", filepath.Dir(dir))
	}
}

func TestStackExists(t *testing.T) {
	ctx := context.Background()
	s := openStore(t, t.TempDir())
	for _, stack := range []string{"a", "b"} {
		if ok, err := s.StackExists(ctx, stack); ok || err != nil {
			t.Fatalf("%s exists before anything: %v %v", stack, ok, err)
		}
	}
	l := mustLock(t, s, "a")
	if err := s.Unlock(ctx, l); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.StackExists(ctx, "a"); !ok {
		t.Fatal("a stack whose lock was taken (an apply that rolled back) does not exist")
	}
	if ok, _ := s.StackExists(ctx, "b"); ok {
		t.Fatal("b exists")
	}
}
