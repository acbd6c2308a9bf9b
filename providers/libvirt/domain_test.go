package libvirt

import (
	"errors"
	"strings"
	"testing"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"fiat/providers"
)

// Test domains are tiny and boot no OS: 64 MiB, blank qcow2 disks; kvm when
// the host offers it, else qemu (the provider reads the capabilities).

func domainConfig(name string, disks []string, nets []string, cloudinit string) cty.Value {
	var ds, ns []cty.Value
	for _, d := range disks {
		ds = append(ds, diskVal(cty.StringVal(d), cty.NullVal(cty.String)))
	}
	for _, n := range nets {
		ns = append(ns, nicObj(map[string]cty.Value{"network_name": cty.StringVal(n), "mac": cty.NullVal(cty.String), "wait_for_lease": cty.NullVal(cty.Bool)}))
	}
	ci := cty.NullVal(cty.String)
	if cloudinit != "" {
		ci = cty.StringVal(cloudinit)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":              cty.StringVal(name),
		"vcpu":              cty.NumberIntVal(1),
		"memory":            cty.NumberIntVal(64),
		"running":           cty.NullVal(cty.Bool),
		"autostart":         cty.NullVal(cty.Bool),
		"disk":              listOf(diskType.WithoutOptionalAttributesDeep(), ds, true),
		"network_interface": listOf(nicType.WithoutOptionalAttributesDeep(), ns, true),
		"cloudinit":         ci,
		"firmware":          cty.NullVal(cty.String),
		"nvram":             cty.NullVal(cty.List(nvramType.WithoutOptionalAttributesDeep())),
		"id":                cty.NullVal(cty.String),
		"addresses":         cty.NullVal(cty.List(cty.String)),
		"description":       cty.NullVal(cty.String),
		"qemu_agent":        cty.NullVal(cty.Bool),
		"cpu":               cty.NullVal(cty.List(cpuType.WithoutOptionalAttributesDeep())),
		"boot_device":       cty.NullVal(cty.List(bootType)),
		"graphics":          cty.NullVal(cty.List(graphicsType.WithoutOptionalAttributesDeep())),
		"console":           cty.NullVal(cty.List(consoleType.WithoutOptionalAttributesDeep())),
		"xml":               cty.NullVal(cty.List(xmlType.WithoutOptionalAttributesDeep())),
		"coreos_ignition":   cty.NullVal(cty.String),
		"type":              cty.NullVal(cty.String),
		"fw_cfg_name":       cty.NullVal(cty.String),
	})
}

// nicObj is a network_interface object with the attributes m leaves out null.
func nicObj(m map[string]cty.Value) cty.Value {
	v, err := convert.Convert(cty.ObjectVal(m), nicType)
	if err != nil {
		panic(err)
	}
	return v
}

// cleanupDomain removes, when the test ends, every domain whose name starts
// with name (its retired copies too).
func cleanupDomain(t *testing.T, name string) {
	t.Cleanup(func() {
		l, err := golibvirt.ConnectToURI(mustURL(testURI()))
		if err != nil {
			return
		}
		defer l.Disconnect()
		doms, _, _ := l.ConnectListAllDomains(1, 0)
		for _, d := range doms {
			if strings.HasPrefix(d.Name, name) {
				_ = removeDomain(l, d, "cleanup")
			}
		}
	})
}

// domainFixture is what a test domain uses: a pool, blank disks, a NAT
// network and a cloud-init disk, all made through the provider.
type domainFixture struct {
	pool, net string
	disks     []string // volume ids
	cloudinit string
}

func newDomainFixture(t *testing.T, p *Provider, disks int) domainFixture {
	t.Helper()
	var f domainFixture
	f.pool, _ = newTestPool(t, p)
	for range disks {
		v, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.disk", Type: TypeVolume, Config: volumeConfig(testName("disk")+".qcow2", f.pool, 64*MiB, "")})
		if err != nil {
			t.Fatal(err)
		}
		f.disks = append(f.disks, v.ID)
	}
	f.net = testName("net")
	cleanupNetwork(t, p, f.net)
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.lan", Type: TypeNetwork, OpID: newOpID(t),
		Config: networkConfig(f.net, freeSubnet(t, p))}); err != nil {
		t.Fatal(err)
	}
	ci, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_cloudinit_disk.seed", Type: TypeCloudInit,
		Config: cloudInitConfig(testName("seed")+".iso", f.pool, "#cloud-config\nhostname: test\n")})
	if err != nil {
		t.Fatal(err)
	}
	f.cloudinit = ci.ID
	return f
}

