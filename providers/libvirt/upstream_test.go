package libvirt

import (
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"fiat/providers"
)

// The upstream provider's (dmacvicar/libvirt 0.8) spellings of a volume's
// base: base_volume_id, and base_volume_name + base_volume_pool. Each
// makes the same qcow2 overlay as base_volume, reads back in the spelling
// config used (so a re-plan is clean), and a missing base is a preflight
// problem.
func TestVolumeUpstreamBaseSpellings(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	other, _ := newTestPool(t, p)
	baseName := testName("base")
	base, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.base", Type: TypeVolume, Config: volumeConfig(baseName, other, 16*MiB, "")})
	if err != nil {
		t.Fatal(err)
	}
	noSize := func(name string) cty.Value {
		return with(volumeConfig(name, pool, 0, ""), "size", cty.NullVal(cty.Number))
	}
	cases := map[string]cty.Value{
		"base_volume_id": with(noSize(testName("byid")), "base_volume_id", cty.StringVal(base.ID)),
		"base_volume_name": with(with(noSize(testName("byname")), "base_volume_name", cty.StringVal(baseName)),
			"base_volume_pool", cty.StringVal(other)),
	}
	for attrName, cfg := range cases {
		t.Run(attrName, func(t *testing.T) {
			step := providers.PreflightStep{Address: "libvirt_volume.o", Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}
			wantNoProblems(t, mustPreflight(t, p, step))
			o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.o", Type: TypeVolume, Config: cfg})
			if err != nil {
				t.Fatal(err)
			}
			if mustSize(t, o.State) != 16*MiB {
				t.Errorf("overlay size %d, want the base's", mustSize(t, o.State))
			}
			want := with(cfg, "size", cty.NumberUIntVal(16*MiB))
			want = with(with(with(want, "format", cty.StringVal(formatQcow2)), "id", cty.StringVal(o.ID)), "path", o.State.GetAttr("path"))
			wantState(t, "created", o.State, want)
			r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: o.ID, State: o.State})
			if err != nil {
				t.Fatal(err)
			}
			wantState(t, "read", r.State, want)
		})
	}
	t.Run("missing base", func(t *testing.T) {
		cfg := with(noSize(testName("nobase")), "base_volume_name", cty.StringVal("no-such-volume"))
		wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_volume.m", Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}),
			"libvirt_volume.m", "base_volume_name no-such-volume in pool "+pool, "does not exist")
		// Created by the same plan: fine.
		mk := providers.PreflightStep{Address: "libvirt_volume.b", Type: TypeVolume, Action: providers.ActionCreate, Config: volumeConfig("no-such-volume", pool, MiB, "")}
		wantNoProblems(t, mustPreflight(t, p, mk, providers.PreflightStep{Address: "libvirt_volume.m", Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}))
	})
	t.Run("conflicts", func(t *testing.T) {
		both := with(with(noSize("x"), "base_volume", cty.StringVal("/a")), "base_volume_id", cty.StringVal("/b"))
		if _, err := volumeSpecFrom(both); err == nil {
			t.Error("base_volume and base_volume_id differing: no error")
		}
		resp := p.ValidateConfig(providers.ValidateConfigRequest{Type: TypeVolume, Config: both})
		if len(resp.Problems) == 0 || resp.Problems[0].Attribute != "base_volume_id" {
			t.Errorf("ValidateConfig: %+v", resp.Problems)
		}
		if s, err := volumeSpecFrom(with(volumeConfig("x", "", MiB, ""), "pool", cty.NullVal(cty.String))); err != nil || s.Pool != "default" {
			t.Errorf("pool left out: %q, %v; want upstream's \"default\"", s.Pool, err)
		}
		if d := volumeSchema.Attributes["pool"].Default; d.IsNull() || d.AsString() != "default" {
			t.Errorf("pool's default %#v", d)
		}
		pl := with(noSize("x"), "base_volume_pool", cty.StringVal("p"))
		if resp := p.ValidateConfig(providers.ValidateConfigRequest{Type: TypeVolume, Config: pl}); len(resp.Problems) == 0 {
			t.Error("base_volume_pool without base_volume_name: no problem")
		}
	})
}

