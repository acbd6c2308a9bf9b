package main

import (
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"

	ignv3 "github.com/coreos/ignition/v2/config/v3_3"
	igntypes "github.com/coreos/ignition/v2/config/v3_3/types"
	"github.com/vincent-petithory/dataurl"

	"fiat/internal/testenv"
)

// More of the upstream provider's examples/v0.13 (v0.8.3), each adapted
// only in environment (see the comment atop each main.tf): validate, apply,
// a re-plan with no changes (-detailed-exitcode 0), destroy.

// upstreamExample runs the example in testdata/upstream/<example> through
// validate, apply, a clean re-plan and destroy, with vars; check (if not
// nil) looks at the applied objects before the re-plan.
func upstreamExample(t *testing.T, example string, vars []string, check func(applied string)) {
	t.Helper()
	dir, err := filepath.Abs(filepath.Join("testdata/upstream", example))
	if err != nil {
		t.Fatal(err)
	}
	data := filepath.Join(t.TempDir(), "state")
	run := func(args ...string) (int, string, string) {
		full := append(append([]string{args[0], "-data-dir", data}, vars...), args[1:]...)
		return runRaw(t, append(full, dir)...)
	}
	if code, out, errs := runRaw(t, append(append([]string{"validate"}, vars...), dir)...); code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := run("plan"); code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	code, applied, errs := run("apply", "-auto-approve")
	if code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, applied, errs)
	}
	if check != nil {
		check(applied)
	}
	if code, out, errs := run("plan", "-detailed-exitcode"); code != 0 {
		t.Errorf("re-plan after apply: exit %d, want 0 (no changes)\n%s%s", code, out, errs)
	}
	if code, out, errs := run("destroy", "-auto-approve"); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errs)
	}
}

// cleanupPrefixed removes whatever domains, networks and pools whose names
// start with prefix the test left.
func cleanupPrefixed(t *testing.T, prefix string) {
	t.Cleanup(func() {
		virsh := func(args ...string) string {
			out, _ := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).Output()
			return string(out)
		}
		for _, d := range strings.Fields(virsh("list", "--all", "--name")) {
			if strings.HasPrefix(d, prefix) {
				virsh("destroy", d)
				virsh("undefine", d, "--nvram")
			}
		}
		for _, n := range strings.Fields(virsh("net-list", "--all", "--name")) {
			if strings.HasPrefix(n, prefix) {
				virsh("net-destroy", n)
				virsh("net-undefine", n)
			}
		}
		for _, p := range strings.Fields(virsh("pool-list", "--all", "--name")) {
			if strings.HasPrefix(p, prefix) {
				for _, v := range strings.Fields(virsh("vol-list", p, "--name")) {
					virsh("vol-delete", v, "--pool", p)
				}
				virsh("pool-destroy", p)
				virsh("pool-delete", p)
				virsh("pool-undefine", p)
			}
		}
	})
}

func randomSubnet() string {
	return fmt.Sprintf("10.%d.%d", 200+rand.IntN(50), rand.IntN(250))
}

// imageServer serves files (name → content) on 127.0.0.1 and counts the
// requests for each (downloads run in parallel: hits(path) reads the
// count under the lock).
func imageServer(t *testing.T, files map[string]string) (*httptest.Server, func(string) int) {
	var mu sync.Mutex
	counts := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := files[strings.TrimPrefix(r.URL.Path, "/")]
		if !ok {
			http.NotFound(w, r)
			return
		}
		mu.Lock()
		counts[r.URL.Path]++
		mu.Unlock()
		http.ServeFile(w, r, p)
	}))
	t.Cleanup(srv.Close)
	return srv, func(path string) int {
		mu.Lock()
		defer mu.Unlock()
		return counts[path]
	}
}

// qcow2Image makes a small qcow2 image (with qemu-img) in a temp dir.
func qcow2Image(t *testing.T, size string) string {
	p := filepath.Join(t.TempDir(), "image.qcow2")
	if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", p, size).CombinedOutput(); err != nil {
		t.Fatalf("qemu-img create: %v: %s", err, out)
	}
	return p
}

