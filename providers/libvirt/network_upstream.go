package libvirt

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"
)

// The parts of libvirt_network written in the upstream provider's
// (dmacvicar/libvirt 0.8) spellings: domain, mtu, routes, dhcp { enabled }
// and dns { enabled, local_only, forwarders, hosts }. Each is null unless
// config sets it, and null renders what fiat always rendered.

// isUpstreamDNS says whether a dns entry is upstream's block rather than
// fiat's { ip, hostnames }.
func isUpstreamDNS(d cty.Value) bool {
	return isNullAttr(d, "ip") && isNullAttr(d, "hostnames")
}

func (s *networkSpec) readUpstreamDNS(d cty.Value) error {
	if e := attr(d, "enabled"); e.IsKnown() && !e.IsNull() {
		b := e.True()
		s.DNSEnabled = &b
	}
	if lo := attr(d, "local_only"); lo.IsKnown() && !lo.IsNull() {
		s.LocalOnly = lo.True()
	}
	fws, _, err := listAttr(d, "forwarders")
	if err != nil {
		return err
	}
	for _, f := range fws {
		s.Forwarders = append(s.Forwarders, dnsForwarder{Address: field(f, "address"), Domain: field(f, "domain")})
	}
	srvs, _, err := listAttr(d, "srvs")
	if err != nil {
		return err
	}
	for _, r := range srvs {
		s.SRVs = append(s.SRVs, dnsSRV{Service: field(r, "service"), Protocol: field(r, "protocol"), Domain: field(r, "domain"),
			Target: field(r, "target"), Port: field(r, "port"), Weight: field(r, "weight"), Priority: field(r, "priority")})
	}
	hosts, _, err := listAttr(d, "hosts")
	if err != nil {
		return err
	}
	for _, h := range hosts {
		ip, name := field(h, "ip"), field(h, "hostname")
		merged := false
		for i := range s.DNS {
			if s.DNS[i].IP == ip {
				s.DNS[i].Hostnames = append(s.DNS[i].Hostnames, name)
				merged = true
			}
		}
		if !merged {
			s.DNS = append(s.DNS, dnsHost{IP: ip, Hostnames: []string{name}})
		}
	}
	return nil
}

func (s *networkSpec) readUpstream(v cty.Value) error {
	s.Domain = field(v, "domain")
	xslt, err := xsltOf(v)
	if err != nil {
		return err
	}
	s.XSLT = xslt
	mtu, known, set, err := sizeAttr(v, "mtu")
	if err != nil || !known {
		return orUnknown(err, "mtu")
	}
	if set {
		s.MTU = mtu
	}
	routes, known, err := listAttr(v, "routes")
	if err != nil || !known {
		return orUnknown(err, "routes")
	}
	for _, r := range routes {
		s.Routes = append(s.Routes, staticRoute{CIDR: field(r, "cidr"), Gateway: field(r, "gateway")})
	}
	blocks, known, err := listAttr(v, "dnsmasq_options")
	if err != nil || !known {
		return orUnknown(err, "dnsmasq_options")
	}
	for _, b := range blocks {
		opts, known, err := listAttr(b, "options")
		if err != nil || !known {
			return orUnknown(err, "dnsmasq_options")
		}
		for _, o := range opts {
			opt := field(o, "option_name")
			if val := field(o, "option_value"); val != "" {
				opt += "=" + val
			}
			s.Dnsmasq = append(s.Dnsmasq, opt)
		}
	}
	return nil
}

func (s networkSpec) checkUpstream(add func(string, ...any)) {
	if s.LocalOnly && s.Domain == "" {
		add("dns local_only answers the network's domain itself: set domain too")
	}
	if s.MTU != 0 && (s.MTU < 68 || s.MTU > 65535) {
		add("mtu %d is not between 68 and 65535", s.MTU)
	}
	for _, r := range s.Routes {
		if _, err := netip.ParsePrefix(r.CIDR); err != nil {
			add("routes: cidr %q is not a CIDR like 10.1.0.0/16", r.CIDR)
		}
		if _, err := netip.ParseAddr(r.Gateway); err != nil {
			add("routes: gateway %q is not an IP address", r.Gateway)
		}
	}
	for _, f := range s.Forwarders {
		if f.Address == "" && f.Domain == "" {
			add("dns forwarders: set address, domain or both")
		}
		if _, err := netip.ParseAddr(f.Address); f.Address != "" && err != nil {
			add("dns forwarders: address %q is not an IP address", f.Address)
		}
	}
	for _, r := range s.SRVs {
		if r.Service == "" || r.Protocol == "" {
			add("dns srvs: set service and protocol")
		}
		if r.Protocol != "" && r.Protocol != "tcp" && r.Protocol != "udp" {
			add("dns srvs: protocol %q, want tcp or udp", r.Protocol)
		}
		for _, f := range []struct{ name, v string }{{"port", r.Port}, {"weight", r.Weight}, {"priority", r.Priority}} {
			if n, err := strconv.ParseUint(f.v, 10, 16); f.v != "" && (err != nil || f.name == "port" && n == 0) {
				add("dns srvs: %s %q is not a number from %d to 65535", f.name, f.v, boolInt(f.name == "port"))
			}
		}
	}
	for _, o := range s.Dnsmasq {
		if name, _, _ := strings.Cut(o, "="); name == "" || strings.ContainsAny(o, "\n\x00") {
			add("dnsmasq_options: option %q needs an option_name and no line breaks", o)
		}
	}
	if s.DHCPEnabled != nil && !*s.DHCPEnabled && len(s.DHCP) > 0 {
		add("dhcp { enabled = false } and DHCP ranges contradict each other")
	}
}

