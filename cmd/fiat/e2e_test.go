package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fiat/internal/testenv"
	"fiat/state"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// These tests run the CLI in-process against the real libvirtd started by
// scripts/libvirtd.sh, with a real on-disk store. Without libvirtd they skip,
// or fail when CI=true.

func requireLibvirt(t *testing.T) *golibvirt.Libvirt { return testenv.RequireLibvirt(t) }

func uniq() string {
	b := make([]byte, 3)
	rand.Read(b)
	return "fiate2e-" + hex.EncodeToString(b)
}

type cli struct {
	t       *testing.T
	dir     string
	dataDir string
}

func newCLI(t *testing.T, files map[string]string) *cli {
	dir := t.TempDir()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return &cli{t: t, dir: dir, dataDir: filepath.Join(t.TempDir(), "state")}
}

func (c *cli) write(name, src string) {
	if err := os.WriteFile(filepath.Join(c.dir, name), []byte(src), 0o644); err != nil {
		c.t.Fatal(err)
	}
}

// run executes one fiat command; the config dir and data dir are appended.
func (c *cli) run(args ...string) (code int, stdout, stderr string) {
	c.t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Interactive: func() bool { return false }}
	full := append([]string{args[0], "-data-dir", c.dataDir, "-stack", "e2e"}, args[1:]...)
	if args[0] == "state" {
		full = append([]string{"state", args[1], "-data-dir", c.dataDir, "-stack", "e2e"}, args[2:]...)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	code = m.Run(ctx, full)
	return code, out.String(), errb.String()
}

func (c *cli) must(args ...string) string {
	c.t.Helper()
	code, out, errs := c.run(args...)
	if code != 0 {
		c.t.Fatalf("fiat %v: exit %d\n%s\n%s", args, code, out, errs)
	}
	return out
}

func poolExists(l *golibvirt.Libvirt, name string) bool {
	_, err := l.StoragePoolLookupByName(name)
	return err == nil
}

// cleanupNamed removes the pool, domain and network named name when the
// test ends, whatever the test left.
func cleanupNamed(t *testing.T, l *golibvirt.Libvirt, name string) {
	cleanupPool(t, l, name)
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "destroy", name).Run()
		exec.Command("virsh", "-c", "qemu:///system", "undefine", name, "--nvram").Run()
		exec.Command("virsh", "-c", "qemu:///system", "net-destroy", name).Run()
		exec.Command("virsh", "-c", "qemu:///system", "net-undefine", name).Run()
	})
}

func cleanupPool(t *testing.T, l *golibvirt.Libvirt, name string) {
	t.Cleanup(func() {
		exec.Command("virsh", "-c", "qemu:///system", "pool-destroy", name).Run()
		exec.Command("virsh", "-c", "qemu:///system", "pool-delete", name).Run()
		exec.Command("virsh", "-c", "qemu:///system", "pool-undefine", name).Run()
	})
}

func poolConfig(name, size string) string {
	return fmt.Sprintf(`
variable "name" {
  default = %q
}
resource "libvirt_pool" "images" {
  name = var.name
  path = "/var/lib/libvirt/images/${var.name}"
}
resource "libvirt_volume" "disk" {
  name   = "disk.qcow2"
  pool   = libvirt_pool.images.name
  size   = %s
}
output "disk_path" {
  value = libvirt_volume.disk.path
}
`, name, size)
}

