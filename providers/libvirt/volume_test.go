package libvirt

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

const MiB = 1 << 20

func TestVolumeConformance(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	for _, format := range []string{"", formatRaw} { // "" takes the default, qcow2
		t.Run("format="+format, func(t *testing.T) {
			name := testName("vol")
			cfg := volumeConfig(name, pool, 4*MiB, format)
			replaceFormat := formatRaw
			if format == formatRaw {
				replaceFormat = formatQcow2
			}
			runConformance(t, p, conformanceCase{
				typ:      TypeVolume,
				config:   cfg,
				update:   with(cfg, "size", cty.NumberUIntVal(8*MiB)),
				replace:  with(cfg, "format", cty.StringVal(replaceFormat)), // same name: the retire must free it
				importID: func(state cty.Value) string { return pool + "/" + name },
				host: func(t *testing.T, stage string, state cty.Value) {
					t.Helper()
					path := state.GetAttr("path").AsString()
					// The retire's name for it (one retire at a time here).
					retiredCopies, _ := filepath.Glob(filepath.Join(filepath.Dir(path), name+".fiat-retired-*"))
					retired, rerr := filepath.Join(filepath.Dir(path), name+".fiat-retired-?"), os.ErrNotExist
					if len(retiredCopies) == 1 {
						retired, rerr = retiredCopies[0], nil
					}
					fi, err := os.Stat(path)
					switch stage {
					case "purged", "undone":
						if err == nil || rerr == nil {
							t.Errorf("%s: volume file %s (or its retired copy) is still there", stage, path)
						}
						return
					case "retired":
						if err == nil || rerr != nil {
							t.Errorf("%s: want %s renamed to %s: original %v, retired %v", stage, path, retired, err, rerr)
						}
						return
					case "replaced":
						if err != nil || rerr != nil {
							t.Errorf("%s: want the new %s beside the retired %s: %v, %v", stage, path, retired, err, rerr)
						}
						return
					}
					if err != nil || rerr == nil {
						t.Fatalf("%s: volume file: %v; retired copy there: %v", stage, err, rerr == nil)
					}
					if format == formatRaw && uint64(fi.Size()) != mustSize(t, state) {
						t.Errorf("%s: raw file is %d bytes, want %d", stage, fi.Size(), mustSize(t, state))
					}
					if format == "" && state.GetAttr("format").AsString() != formatQcow2 {
						t.Errorf("%s: format %#v, want the default qcow2", stage, state.GetAttr("format"))
					}
				},
			})
		})
	}
}

func mustSize(t *testing.T, v cty.Value) uint64 {
	if v.Type().IsObjectType() {
		v = v.GetAttr("size")
	}
	n, _, _, err := sizeAttr(cty.ObjectVal(map[string]cty.Value{"n": v}), "n")
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A volume's purge runs after the commit, possibly after a retire of its
// pool stopped that pool: it starts the pool for the delete and stops it
// again, and then the pool's purge removes the emptied directory its
// create built.
func TestVolumePurgeAfterPoolRetire(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	poolName := testName("pool")
	cleanupPool(t, p, poolName)
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.p", Type: TypePool,
		Config: poolConfig(poolName, filepath.Join(t.TempDir(), "p"))})
	if err != nil {
		t.Fatal(err)
	}
	poolState := created.State
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), poolName, MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	poolID := poolState.GetAttr("id").AsString()
	volRet, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypeVolume, ID: vol.ID, State: vol.State})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: poolID, State: poolState}); err != nil {
		t.Fatal(err)
	}
	// The pool is undefined: libvirt cannot see the volume any more.
	if got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil || got.Exists {
		t.Errorf("read of a volume whose pool was retired: exists=%v, %v", got.Exists, err)
	}
	if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State, Undo: volRet.Undo}); err != nil {
		t.Fatalf("purge volume in a stopped pool: %v", err)
	}
	if _, err := os.Stat(vol.State.GetAttr("path").AsString()); !os.IsNotExist(err) {
		t.Errorf("volume file still there after purge (%v)", err)
	}
	pools, _, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pool := range pools {
		if pool.Name == poolName || strings.HasPrefix(pool.Name, scratchPrefix) {
			t.Errorf("purge left pool %s defined", pool.Name)
		}
	}
	if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State, Undo: volRet.Undo}); err != nil {
		t.Fatalf("purge volume again: %v", err)
	}
	if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: poolID, State: poolState}); err != nil {
		t.Fatalf("purge pool: %v", err)
	}
	if _, err := os.Stat(poolState.GetAttr("path").AsString()); !os.IsNotExist(err) {
		t.Errorf("empty pool directory still there after purge (%v)", err)
	}
}

