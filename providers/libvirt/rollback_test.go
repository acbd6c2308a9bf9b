package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Rollback leaves nothing: what a create made is exactly what its undo,
// its clean-up and a settle after a crash take back, and nothing else.

// nineDeep is a pool path under root whose nine directories are missing.
func nineDeep(root string) string {
	return filepath.Join(root, "a", "b", "c", "d", "e", "f", "g", "h", "pool")
}

// chain lists path and its parents up to (not including) top, deepest first.
func chain(path, top string) []string {
	var out []string
	for d := path; d != top && d != filepath.Dir(d); d = filepath.Dir(d) {
		out = append(out, d)
	}
	return out
}

func builtDirs(t *testing.T, state cty.Value) []string {
	t.Helper()
	dirs, _, err := stringList(state, "built_dirs")
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func wantGone(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s: %s is still there (%v)", what, p, err)
		}
	}
}

func wantThere(t *testing.T, what string, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if _, err := os.Lstat(p); err != nil {
			t.Errorf("%s: %s: %v", what, p, err)
		}
	}
}

// wantNoScratchPools checks that no scratch pool the provider defines for a
// moment was left.
func wantNoScratchPools(t *testing.T, l *golibvirt.Libvirt) {
	t.Helper()
	pools, _, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		t.Fatal(err)
	}
	for _, pool := range pools {
		if strings.HasPrefix(pool.Name, scratchPrefix) {
			t.Errorf("scratch pool %s left defined", pool.Name)
		}
	}
}

// A pool whose path has nine missing directories: its create records all
// nine (libvirt's build would make them all and say nothing), and the undo
// (also replayed by another process, as `fiat recover` does), the purge and
// the undo a settle hands out remove exactly those, deepest first.
func TestPoolParentDirectories(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	create := func(t *testing.T, p *Provider, path, opID string) (string, providers.CreateResponse) {
		t.Helper()
		name := testName("pool")
		cleanupPool(t, p, name)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.deep", Type: TypePool, OpID: opID, Config: poolConfig(name, path)})
		if err != nil {
			t.Fatalf("create: %v", err)
		}
		return name, resp
	}

	t.Run("undo", func(t *testing.T) {
		root := t.TempDir()
		path := nineDeep(root)
		_, resp := create(t, p, path, newOpID(t))
		want := chain(path, root)
		if got := builtDirs(t, resp.State); strings.Join(got, " ") != strings.Join(want, " ") {
			t.Fatalf("built_dirs %v, want the nine directories deepest first %v", got, want)
		}
		wantThere(t, "after create", want...)
		replay := newTestProvider(t)
		for _, q := range []*Provider{p, replay} {
			if _, err := q.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
				t.Fatalf("undo: %v", err)
			}
		}
		wantGone(t, "after undo", want...)
		wantThere(t, "after undo (it existed before)", root)
		wantNoScratchPools(t, l)
	})

	t.Run("some parents exist", func(t *testing.T) {
		root := t.TempDir()
		keep := filepath.Join(root, "a", "b")
		if err := os.MkdirAll(keep, 0o755); err != nil {
			t.Fatal(err)
		}
		path := filepath.Join(keep, "c", "d", "pool")
		_, resp := create(t, p, path, newOpID(t))
		if got := builtDirs(t, resp.State); len(got) != 3 || got[2] != filepath.Join(keep, "c") {
			t.Fatalf("built_dirs %v, want pool, d and c", got)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
			t.Fatal(err)
		}
		wantGone(t, "after undo", filepath.Join(keep, "c"))
		wantThere(t, "after undo (existed before)", keep)
	})

	t.Run("purge", func(t *testing.T) {
		root := t.TempDir()
		path := nineDeep(root)
		_, resp := create(t, p, path, newOpID(t))
		ret, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: resp.ID, State: resp.State})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: resp.ID, State: resp.State, Undo: ret.Undo}); err != nil {
			t.Fatal(err)
		}
		wantGone(t, "after purge", filepath.Join(root, "a"))
		wantThere(t, "after purge", root)
	})

	t.Run("settle after a dropped start", func(t *testing.T) {
		// The reply to the start in the directories fiat made is lost;
		// another process (after a crash) settles the create and undoes
		// what it finds: the marks say which directories were made.
		proxy := newDropProxy(t, procStoragePoolCreate)
		dp := newTestProvider(t, proxy.URI())
		root := t.TempDir()
		path := nineDeep(root)
		op := newOpID(t)
		name := testName("pool")
		cleanupPool(t, p, name)
		cfg := poolConfig(name, path)
		proxy.skip.Store(1) // the first start finds the directory missing
		proxy.armed.Store(true)
		_, err := dp.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.deep", Type: TypePool, OpID: op, Config: cfg})
		if !errors.Is(err, providers.ErrOutcomeUnknown) || proxy.cuts.Load() != 1 {
			t.Fatalf("create over a dropped start: %v (cuts %d), want ErrOutcomeUnknown", err, proxy.cuts.Load())
		}
		other := newTestProvider(t)
		s, err := other.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_pool.deep", Type: TypePool, Action: providers.ActionCreate, OpID: op, Config: cfg})
		if err != nil || s.TookEffect || len(s.Undo) == 0 {
			t.Fatalf("settle: %+v, %v; want not finished (no autostart yet), with an undo", s, err)
		}
		if _, err := other.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: s.Undo}); err != nil {
			t.Fatal(err)
		}
		wantGone(t, "after the settled undo", filepath.Join(root, "a"))
		if _, err := l.StoragePoolLookupByName(name); !notFound(err) {
			t.Errorf("pool %s still defined (%v)", name, err)
		}
	})

	t.Run("remote", func(t *testing.T) {
		// Over a remote connection fiat cannot see which parents
		// libvirt's build makes: it records the pool's own directory
		// only, and the README says to create parents first there.
		rp := newTestProvider(t)
		rp.remoteFiles = true
		root := t.TempDir()
		path := filepath.Join(root, "a", "pool")
		_, resp := create(t, rp, path, newOpID(t))
		if got := builtDirs(t, resp.State); len(got) != 1 || got[0] != path {
			t.Fatalf("built_dirs %v, want only %s", got, path)
		}
		if _, err := rp.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
			t.Fatal(err)
		}
		wantGone(t, "after undo", path)
	})
}