func TestApplyReplanStaleDestroy(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupPool(t, l, name)
	c := newCLI(t, map[string]string{"main.hcl": poolConfig(name, "1048576")})

	c.must("validate", c.dir)
	if code, out, errs := c.run("plan", "-detailed-exitcode", c.dir); code != exitChanges {
		t.Fatalf("plan before apply: exit %d, want 2\n%s%s", code, out, errs)
	}
	out := c.must("apply", "-auto-approve", c.dir)
	if !strings.Contains(out, "2 created") || !strings.Contains(out, "disk_path = \"/var/lib/libvirt/images/"+name+"/disk.qcow2\"") {
		t.Fatalf("apply output:\n%s", out)
	}
	if !poolExists(l, name) {
		t.Fatal("pool not in libvirt after apply")
	}
	if got := c.must("state", "list", c.dir); got != "libvirt_pool.images\nlibvirt_volume.disk\n" {
		t.Fatalf("state list: %q", got)
	}
	if got := c.must("state", "show", "libvirt_volume.disk", c.dir); !strings.Contains(got, "size = 1048576") {
		t.Fatalf("state show:\n%s", got)
	}
	// Re-plan right after apply: no changes, exit 0.
	if code, out, errs := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK || !strings.Contains(out, "No changes") {
		t.Fatalf("re-plan: exit %d\n%s%s", code, out, errs)
	}

	// A saved plan made stale by another apply is refused, naming the entity.
	c.write("main.hcl", poolConfig(name, "2097152"))
	planFile := filepath.Join(t.TempDir(), "grow.plan")
	out = c.must("plan", "-out", planFile, c.dir)
	if !strings.Contains(out, "sha256:") || !strings.Contains(out, "~ size = 1048576 -> 2097152") {
		t.Fatalf("plan -out:\n%s", out)
	}
	c.write("main.hcl", poolConfig(name, "4194304"))
	c.must("apply", "-auto-approve", c.dir)
	code, _, errs := c.run("apply", planFile)
	if code == 0 || !strings.Contains(errs, "e2e/libvirt_volume.disk changed since the plan read it (read at revision 1, now at revision 2)") {
		t.Fatalf("stale plan: exit %d\n%s", code, errs)
	}
	if got := c.must("state", "show", "libvirt_volume.disk", c.dir); !strings.Contains(got, "size = 4194304") {
		t.Fatalf("stale plan changed the state:\n%s", got)
	}

	// A fresh saved plan applies exactly, without re-planning.
	c.write("main.hcl", poolConfig(name, "8388608"))
	c.must("plan", "-out", planFile, c.dir)
	c.write("main.hcl", "this is not valid HCL {") // apply must use the snapshot
	c.must("apply", planFile)
	c.write("main.hcl", poolConfig(name, "8388608"))
	if code, out, _ := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after saved apply: exit %d\n%s", code, out)
	}

	out = c.must("destroy", "-auto-approve", c.dir)
	if !strings.Contains(out, "2 deleted") {
		t.Fatalf("destroy:\n%s", out)
	}
	if poolExists(l, name) {
		t.Fatal("pool still in libvirt after destroy")
	}
	if got := c.must("state", "list", c.dir); got != "" {
		t.Fatalf("state after destroy: %q", got)
	}
	hist := c.must("history", c.dir)
	if strings.Count(hist, "revision ") != 4 {
		t.Fatalf("want 4 revisions:\n%s", hist)
	}
}

// A resource that fails at libvirt rolls back what was created before it:
// no libvirt object and no store entity are left, and the error names the
// resource, its file:line, the operation and libvirt's message.
func TestFailedApplyRollsBack(t *testing.T) {
	l := requireLibvirt(t)
	good, bad := uniq(), uniq()
	cleanupPool(t, l, good)
	cleanupPool(t, l, bad)
	c := newCLI(t, map[string]string{"main.hcl": fmt.Sprintf(`
resource "libvirt_pool" "good" {
  name = %q
  path = "/var/lib/libvirt/images/%s"
}

resource "libvirt_volume" "disk" {
  name = "disk.qcow2"
  pool = libvirt_pool.good.name
  size = 1048576
}

resource "libvirt_pool" "bad" {
  name       = %q
  path       = "/proc/%s"
  depends_on = [libvirt_volume.disk]
}
`, good, good, bad, bad)})
	code, out, errs := c.run("apply", "-auto-approve", c.dir)
	if code == 0 {
		t.Fatalf("apply succeeded:\n%s", out)
	}
	for _, want := range []string{
		"create libvirt_pool.bad (" + filepath.Join(c.dir, "main.hcl") + ":13) failed",
		"/proc/" + bad, "(code 38)",
		"libvirt_volume.disk: create undone", "libvirt_pool.good: create undone",
	} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if poolExists(l, good) || poolExists(l, bad) {
		t.Error("a pool was left in libvirt")
	}
	if _, err := os.Stat("/var/lib/libvirt/images/" + good); !os.IsNotExist(err) {
		t.Errorf("pool directory left behind: %v", err)
	}
	if got := c.must("state", "list", c.dir); got != "" {
		t.Errorf("entities left in the store: %q", got)
	}
	if hist := c.must("history", c.dir); hist != "" {
		t.Errorf("a revision was committed: %q", hist)
	}
}