func TestVolumeCreateConflict(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	cfg := volumeConfig(testName("vol"), pool, MiB, "")
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.a", Type: TypeVolume, Config: cfg}); err != nil {
		t.Fatal(err)
	}
	resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.b", Type: TypeVolume, Config: cfg})
	pe := wantProviderError(t, err)
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrConflict) || pe.Code != int(golibvirt.ErrStorageVolExist) ||
		!strings.Contains(err.Error(), cfg.GetAttr("name").AsString()) || !strings.Contains(err.Error(), pool) {
		t.Errorf("got %v (code %d), want a conflict (code 90) naming the volume and its pool", err, pe.Code)
	}
	if len(resp.Undo) != 0 {
		t.Error("a refused create returned an undo (it would delete the existing volume)")
	}
}

func TestVolumeCreateMissingPool(t *testing.T) {
	p := newTestProvider(t)
	missing := testName("pool")
	_, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.a", Type: TypeVolume, Config: volumeConfig("v", missing, MiB, "")})
	pe := wantProviderError(t, err)
	if pe.Code != int(golibvirt.ErrNoStoragePool) || !strings.Contains(pe.Message, missing) {
		t.Errorf("got %v, want libvirt's no-such-pool error naming %s", err, missing)
	}
}

// Many volume jobs on one pool at once, through one provider.
func TestVolumeConcurrentJobs(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	resps := make([]providers.CreateResponse, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var err error
			resps[i], err = p.Create(testCtx(t), providers.CreateRequest{Address: fmt.Sprintf("libvirt_volume.v[%d]", i), Type: TypeVolume,
				Config: volumeConfig(testName("vol"), pool, 64*MiB, formatRaw)})
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if resps[i].Undo == nil {
				return
			}
			if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: resps[i].Undo}); err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

func TestVolumeShrinkRefused(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), pool, 2*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	smaller := with(vol.State, "size", cty.NumberUIntVal(MiB))
	_, err = p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_volume.v", Type: TypeVolume, ID: vol.ID, Prior: vol.State, Config: smaller})
	if err == nil || !strings.Contains(err.Error(), "lose data") {
		t.Errorf("shrink: %v, want a refusal saying it would lose data", err)
	}
	got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: vol.ID})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "after refused shrink", got.State, vol.State)
}