func TestDomainConformance(t *testing.T) {
	p := newTestProvider(t)
	l := hostClient(t, p)
	f := newDomainFixture(t, p, 2)
	name := testName("vm")
	cleanupDomain(t, name)
	cfg := domainConfig(name, f.disks[:1], []string{f.net}, f.cloudinit)
	upd := with(with(with(cfg, "memory", cty.NumberIntVal(96)), "autostart", cty.True), "running", cty.False)
	upd = with(upd, "disk", domainConfig(name, f.disks, nil, "").GetAttr("disk"))

	var created string // UUID of the object the stage is about
	runConformance(t, p, conformanceCase{
		typ:        TypeDomain,
		config:     cfg,
		update:     upd,
		replace:    cfg, // only firmware forces a replacement, and "efi" needs OVMF: the same config, a new UUID
		volatile:   []string{"addresses"},
		importID:   func(cty.Value) string { return name },
		importSkip: []string{"network_interface"}, // import reads the MAC that config left to the provider
		host: func(t *testing.T, stage string, state cty.Value) {
			t.Helper()
			id := state.GetAttr("id").AsString()
			d, err := l.DomainLookupByName(name)
			switch stage {
			case "purged", "undone":
				if err == nil {
					t.Errorf("%s: domain %s is still defined", stage, name)
				}
				if u, _ := parseUUID(id); true {
					if _, err := l.DomainLookupByUUID(u); err == nil {
						t.Errorf("%s: domain %s is still defined (under another name)", stage, id)
					}
				}
				return
			case "retired":
				if err == nil {
					t.Errorf("%s: name %s is still taken", stage, name)
				}
				u, _ := parseUUID(id)
				rd, err := l.DomainLookupByUUID(u)
				if err != nil || rd.Name != retiredDomainName(name, id) {
					t.Errorf("%s: want the domain kept as %s: %v %v", stage, retiredDomainName(name, id), rd.Name, err)
				} else if active, _ := l.DomainIsActive(rd); active != 0 {
					t.Errorf("%s: the retired domain still runs", stage)
				}
				return
			case "replaced":
				if err != nil || formatUUID(d.UUID) == created {
					t.Errorf("%s: want a new domain named %s: %v", stage, name, err)
				}
				return
			}
			if err != nil {
				t.Fatalf("%s: domain %s: %v", stage, name, err)
			}
			created = formatUUID(d.UUID)
			if created != id {
				t.Errorf("%s: uuid %s, want %s", stage, created, id)
			}
			running, autostart, _ := domainRunState(l, d, "check")
			if running != state.GetAttr("running").True() || autostart != state.GetAttr("autostart").True() {
				t.Errorf("%s: running=%v autostart=%v, state says %v %v", stage, running, autostart, state.GetAttr("running"), state.GetAttr("autostart"))
			}
			doc, x, _ := domainDoc(l, d)
			if got := kibOf(doc.Memory.Value, doc.Memory.Unit) / 1024; got != mustUint(t, state, "memory") {
				t.Errorf("%s: memory %d MiB, state says %d", stage, got, mustUint(t, state, "memory"))
			}
			if n := strings.Count(x, "device='disk'"); n != len(state.GetAttr("disk").AsValueSlice()) {
				t.Errorf("%s: %d disks, state says %d", stage, n, len(state.GetAttr("disk").AsValueSlice()))
			}
			if !strings.Contains(x, "device='cdrom'") || !strings.Contains(x, "network='"+f.net+"'") {
				t.Errorf("%s: the cloud-init CD-ROM or the interface is missing:\n%s", stage, x)
			}
			host, _ := p.conn.facts(testCtx(t))
			if doc.Type != host.domainType {
				t.Errorf("%s: domain type %s, want %s", stage, doc.Type, host.domainType)
			}
		},
	})
}

