package libvirt

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

func TestPoolConformance(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name := testName("pool")
	cleanupPool(t, p, name)
	dir := filepath.Join(t.TempDir(), "pool") // missing: create builds it
	dir2 := filepath.Join(t.TempDir(), "pool2")

	runConformance(t, p, conformanceCase{
		typ:      TypePool,
		config:   poolConfig(name, dir),
		update:   with(with(poolConfig(name, dir), "active", cty.False), "autostart", cty.False), // the run state changes in place
		replace:  poolConfig(name, dir2),                                                         // same name, another directory
		volatile: []string{"capacity", "allocation", "available"},
		importID: func(state cty.Value) string { return state.GetAttr("name").AsString() },
		// An adopted pool's directories were not fiat's to build.
		importSkip: []string{"built_dirs"},
		host: func(t *testing.T, stage string, state cty.Value) {
			t.Helper()
			pool, err := l.StoragePoolLookupByName(name)
			switch stage {
			case "purged", "undone":
				if err == nil {
					t.Errorf("%s: pool %s is still defined", stage, name)
				}
				if _, err := os.Stat(dir); !os.IsNotExist(err) {
					t.Errorf("%s: directory %s fiat built is still there (%v)", stage, dir, err)
				}
				return
			case "retired":
				// Undefined, so the name and directory are free; the
				// directory and its files stay.
				if err == nil {
					t.Errorf("%s: pool %s is still defined", stage, name)
				}
				if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
					t.Errorf("%s: directory %s: %v", stage, dir, err)
				}
				return
			case "replaced":
				if err != nil {
					t.Fatalf("%s: pool %s: %v", stage, name, err)
				}
				doc, err := poolDoc(l, pool)
				if err != nil || doc.Target.Path != dir2 {
					t.Errorf("%s: pool %s is at %v, want %s (%v)", stage, name, doc.Target, dir2, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: pool %s: %v", stage, name, err)
			}
			if got := formatUUID(pool.UUID); got != state.GetAttr("id").AsString() {
				t.Errorf("%s: pool uuid %s, want %s", stage, got, state.GetAttr("id").AsString())
			}
			active, _ := l.StoragePoolIsActive(pool)
			autostart, _ := l.StoragePoolGetAutostart(pool)
			want := int32(1)
			if stage == "updated" {
				want = 0
			}
			if active != want || autostart != want {
				t.Errorf("%s: pool active=%d autostart=%d, want %d", stage, active, autostart, want)
			}
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				t.Errorf("%s: directory %s: %v", stage, dir, err)
			}
		},
	})
}

// A directory that existed before the pool, with files in it, survives
// both the undo of the create and the purge.
func TestPoolKeepsExistingDirectory(t *testing.T) {
	p := newTestProvider(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "keep.img")
	if err := os.WriteFile(file, []byte("data"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, end := range []string{"undo", "purge"} {
		t.Run(end, func(t *testing.T) {
			name := testName("pool")
			cleanupPool(t, p, name)
			resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.keep", Type: TypePool, Config: poolConfig(name, dir)})
			if err != nil {
				t.Fatalf("create: %v", err)
			}
			u, _ := decodeUndo(resp.Undo)
			if u.Built {
				t.Error("undo says fiat built a directory that existed")
			}
			if end == "undo" {
				_, err = p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo})
			} else {
				_, err = p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: resp.ID, State: resp.State})
				if err == nil {
					_, err = p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: resp.ID, State: resp.State})
				}
			}
			if err != nil {
				t.Fatalf("%s: %v", end, err)
			}
			if got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: resp.ID}); err != nil || got.Exists {
				t.Fatalf("read after %s: exists=%v, %v", end, got.Exists, err)
			}
			if b, err := os.ReadFile(file); err != nil || string(b) != "data" {
				t.Fatalf("after %s: %s: %q, %v", end, file, b, err)
			}
		})
	}
}

// mkdir under /proc fails inside libvirt, which preflight cannot see: the
// error carries libvirt's message and code, and no pool is left defined.
func TestPoolCreateFailsInLibvirt(t *testing.T) {
	p := newTestProvider(t)
	name := testName("pool")
	cleanupPool(t, p, name)
	path := "/proc/" + name + "/pool"

	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{
		Address: "libvirt_pool.proc", Type: TypePool, Action: providers.ActionCreate, Config: poolConfig(name, path)}))
	resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.proc", Type: TypePool, Config: poolConfig(name, path)})
	if err == nil {
		t.Fatal("create under /proc succeeded")
	}
	pe := wantProviderError(t, err)
	t.Logf("error: %v", err)
	if pe.Op != "create pool "+name || pe.Code == 0 || !strings.Contains(pe.Message, "/proc/"+name) {
		t.Errorf("error = {Op: %q, Code: %d, Message: %q}, want op %q, a code and libvirt's message naming the path", pe.Op, pe.Code, pe.Message, "create pool "+name)
	}
	if errors.Is(err, providers.ErrOutcomeUnknown) {
		t.Error("a failure libvirt reported is not an unknown outcome")
	}
	if len(resp.Undo) != 0 {
		t.Errorf("failed create returned an undo %s although it cleaned up", resp.Undo)
	}
	if _, err := hostClient(t, p).StoragePoolLookupByName(name); !notFound(err) {
		t.Errorf("pool %s is still defined after the failed create (%v)", name, err)
	}
}

