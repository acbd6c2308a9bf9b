package libvirt

import (
	"errors"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

func TestErrorClassification(t *testing.T) {
	lverr := golibvirt.Error{Code: uint32(golibvirt.ErrStorageVolExist), Message: "storage volume 'v' exists already"}
	err := mutErr("create volume v in pool p", lverr)
	var pe *providers.Error
	if !errors.As(err, &pe) || pe.Code != 90 || pe.Message != lverr.Message || pe.Op != "create volume v in pool p" {
		t.Errorf("libvirt error: %#v", err)
	}
	if !errors.Is(err, ErrConflict) || errors.Is(err, providers.ErrOutcomeUnknown) {
		t.Errorf("libvirt conflict: Is(ErrConflict)=%v Is(ErrOutcomeUnknown)=%v", errors.Is(err, ErrConflict), errors.Is(err, providers.ErrOutcomeUnknown))
	}
	for _, cause := range []error{syscall.EINVAL, syscall.EPIPE, golibvirt.ErrInterrupted} {
		err := mutErr("create pool x", cause)
		if !errors.Is(err, providers.ErrOutcomeUnknown) || !errors.Is(err, cause) {
			t.Errorf("mutating call failing with %v: %v is not an unknown outcome", cause, err)
		}
		if errors.Is(readErr("read pool x", cause), providers.ErrOutcomeUnknown) {
			t.Errorf("a read failing with %v is not an unknown outcome", cause)
		}
	}
}

// A connection that drops after libvirt received a mutating call, before
// the reply: the error says the outcome is unknown, the Undo returned with
// it takes back whatever happened, and a Read (on a new connection) settles
// what did.
func TestOutcomeUnknown(t *testing.T) {
	t.Run("pool", func(t *testing.T) {
		proxy := newDropProxy(t, procStoragePoolDefineXML)
		p := newTestProvider(t, proxy.URI())
		name := testName("pool")
		cleanupPool(t, p, name)
		cfg := poolConfig(name, filepath.Join(t.TempDir(), "p"))

		proxy.armed.Store(true)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.p", Type: TypePool, OpID: "op-unknown", Config: cfg})
		t.Logf("error: %v", err)
		if !errors.Is(err, providers.ErrOutcomeUnknown) || proxy.cuts.Load() != 1 {
			t.Fatalf("create over a dropped connection: %v (cuts %d), want ErrOutcomeUnknown", err, proxy.cuts.Load())
		}
		if resp.ID == "" || len(resp.Undo) == 0 {
			t.Fatalf("unknown outcome: want the planned ID and an Undo, got %+v", resp)
		}
		got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: resp.ID})
		if err != nil || !got.Exists {
			t.Fatalf("read after the drop: exists=%v, %v (the define reached libvirt)", got.Exists, err)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
			t.Fatalf("undo: %v", err)
		}
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, State: cfg}); err != nil || got.Exists {
			t.Fatalf("read after undo: exists=%v, %v", got.Exists, err)
		}
	})
	t.Run("volume", func(t *testing.T) {
		proxy := newDropProxy(t, procStorageVolCreateXML)
		p := newTestProvider(t, proxy.URI())
		pool, _ := newTestPool(t, p)
		cfg := volumeConfig(testName("vol"), pool, MiB, "")

		proxy.armed.Store(true)
		op := newOpID(t)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, OpID: op, Config: cfg})
		if !errors.Is(err, providers.ErrOutcomeUnknown) {
			t.Fatalf("create over a dropped connection: %v, want ErrOutcomeUnknown", err)
		}
		// The create reached libvirt: on a local host the volume is
		// still under its temporary name, which a settle (on a new
		// connection) recognises as this create's, unfinished.
		other := newTestProvider(t)
		s, err := other.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionCreate, OpID: op, Config: cfg})
		if err != nil || s.TookEffect || len(s.Undo) == 0 {
			t.Fatalf("settle after the drop: %+v, %v; want not finished, with an undo", s, err)
		}
		if _, err := other.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: resp.Undo}); err != nil {
			t.Fatalf("undo: %v", err)
		}
		if vols := volumeNamesIn(t, other, pool); len(vols) != 0 {
			t.Fatalf("after the undo the pool holds %v", vols)
		}
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, State: cfg}); err != nil || got.Exists {
			t.Fatalf("read after undo: exists=%v, %v", got.Exists, err)
		}
	})
}