func virshOut(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("virsh", append([]string{"-c", "qemu:///system"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("virsh %s: %v: %s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// The count example: a volume downloaded from an http URL, four overlays
// on it (count, base_volume_id), four domains picking theirs with
// element(...), and an output of every domain's
// network_interface.0.addresses.
func TestUpstreamCountExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	srv, hits := imageServer(t, map[string]string{"leap.qcow2": qcow2Image(t, "16M")})
	upstreamExample(t, "count", []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet(),
		"-var", "image_url=" + srv.URL + "/leap.qcow2"}, func(string) {
		info, err := exec.Command("qemu-img", "info", "-U", "/var/lib/libvirt/images/"+name+"/os_image").CombinedOutput()
		if err != nil || !strings.Contains(string(info), "file format: qcow2") || !strings.Contains(string(info), "virtual size: 16 MiB") {
			t.Errorf("os_image is not the served qcow2: %v\n%s", err, info)
		}
		for i := 0; i < 4; i++ {
			x := virshOut(t, "dumpxml", "--inactive", fmt.Sprintf("%s-domain-%d", name, i))
			if want := fmt.Sprintf("/var/lib/libvirt/images/%s/volume-%d", name, i); !strings.Contains(x, want) {
				t.Errorf("domain %d does not use %s:\n%s", i, want, x)
			}
		}
		if hits("/leap.qcow2") == 0 {
			t.Errorf("the image was never downloaded")
		}
	})
}

// The format example: a raw and a qcow2 image downloaded, an overlay on
// each, a domain on each overlay.
func TestUpstreamFormatExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	raw := filepath.Join(t.TempDir(), "debian8.img")
	if err := os.WriteFile(raw, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, _ := imageServer(t, map[string]string{"debian8.img": raw, "debian8.qcow2": qcow2Image(t, "8M")})
	upstreamExample(t, "format", []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet(),
		"-var", "image_base_url=" + srv.URL}, func(string) {
		dir := "/var/lib/libvirt/images/" + name + "/"
		for vol, want := range map[string]string{"debian8-raw": "file format: raw", "debian8-qcow2": "file format: qcow2",
			"vol-debian8-raw": "backing file format: raw", "vol-debian8-qcow2": "backing file format: qcow2"} {
			info, err := exec.Command("qemu-img", "info", "-U", dir+vol).CombinedOutput()
			if err != nil || !strings.Contains(string(info), want) {
				t.Errorf("%s: want %q: %v\n%s", vol, want, err, info)
			}
		}
	})
}

// The multiple example: a second provider alias, "remotehost", here this
// same host over qemu+tcp.
func TestUpstreamMultipleExample(t *testing.T) {
	requireLibvirt(t)
	if out, err := exec.Command("virsh", "-c", "qemu+tcp://127.0.0.1/system", "uri").CombinedOutput(); err != nil {
		t.Fatalf("libvirtd does not listen on TCP (scripts/libvirtd.sh makes it): %v: %s", err, out)
	}
	name := uniq()
	cleanupPrefixed(t, name)
	upstreamExample(t, "multiple", []string{"-var", "prefix=" + name}, func(string) {
		for _, d := range []string{name + "-local", name + "-remotehost"} {
			x := virshOut(t, "dumpxml", "--inactive", d)
			if !strings.Contains(x, "<memory unit='KiB'>2097152</memory>") || !strings.Contains(x, ">2</vcpu>") ||
				!strings.Contains(x, "/var/lib/libvirt/images/"+d+"/") {
				t.Errorf("domain %s:\n%s", d, x)
			}
		}
	})
}

// The boot example: boot order hd, network; a VNC display; an interface on
// a host bridge (made by the test) with a fixed MAC.
func TestUpstreamBootExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	bridge := "fb" + strings.TrimPrefix(name, "fiate2e-")
	if out, err := exec.Command("ip", "link", "add", "name", bridge, "type", "bridge").CombinedOutput(); err != nil {
		t.Fatalf("make bridge: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("ip", "link", "del", bridge).Run() })
	if out, err := exec.Command("ip", "link", "set", bridge, "up").CombinedOutput(); err != nil {
		t.Fatalf("bridge up: %v: %s", err, out)
	}
	upstreamExample(t, "boot", []string{"-var", "prefix=" + name, "-var", "bridge=" + bridge}, func(string) {
		x := virshOut(t, "dumpxml", "--inactive", name)
		for _, want := range []string{"<boot dev='hd'/>", "<boot dev='network'/>", "<graphics type='vnc'", "<source bridge='" + bridge + "'/>",
			"<mac address='52:54:00:b2:2f:86'/>", "<memory unit='KiB'>1048576</memory>"} {
			if !strings.Contains(x, want) {
				t.Errorf("domain XML lacks %s:\n%s", want, x)
			}
		}
		if strings.Index(x, "<boot dev='hd'/>") > strings.Index(x, "<boot dev='network'/>") {
			t.Errorf("boot order is not hd, network:\n%s", x)
		}
	})
}

// A source URL the server refuses fails the apply (preflight), naming the
// URL and the server's status; a relative path is still the module's file.
func TestVolumeSourceURLRefused(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	srv, _ := imageServer(t, map[string]string{})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`resource "libvirt_pool" "p" {
  name = %[1]q
  path = "/var/lib/libvirt/images/%[1]s"
}
resource "libvirt_volume" "img" {
  name   = "img"
  pool   = libvirt_pool.p.name
  source = "%[2]s/missing.qcow2"
}
`, name, srv.URL))
	code, out, errs := runRaw(t, "apply", "-auto-approve", "-data-dir", filepath.Join(dir, "state"), dir)
	if code == 0 || !strings.Contains(errs, srv.URL+"/missing.qcow2") || !strings.Contains(errs, "404 Not Found") {
		t.Fatalf("apply: exit %d, want an error naming the URL and 404:\n%s%s", code, out, errs)
	}
	writeFile(t, filepath.Join(dir, "main.tf"), `resource "libvirt_volume" "img" {
  name   = "img"
  source = "ftp://example.com/x.qcow2"
}
`)
	if code, out, errs := runRaw(t, "validate", dir); code == 0 || !strings.Contains(errs, "only http and https URLs") {
		t.Fatalf("validate: exit %d, want the scheme refused:\n%s%s", code, out, errs)
	}
}

// The tumbleweed example: an image downloaded, cloud-init from two
// template files, two consoles and spice graphics.
func TestUpstreamTumbleweedExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	srv, hits := imageServer(t, map[string]string{"tumbleweed.qcow2": qcow2Image(t, "16M")})
	upstreamExample(t, "tumbleweed", []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet(),
		"-var", "image_url=" + srv.URL + "/tumbleweed.qcow2"}, func(string) {
		x := virshOut(t, "dumpxml", "--inactive", name+"-tumbleweed-terraform")
		for _, want := range []string{"commoninit.iso", "target type='virtio'", "type='spice'", "/var/lib/libvirt/images/" + name + "/tumbleweed"} {
			if !strings.Contains(x, want) {
				t.Errorf("the domain XML lacks %q:\n%s", want, x)
			}
		}
		if hits("/tumbleweed.qcow2") == 0 {
			t.Errorf("the image was never downloaded")
		}
	})
}