// The upstream provider's domain arguments render into the domain's XML and
// read back as config wrote them (a re-plan is clean); an update removes
// them again; network_id (a network's UUID) stands for network_name.
func TestDomainUpstreamArguments(t *testing.T) {
	p := newTestProvider(t)
	f := newDomainFixture(t, p, 1)
	l := hostClient(t, p)
	n, err := l.NetworkLookupByName(f.net)
	if err != nil {
		t.Fatal(err)
	}
	netID := cty.StringVal(formatUUID(n.UUID))
	name := testName("vm")
	cleanupDomain(t, name)
	cfg := domainConfig(name, f.disks, nil, f.cloudinit)
	cfg = with(cfg, "running", cty.False)
	cfg = with(cfg, "description", cty.StringVal("made from a Terraform config"))
	cfg = with(cfg, "qemu_agent", cty.True)
	cfg = with(cfg, "cpu", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"mode": cty.StringVal("host-passthrough")})}))
	cfg = with(cfg, "boot_device", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"dev": cty.ListVal([]cty.Value{cty.StringVal("cdrom"), cty.StringVal("hd")})})}))
	cfg = with(cfg, "graphics", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
		"type": cty.StringVal("vnc"), "listen_type": cty.StringVal("address"), "autoport": cty.True, "listen_address": cty.StringVal("127.0.0.1")})}))
	cfg = with(cfg, "console", cty.ListVal([]cty.Value{
		cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal("pty"), "target_port": cty.StringVal("0"), "target_type": cty.StringVal("serial"), "source_path": cty.NullVal(cty.String)}),
		cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal("pty"), "target_port": cty.StringVal("1"), "target_type": cty.StringVal("virtio"), "source_path": cty.NullVal(cty.String)}),
	}))
	cfg = with(cfg, "network_interface", cty.ListVal([]cty.Value{nicObj(map[string]cty.Value{"network_id": netID, "hostname": cty.StringVal("web")})}))
	step := providers.PreflightStep{Address: "libvirt_domain.vm", Type: TypeDomain, Action: providers.ActionCreate, Config: cfg}
	wantNoProblems(t, mustPreflight(t, p, step))
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"description", "qemu_agent", "cpu", "boot_device", "graphics", "console", "network_interface"} {
		if !conforms(created.State.GetAttr(a), planned(TypeDomain, cty.NilVal, cfg).GetAttr(a)) {
			t.Errorf("%s: state %#v, config %#v", a, created.State.GetAttr(a), cfg.GetAttr(a))
		}
	}
	d, _, err := findDomain(l, created.ID, cty.NilVal)
	if err != nil {
		t.Fatal(err)
	}
	_, x, err := domainDoc(l, d)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"<description>made from a Terraform config</description>", "org.qemu.guest_agent.0", `mode='host-passthrough'`,
		`<boot dev='cdrom'/>`, `<graphics type='vnc'`, `autoport='yes'`, `address='127.0.0.1'`, `<target type='virtio' port='1'/>`,
		`<source network='` + f.net + `'`} {
		if !strings.Contains(x, want) {
			t.Errorf("domain XML lacks %s:\n%s", want, x)
		}
	}
	read, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeDomain, ID: created.ID, State: created.State})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "read", read.State, created.State)

	// Dropped again: the XML is what fiat renders without them.
	plain := domainConfig(name, f.disks, []string{f.net}, f.cloudinit)
	plain = with(plain, "running", cty.False)
	upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: newOpID(t) + "/u", ID: created.ID, Prior: created.State, Config: plain})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"description", "qemu_agent", "cpu", "boot_device", "graphics"} {
		if !upd.State.GetAttr(a).IsNull() {
			t.Errorf("after dropping %s: %#v", a, upd.State.GetAttr(a))
		}
	}
	_, x, _ = domainDoc(l, d)
	for _, gone := range []string{"<description>", "guest_agent", "host-passthrough", `<boot dev='cdrom'/>`, "<graphics"} {
		if strings.Contains(x, gone) {
			t.Errorf("domain XML still has %s:\n%s", gone, x)
		}
	}
}

