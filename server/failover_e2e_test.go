package server_test

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"

	"fiat/internal/testenv"

	golibvirt "github.com/digitalocean/go-libvirt"
)

func requireLibvirt(t *testing.T) *golibvirt.Libvirt { return testenv.RequireLibvirt(t) }

func poolConfig(name string) string {
	return fmt.Sprintf(`
provider "libvirt" {
  uri = "qemu:///system"
}

resource "libvirt_pool" "p" {
  name = %[1]q
  type = "dir"
  path = "/var/lib/libvirt/images/%[1]s"
}

resource "libvirt_volume" "a" {
  name = "a.qcow2"
  pool = libvirt_pool.p.name
  size = 1048576
  format = "qcow2"
}

resource "libvirt_volume" "b" {
  name = "b.raw"
  pool = libvirt_pool.p.name
  size = 1048576
  format = "raw"
}
`, name)
}

// removePool deletes a pool fiat left (only on a failed test).
func removePool(name string) {
	exec.Command("virsh", "pool-destroy", name).Run()
	exec.Command("virsh", "pool-delete", name).Run()
	exec.Command("virsh", "pool-undefine", name).Run()
	os.RemoveAll("/var/lib/libvirt/images/" + name)
}

// The leader is killed (SIGKILL, by a failpoint) at several moments of an
// apply submitted through a follower. The new leader finds the open
// transaction in the replicated journal and settles it on its own: rolled
// back before the commit, finished after it. The CLI follows the run to
// the new leader and prints what happened; libvirt matches the store; every
// node's state machine is the same, the restarted old leader's too.
func TestLeaderKilledMidApply(t *testing.T) {
	l := requireLibvirt(t)
	for _, tc := range []struct {
		failpoint string
		committed bool
	}{
		{"after-begin", false},
		{"after-intent:2", false},
		{"after-call:2", false},
		{"before-commit", false},
		{"after-commit", true},
	} {
		t.Run(tc.failpoint, func(t *testing.T) {
			b := make([]byte, 3)
			rand.Read(b)
			pool := "fiatcl-" + hex.EncodeToString(b)
			t.Cleanup(func() { removePool(pool) })
			c := startCluster(t, 3, []string{"FIAT_FAILPOINT=" + tc.failpoint})
			lead := c.leader()
			dir := t.TempDir()
			writeFiles(t, dir, map[string]string{"main.tf": poolConfig(pool)})

			r := c.fiat(dir, "apply", "-auto-approve", "-stack", "fo", ".")
			if lead.alive() {
				t.Fatalf("the leader survived failpoint %s:\n%s", tc.failpoint, r)
			}
			if !strings.Contains(r.stderr, "Lost the connection to the server running run") {
				t.Errorf("the CLI did not follow the run:\n%s", r)
			}
			_, err := l.StoragePoolLookupByName(pool)
			list := c.fiat(dir, "state", "list", "-stack", "fo", ".")
			if tc.committed {
				if r.code != 0 || !strings.Contains(r.stderr, ": applied") {
					t.Errorf("a run killed after its commit should end applied:\n%s", r)
				}
				if err != nil || strings.Count(list.stdout, "libvirt_") != 3 {
					t.Errorf("committed: pool lookup %v, state:\n%s", err, list)
				}
			} else {
				want := "rolled back: leader " + lead.name + " lost mid-apply"
				if r.code != 1 || !strings.Contains(r.stderr, want) {
					t.Errorf("want exit 1 and %q:\n%s", want, r)
				}
				if err == nil {
					t.Errorf("pool %s is still in libvirt after the rollback", pool)
				}
				if strings.Contains(list.stdout, "libvirt_") {
					t.Errorf("the store holds entities after the rollback:\n%s", list)
				}
				if _, err := os.Stat("/var/lib/libvirt/images/" + pool); err == nil {
					t.Errorf("the pool's directory is left after the rollback")
				}
			}
			// The killed leader comes back without the failpoint and
			// catches up; all three agree.
			lead.env = nil
			lead.start()
			c.waitReady(lead)
			c.converged()
			show := c.fiat(dir, "runs", "fo")
			if !strings.Contains(show.stdout, map[bool]string{true: "applied", false: "rolled back"}[tc.committed]) {
				t.Errorf("runs:\n%s", show)
			}
			if tc.committed {
				if r := c.fiat(dir, "destroy", "-auto-approve", "-stack", "fo", "."); r.code != 0 {
					t.Errorf("destroy:\n%s", r)
				}
			}
		})
	}
}