func mustUint(t *testing.T, v cty.Value, name string) uint64 {
	n, _, _, err := sizeAttr(v, name)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// An update that libvirt refuses leaves the domain as it was: the define is
// a replace in one step, never an undefine first.
func TestDomainUpdateRefusedKeepsDomain(t *testing.T) {
	p := newTestProvider(t)
	f := newDomainFixture(t, p, 1)
	name := testName("vm")
	cleanupDomain(t, name)
	cfg := domainConfig(name, f.disks, []string{f.net}, "")
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: newOpID(t), Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	bad := with(cfg, "disk", domainConfig(name, []string{"/nonexistent/" + name + ".qcow2"}, nil, "").GetAttr("disk"))
	resp, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, ID: created.ID, Prior: created.State, Config: bad})
	t.Logf("error: %v", err)
	if err == nil || len(resp.Undo) != 0 {
		t.Fatalf("update with a missing disk: %v (undo %s), want a refusal before any change", err, resp.Undo)
	}
	bad = with(cfg, "vcpu", cty.NumberIntVal(100000)) // the define's validation refuses it
	resp, err = p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, ID: created.ID, Prior: created.State, Config: bad})
	t.Logf("error: %v", err)
	if err == nil {
		t.Fatal("update to 100000 vcpus succeeded")
	}
	got, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeDomain, ID: created.ID, State: created.State})
	if err != nil || !got.Exists {
		t.Fatalf("the domain is gone after a refused update: %v", err)
	}
	same := func(v cty.Value) cty.Value { return with(v, "addresses", cty.NullVal(cty.List(cty.String))) }
	wantState(t, "after refused updates", same(got.State), same(created.State))
	if len(resp.Undo) > 0 {
		if _, err := p.Undo(testCtx(t), providers.UndoRequest{Type: TypeDomain, Undo: resp.Undo}); err != nil {
			t.Fatal(err)
		}
	}
}