// setUpstreamNetwork sets domain, mtu and routes on a new network's XML.
func setUpstreamNetwork(doc *libvirtxml.Network, s networkSpec) {
	if s.Domain != "" {
		doc.Domain = &libvirtxml.NetworkDomain{Name: s.Domain}
		if s.LocalOnly {
			doc.Domain.LocalOnly = "yes"
		}
	}
	if s.MTU != 0 {
		doc.MTU = &libvirtxml.NetworkMTU{Size: uint(s.MTU)}
	}
	for _, r := range s.Routes {
		p, err1 := netip.ParsePrefix(r.CIDR)
		gw, err2 := netip.ParseAddr(r.Gateway)
		if err1 != nil || err2 != nil {
			continue // check reported it
		}
		rt := libvirtxml.NetworkRoute{Address: p.Masked().Addr().String(), Prefix: uint(p.Bits()), Gateway: gw.String()}
		if p.Addr().Is6() {
			rt.Family = "ipv6"
		}
		doc.Routes = append(doc.Routes, rt)
	}
	if len(s.Dnsmasq) > 0 {
		doc.DnsmasqOptions = &libvirtxml.NetworkDnsmasqOptions{}
		for _, o := range s.Dnsmasq {
			doc.DnsmasqOptions.Option = append(doc.DnsmasqOptions.Option, libvirtxml.NetworkDnsmasqOption{Value: o})
		}
	}
}

// applyUpstreamDNS sets dns { enabled, forwarders, srvs } on a network's DNS.
func applyUpstreamDNS(d *libvirtxml.NetworkDNS, s networkSpec) {
	if s.DNSEnabled != nil {
		d.Enable = "no"
		if *s.DNSEnabled {
			d.Enable = "yes"
		}
	}
	for _, f := range s.Forwarders {
		d.Forwarders = append(d.Forwarders, libvirtxml.NetworkDNSForwarder{Addr: f.Address, Domain: f.Domain})
	}
	num := func(v string) uint { n, _ := strconv.ParseUint(v, 10, 16); return uint(n) } // check vetted it
	for _, r := range s.SRVs {
		d.SRVs = append(d.SRVs, libvirtxml.NetworkDNSSRV{Service: r.Service, Protocol: r.Protocol, Domain: r.Domain, Target: r.Target,
			Port: num(r.Port), Weight: num(r.Weight), Priority: num(r.Priority)})
	}
}

// upstreamDHCPDefault is upstream's default for a network written in a .tf
// file with addresses and no dhcp block: DHCP on, over its default range
// (dhcp { enabled = true }). fiat's own default, in .hcl files, stays: no
// DHCP unless dhcp says so. Bridge and open networks have no DHCP of
// libvirt's to turn on.
func upstreamDHCPDefault(v cty.Value) cty.Value {
	none := cty.NullVal(cty.List(dhcpRangeType.WithoutOptionalAttributesDeep()))
	addrs, mode := attr(v, "addresses"), attr(v, "mode")
	if !addrs.IsKnown() || addrs.IsNull() || addrs.LengthInt() == 0 || !mode.IsKnown() {
		return none
	}
	if !mode.IsNull() && mode.AsString() != netNAT && mode.AsString() != netIsolated && mode.AsString() != netRoute {
		return none
	}
	return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{
		"start": cty.NullVal(cty.String), "end": cty.NullVal(cty.String), "enabled": cty.True})})
}

// defaultDHCPRange is the range upstream serves on a network CIDR when dhcp
// is enabled without one: from the second host address (the first is the
// bridge's) to the last but one (192.168.121.0/24: .2 to .254).
func defaultDHCPRange(p netip.Prefix) (start, end netip.Addr) {
	p = p.Masked()
	start = p.Addr().Next().Next()
	b := p.Addr().AsSlice()
	bits := p.Bits()
	for i := range b {
		for j := 0; j < 8; j++ {
			if i*8+j >= bits {
				b[i] |= 0x80 >> j
			}
		}
	}
	last, _ := netip.AddrFromSlice(b)
	return start, last.Prev()
}