// A dropped reply to a network's or domain's start: the create says the
// outcome is unknown, a Settle on a fresh connection (another process after
// a crash) reads what happened, and the Undo removes it.
func TestSettleAfterDrop(t *testing.T) {
	t.Run("domain start", func(t *testing.T) {
		proxy := newDropProxy(t, procDomainCreate)
		p := newTestProvider(t, proxy.URI())
		f := newDomainFixture(t, p, 1)
		name := testName("vm")
		cleanupDomain(t, name)
		cfg := domainConfig(name, f.disks, []string{f.net}, "")
		proxy.armed.Store(true)
		op := newOpID(t)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: op, Config: cfg})
		t.Logf("error: %v", err)
		if !errors.Is(err, providers.ErrOutcomeUnknown) || len(resp.Undo) == 0 || resp.ID == "" {
			t.Fatalf("create over a dropped start: %v (id %q, undo %s), want ErrOutcomeUnknown with the id and an undo", err, resp.ID, resp.Undo)
		}
		other := newTestProvider(t)
		s, err := other.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_domain.vm", Type: TypeDomain, Action: providers.ActionCreate, OpID: op, Config: cfg})
		if err != nil || !s.TookEffect || s.ID != resp.ID || !s.State.GetAttr("running").True() {
			t.Fatalf("settle: %+v, %v; want took effect, id %s, running", s, err, resp.ID)
		}
		if _, err := other.Undo(testCtx(t), providers.UndoRequest{Type: TypeDomain, Undo: s.Undo}); err != nil {
			t.Fatal(err)
		}
		if got, err := other.Read(testCtx(t), providers.ReadRequest{Type: TypeDomain, ID: resp.ID}); err != nil || got.Exists {
			t.Fatalf("read after undo: exists=%v, %v", got.Exists, err)
		}
	})
	t.Run("network start", func(t *testing.T) {
		proxy := newDropProxy(t, procNetworkCreate)
		p := newTestProvider(t, proxy.URI())
		name := testName("net")
		cleanupNetwork(t, p, name)
		cfg := networkConfig(name, freeSubnet(t, p))
		proxy.armed.Store(true)
		op := newOpID(t)
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: op, Config: cfg})
		if !errors.Is(err, providers.ErrOutcomeUnknown) || len(resp.Undo) == 0 {
			t.Fatalf("create over a dropped start: %v, want ErrOutcomeUnknown with an undo", err)
		}
		// Started, but autostart was never set: the create got part of
		// the way. Settle says so and hands the undo that removes it.
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_network.n", Type: TypeNetwork, Action: providers.ActionCreate, OpID: op, Config: cfg})
		if err != nil || s.TookEffect || len(s.Undo) == 0 {
			t.Fatalf("settle: %+v, %v; want not taken effect, with an undo for the remains", s, err)
		}
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeNetwork, Undo: s.Undo}); err != nil {
			t.Fatal(err)
		}
		if _, err := hostClient(t, p).NetworkLookupByName(name); !notFound(err) {
			t.Fatalf("network %s still defined after the undo (%v)", name, err)
		}
	})
}

func TestSchema(t *testing.T) {
	s := New().Schema()
	check := func(kind string, m map[string]providers.ResourceSchema) {
		for typ, rs := range m {
			for name, a := range rs.Attributes {
				if a.Required == (a.Optional || a.Computed) {
					t.Errorf("%s %s.%s: exactly one of required, optional/computed", kind, typ, name)
				}
				if a.Default != cty.NilVal && !a.Default.Type().Equals(a.Type) {
					t.Errorf("%s %s.%s: default of type %s", kind, typ, name, a.Default.Type().FriendlyName())
				}
				if a.Description == "" {
					t.Errorf("%s %s.%s: no description", kind, typ, name)
				}
			}
		}
	}
	check("resource", s.Resources)
	check("data source", s.DataSources)
	want := map[string]providers.Reversibility{TypePool: providers.Lossy, TypeVolume: providers.Irreversible,
		TypeNetwork: providers.Lossy, TypeDomain: providers.Lossy, TypeCloudInit: providers.Lossy}
	for typ, r := range want {
		if got := s.Resources[typ].Delete; got != r {
			t.Errorf("%s: delete is %s, want %s", typ, got, r)
		}
	}
	for _, typ := range []string{TypePool, TypeVolume, TypeNetwork} {
		if _, ok := s.DataSources[typ]; !ok {
			t.Errorf("no data source %s", typ)
		}
	}
	if !s.Resources[TypeDomain].Attributes["memory"].RestartNeeded || s.Resources[TypeDomain].Attributes["running"].RestartNeeded {
		t.Error("domain: memory takes effect after a restart, running at once")
	}
}