// The cdroms example: three files of the module attached as read-only
// SATA CD-ROMs (disk { file }), beside the cloud-init disk.
func TestUpstreamCdromsExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	dir, _ := filepath.Abs("testdata/upstream/cdroms")
	upstreamExample(t, "cdroms", []string{"-var", "prefix=" + name}, func(string) {
		x := virshOut(t, "dumpxml", "--inactive", name)
		for i, f := range []string{"image.iso", "image2.iso", "image3.iso"} {
			want := fmt.Sprintf("<source file='%s'/>", filepath.Join(dir, f))
			target := fmt.Sprintf("<target dev='sd%c' bus='sata'/>", 'b'+i)
			if !strings.Contains(x, want) || !strings.Contains(x, target) {
				t.Errorf("domain XML lacks %s on %s:\n%s", want, target, x)
			}
		}
		if n := strings.Count(x, "device='cdrom'"); n != 4 {
			t.Errorf("%d CD-ROMs, want 4 (three files and cloud-init):\n%s", n, x)
		}
	})
}

// The uefi example: two domains booting a UEFI code image read-only as
// pflash, each with its NVRAM file seeded from a template.
func TestUpstreamUEFIExample(t *testing.T) {
	requireLibvirt(t)
	if _, err := os.Stat("/usr/share/OVMF/OVMF_CODE.fd"); err != nil {
		t.Fatalf("OVMF is not installed (scripts/libvirtd.sh installs the ovmf package): %v", err)
	}
	name := uniq()
	cleanupPrefixed(t, name)
	srv, _ := imageServer(t, map[string]string{"uefi.img": qcow2Image(t, "16M")})
	upstreamExample(t, "uefi", []string{"-var", "prefix=" + name, "-var", "image_url=" + srv.URL + "/uefi.img"}, func(string) {
		for i := 0; i < 2; i++ {
			x := virshOut(t, "dumpxml", "--inactive", fmt.Sprintf("%s-%d", name, i))
			nv := fmt.Sprintf("/var/lib/libvirt/qemu/nvram/%s-vm%d_VARS.fd", name, i)
			for _, want := range []string{"<loader readonly='yes' type='pflash'>/usr/share/OVMF/OVMF_CODE.fd</loader>",
				"<nvram template='/usr/share/OVMF/OVMF_VARS.fd'>" + nv + "</nvram>"} {
				if !strings.Contains(x, want) {
					t.Errorf("domain %d XML lacks %s:\n%s", i, want, x)
				}
			}
			if _, err := os.Stat(nv); err != nil {
				t.Errorf("domain %d runs without its NVRAM file: %v", i, err)
			}
		}
	})
	for i := 0; i < 2; i++ {
		if _, err := os.Stat(fmt.Sprintf("/var/lib/libvirt/qemu/nvram/%s-vm%d_VARS.fd", name, i)); err == nil {
			t.Errorf("destroy left domain %d's NVRAM file", i)
		}
	}
}