// readOnlyDir mounts an empty read-only tmpfs on a fresh directory and
// unmounts it when the test ends; the test skips where it may not mount.
func readOnlyDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "ro")
	if err := os.Mkdir(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Skipf("mount a read-only tmpfs (needs root): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", dir, err, out)
		}
	})
	return dir
}

// A pool on a read-only file system: the create fails with libvirt's own
// error and cleans up completely (no pool left defined, no undo to run),
// and the undo of such a create — as a journal holds it, or `fiat
// recover` retries it — succeeds instead of failing for ever on the
// directory that was never made.
func TestPoolReadOnlyPath(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	ro := readOnlyDir(t)
	for _, path := range []string{filepath.Join(ro, "pool"), filepath.Join(ro, "a", "b", "pool")} {
		t.Run(strings.TrimPrefix(path, ro), func(t *testing.T) {
			name := testName("pool")
			cleanupPool(t, p, name)
			resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.ro", Type: TypePool, OpID: newOpID(t), Config: poolConfig(name, path)})
			if err == nil {
				t.Fatal("create on a read-only file system succeeded")
			}
			t.Logf("error: %v", err)
			pe := wantProviderError(t, err)
			if pe.Code == 0 || !strings.Contains(pe.Message, "Read-only file system") || strings.Contains(err.Error(), "clean up") {
				t.Errorf("error %v: want libvirt's message and code, and no clean-up failure", err)
			}
			if len(resp.Undo) != 0 {
				t.Errorf("the create cleaned up, yet returned an undo %s", resp.Undo)
			}
			if _, err := l.StoragePoolLookupByName(name); !notFound(err) {
				t.Errorf("pool %s still defined (%v)", name, err)
			}
			wantNoScratchPools(t, l)
		})
	}
	t.Run("undo", func(t *testing.T) {
		// What the create's undo meets when its clean-up could not run:
		// the pool defined, its directory never made.
		name := testName("pool")
		cleanupPool(t, p, name)
		path := filepath.Join(ro, "pool")
		uuid := formatUUID(newUUID(newOpID(t), "libvirt_pool.ro"))
		x, err := poolXML(poolSpec{Name: name, Type: poolTypeDir, Path: path}, uuid)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.StoragePoolDefineXML(x, 0); err != nil {
			t.Fatal(err)
		}
		for _, u := range []undoRecord{
			{Op: undoCreatePool, UUID: uuid, Pool: name, Path: path, Built: true}, // as an older fiat journaled it
			{Op: undoCreatePool, UUID: uuid, Pool: name, Path: path, Built: true, Dirs: []string{path}},
		} {
			for i := 0; i < 2; i++ {
				if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: u.encode()}); err != nil {
					t.Fatalf("undo: %v", err)
				}
			}
		}
		if _, err := l.StoragePoolLookupByName(name); !notFound(err) {
			t.Errorf("pool %s still defined after the undo (%v)", name, err)
		}
		wantNoScratchPools(t, l)
	})
}