func TestDataSources(t *testing.T) {
	p := newTestProvider(t)
	pool, poolState := newTestPool(t, p)
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: volumeConfig(testName("vol"), pool, MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	ds := p.Schema().DataSources
	got, err := p.ReadData(testCtx(t), providers.ReadDataRequest{Type: TypePool, Config: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(pool)})})
	if err != nil || !got.State.Type().Equals(ds[TypePool].ImpliedType()) || !got.State.GetAttr("id").Equals(poolState.GetAttr("id")).True() {
		t.Errorf("data libvirt_pool: %#v, %v", got.State, err)
	}
	got, err = p.ReadData(testCtx(t), providers.ReadDataRequest{Type: TypeVolume, Config: cty.ObjectVal(map[string]cty.Value{
		"name": vol.State.GetAttr("name"), "pool": cty.StringVal(pool)})})
	if err != nil || !got.State.Type().Equals(ds[TypeVolume].ImpliedType()) || got.State.GetAttr("id").AsString() != vol.ID ||
		got.State.GetAttr("path").AsString() != vol.State.GetAttr("path").AsString() {
		t.Errorf("data libvirt_volume: %#v, %v", got.State, err)
	}
	if _, err := p.ReadData(testCtx(t), providers.ReadDataRequest{Type: TypeVolume, Config: cty.ObjectVal(map[string]cty.Value{
		"name": cty.StringVal("missing"), "pool": cty.StringVal(pool)})}); !notFound(err) {
		t.Errorf("data source of a missing volume: %v", err)
	}
	if _, err := p.ReadData(testCtx(t), providers.ReadDataRequest{Type: TypeDomain}); err == nil {
		t.Error("data libvirt_domain exists")
	}
}

func TestUUID(t *testing.T) {
	a, b := newUUID("plan1/step3", "libvirt_pool.x"), newUUID("plan1/step3", "libvirt_pool.x")
	if a != b || a == newUUID("plan1/step4", "libvirt_pool.x") || newUUID("", "x") == newUUID("", "x") {
		t.Error("uuid: same op id gives the same uuid, another op id or none another")
	}
	u, err := parseUUID(formatUUID(a))
	if err != nil || u != a {
		t.Errorf("round trip %s: %v", formatUUID(a), err)
	}
}

// TestTimings logs how long one create and delete take (go test -v -run Timings).
func TestTimings(t *testing.T) {
	p := newTestProvider(t)
	name := testName("pool")
	cleanupPool(t, p, name)
	start := time.Now()
	pool, err := p.Create(testCtx(t), providers.CreateRequest{Type: TypePool, Config: poolConfig(name, filepath.Join(t.TempDir(), "p"))})
	if err != nil {
		t.Fatal(err)
	}
	poolCreate := time.Since(start)

	start = time.Now()
	vol, err := p.Create(testCtx(t), providers.CreateRequest{Type: TypeVolume, Config: volumeConfig(testName("vol"), name, 1<<30, "")})
	if err != nil {
		t.Fatal(err)
	}
	volCreate := time.Since(start)
	start = time.Now()
	ret, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypeVolume, ID: vol.ID, State: vol.State})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State, Undo: ret.Undo}); err != nil {
		t.Fatal(err)
	}
	volDelete := time.Since(start)

	start = time.Now()
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: pool.ID, State: pool.State}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: pool.ID, State: pool.State}); err != nil {
		t.Fatal(err)
	}
	poolDelete := time.Since(start)
	t.Logf("pool create %v, delete (retire+purge) %v; 1 GiB qcow2 volume create %v, delete (retire+purge) %v",
		poolCreate.Round(time.Microsecond), poolDelete.Round(time.Microsecond), volCreate.Round(time.Microsecond), volDelete.Round(time.Microsecond))
}