func TestVolumePreflight(t *testing.T) {
	p := newTestProvider(t)
	pool, poolState := newTestPool(t, p)
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), pool, 2*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	volName := vol.State.GetAttr("name").AsString()
	create := func(addr string, cfg cty.Value) providers.PreflightStep {
		return providers.PreflightStep{Address: addr, Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}
	}
	fresh := func() cty.Value { return volumeConfig(testName("vol"), pool, MiB, "") }

	t.Run("ok", func(t *testing.T) {
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_volume.a", fresh()), create("libvirt_volume.b", fresh())))
	})
	t.Run("unknown values", func(t *testing.T) {
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_volume.a", withUnknown(fresh(), "name", "pool", "size", "format", "id", "path"))))
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_volume.a", cty.UnknownVal(volumeSchema.ImpliedType()))))
	})
	t.Run("name exists", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "name", cty.StringVal(volName)))),
			"libvirt_volume.a", volName, pool, "already exists", vol.ID)
	})
	t.Run("name twice in the plan", func(t *testing.T) {
		cfg := fresh()
		if problems := mustPreflight(t, p, create("libvirt_volume.a", cfg), create("libvirt_volume.b", cfg)); len(problems) != 2 {
			t.Errorf("want a problem for each step, got %+v", problems)
		}
	})
	t.Run("missing pool", func(t *testing.T) {
		missing := testName("pool")
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "pool", cty.StringVal(missing)))),
			"libvirt_volume.a", missing, "does not exist")
	})
	t.Run("pool created in the same plan", func(t *testing.T) {
		newPool := testName("pool")
		wantNoProblems(t, mustPreflight(t, p,
			providers.PreflightStep{Address: "libvirt_pool.new", Type: TypePool, Action: providers.ActionCreate, Config: withUnknown(poolConfig(newPool, "/var/lib/libvirt/images/"+newPool), "id")},
			create("libvirt_volume.a", with(fresh(), "pool", cty.StringVal(newPool)))))
	})
	t.Run("pool deleted in the same plan", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p,
			providers.PreflightStep{Address: "libvirt_pool.old", Type: TypePool, Action: providers.ActionDelete, ID: poolState.GetAttr("id").AsString(), Prior: poolState},
			create("libvirt_volume.a", fresh())),
			"libvirt_volume.a", "deleted by libvirt_pool.old")
	})
	t.Run("format", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "format", cty.StringVal("vmdk")))),
			"libvirt_volume.a", `"vmdk" is not supported`)
	})
	t.Run("size", func(t *testing.T) {
		// qcow2 rounds it up to 1024: planned so (ModifyPlan), no longer refused.
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "size", cty.NumberIntVal(1000)))))
		wantNoProblems(t, mustPreflight(t, p, create("libvirt_volume.a", with(with(fresh(), "size", cty.NumberIntVal(1000)), "format", cty.StringVal("raw")))))
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "size", cty.NumberFloatVal(1.5)))),
			"libvirt_volume.a", "whole number")
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "size", cty.NumberIntVal(0)))),
			"libvirt_volume.a", "more than 0")
	})
	t.Run("shrink", func(t *testing.T) {
		step := providers.PreflightStep{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionUpdate, ID: vol.ID, Prior: vol.State,
			Config: with(vol.State, "size", cty.NumberUIntVal(MiB))}
		wantProblem(t, mustPreflight(t, p, step), "libvirt_volume.v", "shrinking", "would lose data", "replace")
		step.Config = with(vol.State, "size", cty.NumberUIntVal(4*MiB))
		wantNoProblems(t, mustPreflight(t, p, step))
		step.Config = with(vol.State, "size", cty.UnknownVal(cty.Number))
		wantNoProblems(t, mustPreflight(t, p, step))
	})
}

// Retiring (stopping) a pool while a volume is being built in it is refused
// by libvirt ("pool has asynchronous jobs running"); the provider's per-pool
// lock orders the two instead. Either order is fine: the create succeeds
// and the retire follows, or the retire wins and the create finds no pool.
// The retire itself must never fail.
func TestPoolJobsSerialised(t *testing.T) {
	p := newTestProvider(t)
	pool, state := newTestPool(t, p)
	id := state.GetAttr("id").AsString()
	for i := range 30 {
		var wg sync.WaitGroup
		var createErr, retireErr error
		var ret providers.RetireResponse
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, createErr = p.Create(testCtx(t), providers.CreateRequest{Address: fmt.Sprintf("libvirt_volume.v[%d]", i), Type: TypeVolume,
				Config: volumeConfig(testName("vol"), pool, 256*MiB, "")})
		}()
		go func() {
			defer wg.Done()
			ret, retireErr = p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: id, State: state})
		}()
		wg.Wait()
		if retireErr != nil {
			t.Fatalf("round %d: retire while a volume is created: %v", i, retireErr)
		}
		if createErr != nil && !notFound(createErr) {
			t.Fatalf("round %d: create: %v", i, createErr)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: ret.Undo}); err != nil {
			t.Fatal(err)
		}
	}
}

