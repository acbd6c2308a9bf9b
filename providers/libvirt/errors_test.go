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
		if err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: resp.Undo}); err != nil {
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
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: cfg})
		if !errors.Is(err, providers.ErrOutcomeUnknown) {
			t.Fatalf("create over a dropped connection: %v, want ErrOutcomeUnknown", err)
		}
		got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, State: cfg})
		if err != nil || !got.Exists {
			t.Fatalf("read by name after the drop: exists=%v, %v", got.Exists, err)
		}
		if err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: resp.Undo}); err != nil {
			t.Fatalf("undo: %v", err)
		}
		if got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, State: cfg}); err != nil || got.Exists {
			t.Fatalf("read after undo: exists=%v, %v", got.Exists, err)
		}
	})
}

func TestSchema(t *testing.T) {
	s := New().Schema()
	for typ, rs := range s.Resources {
		for name, a := range rs.Attributes {
			if a.Required == (a.Optional || a.Computed) {
				t.Errorf("%s.%s: exactly one of required, optional/computed", typ, name)
			}
			if a.Default != cty.NilVal && !a.Default.Type().Equals(a.Type) {
				t.Errorf("%s.%s: default of type %s", typ, name, a.Default.Type().FriendlyName())
			}
		}
	}
	if s.Resources[TypePool].Delete != providers.Lossy || s.Resources[TypeVolume].Delete != providers.Irreversible {
		t.Error("delete reversibility: pool lossy, volume irreversible")
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
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypeVolume, ID: vol.ID, State: vol.State}); err != nil {
		t.Fatal(err)
	}
	volDelete := time.Since(start)

	start = time.Now()
	if _, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: pool.ID, State: pool.State}); err != nil {
		t.Fatal(err)
	}
	if err := p.Purge(testCtx(t), providers.PurgeRequest{Type: TypePool, ID: pool.ID, State: pool.State}); err != nil {
		t.Fatal(err)
	}
	poolDelete := time.Since(start)
	t.Logf("pool create %v, delete (retire+purge) %v; 1 GiB qcow2 volume create %v, delete (retire+purge) %v",
		poolCreate.Round(time.Microsecond), poolDelete.Round(time.Microsecond), volCreate.Round(time.Microsecond), volDelete.Round(time.Microsecond))
}
