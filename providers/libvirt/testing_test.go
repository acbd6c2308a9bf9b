package libvirt

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Tests run against the real libvirtd that scripts/libvirtd.sh starts.
// FIAT_LIBVIRT_URI overrides the URI. Without libvirtd the tests skip, or
// fail when CI=true.

var runID = func() string {
	b := make([]byte, 3)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}()

var nameSeq atomic.Int64

// testName returns a name unique to this run: fiattest-<run>-<kind><n>.
func testName(kind string) string {
	return fmt.Sprintf("fiattest-%s-%s%d", runID, kind, nameSeq.Add(1))
}

func testURI() string {
	if u := os.Getenv("FIAT_LIBVIRT_URI"); u != "" {
		return u
	}
	return DefaultURI
}

func testCtx(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// newTestProvider returns a provider connected to libvirtd at uri (default
// testURI), closed when the test ends.
func newTestProvider(t *testing.T, uri ...string) *Provider {
	t.Helper()
	u := testURI()
	if len(uri) > 0 {
		u = uri[0]
	}
	p := New()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	cfg := cty.ObjectVal(map[string]cty.Value{"uri": cty.StringVal(u)})
	if _, err := p.Configure(ctx, providers.ConfigureRequest{Config: cfg}); err != nil {
		msg := fmt.Sprintf("libvirtd is not reachable at %s: %v\n\tstart it (as root) with: bash scripts/libvirtd.sh", u, err)
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// hostClient is a raw go-libvirt connection for checks and cleanup behind
// the provider's back.
func hostClient(t testing.TB, p *Provider) *golibvirt.Libvirt {
	t.Helper()
	l, err := p.client(context.Background())
	if err != nil {
		t.Fatalf("libvirt client: %v", err)
	}
	return l
}

// cleanupPool removes, when the test ends, the pool named name if it is
// still there: its volumes, the pool, and its directory when empty.
func cleanupPool(t *testing.T, p *Provider, name string) {
	t.Cleanup(func() {
		l, err := p.conn.client(context.Background())
		if err != nil {
			l2, err2 := golibvirt.ConnectToURI(mustURL(testURI()))
			if err2 != nil {
				t.Logf("cleanup pool %s: %v", name, err)
				return
			}
			defer l2.Disconnect()
			l = l2
		}
		pool, err := l.StoragePoolLookupByName(name)
		if err != nil {
			return
		}
		if active, _ := l.StoragePoolIsActive(pool); active == 0 {
			_ = l.StoragePoolCreate(pool, 0)
		}
		if vols, _, err := l.StoragePoolListAllVolumes(pool, 1, 0); err == nil {
			for _, v := range vols {
				_ = l.StorageVolDelete(v, 0)
			}
		}
		_ = l.StoragePoolDestroy(pool)
		_ = l.StoragePoolDelete(pool, 0)
		if err := l.StoragePoolUndefine(pool); err != nil {
			t.Logf("cleanup pool %s: %v", name, err)
		}
	})
}

func mustURL(s string) *url.URL {
	u, err := url.Parse(s)
	if err != nil {
		panic(err)
	}
	return u
}

func poolConfig(name, path string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{
		"name":       cty.StringVal(name),
		"type":       cty.NullVal(cty.String),
		"path":       cty.StringVal(path),
		"id":         cty.NullVal(cty.String),
		"capacity":   cty.NullVal(cty.Number),
		"allocation": cty.NullVal(cty.Number),
		"available":  cty.NullVal(cty.Number),
		"active":     cty.NullVal(cty.Bool),
		"autostart":  cty.NullVal(cty.Bool),
		"built_dirs": cty.NullVal(cty.List(cty.String)),
		"xml":        cty.NullVal(cty.List(xmlType.WithoutOptionalAttributesDeep())),
	})
}

func volumeConfig(name, pool string, size uint64, format string) cty.Value {
	f := cty.NullVal(cty.String)
	if format != "" {
		f = cty.StringVal(format)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":             cty.StringVal(name),
		"pool":             cty.StringVal(pool),
		"size":             cty.NumberUIntVal(size),
		"format":           f,
		"base_volume":      cty.NullVal(cty.String),
		"base_volume_id":   cty.NullVal(cty.String),
		"base_volume_name": cty.NullVal(cty.String),
		"base_volume_pool": cty.NullVal(cty.String),
		"source":           cty.NullVal(cty.String),
		"id":               cty.NullVal(cty.String),
		"path":             cty.NullVal(cty.String),
		"xml":              cty.NullVal(cty.List(xmlType.WithoutOptionalAttributesDeep())),
	})
}

// withUnknown returns cfg with the named attributes unknown, as a planned
// config holds them before apply.
func withUnknown(cfg cty.Value, names ...string) cty.Value {
	m := cfg.AsValueMap()
	for _, n := range names {
		m[n] = cty.UnknownVal(m[n].Type())
	}
	return cty.ObjectVal(m)
}

func with(cfg cty.Value, name string, v cty.Value) cty.Value {
	m := cfg.AsValueMap()
	m[name] = v
	return cty.ObjectVal(m)
}

// newTestPool creates a pool through the provider in a fresh temp dir and
// removes it when the test ends.
func newTestPool(t *testing.T, p *Provider) (name string, state cty.Value) {
	t.Helper()
	name = testName("pool")
	cleanupPool(t, p, name)
	resp, err := p.Create(testCtx(t), providers.CreateRequest{
		Address: "libvirt_pool." + name, Type: TypePool, Config: poolConfig(name, t.TempDir()),
	})
	if err != nil {
		t.Fatalf("create fixture pool: %v", err)
	}
	return name, resp.State
}

func mustPreflight(t *testing.T, p *Provider, steps ...providers.PreflightStep) []providers.Problem {
	t.Helper()
	resp, err := p.Preflight(testCtx(t), providers.PreflightRequest{Steps: steps})
	if err != nil {
		t.Fatalf("Preflight: %v", err)
	}
	return resp.Problems
}

func wantNoProblems(t *testing.T, problems []providers.Problem) {
	t.Helper()
	for _, pr := range problems {
		t.Errorf("unexpected problem: %s: %s", pr.Address, pr.Message)
	}
}

// wantProblem checks that exactly the step at addr has a problem containing
// every one of subs.
func wantProblem(t *testing.T, problems []providers.Problem, addr string, subs ...string) {
	t.Helper()
	found := false
	for _, pr := range problems {
		if pr.Address != addr {
			t.Errorf("problem for unexpected step %s: %s", pr.Address, pr.Message)
			continue
		}
		ok := true
		for _, s := range subs {
			ok = ok && strings.Contains(pr.Message, s)
		}
		found = found || ok
	}
	if !found {
		t.Errorf("no problem for %s containing %q; got %+v", addr, subs, problems)
	}
}

func wantState(t *testing.T, what string, got, want cty.Value) {
	t.Helper()
	if got == cty.NilVal || !got.Type().Equals(want.Type()) || !got.Equals(want).True() {
		t.Errorf("%s: state\n\tgot  %#v\n\twant %#v", what, got, want)
	}
}

func wantProviderError(t *testing.T, err error) *providers.Error {
	t.Helper()
	var pe *providers.Error
	if !errors.As(err, &pe) {
		t.Fatalf("error %v (%T) is not a *providers.Error", err, err)
	}
	return pe
}

// dropProxy listens on a unix socket and relays to libvirtd's socket. Once
// armed, it forwards the next call of procedure proc to libvirtd and then
// cuts the connection instead of relaying the reply: the call takes effect
// but the client cannot know. Later connections are relayed normally. With
// skip set, that many calls of proc pass first.
type dropProxy struct {
	Socket string
	ln     net.Listener
	proc   uint32
	armed  atomic.Bool
	// stall, when set, keeps the cut connection open and silent instead
	// of closing it: the client waits for a reply that never comes.
	stall atomic.Bool
	skip  atomic.Int32
	cuts  atomic.Int32
	wg    sync.WaitGroup
}

const (
	libvirtSocket = "/var/run/libvirt/libvirt-sock"
	remoteProgram = 0x20008086
	// Procedure numbers of libvirt's remote protocol.
	procStoragePoolDefineXML = 77
	procStoragePoolCreate    = 78
	procStorageVolCreateXML  = 93
	procDomainCreate         = 9
	procNetworkCreate        = 39
	procStorageVolDownload   = 209
)

func newDropProxy(t *testing.T, proc uint32) *dropProxy {
	t.Helper()
	if u := mustURL(testURI()); u.Scheme != "qemu" || u.Host != "" {
		skipOrFail(t, fmt.Sprintf("the drop proxy needs the local unix socket, not %s", testURI()))
	}
	dir, err := os.MkdirTemp("", "fiatproxy")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	d := &dropProxy{Socket: filepath.Join(dir, "sock"), proc: proc}
	d.ln, err = net.Listen("unix", d.Socket)
	if err != nil {
		t.Fatal(err)
	}
	d.wg.Add(1)
	go d.serve()
	t.Cleanup(func() { d.ln.Close(); d.wg.Wait() })
	return d
}

func (d *dropProxy) URI() string { return "qemu:///system?socket=" + d.Socket }

func (d *dropProxy) serve() {
	defer d.wg.Done()
	for {
		c, err := d.ln.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("unix", libvirtSocket)
		if err != nil {
			c.Close()
			continue
		}
		var cut atomic.Bool
		closeBoth := func() { c.Close(); s.Close() }
		d.wg.Add(2)
		go func() { // client to libvirtd
			defer d.wg.Done()
			defer closeBoth()
			for {
				pkt, err := readPacket(c)
				if err != nil {
					return
				}
				if len(pkt) >= 16 && binary.BigEndian.Uint32(pkt[4:]) == remoteProgram &&
					binary.BigEndian.Uint32(pkt[12:]) == d.proc && d.armed.Load() && d.skip.Add(-1) < 0 &&
					d.armed.CompareAndSwap(true, false) {
					cut.Store(true)
				}
				if _, err := s.Write(pkt); err != nil {
					return
				}
			}
		}()
		go func() { // libvirtd to client
			defer d.wg.Done()
			defer closeBoth()
			for {
				pkt, err := readPacket(s)
				if err != nil {
					return
				}
				if cut.Load() {
					d.cuts.Add(1)
					if d.stall.Load() {
						io.Copy(io.Discard, s) // silent until the client gives up
					}
					return // drop the reply and the connection
				}
				if _, err := c.Write(pkt); err != nil {
					return
				}
			}
		}()
	}
}

// readPacket reads one length-prefixed libvirt RPC packet.
func readPacket(r io.Reader) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, err
	}
	n := binary.BigEndian.Uint32(hdr[:])
	if n < 4 || n > 64<<20 {
		return nil, fmt.Errorf("bad packet length %d", n)
	}
	pkt := make([]byte, n)
	copy(pkt, hdr[:])
	if _, err := io.ReadFull(r, pkt[4:]); err != nil {
		return nil, err
	}
	return pkt, nil
}

