package main

import (
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// A configuration written for the dmacvicar/libvirt provider (its ubuntu
// example, testdata/upstream/ubuntu) runs unchanged: base_volume_id,
// base_volume_name/_pool, memory as a string, console, graphics,
// qemu_agent, boot_device, description, network_interface { network_id,
// hostname } and network_interface[0].addresses, and the network's domain,
// mtu, dhcp { enabled }, dns { ... } and routes. It applies, re-plans with
// no changes, and destroys.
func TestUpstreamUbuntuExample(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupNamed(t, l, name)
	dir, err := filepath.Abs("testdata/upstream/ubuntu")
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "state")
	vars := []string{"-var", "prefix=" + name, "-var", fmt.Sprintf("subnet=10.%d.%d", 200+rand.IntN(50), rand.IntN(250))}
	run := func(args ...string) (int, string, string) {
		full := append(append([]string{args[0], "-data-dir", data}, vars...), args[1:]...)
		return runRaw(t, append(full, dir)...)
	}
	if code, out, errs := run("apply", "-auto-approve"); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	x, err := exec.Command("virsh", "-c", "qemu:///system", "dumpxml", "--inactive", name).CombinedOutput()
	if err != nil {
		t.Fatalf("dumpxml: %v: %s", err, x)
	}
	for _, want := range []string{"<memory unit='KiB'>524288</memory>", "<graphics type='spice'", "<target type='virtio' port='1'/>",
		"org.qemu.guest_agent.0", "<boot dev='network'/>", "<description>ubuntu example</description>", "<source network='" + name + "'"} {
		if !strings.Contains(string(x), want) {
			t.Errorf("domain XML lacks %s:\n%s", want, x)
		}
	}
	nx, err := exec.Command("virsh", "-c", "qemu:///system", "net-dumpxml", "--inactive", name).CombinedOutput()
	if err != nil {
		t.Fatalf("net-dumpxml: %v: %s", err, nx)
	}
	for _, want := range []string{"<domain name='k8s.local' localOnly='yes'/>", "<mtu size='9000'/>", "<dns enable='yes'>", "<forwarder addr='9.9.9.9'/>",
		"<hostname>myhost</hostname>", ".254'/>", "<route address='10.17.0.0' prefix='16'"} {
		if !strings.Contains(string(nx), want) {
			t.Errorf("network XML lacks %s:\n%s", want, nx)
		}
	}
	for _, vol := range []string{"master.qcow2", "worker.qcow2"} {
		info, err := exec.Command("qemu-img", "info", "-U", "/var/lib/libvirt/images/"+name+"/"+vol).CombinedOutput()
		if err == nil && !strings.Contains(string(info), "backing file: /var/lib/libvirt/images/"+name+"/ubuntu-qcow2") {
			t.Errorf("%s is no overlay on ubuntu-qcow2:\n%s", vol, info)
		}
	}
	if code, out, errs := run("plan", "-detailed-exitcode"); code != 0 {
		t.Fatalf("re-plan after apply: exit %d, want 0 (no changes)\n%s%s", code, out, errs)
	}
	if code, out, errs := run("destroy", "-auto-approve"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errs)
	}
	if poolExists(l, name) {
		t.Errorf("pool %s still exists after destroy", name)
	}
}

// A misspelt upstream argument or block is an error suggesting the name.
func TestUpstreamMisspeltArguments(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), `resource "libvirt_volume" "a" {
  name            = "a"
  base_volume_nme = "x"
}
resource "libvirt_domain" "d" {
  name       = "d"
  qemu_agnet = true
  grahpics {
    type = "spice"
  }
  network_interface {
    network_ide = "x"
  }
}
`)
	code, out, errs := runRaw(t, "validate", dir)
	flat := strings.Join(strings.Fields(errs), " ")
	for _, want := range []string{`Did you mean "base_volume_name"?`, `Did you mean "qemu_agent"?`, `Did you mean "graphics"?`, `Did you mean "network_id"?`} {
		if code == 0 || !strings.Contains(flat, want) {
			t.Errorf("want %s: exit %d\n%s%s", want, code, out, errs)
		}
	}
}
