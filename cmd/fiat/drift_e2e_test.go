package main

import (
	"fmt"
	"os/exec"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
)

func virsh(t *testing.T, args ...string) {
	t.Helper()
	if out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput(); err != nil {
		t.Fatalf("virsh %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

func cleanupNetwork(t *testing.T, name string) {
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "net-destroy", name).Run()
		exec.Command("virsh", "-c", "qemu:///system", "net-undefine", name).Run()
	})
}

// cleanupDomains removes every domain whose name starts with prefix (its
// retired copies too).
func cleanupDomains(t *testing.T, l *golibvirt.Libvirt, prefix string) {
	t.Cleanup(func() {
		doms, _, _ := l.ConnectListAllDomains(1, 0)
		for _, d := range doms {
			if strings.HasPrefix(d.Name, prefix) {
				_ = l.DomainDestroy(d)
				_ = l.DomainUndefineFlags(d, golibvirt.DomainUndefineManagedSave|golibvirt.DomainUndefineNvram)
			}
		}
	})
}

// runState says whether a pool or network runs and autostarts.
func runState(t *testing.T, l *golibvirt.Libvirt, kind, name string) (active, autostart bool) {
	t.Helper()
	var a, s int32
	var err error
	switch kind {
	case "pool":
		var p golibvirt.StoragePool
		if p, err = l.StoragePoolLookupByName(name); err == nil {
			if a, err = l.StoragePoolIsActive(p); err == nil {
				s, err = l.StoragePoolGetAutostart(p)
			}
		}
	case "network":
		var n golibvirt.Network
		if n, err = l.NetworkLookupByName(name); err == nil {
			if a, err = l.NetworkIsActive(n); err == nil {
				s, err = l.NetworkGetAutostart(n)
			}
		}
	}
	if err != nil {
		t.Fatalf("%s %s: %v", kind, name, err)
	}
	return a == 1, s == 1
}

func poolAndNetworkConfig(name, size string) string {
	return poolConfig(name, size) + fmt.Sprintf(`
resource "libvirt_network" "lan" {
  name = %q
  mode = "isolated"
}
`, name)
}

// A pool holding a volume and a network, stopped and with autostart turned
// off outside fiat (virsh pool-destroy, pool-autostart --disable,
// net-destroy, net-autostart --disable): the plan shows the drift and plans
// to start them again (the volume in the stopped pool does not fail it);
// the apply does; the next plan has no changes.
func TestStoppedPoolAndNetworkRepaired(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupPool(t, l, name)
	cleanupNetwork(t, name)
	c := newCLI(t, map[string]string{"main.hcl": poolAndNetworkConfig(name, "1048576")})
	c.must("apply", "-auto-approve", c.dir)
	if code, out, errs := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after apply: exit %d\n%s%s", code, out, errs)
	}

	virsh(t, "pool-destroy", name)
	virsh(t, "pool-autostart", "--disable", name)
	virsh(t, "net-destroy", name)
	virsh(t, "net-autostart", "--disable", name)
	code, out, errs := c.run("plan", "-detailed-exitcode", c.dir)
	if code != exitChanges {
		t.Fatalf("plan: exit %d, want 2\n%s%s", code, out, errs)
	}
	for _, w := range []string{"Objects changed outside fiat",
		"# libvirt_pool.images changed outside fiat", "# libvirt_network.lan changed outside fiat",
		"~ active", "~ autostart", "true -> false",
		"libvirt_pool.images will be updated in place", "libvirt_network.lan will be updated in place"} {
		if !strings.Contains(out, w) {
			t.Fatalf("plan lacks %q:\n%s", w, out)
		}
	}
	if strings.Contains(out, "libvirt_volume.disk will") {
		t.Fatalf("the volume in the stopped pool is planned to change:\n%s", out)
	}

	c.must("apply", "-auto-approve", c.dir)
	for _, kind := range []string{"pool", "network"} {
		if active, autostart := runState(t, l, kind, name); !active || !autostart {
			t.Errorf("%s after apply: active=%v autostart=%v, want both", kind, active, autostart)
		}
	}
	if code, out, errs := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after the repair: exit %d\n%s%s", code, out, errs)
	}
	c.must("destroy", "-auto-approve", c.dir)
}

// Values libvirt normalises converge: a qcow2 size that is not whole KiB
// (libvirt rounds 1536 up to 2048) and a MAC in upper case (libvirt lower-
// cases it) apply, and the next plan has no changes, instead of a refused
// shrink and a MAC change forever.
func TestNormalisedValuesReplanClean(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupPool(t, l, name)
	cleanupNetwork(t, name)
	cleanupDomains(t, l, name)
	c := newCLI(t, map[string]string{"main.hcl": poolAndNetworkConfig(name, "1536") + fmt.Sprintf(`
resource "libvirt_domain" "vm" {
  name    = %q
  memory  = 64
  running = false
  network_interface {
    network_name = libvirt_network.lan.name
    mac          = "52:54:00:AB:CD:EF"
  }
}
`, name)})
	out := c.must("plan", c.dir)
	for _, w := range []string{"size", "= 2048", `"52:54:00:ab:cd:ef"`} {
		if !strings.Contains(out, w) {
			t.Fatalf("plan lacks %q (the value libvirt will report):\n%s", w, out)
		}
	}
	c.must("apply", "-auto-approve", c.dir)
	if got := c.must("state", "show", "libvirt_volume.disk", c.dir); !strings.Contains(got, "size = 2048") {
		t.Fatalf("state show:\n%s", got)
	}
	if code, out, errs := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after apply: exit %d\n%s%s", code, out, errs)
	}
	c.must("destroy", "-auto-approve", c.dir)
}
