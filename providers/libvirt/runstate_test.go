package libvirt

import (
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// wantRun checks the run state a state reports.
func wantRun(t *testing.T, what string, state cty.Value, active, autostart bool) {
	t.Helper()
	a, b := attr(state, "active"), attr(state, "autostart")
	if a.Type() != cty.Bool || a.IsNull() || b.Type() != cty.Bool || b.IsNull() || a.True() != active || b.True() != autostart {
		t.Errorf("%s: active = %#v, autostart = %#v; want %v, %v", what, a, b, active, autostart)
	}
}

// A pool stopped outside fiat (virsh pool-destroy), its autostart turned
// off (pool-autostart --disable), with a volume in it: the pool's read says
// so, the volume's read does not fail (it reports the stored state, since
// libvirt shows no volume of a stopped pool), preflight accepts starting
// the pool and growing the volume in one plan, and the update starts the
// pool and turns autostart on again. Its undo stops the pool again.
func TestPoolStoppedOutsideFiat(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name, pstate := newTestPool(t, p)
	pid := pstate.GetAttr("id").AsString()
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig("v.qcow2", name, MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, "created", pstate, true, true)
	pool := stopPoolOutside(t, l, name)

	read, err := p.Read(testCtx(t), providers.ReadRequest{Address: "libvirt_pool.p", Type: TypePool, ID: pid, State: pstate})
	if err != nil || !read.Exists {
		t.Fatalf("read stopped pool: exists=%v, %v", read.Exists, err)
	}
	wantRun(t, "read stopped pool", read.State, false, false)
	vread, err := p.Read(testCtx(t), providers.ReadRequest{Address: "libvirt_volume.v", Type: TypeVolume, ID: vol.ID, State: vol.State})
	if err != nil || !vread.Exists {
		t.Fatalf("read volume in the stopped pool: exists=%v, %v", vread.Exists, err)
	}
	wantState(t, "read volume in the stopped pool", vread.State, vol.State)

	cfg := poolConfig(name, pstate.GetAttr("path").AsString())
	start := providers.PreflightStep{Address: "libvirt_pool.p", Type: TypePool, Action: providers.ActionUpdate, ID: pid, Prior: read.State, Config: cfg}
	grow := providers.PreflightStep{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionUpdate, ID: vol.ID, Prior: vol.State,
		Config: with(vol.State, "size", cty.NumberUIntVal(2*MiB))}
	wantNoProblems(t, mustPreflight(t, p, start, grow))
	wantProblem(t, mustPreflight(t, p, grow), "libvirt_volume.v", "not active") // nothing starts it

	upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_pool.p", Type: TypePool, ID: pid, Prior: read.State, Config: cfg})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	wantRun(t, "updated", upd.State, true, true)
	if active, _ := l.StoragePoolIsActive(pool); active != 1 {
		t.Error("the pool does not run after the update")
	}
	if autostart, _ := l.StoragePoolGetAutostart(pool); autostart != 1 {
		t.Error("the pool's autostart is off after the update")
	}
	if _, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_volume.v", Type: TypeVolume, ID: vol.ID, Prior: vol.State, Config: grow.Config}); err != nil {
		t.Fatalf("grow the volume once the pool runs: %v", err)
	}

	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: upd.Undo}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	back, err := p.Read(testCtx(t), providers.ReadRequest{Address: "libvirt_pool.p", Type: TypePool, ID: pid, State: pstate})
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, "after the undo", back.State, false, false)
}

// A pool config asks to be stopped and not autostarted: created so (its
// directory built first, by the start), settled as done, and removed by the
// undo of the create.
func TestPoolCreatedStopped(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name := testName("pool")
	cleanupPool(t, p, name)
	cfg := with(with(poolConfig(name, t.TempDir()+"/dir"), "active", cty.False), "autostart", cty.False)
	opID := newOpID(t)
	resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.p", Type: TypePool, OpID: opID, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, "created", resp.State, false, false)
	pool, err := l.StoragePoolLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if active, _ := l.StoragePoolIsActive(pool); active != 0 {
		t.Error("the pool runs")
	}
	s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_pool.p", Type: TypePool, Action: providers.ActionCreate, OpID: opID, Config: cfg})
	if err != nil || !s.TookEffect {
		t.Fatalf("settle: took effect = %v, %v", s.TookEffect, err)
	}
	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
		t.Fatal(err)
	}
	if _, err := l.StoragePoolLookupByName(name); !notFound(err) {
		t.Errorf("pool still defined after the undo (%v)", err)
	}
}

