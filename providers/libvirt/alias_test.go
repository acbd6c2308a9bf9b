package libvirt

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// tcpURI reaches the same libvirtd over TCP on loopback (scripts/libvirtd.sh
// makes it listen there).
const tcpURI = "qemu+tcp://127.0.0.1/system"

// Two provider instances reach one host by different URIs, as two aliases
// of one spec do. They take part in one transaction: objects made through
// either are undone, last first, when a later step through the other
// fails, and nothing is left. They also share the host's pool locks.
func TestAliasesOneTransaction(t *testing.T) {
	unix := newTestProvider(t)
	tcp := newTestProvider(t, tcpURI)
	k1, err1 := unix.hostKey(testCtx(t))
	k2, err2 := tcp.hostKey(testCtx(t))
	if err1 != nil || err2 != nil || k1 != k2 {
		t.Fatalf("host keys %q (%v) and %q (%v) differ: the pool locks would not be shared", k1, err1, k2, err2)
	}

	type done struct {
		p    *Provider
		typ  string
		undo []byte
	}
	var applied []done
	apply := func(p *Provider, typ, addr string, cfg cty.Value) (providers.CreateResponse, error) {
		resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: addr, Type: typ, OpID: newOpID(t) + "/" + addr, Config: cfg})
		if len(resp.Undo) > 0 {
			applied = append(applied, done{p, typ, resp.Undo})
		}
		return resp, err
	}
	poolName := testName("pool")
	cleanupPool(t, unix, poolName)
	netName := testName("net")
	cleanupNetwork(t, unix, netName)
	vmName := testName("vm")
	cleanupDomain(t, vmName)

	steps := []struct {
		p    *Provider
		typ  string
		addr string
		cfg  func() cty.Value
	}{
		{unix, TypePool, "libvirt_pool.images", func() cty.Value { return poolConfig(poolName, t.TempDir()+"/p") }},
		{tcp, TypeVolume, "libvirt_volume.base", func() cty.Value { return volumeConfig("base.qcow2", poolName, 64*MiB, "") }},
		{unix, TypeNetwork, "libvirt_network.lan", func() cty.Value { return networkConfig(netName, freeSubnet(t, unix)) }},
		{tcp, TypeDomain, "libvirt_domain.vm", func() cty.Value {
			return domainConfig(vmName, []string{"/nonexistent/disk.qcow2"}, []string{netName}, "")
		}},
	}
	var failure error
	for _, s := range steps {
		if _, err := apply(s.p, s.typ, s.addr, s.cfg()); err != nil {
			failure = fmt.Errorf("%s: %w", s.addr, err)
			break
		}
	}
	if failure == nil || !strings.Contains(failure.Error(), "libvirt_domain.vm") {
		t.Fatalf("the transaction did not fail at the domain: %v", failure)
	}
	t.Logf("failure: %v", failure)
	if len(applied) != 3 {
		t.Fatalf("%d steps took effect, want 3", len(applied))
	}
	for i := len(applied) - 1; i >= 0; i-- {
		d := applied[i]
		if _, err := d.p.Undo(testCtx(t), providers.UndoRequest{Type: d.typ, Undo: d.undo}); err != nil {
			t.Fatalf("undo %s: %v", d.typ, err)
		}
	}
	l := hostClient(t, unix)
	if _, err := l.StoragePoolLookupByName(poolName); !notFound(err) {
		t.Errorf("pool %s left after the rollback (%v)", poolName, err)
	}
	if _, err := l.NetworkLookupByName(netName); !notFound(err) {
		t.Errorf("network %s left after the rollback (%v)", netName, err)
	}
	if _, err := l.DomainLookupByName(vmName); !notFound(err) {
		t.Errorf("domain %s left after the rollback (%v)", vmName, err)
	}
}

// Jobs on one pool through both instances take turns: retiring the pool
// through one while volumes are created through the other never meets
// "pool has asynchronous jobs running".
func TestAliasesSharePoolLocks(t *testing.T) {
	unix := newTestProvider(t)
	tcp := newTestProvider(t, tcpURI)
	pool, state := newTestPool(t, unix)
	id := state.GetAttr("id").AsString()
	for i := range 10 {
		var wg sync.WaitGroup
		var createErr, retireErr error
		var ret providers.RetireResponse
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, createErr = tcp.Create(testCtx(t), providers.CreateRequest{Address: fmt.Sprintf("libvirt_volume.v[%d]", i), Type: TypeVolume,
				Config: volumeConfig(testName("vol"), pool, 256*MiB, "")})
		}()
		go func() {
			defer wg.Done()
			ret, retireErr = unix.Retire(testCtx(t), providers.RetireRequest{Type: TypePool, ID: id, State: state})
		}()
		wg.Wait()
		if retireErr != nil {
			t.Fatalf("round %d: retire through one alias while the other creates a volume: %v", i, retireErr)
		}
		if createErr != nil && !notFound(createErr) {
			t.Fatalf("round %d: create: %v", i, createErr)
		}
		if _, err := tcp.Undo(testCtx(t), providers.UndoRequest{Type: TypePool, Undo: ret.Undo}); err != nil {
			t.Fatal(err)
		}
	}
}

// On a host whose files fiat cannot see (a remote one), a volume's retire
// copies it under the retired name and deletes the original; the undo
// copies it back. The data survives both.
func TestVolumeRetireByCopy(t *testing.T) {
	p := newTestProvider(t)
	p.remoteFiles = true
	pool, _ := newTestPool(t, p)
	for _, format := range []string{formatQcow2, formatRaw} {
		t.Run(format, func(t *testing.T) {
			src := t.TempDir() + "/src.img"
			data := strings.Repeat("fiat", 1<<18) // 1 MiB
			if err := os.WriteFile(src, []byte(data), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := with(with(volumeConfig(testName("vol"), pool, 0, formatRaw), "size", cty.NullVal(cty.Number)), "source", cty.StringVal(src))
			if format == formatQcow2 {
				cfg = volumeConfig(testName("vol"), pool, 4*MiB, formatQcow2)
			}
			vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			before, _ := os.ReadFile(vol.State.GetAttr("path").AsString())
			ret, err := p.Retire(testCtx(t), providers.RetireRequest{Type: TypeVolume, ID: vol.ID, State: vol.State})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := os.Stat(vol.ID); !os.IsNotExist(err) {
				t.Errorf("the original is still there after the retire (%v)", err)
			}
			if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeVolume, Undo: ret.Undo}); err != nil {
				t.Fatal(err)
			}
			after, err := os.ReadFile(vol.ID)
			if err != nil || (format == formatRaw && string(after) != data) || len(after) == 0 || (format == formatRaw && string(before) != string(after)) {
				t.Errorf("after retire and undo the volume holds %d bytes (%v), want its data back", len(after), err)
			}
			got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: vol.ID, State: vol.State})
			if err != nil || !got.Exists {
				t.Fatalf("read after undo: %v", err)
			}
			wantState(t, "after retire and undo by copy", got.State, vol.State)
		})
	}
}