// dnsmasq_options as the upstream docs write them: the options reach the
// network's dnsmasq, read back as written (a re-plan is clean), and go
// with the network.
func TestUpstreamDnsmasqOptions(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "libvirt_network" "net" {
  name      = %q
  mode      = "nat"
  addresses = ["%s.0/24"]
  dnsmasq_options {
    options {
      option_name  = "server"
      option_value = "/example.com/10.0.0.1"
    }
    options {
      option_name = "no-resolv"
    }
  }
}
`, name, randomSubnet()))
	data := filepath.Join(t.TempDir(), "state")
	if code, out, errs := runRaw(t, "apply", "-auto-approve", "-data-dir", data, dir); code != 0 {
		t.Fatalf("apply: exit %d\n%s%s", code, out, errs)
	}
	x := virshOut(t, "net-dumpxml", "--inactive", name)
	for _, want := range []string{"<dnsmasq:option value='server=/example.com/10.0.0.1'/>", "<dnsmasq:option value='no-resolv'/>"} {
		if !strings.Contains(x, want) {
			t.Errorf("network XML lacks %s:\n%s", want, x)
		}
	}
	if conf, err := os.ReadFile("/var/lib/libvirt/dnsmasq/" + name + ".conf"); err == nil && !strings.Contains(string(conf), "server=/example.com/10.0.0.1") {
		t.Errorf("the network's dnsmasq configuration lacks the option:\n%s", conf)
	}
	if code, out, errs := runRaw(t, "plan", "-detailed-exitcode", "-data-dir", data, dir); code != 0 {
		t.Errorf("re-plan: exit %d, want 0 (no changes)\n%s%s", code, out, errs)
	}
	if code, out, errs := runRaw(t, "destroy", "-auto-approve", "-data-dir", data, dir); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errs)
	}
}

// A network with addresses and no dhcp block serves DHCP over upstream's
// default range when it is written in a .tf file, as the dmacvicar/libvirt
// provider does, and none when written in fiat's own .hcl (as fiat always
// has). Both re-plan clean.
func TestUpstreamDefaultDHCP(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	for _, ext := range []string{"tf", "hcl"} {
		subnet := randomSubnet()
		dir := t.TempDir()
		net := name + "-" + ext
		writeFile(t, filepath.Join(dir, "main."+ext), fmt.Sprintf(`
resource "libvirt_network" "net" {
  name      = %q
  addresses = ["%s.0/24"]
}
`, net, subnet))
		data := filepath.Join(t.TempDir(), "state")
		if code, out, errs := runRaw(t, "apply", "-auto-approve", "-data-dir", data, dir); code != 0 {
			t.Fatalf("%s: apply: exit %d\n%s%s", ext, code, out, errs)
		}
		x := virshOut(t, "net-dumpxml", "--inactive", net)
		hasRange := strings.Contains(x, fmt.Sprintf("<range start='%s.2' end='%s.254'", subnet, subnet))
		if ext == "tf" && !hasRange || ext == "hcl" && strings.Contains(x, "<dhcp>") {
			t.Errorf("%s: DHCP range present = %v:\n%s", ext, hasRange, x)
		}
		if code, out, errs := runRaw(t, "plan", "-detailed-exitcode", "-data-dir", data, dir); code != 0 {
			t.Errorf("%s: re-plan: exit %d, want 0 (no changes)\n%s%s", ext, code, out, errs)
		}
		if code, out, errs := runRaw(t, "destroy", "-auto-approve", "-data-dir", data, dir); code != 0 {
			t.Fatalf("%s: destroy: exit %d\n%s%s", ext, code, out, errs)
		}
	}
}

// The xslt example: xml { xslt } turns the domain's virtio NIC into an
// e1000 through xsltproc; the re-plan is clean although libvirt's XML now
// differs from what fiat generates. A broken stylesheet is a preflight
// problem naming xsltproc's complaint, and nothing is created.
func TestUpstreamXSLTExample(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	cleanupPrefixed(t, name)
	vars := []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet()}
	upstreamExample(t, "xslt", vars, func(string) {
		x := virshOut(t, "dumpxml", "--inactive", name+"-xslt-demo-domain")
		if !strings.Contains(x, "<model type='e1000'/>") || strings.Contains(x, "<model type='virtio'/>") {
			t.Errorf("the stylesheet did not set the NIC model:\n%s", x)
		}
	})

	dir := t.TempDir()
	src, err := os.ReadFile("testdata/upstream/xslt/main.tf")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "main.tf"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "nicmodel.xsl"), []byte(`<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform"><xsl:template match="/"><xsl:copy-of select="."/></xsl:template`), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append(append([]string{"apply", "-auto-approve", "-data-dir", filepath.Join(dir, "state")}, vars...), dir)
	code, out, errs := runRaw(t, args...)
	if code == 0 || !strings.Contains(out+errs, "xsltproc") || !strings.Contains(out+errs, "libvirt_domain.xslt-demo-domain") || !strings.Contains(out+errs, "nothing was changed") {
		t.Errorf("apply with a broken stylesheet: exit %d, want a problem naming the domain and xsltproc's complaint\n%s%s", code, out, errs)
	}
	if n := strings.TrimSpace(virshOut(t, "net-list", "--all", "--name")); strings.Contains(n, name) {
		t.Errorf("a refused apply created the network:\n%s", n)
	}
}