// Creates that libvirt refuses because the name or the directory is taken
// come back as conflicts naming the existing pool.
func TestPoolCreateConflict(t *testing.T) {
	p := newTestProvider(t)
	name, state := newTestPool(t, p)
	path := state.GetAttr("path").AsString()

	_, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.dup", Type: TypePool, Config: poolConfig(name, t.TempDir())})
	pe := wantProviderError(t, err)
	if !errors.Is(err, ErrConflict) || pe.Code != int(golibvirt.ErrOperationFailed) || !strings.Contains(pe.Message, name) {
		t.Errorf("same name: %v (code %d), want a conflict naming %s", err, pe.Code, name)
	}

	other := testName("pool")
	cleanupPool(t, p, other)
	_, err = p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.dup", Type: TypePool, Config: poolConfig(other, path)})
	pe = wantProviderError(t, err)
	if !errors.Is(err, ErrConflict) || !strings.Contains(pe.Message, name) {
		t.Errorf("same path: %v, want a conflict naming %s", err, name)
	}
	t.Logf("errors: %v", err)
}

func TestPoolPreflight(t *testing.T) {
	p := newTestProvider(t)
	existing, state := newTestPool(t, p)
	existingPath := state.GetAttr("path").AsString()
	fresh := func() cty.Value { return poolConfig(testName("pool"), filepath.Join(t.TempDir(), "p")) }
	create := func(addr string, cfg cty.Value) providers.PreflightStep {
		return providers.PreflightStep{Address: addr, Type: TypePool, Action: providers.ActionCreate, Config: cfg}
	}

	t.Run("ok", func(t *testing.T) {
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_pool.a", fresh()), create("libvirt_pool.b", fresh())))
	})
	t.Run("unknown values", func(t *testing.T) {
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_pool.a", withUnknown(fresh(), "name", "path", "type", "id"))))
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_pool.a", cty.UnknownVal(poolSchema.ImpliedType()))))
	})
	t.Run("name exists", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_pool.a", with(fresh(), "name", cty.StringVal(existing)))),
			"libvirt_pool.a", existing, "already exists", state.GetAttr("id").AsString())
	})
	t.Run("name and path exist, deleted in the same plan", func(t *testing.T) {
		// Retires run first and undefine the pool: its name and
		// directory are free for the create.
		del := providers.PreflightStep{Address: "libvirt_pool.old", Type: TypePool, Action: providers.ActionDelete, ID: state.GetAttr("id").AsString(), Prior: state}
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_pool.a", with(with(fresh(), "name", cty.StringVal(existing)), "path", cty.StringVal(existingPath))), del))
	})
	t.Run("name twice in the plan", func(t *testing.T) {
		cfg := fresh()
		problems := mustPreflight(t, p, create("libvirt_pool.a", cfg), create("libvirt_pool.b", with(fresh(), "name", cfg.GetAttr("name"))))
		if len(problems) != 2 {
			t.Errorf("want a problem for each step, got %+v", problems)
		}
	})
	t.Run("path of another pool", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_pool.a", with(fresh(), "path", cty.StringVal(existingPath)))),
			"libvirt_pool.a", existingPath, existing, "Storage source conflict")
	})
	t.Run("path twice in the plan", func(t *testing.T) {
		a := fresh()
		problems := mustPreflight(t, p, create("libvirt_pool.a", a), create("libvirt_pool.b", with(fresh(), "path", a.GetAttr("path"))))
		if len(problems) != 2 || !strings.Contains(problems[0].Message, "libvirt_pool.b creates") {
			t.Errorf("want a problem for each step naming the other, got %+v", problems)
		}
	})
	t.Run("unsupported type", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_pool.a", with(fresh(), "type", cty.StringVal("logical")))),
			"libvirt_pool.a", `"logical" is not supported`, `only "dir"`)
	})
	t.Run("path not clean", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_pool.a", with(fresh(), "path", cty.StringVal("/var/lib/libvirt/images/x/")))),
			"libvirt_pool.a", "not clean")
		wantProblem(t, mustPreflight(t, p, create("libvirt_pool.a", with(fresh(), "path", cty.StringVal("images")))),
			"libvirt_pool.a", "not absolute")
	})
	t.Run("update", func(t *testing.T) {
		step := providers.PreflightStep{Address: "libvirt_pool.a", Type: TypePool, Action: providers.ActionUpdate, ID: state.GetAttr("id").AsString(), Prior: state}
		step.Config = state
		wantNoProblems(t, mustPreflight(t, p, step))
		step.Config = with(state, "path", cty.StringVal("/elsewhere"))
		wantProblem(t, mustPreflight(t, p, step), "libvirt_pool.a", "cannot change in place")
		step.Config, step.ID = state, "00000000-0000-0000-0000-000000000000"
		wantProblem(t, mustPreflight(t, p, step), "libvirt_pool.a", "no longer exists")
	})
	t.Run("unknown type", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_thing.a", Type: "libvirt_thing", Action: providers.ActionCreate}),
			"libvirt_thing.a", "no resource type")
	})
}