// Two pools on one path: libvirt would refuse the second ("Storage source
// conflict"); preflight catches it first, so nothing is touched.
func TestPreflightConflictChangesNothing(t *testing.T) {
	l := requireLibvirt(t)
	a, b := uniq(), uniq()
	cleanupPool(t, l, a)
	cleanupPool(t, l, b)
	c := newCLI(t, map[string]string{"main.hcl": fmt.Sprintf(`
resource "libvirt_pool" "a" {
  name = %q
  path = "/var/lib/libvirt/images/%s"
}
resource "libvirt_pool" "b" {
  name = %q
  path = "/var/lib/libvirt/images/%s"
}
`, a, a, b, a)})
	code, _, errs := c.run("apply", "-auto-approve", c.dir)
	if code == 0 || !strings.Contains(errs, "preflight found") || !strings.Contains(errs, "main.hcl:6") {
		t.Fatalf("want a preflight error naming main.hcl:6, exit %d:\n%s", code, errs)
	}
	if poolExists(l, a) || poolExists(l, b) {
		t.Error("a pool was created despite the preflight failure")
	}
}

func TestApprovalRequiredWithoutTerminal(t *testing.T) {
	requireLibvirt(t)
	name := uniq()
	c := newCLI(t, map[string]string{"main.hcl": poolConfig(name, "1048576")})
	code, _, errs := c.run("apply", c.dir)
	if code == 0 || !strings.Contains(errs, "pass -auto-approve") {
		t.Fatalf("exit %d: %s", code, errs)
	}
}

