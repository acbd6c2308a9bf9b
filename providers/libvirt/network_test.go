package libvirt

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"os/exec"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"fiat/providers"
)

// Test networks are local bridges on 192.168.200-254.x/24 subnets that no
// interface of this machine and no libvirt network uses; each is handed out
// once per run. Guests in the tests have no OS and send nothing.
var subnets struct {
	sync.Mutex
	used map[int]bool
}

func freeSubnet(t testing.TB, p *Provider) netip.Prefix {
	t.Helper()
	subnets.Lock()
	defer subnets.Unlock()
	if subnets.used == nil {
		subnets.used = map[int]bool{}
	}
	taken := func(pf netip.Prefix) bool {
		addrs, _ := net.InterfaceAddrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok {
				if ip, ok := netip.AddrFromSlice(ipn.IP.To4()); ok && pf.Contains(ip) {
					return true
				}
			}
		}
		nets, _, err := hostClient(t, p).ConnectListAllNetworks(1, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range nets {
			doc, _, err := networkDoc(hostClient(t, p), n, false)
			if err != nil {
				continue
			}
			for _, ip := range doc.IPs {
				if a, err := netip.ParseAddr(ip.Address); err == nil && pf.Contains(a) {
					return true
				}
			}
		}
		return false
	}
	for _, i := range rand.Perm(55) {
		third := 200 + i
		pf := netip.MustParsePrefix(fmt.Sprintf("192.168.%d.0/24", third))
		if !subnets.used[third] && !taken(pf) {
			subnets.used[third] = true
			return pf
		}
	}
	t.Fatal("no free 192.168.2xx.0/24 subnet for a test network")
	return netip.Prefix{}
}

func hostIP(pf netip.Prefix, n int) string {
	a := pf.Addr().As4()
	a[3] = byte(n)
	return netip.AddrFrom4(a).String()
}

func networkConfig(name string, sub netip.Prefix) cty.Value {
	return conformTo(networkSchema, cty.ObjectVal(map[string]cty.Value{
		"name":      cty.StringVal(name),
		"mode":      cty.NullVal(cty.String),
		"addresses": cty.ListVal([]cty.Value{cty.StringVal(sub.String())}),
		"bridge":    cty.NullVal(cty.String),
		"dhcp": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"start": cty.StringVal(hostIP(sub, 100)), "end": cty.StringVal(hostIP(sub, 150))})}),
		"hosts": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"mac": cty.StringVal("52:54:00:aa:00:01"), "ip": cty.StringVal(hostIP(sub, 5)), "name": cty.StringVal("web")})}),
		"dns": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"ip": cty.StringVal(hostIP(sub, 5)), "hostnames": cty.ListVal([]cty.Value{cty.StringVal("web")})})}),
		"autostart": cty.NullVal(cty.Bool),
		"active":    cty.NullVal(cty.Bool),
		"id":        cty.NullVal(cty.String),
	}))
}

// conformTo gives obj the schema's type: nested objects take the optional
// attributes they leave out (null), attributes it lacks are null.
func conformTo(rs providers.ResourceSchema, obj cty.Value) cty.Value {
	attrs := map[string]cty.Value{}
	for name, a := range rs.Attributes {
		v := cty.NullVal(a.Type.WithoutOptionalAttributesDeep())
		if obj.Type().HasAttribute(name) {
			cv, err := convert.Convert(obj.GetAttr(name), a.Type)
			if err != nil {
				panic(err)
			}
			v = cv
		}
		attrs[name] = v
	}
	return cty.ObjectVal(attrs)
}

// cleanupNetwork removes the network named name when the test ends.
func cleanupNetwork(t *testing.T, p *Provider, name string) {
	t.Cleanup(func() {
		l, err := golibvirt.ConnectToURI(mustURL(testURI()))
		if err != nil {
			return
		}
		defer l.Disconnect()
		if n, err := l.NetworkLookupByName(name); err == nil {
			_ = removeNetwork(l, n, "cleanup")
		}
	})
}

