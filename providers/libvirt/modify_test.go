package libvirt

import (
	"testing"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

func planned(typ string, prior, v cty.Value) cty.Value {
	return New().ModifyPlan(providers.ModifyPlanRequest{Type: typ, Prior: prior, Planned: v}).Planned
}

func nicsOf(macs ...cty.Value) cty.Value {
	var out []cty.Value
	for _, m := range macs {
		out = append(out, nicObj(map[string]cty.Value{"network_name": cty.StringVal("lan"), "mac": m, "wait_for_lease": cty.NullVal(cty.Bool)}))
	}
	return cty.ListVal(out)
}

// ModifyPlan needs no connection: MACs as libvirt writes them, qcow2 sizes
// rounded up to KiB; unknown values, raw sizes, sizes of a source file and
// libvirt's own figures (the prior state's) stay as they are.
func TestModifyPlan(t *testing.T) {
	dom := with(domainConfig("vm", nil, nil, ""), "network_interface", nicsOf(
		cty.StringVal("52:54:00:AB:CD:EF"), cty.StringVal("52-54-00-AB-CD-01"), cty.NullVal(cty.String), cty.UnknownVal(cty.String), cty.StringVal("not a mac")))
	got := planned(TypeDomain, cty.NilVal, dom).GetAttr("network_interface").AsValueSlice()
	want := []cty.Value{cty.StringVal("52:54:00:ab:cd:ef"), cty.StringVal("52:54:00:ab:cd:01"), cty.NullVal(cty.String), cty.UnknownVal(cty.String), cty.StringVal("not a mac")}
	for i, w := range want {
		if g := got[i].GetAttr("mac"); !g.RawEquals(w) {
			t.Errorf("mac %d: %#v, want %#v", i, g, w)
		}
	}
	unknown := with(dom, "network_interface", cty.UnknownVal(dom.GetAttr("network_interface").Type()))
	if g := planned(TypeDomain, cty.NilVal, unknown); !g.RawEquals(unknown) {
		t.Errorf("unknown interfaces changed: %#v", g)
	}

	size := func(v cty.Value) cty.Value { return v.GetAttr("size") }
	for _, c := range []struct {
		format string
		size   uint64
		want   uint64
	}{
		{"", 1536, 2048}, {formatQcow2, 1000, 1024}, {formatQcow2, 1024, 1024}, {formatQcow2, 1049088, 1049600},
		{formatRaw, 1536, 1536}, {formatRaw, 1000, 1000},
	} {
		vol := volumeConfig("v", "p", c.size, c.format)
		if c.format == "" {
			vol = with(vol, "format", cty.NullVal(cty.String))
		}
		g := planned(TypeVolume, cty.NilVal, vol)
		if !size(g).RawEquals(cty.NumberUIntVal(c.want)) {
			t.Errorf("%q %d: planned size %#v, want %d", c.format, c.size, size(g), c.want)
		}
		if again := planned(TypeVolume, cty.NilVal, g); !again.RawEquals(g) {
			t.Errorf("%q %d: not idempotent: %#v", c.format, c.size, again)
		}
	}
	odd := volumeConfig("v", "p", 1049088, formatQcow2)
	if g := planned(TypeVolume, odd, odd); !size(g).RawEquals(cty.NumberUIntVal(1049088)) {
		t.Errorf("the prior state's size (libvirt's own) was rounded: %#v", size(g))
	}
	fromFile := with(volumeConfig("v", "p", 1536, formatQcow2), "source", cty.StringVal("/tmp/x.qcow2"))
	if g := planned(TypeVolume, cty.NilVal, fromFile); !size(g).RawEquals(cty.NumberIntVal(1536)) {
		t.Errorf("a source's size was rounded: %#v", size(g))
	}
	for _, v := range []cty.Value{
		with(volumeConfig("v", "p", 1536, formatQcow2), "size", cty.UnknownVal(cty.Number)),
		with(volumeConfig("v", "p", 1536, formatQcow2), "format", cty.UnknownVal(cty.String)),
		cty.UnknownVal(volumeSchema.ImpliedType()),
	} {
		if g := planned(TypeVolume, cty.NilVal, v); !g.RawEquals(v) {
			t.Errorf("unknown input changed: %#v -> %#v", v, g)
		}
	}
	pool := poolConfig("p", "/var/lib/libvirt/images/p")
	if g := planned(TypePool, cty.NilVal, pool); !g.RawEquals(pool) {
		t.Errorf("pool changed: %#v", g)
	}
}

// What ModifyPlan predicts is what libvirt reports after the create and
// after a grow, so a re-plan is clean: qcow2 images are created in whole
// KiB (1536 reads back 2048), a resize is made to the same figure (and
// settled as done); raw files are exact.
func TestVolumeSizeAsLibvirtReportsIt(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	for _, c := range []struct {
		format     string
		size, grow uint64
	}{
		{formatQcow2, 1536, MiB + 1536}, // grown past the image's own allocation (~200 KiB): libvirt refuses less
		{formatQcow2, MiB + 512, 2*MiB + 512},
		{formatRaw, 1536, 3000},
	} {
		cfg := volumeConfig(testName("v"), pool, c.size, c.format)
		want := planned(TypeVolume, cty.NilVal, cfg).GetAttr("size")
		vol, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_volume.v", Type: TypeVolume, Config: cfg})
		if err != nil {
			t.Fatalf("%s %d: create: %v", c.format, c.size, err)
		}
		if got := vol.State.GetAttr("size"); !got.RawEquals(want) {
			t.Errorf("%s %d: created with size %#v, the plan said %#v", c.format, c.size, got, want)
		}
		grown := with(cfg, "size", cty.NumberUIntVal(c.grow))
		want = planned(TypeVolume, vol.State, grown).GetAttr("size")
		step := providers.PreflightStep{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionUpdate, ID: vol.ID, Prior: vol.State,
			Config: with(grown, "size", want)}
		wantNoProblems(t, mustPreflight(t, p, step))
		upd, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_volume.v", Type: TypeVolume, ID: vol.ID, Prior: vol.State, Config: grown})
		if err != nil {
			t.Fatalf("%s %d: grow to %d: %v", c.format, c.size, c.grow, err)
		}
		if got := upd.State.GetAttr("size"); !got.RawEquals(want) {
			t.Errorf("%s %d: grown to %#v, the plan said %#v", c.format, c.size, got, want)
		}
		s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_volume.v", Type: TypeVolume, Action: providers.ActionUpdate,
			ID: vol.ID, Prior: vol.State, Config: grown})
		if err != nil || !s.TookEffect {
			t.Errorf("%s %d: settle of the grow: took effect = %v, %v", c.format, c.size, s.TookEffect, err)
		}
	}
}

