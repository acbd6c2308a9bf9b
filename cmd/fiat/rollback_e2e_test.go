package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestRollbackLeavesNothing: an apply creates a pool nine directories deep
// (and a volume in it), then fails on a pool on a read-only file system.
// The rollback leaves no pool, none of the directories fiat made (the
// directory above them, which existed, stays), no entity and nothing that
// needs attention; `fiat recover` has nothing left to do. The same
// directory then goes again through a successful apply and a destroy.
func TestRollbackLeavesNothing(t *testing.T) {
	l := requireLibvirt(t)
	root := t.TempDir()
	ro := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(ro, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", ro).CombinedOutput(); err != nil {
		t.Skipf("mount a read-only tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", ro).Run() })
	good, bad := uniq(), uniq()
	cleanupPool(t, l, good)
	cleanupPool(t, l, bad)
	deep := filepath.Join(root, "a", "b", "c", "d", "e", "f", "g", "h", "pool")
	config := func(withBad bool) string {
		src := fmt.Sprintf(`
resource "libvirt_pool" "good" {
  name = %q
  path = %q
}

resource "libvirt_volume" "disk" {
  name = "disk.qcow2"
  pool = libvirt_pool.good.name
  size = 1048576
}
`, good, deep)
		if withBad {
			src += fmt.Sprintf(`
resource "libvirt_pool" "bad" {
  name       = %q
  path       = %q
  depends_on = [libvirt_volume.disk]
}
`, bad, filepath.Join(ro, "pool"))
		}
		return src
	}
	c := newCLI(t, map[string]string{"main.hcl": config(true)})
	code, out, errs := c.run("apply", "-auto-approve", c.dir)
	if code == 0 {
		t.Fatalf("apply succeeded:\n%s", out)
	}
	for _, want := range []string{"Read-only file system", "libvirt_volume.disk: create undone", "libvirt_pool.good: create undone"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "needs-attention") || strings.Contains(errs, "clean up") {
		t.Errorf("something was not cleaned up:\n%s", errs)
	}
	wantRolledBack := func(what string) {
		t.Helper()
		if poolExists(l, good) || poolExists(l, bad) {
			t.Errorf("%s: a pool was left in libvirt", what)
		}
		if _, err := os.Lstat(filepath.Join(root, "a")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: directories fiat made are left (%v)", what, err)
		}
		if _, err := os.Lstat(root); err != nil {
			t.Errorf("%s: the directory that existed before is gone: %v", what, err)
		}
		if got := c.must("state", "list", c.dir); got != "" {
			t.Errorf("%s: entities left in the store: %q", what, got)
		}
	}
	wantRolledBack("after the failed apply")
	if out := c.must("recover", c.dir); !strings.Contains(out, "nothing needs attention") {
		t.Errorf("recover:\n%s", out)
	}

	c.write("main.hcl", config(false))
	c.must("apply", "-auto-approve", c.dir)
	if fi, err := os.Stat(deep); err != nil || !fi.IsDir() {
		t.Fatalf("pool directory after apply: %v", err)
	}
	c.must("destroy", "-auto-approve", c.dir)
	wantRolledBack("after destroy")
}