func TestNetworkConformance(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	name := testName("net")
	cleanupNetwork(t, p, name)
	sub, sub2 := freeSubnet(t, p), freeSubnet(t, p)
	cfg := networkConfig(name, sub)
	upd := with(cfg, "hosts", cty.ListVal([]cty.Value{
		cty.ObjectVal(map[string]cty.Value{"mac": cty.StringVal("52:54:00:aa:00:01"), "ip": cty.StringVal(hostIP(sub, 6)), "name": cty.NullVal(cty.String)}),
		cty.ObjectVal(map[string]cty.Value{"mac": cty.StringVal("52:54:00:aa:00:02"), "ip": cty.StringVal(hostIP(sub, 7)), "name": cty.StringVal("db")}),
	}))
	// (DHCP ranges change live too, but each change restarts dnsmasq for
	// seconds: TestNetworkDHCPRangeLive covers them once.)
	upd = with(upd, "dns", cty.NullVal(cty.List(dnsHostType)))
	upd = with(upd, "autostart", cty.False)

	runConformance(t, p, conformanceCase{
		typ:      TypeNetwork,
		config:   cfg,
		update:   upd,
		replace:  networkConfig(name, sub2),
		importID: func(cty.Value) string { return name },
		host: func(t *testing.T, stage string, state cty.Value) {
			t.Helper()
			n, err := l.NetworkLookupByName(name)
			switch stage {
			case "purged", "undone", "retired":
				if err == nil {
					t.Errorf("%s: network %s is still defined", stage, name)
				}
				if _, err := net.InterfaceByName(state.GetAttr("bridge").AsString()); err == nil && stage != "retired" {
					t.Errorf("%s: bridge %s is still there", stage, state.GetAttr("bridge").AsString())
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: network %s: %v", stage, name, err)
			}
			live, x, err := networkDoc(l, n, false)
			if err != nil {
				t.Fatal(err)
			}
			if stage == "replaced" {
				if !strings.Contains(x, hostIP(sub2, 1)) {
					t.Errorf("%s: network runs without %s: %s", stage, sub2, x)
				}
				return
			}
			if got := formatUUID(n.UUID); got != state.GetAttr("id").AsString() {
				t.Errorf("%s: uuid %s, want %s", stage, got, state.GetAttr("id").AsString())
			}
			if active, _ := l.NetworkIsActive(n); active != 1 {
				t.Errorf("%s: network is not running", stage)
			}
			// The running network (dnsmasq's config), not only the
			// definition, has the entries of the stage.
			want := map[string][]string{
				"updated": {"52:54:00:aa:00:02", hostIP(sub, 6)},
			}[stage]
			if want == nil {
				want = []string{"52:54:00:aa:00:01", hostIP(sub, 5), hostIP(sub, 150), "<hostname>web</hostname>"}
			}
			for _, w := range want {
				if !strings.Contains(x, w) {
					t.Errorf("%s: live XML lacks %s:\n%s", stage, w, x)
				}
			}
			if stage == "updated" && (live.DNS != nil && len(live.DNS.Host) > 0) {
				t.Errorf("%s: live DNS hosts %v, want none", stage, live.DNS.Host)
			}
			autostart, _ := l.NetworkGetAutostart(n)
			if (autostart == 1) != state.GetAttr("autostart").True() {
				t.Errorf("%s: autostart %d, state says %v", stage, autostart, state.GetAttr("autostart"))
			}
		},
	})
}

func TestNetworkPreflight(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	sub := freeSubnet(t, p)
	existing, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.x", Type: TypeNetwork, OpID: newOpID(t), Config: networkConfig(name, sub)})
	if err != nil {
		t.Fatal(err)
	}
	create := func(cfg cty.Value) providers.PreflightStep {
		return providers.PreflightStep{Address: "libvirt_network.a", Type: TypeNetwork, Action: providers.ActionCreate, Config: cfg}
	}
	fresh := func() cty.Value { return networkConfig(testName("net"), freeSubnet(t, p)) }

	t.Run("ok", func(t *testing.T) { wantNoProblems(t, mustPreflight(t, p, create(fresh()))) })
	t.Run("unknown", func(t *testing.T) {
		wantNoProblems(t, mustPreflight(t, p, create(withUnknown(fresh(), "name", "addresses", "dhcp", "hosts"))))
		wantNoProblems(t, mustPreflight(t, p, create(cty.UnknownVal(networkSchema.ImpliedType()))))
	})
	t.Run("name exists", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create(with(fresh(), "name", cty.StringVal(name)))), "libvirt_network.a", name, "already exists", existing.ID)
	})
	t.Run("subnet overlaps", func(t *testing.T) {
		wide := netip.PrefixFrom(sub.Addr(), 16).Masked()
		cfg := with(fresh(), "addresses", cty.ListVal([]cty.Value{cty.StringVal(wide.String())}))
		wantProblem(t, mustPreflight(t, p, create(with(cfg, "dhcp", cty.NullVal(cty.List(dhcpRangeType))))), "libvirt_network.a", "overlaps", name)
	})
	t.Run("bridge taken", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, create(with(fresh(), "bridge", existing.State.GetAttr("bridge")))), "libvirt_network.a", "already the bridge of network")
		wantProblem(t, mustPreflight(t, p, create(with(fresh(), "bridge", cty.StringVal("lo")))), "libvirt_network.a", "already an interface of the host")
	})
	t.Run("bad values", func(t *testing.T) {
		cfg := fresh()
		wantProblem(t, mustPreflight(t, p, create(with(cfg, "mode", cty.StringVal("vxlan")))), "libvirt_network.a", `"vxlan" is not supported`)
		wantProblem(t, mustPreflight(t, p, create(with(cfg, "dhcp", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"start": cty.StringVal("10.9.9.1"), "end": cty.StringVal("10.9.9.9")})})))), "libvirt_network.a", "not inside")
		wantProblem(t, mustPreflight(t, p, create(with(cfg, "addresses", cty.ListVal([]cty.Value{cty.StringVal("192.168.1.0/31")})))), "libvirt_network.a", "no room")
	})
	t.Run("schema-invalid XML, bridge left to libvirt", func(t *testing.T) {
		// A create's bridge is unknown until libvirt picks it; the
		// generated XML is validated all the same.
		cfg := with(fresh(), "dns", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"ip": cty.StringVal("10.9.9.5"), "hostnames": cty.ListVal([]cty.Value{cty.StringVal("bad name!")})})}))
		cfg = with(cfg, "bridge", cty.UnknownVal(cty.String))
		wantProblem(t, mustPreflight(t, p, create(cfg)), "libvirt_network.a", "does not validate against libvirt's schema")
	})
	t.Run("deleted in the same plan", func(t *testing.T) {
		del := providers.PreflightStep{Address: "libvirt_network.x", Type: TypeNetwork, Action: providers.ActionDelete, ID: existing.ID, Prior: existing.State}
		wantNoProblems(t, mustPreflight(t, p, del, create(with(networkConfig(name, sub), "bridge", existing.State.GetAttr("bridge")))))
	})
}