// Two interfaces that set neither network_name, network_id nor bridge, or
// a target_port that is no port, are refused before anything is made.
func TestDomainUpstreamChecks(t *testing.T) {
	cfg := domainConfig("vm", nil, nil, "")
	cfg = with(cfg, "network_interface", cty.ListVal([]cty.Value{nicObj(map[string]cty.Value{"hostname": cty.StringVal("x")})}))
	if _, err := domainSpecFrom(cfg); err == nil || !strings.Contains(err.Error(), "set one of network_name, network_id and bridge") {
		t.Errorf("interface without a network: %v", err)
	}
	cfg = with(domainConfig("vm", nil, nil, ""), "console", cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
		"type": cty.StringVal("pty"), "target_port": cty.StringVal("zero"), "target_type": cty.NullVal(cty.String), "source_path": cty.NullVal(cty.String)})}))
	if _, err := domainSpecFrom(cfg); err == nil || !strings.Contains(err.Error(), "target_port") {
		t.Errorf("console target_port zero: %v", err)
	}
}

// The upstream provider's network arguments: domain, mtu, routes,
// dhcp { enabled } (upstream's range), dns { enabled, local_only,
// forwarders, hosts } render into the network's XML and read back as
// config wrote them; fiat's own dhcp ranges and dns entries still read back
// as ranges and entries.
func TestNetworkUpstreamArguments(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	sub := freeSubnet(t, p)
	cfg := networkConfig(name, sub)
	obj := func(m map[string]cty.Value) cty.Value { return cty.ObjectVal(m) }
	cfg = with(cfg, "hosts", cty.NullVal(cfg.GetAttr("hosts").Type()))
	cfg = with(cfg, "domain", cty.StringVal("k8s.local"))
	cfg = with(cfg, "mtu", cty.NumberIntVal(9000))
	cfg = with(cfg, "routes", cty.ListVal([]cty.Value{obj(map[string]cty.Value{"cidr": cty.StringVal("10.17.0.0/16"), "gateway": cty.StringVal(hostIP(sub, 2))})}))
	dhcp, _ := convert.Convert(cty.ListVal([]cty.Value{obj(map[string]cty.Value{"enabled": cty.True})}), cty.List(dhcpRangeType))
	cfg = with(cfg, "dhcp", dhcp)
	dns, err := convert.Convert(cty.ListVal([]cty.Value{obj(map[string]cty.Value{
		"enabled": cty.True, "local_only": cty.True,
		"forwarders": cty.ListVal([]cty.Value{obj(map[string]cty.Value{"address": cty.StringVal("9.9.9.9")})}),
		"hosts": cty.ListVal([]cty.Value{
			obj(map[string]cty.Value{"hostname": cty.StringVal("master"), "ip": cty.StringVal(hostIP(sub, 5))}),
			obj(map[string]cty.Value{"hostname": cty.StringVal("api"), "ip": cty.StringVal(hostIP(sub, 5))}),
		}),
		"srvs": cty.ListVal([]cty.Value{obj(map[string]cty.Value{"service": cty.StringVal("etcd-server"), "protocol": cty.StringVal("tcp"),
			"domain": cty.StringVal("k8s.local"), "target": cty.StringVal("master.k8s.local"), "port": cty.StringVal("2380")})}),
	})}), cty.List(dnsHostType))
	if err != nil {
		t.Fatal(err)
	}
	cfg = with(cfg, "dns", dns)
	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_network.n", Type: TypeNetwork, Action: providers.ActionCreate, Config: cfg}))
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []string{"domain", "mtu", "routes", "dhcp", "dns"} {
		if !conforms(created.State.GetAttr(a), cfg.GetAttr(a)) {
			t.Errorf("%s: state %#v, config %#v", a, created.State.GetAttr(a), cfg.GetAttr(a))
		}
	}
	l := hostClient(t, p)
	n, err := l.NetworkLookupByName(name)
	if err != nil {
		t.Fatal(err)
	}
	_, x, _ := networkDoc(l, n, true)
	start, end := defaultDHCPRange(sub)
	for _, want := range []string{"<domain name='k8s.local' localOnly='yes'/>", "<mtu size='9000'/>", "<route address='10.17.0.0' prefix='16' gateway='" + hostIP(sub, 2) + "'/>",
		"<range start='" + start.String() + "' end='" + end.String() + "'", "<forwarder addr='9.9.9.9'/>", "<hostname>master</hostname>", "<hostname>api</hostname>", "<dns enable='yes'>",
		"<srv service='etcd-server' protocol='tcp' domain='k8s.local' target='master.k8s.local' port='2380'"} {
		if !strings.Contains(x, want) {
			t.Errorf("network XML lacks %s:\n%s", want, x)
		}
	}
	read, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeNetwork, ID: created.ID, State: created.State})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "read", read.State, created.State)
	bad, _ := convert.Convert(cty.ListVal([]cty.Value{obj(map[string]cty.Value{"srvs": cty.ListVal([]cty.Value{
		obj(map[string]cty.Value{"service": cty.StringVal("x"), "protocol": cty.StringVal("icmp"), "port": cty.StringVal("70000")})})})}), cty.List(dnsHostType))
	if _, err := networkSpecFrom(with(cfg, "dns", bad)); err == nil || !strings.Contains(err.Error(), `protocol "icmp"`) {
		t.Errorf("an SRV record with protocol icmp: %v", err)
	}
	if s, e := defaultDHCPRange(netip.MustParsePrefix("192.168.121.0/24")); s.String() != "192.168.121.2" || e.String() != "192.168.121.254" {
		t.Errorf("default range of 192.168.121.0/24: %s-%s, want .2-.254 as upstream", s, e)
	}
}

