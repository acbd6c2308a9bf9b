package state

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

// damagedFixture is a closed store holding one stack, on disk as Badger
// tables and a raft log.
func damagedFixture(t *testing.T) (dir string, want []string) {
	t.Helper()
	dir = t.TempDir()
	s := openStore(t, dir)
	l := mustLock(t, s, "a")
	mustCommit(t, s, l, Commit{Stack: "a", Put: []Entity{entity("a", "x", 100), entity("a", "y", 100)}})
	ents, err := s.List(context.Background(), "a")
	if err != nil {
		t.Fatal(err)
	}
	want = addresses(ents)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir, want
}

func copyDir(t *testing.T, from string) string {
	t.Helper()
	to := filepath.Join(t.TempDir(), "copy")
	if out, err := exec.Command("cp", "-a", from, to).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	return to
}

// openDamaged opens a damaged copy: it must fail with ErrDamaged, or read
// exactly the original state — never panic, never a different state.
func openDamaged(t *testing.T, dir string, want []string) (damaged bool) {
	t.Helper()
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("a damaged store failed without ErrDamaged: %v", err)
		}
		return true
	}
	defer s.Close()
	ents, err := s.List(context.Background(), "a")
	if err != nil {
		if !errors.Is(err, ErrDamaged) {
			t.Fatalf("a damaged read failed without ErrDamaged: %v", err)
		}
		return true
	}
	if got := addresses(ents); !reflect.DeepEqual(got, want) {
		t.Fatalf("a damaged store read silently as %v, want %v or an error", got, want)
	}
	return false
}

func TestDamagedStoreIsAClearError(t *testing.T) {
	dir, want := damagedFixture(t)
	tables, _ := filepath.Glob(filepath.Join(dir, "fsm", "*.sst"))
	if len(tables) == 0 {
		t.Fatal("the fixture has no table")
	}
	truncate := func(file string, size int64) func(string) {
		return func(d string) {
			if err := os.Truncate(filepath.Join(d, file), size); err != nil {
				t.Fatal(err)
			}
		}
	}
	sst, _ := filepath.Rel(dir, tables[0])
	segs, _ := filepath.Glob(filepath.Join(dir, walDir, "*.wal"))
	if len(segs) != 1 {
		t.Fatalf("the fixture has %d log segments, want 1", len(segs))
	}
	seg, _ := filepath.Rel(dir, segs[0])
	meta := filepath.Join(walDir, "wal-meta.db")
	remove := func(file string) func(string) {
		return func(d string) {
			if err := os.Remove(filepath.Join(d, file)); err != nil {
				t.Fatal(err)
			}
		}
	}
	for name, damage := range map[string]func(string){
		"log metadata truncated": truncate(meta, 20000),
		"log metadata emptied":   truncate(meta, 0),
		"log metadata half gone": truncate(meta, 16384),
		"log metadata lost":      remove(meta),
		"log segment cut short":  truncate(seg, 200),
		"log segment emptied":    truncate(seg, 0),
		"log segment lost":       remove(seg),
		"table truncated":        truncate(sst, 700),
		"table emptied":          truncate(sst, 0),
		"value log emptied":      truncate("fsm/000001.vlog", 0),
		"manifest cut":           truncate("fsm/MANIFEST", 10),
	} {
		t.Run(name, func(t *testing.T) {
			d := copyDir(t, dir)
			damage(d)
			// The FSM alone would read the same state, but a log that
			// lost entries must not open: raft would write over them.
			if !openDamaged(t, d, want) && strings.HasPrefix(name, "log") {
				t.Error("the damaged raft log opened")
			}
		})
	}
	// A flipped bit anywhere in a table is an error or changes nothing.
	info, err := os.Stat(tables[0])
	if err != nil {
		t.Fatal(err)
	}
	detected := 0
	for off := int64(0); off < info.Size(); off += 13 {
		d := copyDir(t, dir)
		f, err := os.OpenFile(filepath.Join(d, sst), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 1)
		f.ReadAt(b, off)
		b[0] ^= 0x10
		f.WriteAt(b, off)
		f.Close()
		if openDamaged(t, d, want) {
			detected++
		}
	}
	if detected == 0 {
		t.Fatal("no bit flip in the table was detected")
	}
	t.Logf("bit flips detected: %d of %d", detected, info.Size()/13+1)
}