func dnsEntry(ip string, hostnames cty.Value) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"ip": cty.StringVal(ip), "hostnames": hostnames,
		"enabled": cty.NullVal(cty.Bool), "local_only": cty.NullVal(cty.Bool),
		"forwarders": cty.NullVal(cty.List(dnsForwarderType.WithoutOptionalAttributesDeep())),
		"hosts":      cty.NullVal(cty.List(dnsUpHostType)),
		"srvs":       cty.NullVal(cty.List(dnsSRVType.WithoutOptionalAttributesDeep()))})
}

// dnsmasqState reads dnsmasq options back in upstream's form, split at
// the first '=' as config writes name and value (an option config gave
// without a value reads back without one).
func dnsmasqState(doc libvirtxml.Network, prior cty.Value) cty.Value {
	elem := dnsmasqOptionsType.WithoutOptionalAttributesDeep()
	if doc.DnsmasqOptions == nil || len(doc.DnsmasqOptions.Option) == 0 {
		if prior != cty.NilVal && !isNullAttr(prior, "dnsmasq_options") {
			return attr(prior, "dnsmasq_options") // blocks with no option render none
		}
		return cty.NullVal(cty.List(elem))
	}
	var opts []cty.Value
	for _, o := range doc.DnsmasqOptions.Option {
		name, val, ok := strings.Cut(o.Value, "=")
		v := cty.NullVal(cty.String)
		if ok {
			v = cty.StringVal(val)
		}
		opts = append(opts, cty.ObjectVal(map[string]cty.Value{"option_name": cty.StringVal(name), "option_value": v}))
	}
	return cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"options": cty.ListVal(opts)})})
}

// upstreamNetworkState reads domain, mtu and routes back, and keeps dhcp
// and dns as config wrote them in upstream's form while the XML is what
// that form renders.
func upstreamNetworkState(doc libvirtxml.Network, prior cty.Value, out map[string]cty.Value) {
	set := func(name string) bool { return prior != cty.NilVal && !isNullAttr(prior, name) }
	out["xml"] = xmlState(prior)
	out["domain"] = cty.NullVal(cty.String)
	if doc.Domain != nil && doc.Domain.Name != "" || set("domain") {
		name := ""
		if doc.Domain != nil {
			name = doc.Domain.Name
		}
		out["domain"] = cty.StringVal(name)
	}
	out["mtu"] = cty.NullVal(cty.Number)
	if doc.MTU != nil && doc.MTU.Size != 0 {
		out["mtu"] = cty.NumberUIntVal(uint64(doc.MTU.Size))
	}
	var routes []cty.Value
	for _, r := range doc.Routes {
		cidr := fmt.Sprintf("%s/%d", r.Address, r.Prefix)
		if pr := attr(prior, "routes"); pr.IsWhollyKnown() && !pr.IsNull() && pr.CanIterateElements() {
			for it := pr.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if p, err := netip.ParsePrefix(field(e, "cidr")); err == nil && p.Masked().String() == cidr {
					cidr = field(e, "cidr") // as written
				}
			}
		}
		routes = append(routes, cty.ObjectVal(map[string]cty.Value{"cidr": cty.StringVal(cidr), "gateway": cty.StringVal(r.Gateway)}))
	}
	out["routes"] = listOf(routeType, routes, !set("routes"))
	out["dnsmasq_options"] = dnsmasqState(doc, prior)

	upstreamForm := false
	for _, name := range []string{"dhcp", "dns"} {
		if v := attr(prior, name); v.IsWhollyKnown() && !v.IsNull() && v.CanIterateElements() {
			for it := v.ElementIterator(); it.Next(); {
				_, e := it.Element()
				if name == "dhcp" && field(e, "start") == "" && field(e, "end") == "" || name == "dns" && isUpstreamDNS(e) {
					upstreamForm = true
				}
			}
		}
	}
	if !upstreamForm {
		return
	}
	ps, err := networkSpecFrom(prior)
	if err != nil {
		return
	}
	var want libvirtxml.Network
	if x, err := doc.Marshal(); err != nil || want.Unmarshal(x) != nil {
		return
	}
	applyNetworkSpec(&want, ps)
	a, err1 := want.Marshal()
	b, err2 := doc.Marshal()
	if err1 == nil && err2 == nil && a == b {
		out["dhcp"], out["dns"] = typed(prior.GetAttr("dhcp"), out["dhcp"]), typed(prior.GetAttr("dns"), out["dns"])
	}
}

// typed is v when it has like's type (or like is null), else like.
func typed(v, like cty.Value) cty.Value {
	if v.Type().Equals(like.Type()) || strings.HasPrefix(v.Type().FriendlyName(), "list of object") && v.IsNull() {
		return v
	}
	return like
}
