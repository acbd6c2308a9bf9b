package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"fiat/executor"
	"fiat/internal/testenv"
	"fiat/planner"
	"fiat/state"
	"fiat/value"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// TestCrashAtEveryPoint kills `fiat apply` (SIGKILL, via FIAT_FAILPOINT) at
// every journal point of an apply that updates, creates and deletes against
// the real libvirtd, and at every occurrence of each point. After
// `fiat recover`, libvirt and the store must both be entirely as before the
// apply or entirely as after it, with no orphaned object, no open
// transaction and no lock left.
func TestCrashAtEveryPoint(t *testing.T) {
	l := requireLibvirt(t)
	bin := buildFiat(t)
	tried, pre, post := 0, 0, 0
	hits := map[string]int{}
	for _, point := range executor.FailPoints {
		for n := 1; ; n++ {
			w := newCrashWorld(t, l, bin)
			failing := point == "after-undo" // only reached when a rollback runs
			out, killed := w.crashApply(point, n, failing)
			if !killed {
				w.cleanup()
				if n == 1 && !failing {
					t.Fatalf("failpoint %s was never reached:\n%s", point, out)
				}
				break
			}
			tried++
			hits[point]++
			if rout, err := w.fiat("recover", w.dir); err != nil {
				t.Fatalf("%s:%d: recover failed: %v\n%s", point, n, err, rout)
			}
			switch got := w.observe(); got {
			case w.pre:
				pre++
			case w.post:
				if failing {
					t.Fatalf("%s:%d: a failing apply ended post-apply", point, n)
				}
				post++
			default:
				t.Fatalf("%s:%d: inconsistent after recover:\n got  %s\n pre  %s\n post %s\napply output:\n%s", point, n, got, w.pre, w.post, out)
			}
			w.cleanup()
		}
	}
	t.Logf("crash points tried: %d; all consistent after recover (%d pre-apply, %d post-apply); hits per point: %v", tried, pre, post, hits)
	for _, point := range executor.FailPoints {
		if hits[point] == 0 {
			t.Errorf("failpoint %s was never hit", point)
		}
	}
}

func buildFiat(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "fiat")
	cmd := exec.Command("go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("build fiat: %v\n%s", err, out)
	}
	return bin
}

type crashWorld struct {
	t         *testing.T
	l         *golibvirt.Libvirt
	bin       string
	dir, data string
	pool      string
	pre, post string
}

func crashConfig(pool string, aSize int, withB, withC, failing bool) string {
	b := &strings.Builder{}
	fmt.Fprintf(b, `resource "libvirt_pool" "p" {
  name = %q
  path = "/var/lib/libvirt/images/%s"
}
resource "libvirt_volume" "a" {
  name = "a.qcow2"
  pool = libvirt_pool.p.name
  size = %d
}
`, pool, pool, aSize)
	if withB {
		b.WriteString("resource \"libvirt_volume\" \"b\" {\n  name = \"b.qcow2\"\n  pool = libvirt_pool.p.name\n  size = 1048576\n}\n")
	}
	if withC {
		b.WriteString("resource \"libvirt_volume\" \"c\" {\n  name = \"c.raw\"\n  format = \"raw\"\n  pool = libvirt_pool.p.name\n  size = 1048576\n}\n")
	}
	if failing {
		fmt.Fprintf(b, "resource \"libvirt_pool\" \"bad\" {\n  name = \"%s-bad\"\n  path = \"/proc/%s\"\n  depends_on = [libvirt_volume.a, libvirt_volume.b]\n}\n", pool, pool)
	}
	return b.String()
}

func newCrashWorld(t *testing.T, l *golibvirt.Libvirt, bin string) *crashWorld {
	w := &crashWorld{t: t, l: l, bin: bin, dir: t.TempDir(), pool: uniq()}
	w.data = filepath.Join(w.dir, ".fiat")
	cleanupPool(t, l, w.pool)
	w.write(crashConfig(w.pool, 1<<20, false, true, false))
	if out, err := w.fiat("apply", "-auto-approve", w.dir); err != nil {
		t.Fatalf("pre-apply: %v\n%s", err, out)
	}
	w.pre = "rev=1 a=1048576 c volumes=a.qcow2,c.raw"
	w.post = "rev=2 a=2097152 b volumes=a.qcow2,b.qcow2"
	return w
}