// A network the host refuses to start (its subnet is one a host interface
// already routes: libvirt checks the host's routes before it touches
// anything) fails with libvirt's message and leaves nothing defined. The
// test makes that interface itself, a bridge with an address, so it needs
// no particular network on the machine.
func TestNetworkStartRefused(t *testing.T) {
	p := newTestProvider(t)
	uplink := hostRoute(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	cfg := with(with(with(networkConfig(name, uplink), "dhcp", cty.NullVal(cty.List(dhcpRangeType))),
		"hosts", cty.NullVal(cty.List(dhcpHostType))), "dns", cty.NullVal(cty.List(dnsHostType)))
	cfg = with(cfg, "mode", cty.StringVal(netIsolated))
	resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.bad", Type: TypeNetwork, OpID: newOpID(t), Config: cfg})
	t.Logf("error: %v", err)
	pe := wantProviderError(t, err)
	if !strings.Contains(pe.Message, "in use") || errors.Is(err, providers.ErrOutcomeUnknown) || len(resp.Undo) != 0 {
		t.Errorf("got %v (undo %s), want libvirt's refusal naming the interface in use, cleaned up", err, resp.Undo)
	}
	if _, err := hostClient(t, p).NetworkLookupByName(name); !notFound(err) {
		t.Errorf("network %s is still defined after the refused start (%v)", name, err)
	}
}

func TestNetworkCreateConflict(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.a", Type: TypeNetwork, OpID: newOpID(t) + "a", Config: networkConfig(name, freeSubnet(t, p))}); err != nil {
		t.Fatal(err)
	}
	resp, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.b", Type: TypeNetwork, OpID: newOpID(t) + "b", Config: networkConfig(name, freeSubnet(t, p))})
	t.Logf("error: %v", err)
	pe := wantProviderError(t, err)
	if !errors.Is(err, ErrConflict) || pe.Code != int(golibvirt.ErrOperationFailed) || !strings.Contains(pe.Message, name) || len(resp.Undo) != 0 {
		t.Errorf("got %v (code %d), want a conflict (code 9) naming %s and no undo", err, pe.Code, name)
	}
}