// opID is an operation id unique to this test and run: the UUIDs derived
// from it never meet a leftover of an earlier run.
func newOpID(t *testing.T) string { return t.Name() + "/" + runID }

// skipOrFail skips a test whose tool is missing, except under CI, where
// scripts/libvirtd.sh installs every tool and a missing one is a failure.
func skipOrFail(t *testing.T, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatal(why)
	}
	t.Skip(why)
}

// volumeNamesIn lists, after a refresh, the names of the volumes in the
// named pool: what is on disk, whatever libvirt thought before.
func volumeNamesIn(t *testing.T, p *Provider, pool string) []string {
	t.Helper()
	l := hostClient(t, p)
	lp, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		t.Fatalf("look up pool %s: %v", pool, err)
	}
	if err := l.StoragePoolRefresh(lp, 0); err != nil {
		t.Fatalf("refresh pool %s: %v", pool, err)
	}
	names, err := l.StoragePoolListVolumes(lp, 1000)
	if err != nil {
		t.Fatalf("list volumes of %s: %v", pool, err)
	}
	return names
}

// stopPoolOutside stops a pool and turns its autostart off behind fiat's
// back, as an operator with virsh would.
func stopPoolOutside(t *testing.T, l *golibvirt.Libvirt, name string) golibvirt.StoragePool {
	t.Helper()
	pool, err := l.StoragePoolLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := l.StoragePoolSetAutostart(pool, 0); err != nil {
		t.Fatal(err)
	}
	if err := l.StoragePoolDestroy(pool); err != nil {
		t.Fatal(err)
	}
	return pool
}