// ignitionOf reads the Ignition config QEMU hands the running domain: the
// file its -fw_cfg argument names, as Ignition would parse it.
func ignitionOf(t *testing.T, domain, fwCfgName string) igntypes.Config {
	t.Helper()
	x := virshOut(t, "dumpxml", domain)
	m := regexp.MustCompile(`<qemu:arg value='name=([^,]+),file=([^']+)'/>`).FindStringSubmatch(x)
	if m == nil || m[1] != fwCfgName {
		t.Fatalf("domain %s has no -fw_cfg %s:\n%s", domain, fwCfgName, x)
	}
	if out := virshOut(t, "domstate", domain); !strings.Contains(out, "running") {
		t.Errorf("domain %s is %s: QEMU did not start with its fw_cfg", domain, out)
	}
	b, err := os.ReadFile(m[2])
	if err != nil {
		t.Fatal(err)
	}
	cfg, rpt, err := ignv3.Parse(b)
	if err != nil {
		t.Fatalf("the ignition volume of %s is not a valid config: %v %s\n%s", domain, err, rpt.String(), b)
	}
	return cfg
}

// ignitionFile is the content of a file of an Ignition config ("" if none).
func ignitionFile(t *testing.T, cfg igntypes.Config, path string) string {
	t.Helper()
	for _, f := range cfg.Storage.Files {
		if f.Path == path && f.Contents.Source != nil {
			u, err := dataurl.DecodeString(*f.Contents.Source)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			return string(u.Data)
		}
	}
	return ""
}