// A pool created on an empty directory that existed before: the purge
// leaves that directory (and so does it for a state recorded before
// built_dirs: fiat cannot tell whether it built it).
func TestPoolPurgeKeepsDirectoryItDidNotBuild(t *testing.T) {
	p := newTestProvider(t)
	for _, old := range []bool{false, true} {
		dir := t.TempDir()
		name := testName("pool")
		cleanupPool(t, p, name)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.p", Type: TypePool, Config: poolConfig(name, dir)})
		if err != nil {
			t.Fatal(err)
		}
		if got := builtDirs(t, resp.State); len(got) != 0 {
			t.Errorf("built_dirs %v for a directory that existed", got)
		}
		state := resp.State
		if old {
			state = with(state, "built_dirs", cty.NullVal(cty.List(cty.String)))
		}
		ret, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: resp.ID, State: state})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: resp.ID, State: state, Undo: ret.Undo}); err != nil {
			t.Fatal(err)
		}
		wantThere(t, "after purge", dir)
	}
}

// A settle of a volume's create claims only what that create made: a
// volume of the same name that someone else made while the create's
// outcome was in doubt is not taken for it, so no undo deletes it.
func TestVolumeSettleClaimsOnlyItsOwn(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	pool, _ := newTestPool(t, p)
	lp, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		typ string
		cfg func(name string) cty.Value
	}{
		{TypeVolume, func(name string) cty.Value { return volumeConfig(name, pool, MiB, "") }},
		{TypeCloudInit, func(name string) cty.Value { return cloudInitConfig(name, pool, "#cloud-config\nhostname: h\n") }},
	}
	for _, c := range cases {
		for _, remote := range []bool{false, true} {
			t.Run(c.typ+map[bool]string{false: "", true: "/remote"}[remote], func(t *testing.T) {
				sp := newTestProvider(t)
				sp.remoteFiles = remote
				name := testName("vol")
				cfg := c.cfg(name)
				x, err := marshalVolume(volumeDoc(name, formatRaw, MiB, nil))
				if err != nil {
					t.Fatal(err)
				}
				theirs, err := l.StorageVolCreateXML(lp, x, 0)
				if err != nil {
					t.Fatal(err)
				}
				s, err := sp.Settle(testCtx(t), providers.SettleRequest{Address: c.typ + ".v", Type: c.typ, Action: providers.ActionCreate, OpID: newOpID(t), Config: cfg})
				if err != nil || s.TookEffect || len(s.Undo) != 0 {
					t.Fatalf("settle: %+v, %v; want nothing claimed", s, err)
				}
				if _, err := l.StorageVolLookupByKey(theirs.Key); err != nil {
					t.Errorf("their volume: %v", err)
				}
			})
		}
	}
	t.Run("own, renamed behind libvirt's back", func(t *testing.T) {
		// A crash between the rename of the marked file to its own name
		// and the refresh: libvirt still shows the temporary name. The
		// settle finds the create unfinished; its undo refreshes the
		// pool and removes the marked volume under its own name.
		name := testName("vol")
		op := newOpID(t)
		mark := opMark(op, "libvirt_volume.v")
		x, err := marshalVolume(volumeDoc(tempVolumeName(name, mark), formatQcow2, MiB, nil))
		if err != nil {
			t.Fatal(err)
		}
		tmp, err := l.StorageVolCreateXML(lp, x, 0)
		if err != nil {
			t.Fatal(err)
		}
		own := filepath.Join(filepath.Dir(tmp.Key), name)
		if err := setMark(tmp.Key, mark); err != nil {
			t.Skipf("no extended attributes here: %v", err)
		}
		if err := os.Rename(tmp.Key, own); err != nil {
			t.Fatal(err)
		}
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionCreate,
			OpID: op, Config: volumeConfig(name, pool, MiB, "")})
		if err != nil || s.TookEffect || len(s.Undo) == 0 {
			t.Fatalf("settle: %+v, %v; want unfinished, with an undo", s, err)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: s.Undo}); err != nil {
			t.Fatal(err)
		}
		wantGone(t, "after the undo", tmp.Key, own)
	})
}