func TestValidateReportsDiagnostics(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": `
resource "libvirt_pool" "images" {
  name = "x"
  path = "/tmp/x"
}
resource "libvirt_volume" "disk" {
  name = "d"
  pool = libvirt_pool.imgs.name
  size = 1
}
`})
	code, _, errs := c.run("validate", c.dir)
	if code != exitError || !strings.Contains(errs, "main.hcl line 8") && !strings.Contains(errs, "main.hcl:8") {
		t.Fatalf("exit %d:\n%s", code, errs)
	}
	if !strings.Contains(errs, `Did you mean "libvirt_pool.images"?`) || !strings.Contains(errs, "pool = libvirt_pool.imgs.name") {
		t.Fatalf("diagnostic lacks suggestion or snippet:\n%s", errs)
	}
}

// A stack locked by a live run refuses apply, naming the holder and the
// exact unlock command; unlock needs that exact id and says who held it.
func TestLockedStackAndUnlock(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupPool(t, l, name)
	c := newCLI(t, map[string]string{"main.hcl": poolConfig(name, "1048576")})
	st, err := state.Open(context.Background(), state.Options{Dir: c.dataDir})
	if err != nil {
		t.Fatal(err)
	}
	lock, err := st.Lock(context.Background(), "e2e", "ci-runner 42 on elsewhere", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	st.Close()

	code, _, errs := c.run("apply", "-auto-approve", c.dir)
	if code == 0 || !strings.Contains(errs, "locked by ci-runner 42 on elsewhere") || !strings.Contains(errs, "fiat unlock "+lock.ID) {
		t.Fatalf("apply on a locked stack: exit %d\n%s", code, errs)
	}
	if code, _, errs := c.run("unlock", "not-the-id", c.dir); code == 0 {
		t.Fatalf("unlock with a wrong id succeeded: %s", errs)
	}
	out := c.must("unlock", lock.ID, c.dir)
	if !strings.Contains(out, "held by ci-runner 42 on elsewhere") {
		t.Fatalf("unlock output: %s", out)
	}
	c.must("apply", "-auto-approve", c.dir)
	c.must("destroy", "-auto-approve", c.dir)
}

// A moved block renames an entity in the store without touching the object;
// adopted drift, imports and forgets ride the same commit path.
func TestMovedBlockAppliesWithoutRecreate(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": `
resource "fiat_data" "old" {
  input = "keep me"
}
`})
	c.must("apply", "-auto-approve", c.dir)
	before := c.must("state", "show", "fiat_data.old", c.dir)
	c.write("main.hcl", `
resource "fiat_data" "new" {
  input = "keep me"
}
moved {
  from = fiat_data.old
  to   = fiat_data.new
}
`)
	out := c.must("plan", c.dir)
	if !strings.Contains(out, "moved from fiat_data.old") {
		t.Fatalf("plan does not show the move:\n%s", out)
	}
	c.must("apply", "-auto-approve", c.dir)
	if got := c.must("state", "list", c.dir); got != "fiat_data.new\n" {
		t.Fatalf("state after move: %q", got)
	}
	after := c.must("state", "show", "fiat_data.new", c.dir)
	idOf := func(s string) string {
		for _, line := range strings.Split(s, "\n") {
			if strings.HasPrefix(line, "id ") {
				return line
			}
		}
		return ""
	}
	if idOf(before) == "" || idOf(before) != idOf(after) {
		t.Fatalf("the object was recreated: before\n%s\nafter\n%s", before, after)
	}
	if code, out, _ := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after move: exit %d\n%s", code, out)
	}
}

// Two provider instances (aliases) in one spec take part in one
// transaction: a failure on one host's resource rolls back the other's.
func TestAliasesRollBackTogether(t *testing.T) {
	l := requireLibvirt(t)
	a, b, bad := uniq(), uniq(), uniq()
	for _, p := range []string{a, b, bad} {
		cleanupPool(t, l, p)
	}
	c := newCLI(t, map[string]string{"main.hcl": fmt.Sprintf(`
provider "libvirt" {
  uri = "qemu:///system"
}
provider "libvirt" {
  alias = "tcp"
  uri   = "qemu+tcp://127.0.0.1/system"
}
resource "libvirt_pool" "a" {
  name = %q
  path = "/var/lib/libvirt/images/%s"
}
resource "libvirt_pool" "b" {
  provider = libvirt.tcp
  name     = %q
  path     = "/var/lib/libvirt/images/%s"
}
resource "libvirt_pool" "bad" {
  provider   = libvirt.tcp
  name       = %q
  path       = "/proc/%s"
  depends_on = [libvirt_pool.a, libvirt_pool.b]
}
`, a, a, b, b, bad, bad)})
	code, out, errs := c.run("apply", "-auto-approve", c.dir)
	if code == 0 {
		t.Fatalf("apply succeeded:\n%s", out)
	}
	for _, want := range []string{"create libvirt_pool.bad", "libvirt_pool.a: create undone", "libvirt_pool.b: create undone"} {
		if !strings.Contains(errs, want) {
			t.Errorf("error lacks %q:\n%s", want, errs)
		}
	}
	if poolExists(l, a) || poolExists(l, b) || poolExists(l, bad) {
		t.Error("a pool was left behind on one of the two connections")
	}
	if got := c.must("state", "list", c.dir); got != "" {
		t.Errorf("entities left: %q", got)
	}
}

// A sensitive value never appears in plan text, plan JSON, a saved plan,
// state show or a delete plan, even when another resource copies it.
func TestSensitiveValuesNeverShown(t *testing.T) {
	t.Setenv("FIAT_VAR_pw", "s3cret-value")
	src := `
variable "pw" {
  type      = string
  sensitive = true
}
resource "fiat_data" "a" {
  input = { p = var.pw, q = %d }
}
resource "fiat_data" "c" {
  input = fiat_data.a.output
}
`
	c := newCLI(t, map[string]string{"main.hcl": fmt.Sprintf(src, 1)})
	check := func(what, s string) {
		t.Helper()
		if strings.Contains(s, "s3cret") {
			t.Fatalf("%s shows the secret:\n%s", what, s)
		}
	}
	check("apply", c.must("apply", "-auto-approve", c.dir))
	check("state show", c.must("state", "show", "fiat_data.c", c.dir))
	c.write("main.hcl", fmt.Sprintf(src, 2))
	check("plan", c.must("plan", c.dir))
	check("plan -json", c.must("plan", "-json", c.dir))
	planFile := filepath.Join(t.TempDir(), "p.plan")
	c.must("plan", "-out", planFile, c.dir)
	b, err := os.ReadFile(planFile)
	if err != nil {
		t.Fatal(err)
	}
	check("saved plan", string(b))
	check("apply of the saved plan", c.must("apply", planFile))
	if code, out, _ := c.run("plan", "-detailed-exitcode", c.dir); code != exitOK {
		t.Fatalf("re-plan after the saved apply: exit %d\n%s", code, out)
	}
	c.write("main.hcl", "variable \"pw\" {\n  sensitive = true\n}\n")
	check("delete plan", c.must("plan", c.dir))
}