// The failure paths: a conflicting name, missing references, firmware the
// host lacks, more memory than the host has. Preflight names each; a create
// that goes ahead anyway fails with libvirt's message and leaves nothing.
func TestDomainFailures(t *testing.T) {
	p := newTestProvider(t)
	f := newDomainFixture(t, p, 1)
	name := testName("vm")
	cleanupDomain(t, name)
	cfg := domainConfig(name, f.disks, []string{f.net}, f.cloudinit)
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.a", Type: TypeDomain, OpID: newOpID(t), Config: with(cfg, "running", cty.False)}); err != nil {
		t.Fatal(err)
	}
	step := func(cfg cty.Value) providers.PreflightStep {
		return providers.PreflightStep{Address: "libvirt_domain.b", Type: TypeDomain, Action: providers.ActionCreate, Config: cfg}
	}
	create := func(cfg cty.Value) (providers.CreateResponse, error) {
		return p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.b", Type: TypeDomain, OpID: newOpID(t) + "/b", Config: cfg})
	}

	t.Run("conflicting name", func(t *testing.T) {
		wantProblem(t, mustPreflight(t, p, step(cfg)), "libvirt_domain.b", name, "already exists")
		resp, err := create(cfg)
		t.Logf("error: %v", err)
		pe := wantProviderError(t, err)
		if !errors.Is(err, ErrConflict) || pe.Code != int(golibvirt.ErrOperationFailed) || !strings.Contains(pe.Message, name) || len(resp.Undo) != 0 {
			t.Errorf("got %v, want a conflict (code 9) naming %s", err, name)
		}
	})
	other := with(cfg, "name", cty.StringVal(name+"-b"))
	t.Run("missing volume", func(t *testing.T) {
		missing := "/var/lib/libvirt/images/" + testName("none") + ".qcow2"
		c := with(other, "disk", domainConfig("", []string{missing}, nil, "").GetAttr("disk"))
		wantProblem(t, mustPreflight(t, p, step(c)), "libvirt_domain.b", missing, "does not exist")
		_, err := create(c)
		t.Logf("error: %v", err)
		if pe := wantProviderError(t, err); pe.Code != int(golibvirt.ErrNoStorageVol) {
			t.Errorf("got %v, want libvirt's no-such-volume", err)
		}
	})
	t.Run("missing network", func(t *testing.T) {
		missing := testName("none")
		c := with(other, "network_interface", domainConfig("", nil, []string{missing}, "").GetAttr("network_interface"))
		wantProblem(t, mustPreflight(t, p, step(c)), "libvirt_domain.b", missing, "does not exist")
		_, err := create(c)
		t.Logf("error: %v", err)
		wantProviderError(t, err)
		if _, err := hostClient(t, p).DomainLookupByName(name + "-b"); !notFound(err) {
			t.Errorf("a failed create left domain %s-b (%v)", name, err)
		}
	})
	t.Run("volume deleted in the same plan", func(t *testing.T) {
		del := providers.PreflightStep{Address: "libvirt_volume.d", Type: TypeVolume, Action: providers.ActionDelete, ID: f.disks[0],
			Prior: cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("d"), "pool": cty.StringVal(f.pool), "path": cty.StringVal(f.disks[0])})}
		wantProblem(t, mustPreflight(t, p, step(other), del), "libvirt_domain.b", "deleted by libvirt_volume.d")
	})
	t.Run("efi firmware", func(t *testing.T) {
		// Preflight must agree with what the host offers: a problem
		// naming OVMF exactly when it has no UEFI firmware.
		host, err := p.conn.facts(testCtx(t))
		if err != nil {
			t.Fatal(err)
		}
		pf := &preflight{p: p, l: hostClient(t, p)}
		hasEFI, err := pf.firmwareSupported(host, firmwareEFI)
		if err != nil {
			t.Fatal(err)
		}
		problems := mustPreflight(t, p, step(with(other, "firmware", cty.StringVal("efi"))))
		if hasEFI {
			wantNoProblems(t, problems)
		} else {
			wantProblem(t, problems, "libvirt_domain.b", "efi", "OVMF")
		}
	})
	t.Run("no DHCP lease", func(t *testing.T) {
		// The guest boots no OS, so it never asks for a lease.
		defer func(d time.Duration) { leaseTimeout = d }(leaseTimeout)
		leaseTimeout = 2 * time.Second
		nics := cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
			"network_name": cty.StringVal(f.net), "mac": cty.NullVal(cty.String), "wait_for_lease": cty.True})})
		resp, err := create(with(other, "network_interface", nics))
		t.Logf("error: %v", err)
		if err == nil || !strings.Contains(err.Error(), "no DHCP lease") || len(resp.Undo) != 0 {
			t.Errorf("got %v (undo %s), want a failure naming the missing lease, cleaned up", err, resp.Undo)
		}
		if _, err := hostClient(t, p).DomainLookupByName(name + "-b"); !notFound(err) {
			t.Errorf("a failed create left domain %s-b defined (%v)", name, err)
		}
	})
	t.Run("too much memory", func(t *testing.T) {
		c := with(other, "memory", cty.NumberIntVal(64<<20)) // 64 TiB
		wantProblem(t, mustPreflight(t, p, step(c)), "libvirt_domain.b", "more than the host has")
		_, err := create(c)
		t.Logf("error: %v", err)
		wantProviderError(t, err)
		if _, err := hostClient(t, p).DomainLookupByName(name + "-b"); !notFound(err) {
			t.Errorf("a failed start left domain %s-b defined (%v)", name, err)
		}
	})
}

// Preflight checks generated XML against libvirt's schema where it can.
func TestValidateXML(t *testing.T) {
	p := newTestProvider(t)
	if !p.conn.local() || !xmlValidator() {
		skipOrFail(t, "needs a local host and virt-xml-validate with xmllint (scripts/libvirtd.sh installs them)")
	}
	host, err := p.conn.facts(testCtx(t))
	if err != nil {
		t.Fatal(err)
	}
	spec, err := domainSpecFrom(domainConfig("v", []string{"/x.qcow2"}, []string{"n"}, "/ci.iso"))
	if err != nil {
		t.Fatal(err)
	}
	doc := newDomainDoc(spec, formatUUID(newUUID("", "v")), host)
	setDomainSpec(&doc, spec, []resolvedDisk{{Path: "/x.qcow2", Format: formatQcow2}}, &resolvedDisk{Path: "/ci.iso", Format: formatRaw})
	x, _ := marshalDomain(doc)
	if err := p.validateXML("domain", x); err != nil {
		t.Errorf("generated domain XML: %v", err)
	}
	if err := p.validateXML("domain", strings.Replace(x, "<vcpu", "<vcpux", 1)); err == nil || !strings.Contains(err.Error(), "does not validate") {
		t.Errorf("broken domain XML: %v, want a validation error", err)
	}
}