// A network stopped outside fiat (virsh net-destroy), its autostart turned
// off: the read says so, and the update starts it (serving its DHCP hosts)
// and turns autostart on; the undo stops it again. A network created with
// active = false is defined, not started.
func TestNetworkStoppedOutsideFiat(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name := testName("net")
	cleanupNetwork(t, p, name)
	cfg := networkConfig(name, freeSubnet(t, p))
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, "created", created.State, true, true)
	n, err := l.NetworkLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.NetworkSetAutostart(n, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.NetworkDestroy(n); err != nil {
		t.Fatal(err)
	}
	read, err := p.Read(testCtx(t), providers.ReadRequest{Address: "libvirt_network.n", Type: TypeNetwork, ID: created.ID, State: created.State})
	if err != nil || !read.Exists {
		t.Fatalf("read: exists=%v, %v", read.Exists, err)
	}
	wantRun(t, "read stopped network", read.State, false, false)

	step := providers.PreflightStep{Address: "libvirt_network.n", Type: TypeNetwork, Action: providers.ActionUpdate, ID: created.ID, Prior: read.State, Config: cfg}
	wantNoProblems(t, mustPreflight(t, p, step))
	opID := newOpID(t) + "/update"
	upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: opID, ID: created.ID, Prior: read.State, Config: cfg})
	if err != nil {
		t.Fatalf("update: %v", err)
	}
	wantRun(t, "updated", upd.State, true, true)
	if active, _ := l.NetworkIsActive(n); active != 1 {
		t.Fatal("the network does not run after the update")
	}
	if _, live, _ := networkDoc(l, n, false); !strings.Contains(live, "52:54:00:aa:00:01") {
		t.Errorf("the running network lacks its DHCP host:\n%s", live)
	}
	s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_network.n", Type: TypeNetwork, Action: providers.ActionUpdate, OpID: opID, ID: created.ID, Prior: read.State, Config: cfg})
	if err != nil || !s.TookEffect {
		t.Fatalf("settle update: took effect = %v, %v", s.TookEffect, err)
	}
	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeNetwork, Undo: upd.Undo}); err != nil {
		t.Fatalf("undo: %v", err)
	}
	back, err := p.Read(testCtx(t), providers.ReadRequest{Address: "libvirt_network.n", Type: TypeNetwork, ID: created.ID, State: created.State})
	if err != nil {
		t.Fatal(err)
	}
	wantRun(t, "after the undo", back.State, false, false)

	t.Run("created stopped", func(t *testing.T) {
		name := testName("net")
		cleanupNetwork(t, p, name)
		cfg := with(networkConfig(name, freeSubnet(t, p)), "active", cty.False)
		opID := newOpID(t)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.s", Type: TypeNetwork, OpID: opID, Config: cfg})
		if err != nil {
			t.Fatal(err)
		}
		wantRun(t, "created", resp.State, false, true)
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_network.s", Type: TypeNetwork, Action: providers.ActionCreate, OpID: opID, Config: cfg})
		if err != nil || !s.TookEffect {
			t.Fatalf("settle: took effect = %v, %v", s.TookEffect, err)
		}
	})
}

// An undo recorded by an older fiat's network update (no run state in it)
// leaves the network running as it is.
func TestNetworkUndoOfOlderUpdateKeepsRunState(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name := testName("net")
	cleanupNetwork(t, p, name)
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: newOpID(t), Config: networkConfig(name, freeSubnet(t, p))})
	if err != nil {
		t.Fatal(err)
	}
	n, err := l.NetworkLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	_, x, err := networkDoc(l, n, true)
	if err != nil {
		t.Fatal(err)
	}
	old := undoRecord{Op: undoUpdateNetwork, UUID: created.ID, Name: name, XML: x, Autostart: true}.encode()
	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeNetwork, Undo: old}); err != nil {
		t.Fatal(err)
	}
	if active, _ := l.NetworkIsActive(n); active != 1 {
		t.Error("an older update's undo stopped the network")
	}
}
