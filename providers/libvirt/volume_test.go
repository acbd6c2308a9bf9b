package libvirt

import (
	"errors"
	"fmt"
	"os"
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
			runConformance(t, p, conformanceCase{
				typ:    TypeVolume,
				config: cfg,
				update: with(cfg, "size", cty.NumberUIntVal(8*MiB)),
				host: func(t *testing.T, stage string, state cty.Value) {
					t.Helper()
					path := state.GetAttr("path").AsString()
					fi, err := os.Stat(path)
					switch stage {
					case "purged", "undone":
						if err == nil {
							t.Errorf("%s: volume file %s is still there", stage, path)
						}
						return
					}
					if err != nil {
						t.Fatalf("%s: volume file: %v", stage, err)
					}
					if format == formatRaw && fi.Size() != mustSize(t, state) {
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

func mustSize(t *testing.T, state cty.Value) int64 {
	n, _, _, err := sizeAttr(state, "size")
	if err != nil {
		t.Fatal(err)
	}
	return int64(n)
}

// A volume's purge runs after the commit, possibly after a retire of its
// pool stopped that pool: it starts the pool for the delete and stops it
// again, and then the pool's purge removes the emptied directory.
func TestVolumePurgeAfterPoolRetire(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	poolName, poolState := newTestPool(t, p)
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), poolName, MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	poolID := poolState.GetAttr("id").AsString()
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: poolID, State: poolState}); err != nil {
		t.Fatal(err)
	}
	// Stopped pool: a read cannot see the volume, and says so.
	if _, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err == nil || !strings.Contains(err.Error(), "not active") {
		t.Errorf("read of a volume in a stopped pool: %v, want an error saying the pool is not active", err)
	}
	if err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil {
		t.Fatalf("purge volume in a stopped pool: %v", err)
	}
	if _, err := os.Stat(vol.State.GetAttr("path").AsString()); !os.IsNotExist(err) {
		t.Errorf("volume file still there after purge (%v)", err)
	}
	pool, err := l.StoragePoolLookupByName(poolName)
	if err != nil {
		t.Fatal(err)
	}
	if active, _ := l.StoragePoolIsActive(pool); active != 0 {
		t.Error("purge left the retired pool running")
	}
	if err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil {
		t.Fatalf("purge volume again: %v", err)
	}
	if err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: poolID, State: poolState}); err != nil {
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
			if err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: resps[i].Undo}); err != nil {
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
		wantProblem(t, mustPreflight(t, p, create("libvirt_volume.a", with(fresh(), "size", cty.NumberIntVal(1000)))),
			"libvirt_volume.a", "not a multiple of 512", "1024")
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
// and the retire follows, or the retire wins and the create finds the pool
// stopped. The retire itself must never fail.
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
		if createErr != nil && !strings.Contains(createErr.Error(), "not active") {
			t.Fatalf("round %d: create: %v", i, createErr)
		}
		if err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: ret.Undo}); err != nil {
			t.Fatal(err)
		}
	}
}