// guestLeases lists the IPv4 addresses leased on a network (the test's
// own: only its guests are on it).
func guestLeases(t *testing.T, network string) []string {
	t.Helper()
	var out []string
	for _, m := range regexp.MustCompile(`ipv4\s+(\d+\.\d+\.\d+\.\d+)/\d+`).FindAllStringSubmatch(virshOut(t, "net-dhcp-leases", network), -1) {
		out = append(out, m[1])
	}
	return out
}

// The fcos example: the ignition data sources render a config, a
// libvirt_ignition volume holds it, and the domain's QEMU gets it through
// fw_cfg, where Fedora CoreOS's Ignition looks; the guest (fiat's test
// image in CoreOS's place) takes the lease wait_for_lease waits for.
func TestUpstreamFcosExample(t *testing.T) {
	requireLibvirt(t)
	srv, _ := imageServer(t, map[string]string{"coreos.qcow2": testenv.GuestImage(t)})
	name := uniq()
	cleanupPrefixed(t, name)
	upstreamExample(t, "fcos", []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet(), "-var", "image_url=" + srv.URL + "/coreos.qcow2",
		"-var", "libvirt_provider=qemu", "-var", "hostname_format=" + name + "-coreos%02d"}, func(applied string) {
		if leases := guestLeases(t, name); len(leases) != 1 || !strings.Contains(applied, `ipv4 = [["`+leases[0]+`"]]`) {
			t.Errorf("the output ipv4 is not the guest's lease %v:\n%s", leases, applied)
		}
		cfg := ignitionOf(t, name+"-coreos01", "opt/com.coreos/config")
		if got := ignitionFile(t, cfg, "/etc/hostname"); got != name+"-coreos01" {
			t.Errorf("/etc/hostname = %q", got)
		}
		if len(cfg.Passwd.Users) != 1 || cfg.Passwd.Users[0].Name != "core" || cfg.Passwd.Users[0].PasswordHash == nil {
			t.Errorf("users: %+v", cfg.Passwd.Users)
		}
	})
}