// Jobs on one pool take its lock whatever name they come by: a volume
// whose state names the pool it was made in, now replaced on the same
// directory by a pool of another name, and a create that names the new
// pool both wait while that directory's lock is held.
func TestVolumeJobsLockTheRealPool(t *testing.T) {
	p := newTestProvider(t)
	dir := filepath.Join(t.TempDir(), "p")
	oldName, newName := testName("pool"), testName("pool")
	cleanupPool(t, p, oldName)
	cleanupPool(t, p, newName)
	old, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.old", Type: TypePool, Config: poolConfig(oldName, dir)})
	if err != nil {
		t.Fatal(err)
	}
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), oldName, MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: old.ID, State: old.State}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.new", Type: TypePool, Config: poolConfig(newName, dir)}); err != nil {
		t.Fatal(err)
	}

	jobs := map[string]func() error{
		"resize of a volume whose state names the old pool": func() error {
			_, err := p.Update(testCtx(t), providers.UpdateRequest{Type: TypeVolume, ID: vol.ID, Prior: vol.State,
				Config: with(vol.State, "size", cty.NumberUIntVal(2*MiB))})
			return err
		},
		"create in the new pool": func() error {
			_, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.w", Type: TypeVolume, Config: volumeConfig(testName("vol"), newName, MiB, "")})
			return err
		},
	}
	for what, job := range jobs {
		t.Run(what, func(t *testing.T) {
			unlock, err := p.lockPool(testCtx(t), dir)
			if err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- job() }()
			select {
			case err := <-done:
				unlock()
				t.Fatalf("the job ran while the pool's lock was held (%v)", err)
			case <-time.After(300 * time.Millisecond):
			}
			unlock()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
		})
	}
}