// libvirt lower-cases a domain's MAC (and refuses dashes): config written
// either way creates the domain, and what ModifyPlan predicts is what it
// reports.
func TestDomainMACAsLibvirtWritesIt(t *testing.T) {
	p := newTestProvider(t)
	network := testName("net")
	cleanupNetwork(t, p, network)
	if _, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_network.lan", Type: TypeNetwork, OpID: newOpID(t),
		Config: networkConfig(network, freeSubnet(t, p))}); err != nil {
		t.Fatal(err)
	}
	name := testName("vm")
	cleanupDomain(t, name)
	cfg := with(domainConfig(name, nil, nil, ""), "running", cty.False)
	cfg = with(cfg, "network_interface", cty.ListVal([]cty.Value{
		nicObj(map[string]cty.Value{"network_name": cty.StringVal(network), "mac": cty.StringVal("52:54:00:AB:CD:EF"), "wait_for_lease": cty.NullVal(cty.Bool)}),
		nicObj(map[string]cty.Value{"network_name": cty.StringVal(network), "mac": cty.StringVal("52-54-00-AB-CD-01"), "wait_for_lease": cty.NullVal(cty.Bool)}),
	}))
	want := planned(TypeDomain, cty.NilVal, cfg).GetAttr("network_interface")
	wantNoProblems(t, mustPreflight(t, p, providers.PreflightStep{Address: "libvirt_domain.vm", Type: TypeDomain, Action: providers.ActionCreate, Config: cfg}))
	opID := newOpID(t)
	created, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: opID, Config: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if got := created.State.GetAttr("network_interface"); !conforms(got, want) {
		t.Errorf("interfaces\n\tgot  %#v\n\tplan %#v", got, want)
	}
	// An update with the MACs as written keeps the interfaces; settle
	// sees it done.
	upd := with(cfg, "memory", cty.NumberIntVal(96))
	if _, err := p.Update(testCtx(t), providers.UpdateRequest{Address: "libvirt_domain.vm", Type: TypeDomain, OpID: opID + "/u", ID: created.ID, Prior: created.State, Config: upd}); err != nil {
		t.Fatal(err)
	}
	s, err := p.Settle(testCtx(t), providers.SettleRequest{Address: "libvirt_domain.vm", Type: TypeDomain, Action: providers.ActionUpdate, OpID: opID + "/u", ID: created.ID, Prior: created.State, Config: upd})
	if err != nil || !s.TookEffect {
		t.Fatalf("settle update: took effect = %v, %v", s.TookEffect, err)
	}
	if got := s.State.GetAttr("network_interface"); !conforms(got, want) {
		t.Errorf("after the update\n\tgot  %#v\n\tplan %#v", got, want)
	}
}

func TestSameDHCPKeepsEquivalentRanges(t *testing.T) {
	addrs := cty.ListVal([]cty.Value{cty.StringVal("10.1.2.0/24")})
	rng := func(start, end string) cty.Value {
		return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"start": cty.StringVal(start), "end": cty.StringVal(end), "enabled": cty.NullVal(cty.Bool)})})
	}
	enabled := func(e cty.Value) cty.Value {
		return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"start": cty.NullVal(cty.String), "end": cty.NullVal(cty.String), "enabled": e})})
	}
	same := rng("10.1.2.2", "10.1.2.254")
	if got := sameDHCP(enabled(cty.True), addrs, same); !got.RawEquals(same) {
		t.Errorf("upstream's default range is dhcp { enabled = true }: got %#v", got)
	}
	for _, prior := range []cty.Value{rng("10.1.2.10", "10.1.2.99"), cty.NullVal(same.Type())} {
		if got := sameDHCP(enabled(cty.True), addrs, prior); !got.RawEquals(enabled(cty.True)) {
			t.Errorf("prior %#v: got %#v, want the planned value", prior, got)
		}
	}
	if got := sameDHCP(enabled(cty.NullVal(cty.Bool)), addrs, same); !got.RawEquals(enabled(cty.NullVal(cty.Bool))) {
		t.Errorf("a null enabled must not panic or match: %#v", got)
	}
}