// The flatcar example: spec 2's spellings (filesystem = "root", a networkd
// unit) and a template_file with a random_string inside the config, for
// two nodes, each under Flatcar's fw_cfg name.
func TestUpstreamFlatcarExample(t *testing.T) {
	requireLibvirt(t)
	srv, _ := imageServer(t, map[string]string{"flatcar.qcow2": testenv.GuestImage(t)})
	name := uniq()
	cleanupPrefixed(t, name)
	upstreamExample(t, "flatcar-linux", []string{"-var", "prefix=" + name, "-var", "subnet=" + randomSubnet(), "-var", "image_url=" + srv.URL + "/flatcar.qcow2",
		"-var", "hostname_format=" + name + "-node-%02d"}, func(string) {
		if leases := guestLeases(t, name); len(leases) != 2 {
			t.Errorf("want a lease for each of the two nodes, got %v", leases)
		}
		var tokens []string
		for i := 1; i <= 2; i++ {
			node := fmt.Sprintf("%s-node-%02d", name, i)
			cfg := ignitionOf(t, node, "opt/org.flatcar-linux/config")
			if got := ignitionFile(t, cfg, "/etc/hostname"); got != node {
				t.Errorf("%s: /etc/hostname = %q", node, got)
			}
			if got := ignitionFile(t, cfg, "/etc/systemd/network/00-wired.network"); !strings.Contains(got, "DHCP=ipv4") {
				t.Errorf("%s: the networkd unit: %q", node, got)
			}
			if len(cfg.Systemd.Units) != 1 || len(cfg.Systemd.Units[0].Dropins) != 1 || cfg.Systemd.Units[0].Dropins[0].Contents == nil {
				t.Fatalf("%s: units %+v", node, cfg.Systemd.Units)
			}
			dropin := *cfg.Systemd.Units[0].Dropins[0].Contents
			m := regexp.MustCompile(`--initial-cluster-token (\S+)`).FindStringSubmatch(dropin)
			if m == nil || len(m[1]) != 16 || !strings.Contains(dropin, "--name "+node) {
				t.Fatalf("%s: the etcd drop-in was not rendered:\n%s", node, dropin)
			}
			tokens = append(tokens, m[1])
		}
		if tokens[0] != tokens[1] {
			t.Errorf("the nodes got different cluster tokens: %q", tokens)
		}
	})
}

// The resize_base example: an overlay larger than its base, and a domain
// that waits for its DHCP lease (wait_for_lease) and outputs the address —
// here a real guest (scripts/guest-image.sh) boots from the overlay and
// asks for it.
func TestUpstreamResizeBaseExample(t *testing.T) {
	requireLibvirt(t)
	image := testenv.GuestImage(t)
	name := uniq()
	cleanupPrefixed(t, name)
	srv, hits := imageServer(t, map[string]string{"ubuntu.img": image})
	subnet := randomSubnet()
	upstreamExample(t, "resize_base", []string{"-var", "prefix=" + name, "-var", "subnet=" + subnet,
		"-var", "image_url=" + srv.URL + "/ubuntu.img"}, func(applied string) {
		if hits("/ubuntu.img") == 0 {
			t.Error("the image was never downloaded")
		}
		info, err := exec.Command("qemu-img", "info", "-U", "/var/lib/libvirt/images/"+name+"/disk").CombinedOutput()
		// libvirt rounds a size up (here to a KiB).
		var size int64
		if m := regexp.MustCompile(`virtual size: .*\((\d+) bytes\)`).FindSubmatch(info); m != nil {
			fmt.Sscan(string(m[1]), &size)
		}
		if err != nil || size < 5361393152 || size >= 5361393152+64<<10 || !strings.Contains(string(info), "backing file: /var/lib/libvirt/images/"+name+"/os_image_ubuntu") {
			t.Errorf("disk is not a 5361393152-byte overlay on os_image_ubuntu: %v\n%s", err, info)
		}
		leases := guestLeases(t, name)
		if len(leases) != 1 {
			t.Fatalf("the guest holds no lease on %s: %v", name, leases)
		}
		if !strings.Contains(applied, `ip = "`+leases[0]+`"`) {
			t.Errorf("output ip is not the guest's lease %s:\n%s", leases[0], applied)
		}
	})
}