// A network's xml { xslt } transforms the XML fiat generates at create
// (here: metadata fiat has no attribute for); state keeps the stylesheet as
// written, so a read matches it; a stylesheet xsltproc cannot read is a
// preflight problem quoting xsltproc.
func TestNetworkXSLT(t *testing.T) {
	p := newTestProvider(t)
	name := testName("net")
	cleanupNetwork(t, p, name)
	const style = `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="node()|@*"><xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy></xsl:template>
  <xsl:template match="/network"><xsl:copy><xsl:apply-templates select="node()|@*"/>
    <metadata><x:mark xmlns:x="urn:fiat:test">by-xslt</x:mark></metadata></xsl:copy></xsl:template>
</xsl:stylesheet>`
	xmlBlock := func(s string) cty.Value {
		return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"xslt": cty.StringVal(s)})})
	}
	cfg := with(networkConfig(name, freeSubnet(t, p)), "xml", xmlBlock(style))
	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_network.n", Type: TypeNetwork, Action: providers.ActionCreate, Config: cfg}))
	o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.n", Type: TypeNetwork, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("virsh", "-c", testURI(), "net-dumpxml", name).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "by-xslt") {
		t.Errorf("the stylesheet's metadata is not in the network: %v\n%s", err, out)
	}
	if got := o.State.GetAttr("xml"); !got.RawEquals(cfg.GetAttr("xml")) {
		t.Errorf("state's xml = %#v, want config's", got)
	}
	r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeNetwork, ID: o.ID, State: o.State})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "read", r.State, o.State)

	broken := with(networkConfig(testName("net"), freeSubnet(t, p)), "xml", xmlBlock("<xsl:stylesheet"))
	wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_network.b", Type: TypeNetwork, Action: providers.ActionCreate, Config: broken}),
		"libvirt_network.b", "xsltproc", "parser error")
}

// A volume's xml { xslt } runs over the XML fiat generates at create: here
// it sets the file's permissions, which fiat has no attribute for; the
// stylesheet stays in state as written.
func TestVolumeXSLT(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	const style = `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="node()|@*"><xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy></xsl:template>
  <xsl:template match="/volume/target"><xsl:copy><xsl:apply-templates select="node()|@*"/>
    <permissions><mode>0640</mode></permissions></xsl:copy></xsl:template>
</xsl:stylesheet>`
	cfg := with(volumeConfig(testName("vol"), pool, MiB, ""), "xml",
		cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"xslt": cty.StringVal(style)})}))
	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionCreate, Config: cfg}))
	o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	st, err := os.Stat(o.State.GetAttr("path").AsString())
	if err != nil || st.Mode().Perm() != 0o640 {
		t.Errorf("the volume's mode is %v (%v), want the stylesheet's 0640", st.Mode().Perm(), err)
	}
	r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeVolume, ID: o.ID, State: o.State})
	if err != nil {
		t.Fatal(err)
	}
	wantState(t, "read", r.State, o.State)
	if !r.State.GetAttr("xml").RawEquals(cfg.GetAttr("xml")) {
		t.Errorf("state's xml %#v, want config's", r.State.GetAttr("xml"))
	}
	broken := with(volumeConfig(testName("vol"), pool, MiB, ""), "xml",
		cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"xslt": cty.StringVal("<xsl:stylesheet")})}))
	wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_volume.b", Type: TypeVolume, Action: providers.ActionCreate, Config: broken}),
		"libvirt_volume.b", "xsltproc", "parser error")
}