// Overlays on a base volume and volumes filled from a local file.
func TestVolumeOverlayAndSource(t *testing.T) {
	p := newTestProvider(t)
	pool, poolState := newTestPool(t, p)
	base, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.base", Type: TypeVolume, Config: volumeConfig(testName("base"), pool, 32*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("overlay", func(t *testing.T) {
		cfg := with(with(volumeConfig(testName("overlay"), pool, 0, ""), "size", cty.NullVal(cty.Number)), "base_volume", cty.StringVal(base.ID))
		wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_volume.o", Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}))
		o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.o", Type: TypeVolume, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		if o.State.GetAttr("base_volume").AsString() != base.ID || mustSize(t, o.State) != 32*MiB {
			t.Errorf("overlay state %#v, want base_volume %s and the base's size", o.State, base.ID)
		}
		out, err := exec.Command("qemu-img", "info", "-U", o.State.GetAttr("path").AsString()).CombinedOutput()
		if err == nil && !strings.Contains(string(out), "backing file: "+base.State.GetAttr("path").AsString()) {
			t.Errorf("qemu-img info shows no backing file:\n%s", out)
		}
		// Deleting the base while the overlay stays is refused.
		del := providers.PreflightStep{Address: "libvirt_volume.base", Type: TypeVolume, Action: providers.ActionDelete, ID: base.ID, Prior: base.State}
		wantProblem(t, mustPreflight(t, p, del), "libvirt_volume.base", "base (backing file)", o.State.GetAttr("name").AsString())
		wantNoProblems(t, mustPreflight(t, p, del,
			providers.PreflightStep{Address: "libvirt_volume.o", Type: TypeVolume, Action: providers.ActionDelete, ID: o.ID, Prior: o.State}))
		// Imported, an overlay names its base by path (= key in a dir pool).
		imp, err := p.Import(testCtx(t), providers.ImportRequest{Type: TypeVolume, ID: o.ID})
		if err != nil || !imp.State.GetAttr("base_volume").Equals(cty.StringVal(base.State.GetAttr("path").AsString())).True() {
			t.Errorf("import of the overlay: %#v, %v", imp.State, err)
		}
	})

	t.Run("source", func(t *testing.T) {
		raw := filepath.Join(t.TempDir(), "disk.raw")
		if err := os.WriteFile(raw, []byte(strings.Repeat("x", 3*MiB+17)), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := with(with(volumeConfig(testName("src"), pool, 0, formatRaw), "size", cty.NullVal(cty.Number)), "source", cty.StringVal(raw))
		op := newOpID(t)
		v, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.s", Type: TypeVolume, OpID: op, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		got, _ := os.ReadFile(v.State.GetAttr("path").AsString())
		if mustSize(t, v.State) != 3*MiB+17 || string(got) != strings.Repeat("x", 3*MiB+17) {
			t.Errorf("uploaded volume: size %d, content matches %v", mustSize(t, v.State), string(got) == strings.Repeat("x", 3*MiB+17))
		}
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_volume.s", Type: TypeVolume, Action: providers.ActionCreate, OpID: op, Config: cfg})
		if err != nil || !s.TookEffect {
			t.Errorf("settle of a finished upload: %+v, %v", s, err)
		}
		// A qcow2 image reads back as qcow2 with its virtual size.
		if _, err := exec.LookPath("qemu-img"); err != nil {
			skipOrFail(t, "no qemu-img to make a qcow2 image (scripts/libvirtd.sh installs qemu-utils)")
		}
		img := filepath.Join(t.TempDir(), "img.qcow2")
		if out, err := exec.Command("qemu-img", "create", "-f", "qcow2", img, "48M").CombinedOutput(); err != nil {
			t.Fatalf("qemu-img: %v: %s", err, out)
		}
		wrong := with(with(cfg, "source", cty.StringVal(img)), "name", cty.StringVal(testName("img")))
		wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_volume.q", Type: TypeVolume, Action: providers.ActionCreate, Config: wrong}),
			"libvirt_volume.q", "is a qcow2 image", `format = "qcow2"`)
		q, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.q", Type: TypeVolume, Config: with(wrong, "format", cty.StringVal(formatQcow2))})
		if err != nil {
			t.Fatal(err)
		}
		if q.State.GetAttr("format").AsString() != formatQcow2 || mustSize(t, q.State) != 48*MiB {
			t.Errorf("uploaded qcow2: %#v, want format qcow2 and 48 MiB", q.State)
		}
	})

	t.Run("out of space", func(t *testing.T) {
		read, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: poolState.GetAttr("id").AsString()})
		if err != nil {
			t.Fatal(err)
		}
		free := mustSize(t, read.State.GetAttr("available"))
		huge := (free/sectorSize + 1) * sectorSize
		half := (free/2/sectorSize + 1) * sectorSize
		step := func(addr string, size uint64) providers.PreflightStep {
			return providers.PreflightStep{Address: addr, Type: TypeVolume, Action: providers.ActionCreate, Config: volumeConfig(testName("big"), pool, size, "")}
		}
		wantProblem(t, mustPreflight(t, p, step("libvirt_volume.big", huge)), "libvirt_volume.big", "out of space")
		// Each fits alone, not both together.
		problems := mustPreflight(t, p, step("libvirt_volume.a", half), step("libvirt_volume.b", half))
		wantProblem(t, problems, "libvirt_volume.b", "out of space")
	})
}