func (w *crashWorld) write(src string) {
	if err := os.WriteFile(filepath.Join(w.dir, "main.hcl"), []byte(src), 0o644); err != nil {
		w.t.Fatal(err)
	}
}

func (w *crashWorld) fiat(args ...string) (string, error) {
	return w.fiatEnv(nil, args...)
}

func (w *crashWorld) fiatEnv(env []string, args ...string) (string, error) {
	cmd := exec.Command(w.bin, args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// crashApply applies the target config with the failpoint armed; killed
// reports whether the process died by SIGKILL.
func (w *crashWorld) crashApply(point string, n int, failing bool) (string, bool) {
	w.write(crashConfig(w.pool, 2<<20, true, false, failing))
	out, err := w.fiatEnv([]string{fmt.Sprintf("FIAT_FAILPOINT=%s:%d", point, n)}, "apply", "-auto-approve", w.dir)
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ProcessState.String() == "signal: killed" {
		return out, true
	}
	return out, false
}

// observe renders what libvirt and the store hold, in the terms of pre/post;
// anything else (an orphan, an open transaction, a held lock) shows up.
func (w *crashWorld) observe() string {
	ctx := context.Background()
	st, err := state.Open(ctx, state.Options{Dir: w.data})
	if err != nil {
		w.t.Fatal(err)
	}
	defer st.Close()
	stack := filepath.Base(w.dir)
	rev, _ := st.Revision(ctx)
	ents, _ := st.List(ctx, stack)
	txs, _ := st.OpenTxs(ctx, stack)
	locks, _ := st.Locks(ctx)
	storeVols := map[string]string{}
	for _, e := range ents {
		v, _ := value.Decode(e.Attributes)
		if e.Type == "libvirt_volume" {
			storeVols[e.Name] = planner.FormatValue(v.GetAttr("size"))
		}
		if e.Status != state.StatusOK {
			return fmt.Sprintf("entity %s is %s: %s", e.Address, e.Status, e.Reason)
		}
	}
	// libvirt's view
	pool, err := w.l.StoragePoolLookupByName(w.pool)
	if err != nil {
		return "pool missing in libvirt: " + err.Error()
	}
	w.l.StoragePoolRefresh(pool, 0)
	names, err := w.l.StoragePoolListVolumes(pool, 100)
	if err != nil {
		return "list volumes: " + err.Error()
	}
	sort.Strings(names)
	var aSize uint64
	if vol, err := w.l.StorageVolLookupByName(pool, "a.qcow2"); err == nil {
		_, aSize, _, _ = w.l.StorageVolGetInfo(vol)
	}
	s := fmt.Sprintf("rev=%d a=%d", rev, aSize)
	if storeVols["a"] != fmt.Sprint(aSize) {
		s += fmt.Sprintf(" store-a=%s", storeVols["a"])
	}
	for _, v := range []string{"b", "c"} {
		if _, ok := storeVols[v]; ok {
			s += " " + v
		}
	}
	s += " volumes=" + strings.Join(names, ",")
	if len(txs) > 0 {
		s += fmt.Sprintf(" open-txs=%d", len(txs))
	}
	if len(locks) > 0 {
		s += fmt.Sprintf(" locks=%d", len(locks))
	}
	return s
}

func (w *crashWorld) cleanup() {
	w.fiat("recover", w.dir)
	w.write(crashConfig(w.pool, 2<<20, false, false, false))
	w.fiat("destroy", "-auto-approve", w.dir)
}

// TestInterruptRollsBack sends SIGINT to `fiat apply` while an operation is
// about to run: the apply stops, rolls back what it did, and exits non-zero,
// leaving libvirt and the store as they were.
func TestInterruptRollsBack(t *testing.T) {
	l := requireLibvirt(t)
	bin := buildFiat(t)
	dir := t.TempDir()
	pool := uniq()
	cleanupPool(t, l, pool)
	src := crashConfig(pool, 1<<20, false, false, false) + `resource "libvirt_volume" "b" {
  name       = "b.qcow2"
  pool       = libvirt_pool.p.name
  size       = 1048576
  depends_on = [libvirt_volume.a]
}
`
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "apply", "-auto-approve", dir)
	// The third intent (volume b, after pool p and volume a) pauses 3 s.
	cmd.Env = append(os.Environ(), "FIAT_FAILPOINT=after-intent:3:pause")
	var out testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt inside the pause, which the failpoint announces.
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(out.String(), "failpoint after-intent paused") {
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("the failpoint never paused:\n%s", out.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Signal(os.Interrupt)
	err := cmd.Wait()
	if err == nil {
		t.Fatalf("interrupted apply exited 0:\n%s", out.String())
	}
	for _, want := range []string{"interrupted", "libvirt_volume.a: create undone", "libvirt_pool.p: create undone"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q:\n%s", want, out.String())
		}
	}
	if poolExists(l, pool) {
		t.Error("pool left in libvirt after an interrupted apply")
	}
	st, err := state.Open(context.Background(), state.Options{Dir: filepath.Join(dir, ".fiat")})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if ents, _ := st.List(context.Background(), ""); len(ents) != 0 {
		t.Errorf("entities left: %v", ents)
	}
	if txs, _ := st.OpenTxs(context.Background(), ""); len(txs) != 0 {
		t.Errorf("open transactions left: %v", txs)
	}
}

// TestCrashDuringRecovery kills `fiat recover` itself mid-rollback and
// mid-purge; the next recover still ends entirely pre- or post-apply.
func TestCrashDuringRecovery(t *testing.T) {
	l := requireLibvirt(t)
	bin := buildFiat(t)
	cases := []struct{ applyAt, recoverAt, want string }{
		{"after-call:3", "after-undo:1", "pre"},
		{"after-call:3", "after-undo:2", "pre"},
		{"after-commit:1", "after-purge:1", "post"},
	}
	for _, c := range cases {
		w := newCrashWorld(t, l, bin)
		point, n, _ := strings.Cut(c.applyAt, ":")
		nn := 0
		fmt.Sscan(n, &nn)
		if _, killed := w.crashApply(point, nn, false); !killed {
			t.Fatalf("%s: apply was not killed", c.applyAt)
		}
		out, err := w.fiatEnv([]string{"FIAT_FAILPOINT=" + c.recoverAt}, "recover", w.dir)
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ProcessState.String() != "signal: killed" {
			t.Fatalf("%s then %s: recover was not killed: %v\n%s", c.applyAt, c.recoverAt, err, out)
		}
		if out, err := w.fiat("recover", w.dir); err != nil {
			t.Fatalf("second recover: %v\n%s", err, out)
		}
		want := w.pre
		if c.want == "post" {
			want = w.post
		}
		if got := w.observe(); got != want {
			t.Fatalf("%s then %s: got %s, want %s", c.applyAt, c.recoverAt, got, want)
		}
		w.cleanup()
	}
}

// After a crash, `fiat plan` (not only recover) finds the open transaction,
// reports it and rolls it back before planning.
func TestPlanSettlesCrashedRun(t *testing.T) {
	l := requireLibvirt(t)
	bin := buildFiat(t)
	w := newCrashWorld(t, l, bin)
	defer w.cleanup()
	if _, killed := w.crashApply("after-call", 3, false); !killed {
		t.Fatal("apply was not killed")
	}
	out, err := w.fiat("plan", w.dir)
	if err != nil {
		t.Fatalf("plan after a crash: %v\n%s", err, out)
	}
	for _, want := range []string{"left by an interrupted run", "did not commit; rolled it back", "undone"} {
		if !strings.Contains(out, want) {
			t.Errorf("plan output lacks %q:\n%s", want, out)
		}
	}
	if got := w.observe(); got != w.pre {
		t.Fatalf("after plan: %s, want %s", got, w.pre)
	}
}