func TestNetworkDataSource(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.a", Type: TypeNetwork, OpID: newOpID(t), Config: networkConfig(name, freeSubnet(t, p))})
	if err != nil {
		t.Fatal(err)
	}
	ds := p.Schema().DataSources[TypeNetwork]
	got, err := p.ReadData(testCtx(t), providers.ReadDataRequest{Address: "data.libvirt_network.a", Type: TypeNetwork,
		Config: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name)})})
	if err != nil {
		t.Fatal(err)
	}
	if !got.State.Type().Equals(ds.ImpliedType()) {
		t.Fatalf("data state %#v is not a %s", got.State, ds.ImpliedType().FriendlyName())
	}
	for _, a := range []string{"id", "bridge", "addresses", "hosts", "dhcp", "dns"} {
		if !got.State.GetAttr(a).Equals(created.State.GetAttr(a)).True() {
			t.Errorf("data %s = %#v, want %#v", a, got.State.GetAttr(a), created.State.GetAttr(a))
		}
	}
	if _, err := p.ReadData(testCtx(t), providers.ReadDataRequest{Type: TypeNetwork, Config: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(testName("none"))})}); !notFound(err) {
		t.Errorf("data source of a missing network: %v, want libvirt's not-found", err)
	}
}

// A DHCP range added to a running network is served at once (libvirt
// restarts dnsmasq), without restarting the network; the undo takes it
// away again.
func TestNetworkDHCPRangeLive(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	sub := freeSubnet(t, p)
	cfg := networkConfig(name, sub)
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.a", Type: TypeNetwork, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	ranges := cty.ListVal([]cty.Value{
		cty.ObjectVal(map[string]cty.Value{"start": cty.StringVal(hostIP(sub, 100)), "end": cty.StringVal(hostIP(sub, 150))}),
		cty.ObjectVal(map[string]cty.Value{"start": cty.StringVal(hostIP(sub, 200)), "end": cty.StringVal(hostIP(sub, 220))}),
	})
	ranges, _ = convert.Convert(ranges, cty.List(dhcpRangeType))
	upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_network.a", Type: TypeNetwork, ID: created.ID, Prior: created.State, Config: with(cfg, "dhcp", ranges)})
	if err != nil {
		t.Fatal(err)
	}
	l := hostClient(t, p)
	n, err := l.NetworkLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	_, live, _ := networkDoc(l, n, false)
	if !strings.Contains(live, hostIP(sub, 220)) || !upd.State.GetAttr("dhcp").Equals(ranges).True() {
		t.Errorf("the running network lacks the new range:\n%s", live)
	}
	if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeNetwork, Undo: upd.Undo}); err != nil {
		t.Fatal(err)
	}
	_, live, _ = networkDoc(l, n, false)
	if strings.Contains(live, hostIP(sub, 220)) {
		t.Errorf("the range is still served after the undo:\n%s", live)
	}
}

// hostRoute gives the host a route of its own: a bridge (no ports) with an
// address in a free /24, removed at the end of the test.
func hostRoute(t *testing.T) netip.Prefix {
	t.Helper()
	used := map[netip.Prefix]bool{}
	ifaces, _ := net.Interfaces()
	for _, ifc := range ifaces {
		addrs, _ := ifc.Addrs()
		for _, a := range addrs {
			if ipn, ok := a.(*net.IPNet); ok && ipn.IP.To4() != nil {
				ip, _ := netip.AddrFromSlice(ipn.IP.To4())
				used[netip.PrefixFrom(ip, 24).Masked()] = true
			}
		}
	}
	for third := 200; third < 250; third++ {
		pfx := netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 253, byte(third), 0}), 24)
		if used[pfx] {
			continue
		}
		dev := fmt.Sprintf("fiatup%d", third)
		ipCmd := func(args ...string) {
			t.Helper()
			if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
				t.Fatalf("ip %s: %v: %s", strings.Join(args, " "), err, out)
			}
		}
		exec.Command("ip", "link", "del", dev).Run() // left by an earlier, killed run
		ipCmd("link", "add", "name", dev, "type", "bridge")
		t.Cleanup(func() { exec.Command("ip", "link", "del", dev).Run() })
		ipCmd("addr", "add", netip.PrefixFrom(pfx.Addr().Next(), 24).String(), "dev", dev)
		ipCmd("link", "set", dev, "up")
		return pfx
	}
	t.Fatal("no free 10.253.x.0/24 for a host route")
	return netip.Prefix{}
}