// A pool's xml { xslt } runs over the XML fiat defines it with: an
// identity stylesheet changes nothing and is kept in state as written; one
// that turns the pool's type into nonsense makes libvirt refuse the define
// (libvirt keeps little of a dir pool's XML beyond what fiat writes, and
// reads a directory's permissions from the directory).
func TestPoolXSLT(t *testing.T) {
	p := newTestProvider(t)
	name := testName("pool")
	cleanupPool(t, p, name)
	const identity = `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="node()|@*"><xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy></xsl:template>
</xsl:stylesheet>`
	const bogus = `<xsl:stylesheet version="1.0" xmlns:xsl="http://www.w3.org/1999/XSL/Transform">
  <xsl:template match="node()|@*"><xsl:copy><xsl:apply-templates select="node()|@*"/></xsl:copy></xsl:template>
  <xsl:template match="/pool/@type"><xsl:attribute name="type">bogus-by-xslt</xsl:attribute></xsl:template>
</xsl:stylesheet>`
	xmlBlock := func(s string) cty.Value {
		return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"xslt": cty.StringVal(s)})})
	}
	cfg := with(poolConfig(name, filepath.Join(t.TempDir(), "pool")), "xml", xmlBlock(identity))
	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_pool.p", Type: TypePool, Action: providers.ActionCreate, Config: cfg}))
	o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.p", Type: TypePool, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypePool, ID: o.ID, State: o.State})
	if err != nil {
		t.Fatal(err)
	}
	if !r.State.GetAttr("xml").RawEquals(cfg.GetAttr("xml")) {
		t.Errorf("state's xml %#v, want config's", r.State.GetAttr("xml"))
	}
	other := testName("pool")
	cleanupPool(t, p, other)
	_, err = p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_pool.q", Type: TypePool, OpID: newOpID(t),
		Config: with(poolConfig(other, filepath.Join(t.TempDir(), "pool")), "xml", xmlBlock(bogus))})
	if err == nil || !strings.Contains(err.Error(), "bogus-by-xslt") {
		t.Errorf("a stylesheet that breaks the pool's type: %v, want libvirt's refusal naming it", err)
	}
	broken := with(poolConfig(testName("pool"), t.TempDir()), "xml", xmlBlock("<xsl:stylesheet"))
	wantProblem(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_pool.b", Type: TypePool, Action: providers.ActionCreate, Config: broken}),
		"libvirt_pool.b", "xsltproc", "parser error")
}

// A domain's stylesheet runs once, at create: an update in place starts
// from libvirt's XML, which holds what it added, so an adding stylesheet
// (upstream's add_spicevmc.xsl) does not add twice.
func TestDomainXSLTRunsAtCreate(t *testing.T) {
	p := newTestProvider(t)
	f := newDomainFixture(t, p, 1)
	name := testName("vm")
	cleanupDomain(t, name)
	style, err := os.ReadFile("../../cmd/fiat/testdata/upstream/xslt/add_spicevmc.xsl")
	if err != nil {
		t.Fatal(err)
	}
	cfg := with(domainConfig(name, f.disks, []string{f.net}, ""), "xml",
		cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"xslt": cty.StringVal(string(style))})}))
	gfx, err := convert.Convert(cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal("spice")})}), cty.List(graphicsType))
	if err != nil {
		t.Fatal(err)
	}
	cfg = with(cfg, "graphics", gfx) // a spicevmc channel needs spice graphics
	o, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	channels := func() int {
		out, err := exec.Command("virsh", "-c", testURI(), "dumpxml", "--inactive", name).CombinedOutput()
		if err != nil {
			t.Fatalf("dumpxml: %v %s", err, out)
		}
		return strings.Count(string(out), "type='spicevmc'")
	}
	if n := channels(); n != 1 {
		t.Fatalf("after create: %d spicevmc channels, want the stylesheet's one", n)
	}
	next := with(cfg, "memory", cty.NumberIntVal(96))
	u, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, ID: o.ID, Prior: o.State, Config: next})
	if err != nil {
		t.Fatal(err)
	}
	if n := channels(); n != 1 {
		t.Errorf("after an update: %d spicevmc channels, want still one", n)
	}
	r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeDomain, ID: o.ID, State: u.State})
	if err != nil || r.State.GetAttr("memory").AsBigFloat().String() != "96" {
		t.Errorf("read after update: %v %#v", err, r.State.GetAttr("memory"))
	}
}