// Two retires of two incarnations of one volume (same name, so the same
// key), the first committed with its purge still pending: each has its
// own retired name, so the first's purge does not delete the second's,
// whose undo then brings it back.
func TestVolumeRetiredNamesAreTheRetires(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	name := testName("vol")
	first, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(name, pool, 4*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	ret1, err := p.Retire(testCtx(t), providers.RetireRequest{Address: "libvirt_volume.v", Type: TypeVolume, OpID: newOpID(t) + "/tx1", ID: first.ID, State: first.State})
	if err != nil {
		t.Fatal(err)
	}
	second, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(name, pool, 8*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	if second.ID != first.ID {
		t.Fatalf("keys %s and %s: the test wants the same key for both", second.ID, first.ID)
	}
	ret2, err := p.Retire(testCtx(t), providers.RetireRequest{Address: "libvirt_volume.v", Type: TypeVolume, OpID: newOpID(t) + "/tx2", ID: second.ID, State: second.State})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Purge(testCtx(t), purgeOf(first, ret1.Undo)); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: ret2.Undo}); err != nil {
		t.Fatal(err)
	}
	got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: second.ID, State: second.State})
	if err != nil || !got.Exists || mustSize(t, got.State) != 8*MiB {
		t.Fatalf("the second volume after the first's purge and the undo of its own retire: exists=%v, %v", got.Exists, err)
	}
	if names := volumeNamesIn(t, p, pool); len(names) != 1 || names[0] != name {
		t.Errorf("the pool holds %v, want only %s", names, name)
	}
}

func purgeOf(c providers.CreateResponse, undo json.RawMessage) providers.PurgeRequest {
	return providers.PurgeRequest{Type: TypeVolume, ID: c.ID, State: c.State, Undo: undo}
}

// The settle of a pool's retire restores the pool as it was, not as fiat
// made it: stopped and without autostart, here.
func TestPoolRetireSettleRestoresWhatWas(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name, _ := newTestPool(t, p)
	pool := stopPoolOutside(t, l, name)
	id := formatUUID(pool.UUID)
	read, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: id})
	if err != nil || !read.Exists {
		t.Fatal(err)
	}
	prior := read.State
	wantAsWas := func(t *testing.T, what string) {
		t.Helper()
		pool, err := l.StoragePoolLookupByName(name)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		active, _ := l.StoragePoolIsActive(pool)
		autostart, _ := l.StoragePoolGetAutostart(pool)
		if active != 0 || autostart != 0 {
			t.Errorf("%s: active=%d autostart=%d, want the pool stopped without autostart, as it was", what, active, autostart)
		}
	}
	settleAndUndo := func(t *testing.T, prior cty.Value, tookEffect bool) {
		t.Helper()
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_pool.p", Type: TypePool, Action: providers.ActionDelete, OpID: newOpID(t), ID: id, Prior: prior})
		if err != nil || s.TookEffect != tookEffect || len(s.Undo) == 0 {
			t.Fatalf("settle: %+v, %v", s, err)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: s.Undo}); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("cut off before it took effect", func(t *testing.T) {
		// The pool itself says how it was.
		settleAndUndo(t, prior, false)
		wantAsWas(t, "after the undo")
	})
	t.Run("took effect", func(t *testing.T) {
		// The pool is gone: the prior state says how it was, once it
		// records the run state and autostart.
		if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: id, State: prior}); err != nil {
			t.Fatal(err)
		}
		settleAndUndo(t, with(with(prior, "active", cty.False), "autostart", cty.False), true)
		wantAsWas(t, "after the undo")
	})
}

// allow_overcommit in the provider block lets a plan create volumes larger
// than their pool's free space (thin provisioning); without it preflight
// refuses them.
func TestPreflightOvercommit(t *testing.T) {
	p := newTestProvider(t)
	pool, poolState := newTestPool(t, p)
	read, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: poolState.GetAttr("id").AsString(), State: poolState})
	if err != nil {
		t.Fatal(err)
	}
	huge := (mustSize(t, read.State.GetAttr("available"))/sectorSize + 1) * sectorSize
	step := providers.PreflightStep{Address: "libvirt_volume.big", Type: TypeVolume, Action: providers.ActionCreate, Config: volumeConfig(testName("big"), pool, huge, "")}
	wantProblem(t, mustPreflight(t, p, step), "libvirt_volume.big", "out of space", "allow_overcommit")

	thin := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal(testURI()), "allow_overcommit": cty.True})
	if _, err := thin.Configure(ctx, providers.ConfigureRequest{Config: cfg}); err != nil {
		t.Fatal(err)
	}
	defer thin.Close()
	wantNoProblems(t, mustPreflight(t, thin, step))
}
