package libvirt

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"slices"

	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"
)

// Network modes (the attribute "mode").
const (
	netNAT      = "nat"      // a bridge with DHCP/DNS, NAT to the host's uplink
	netIsolated = "isolated" // a bridge with DHCP/DNS and no forwarding
	netRoute    = "route"    // forwarded without NAT
	netOpen     = "open"     // libvirt adds no firewall rules
	netBridge   = "bridge"   // an existing host bridge, used as is
)

var networkModes = []string{netNAT, netIsolated, netRoute, netOpen, netBridge}

// Nested attribute types. Optional fields may be left out in config and are
// null in state.
var (
	// dhcp: fiat's ranges { start, end }, or upstream's { enabled } (a
	// range over each address, .2 to the last but one, when true).
	dhcpRangeType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"start": cty.String, "end": cty.String, "enabled": cty.Bool},
		[]string{"start", "end", "enabled"})
	dhcpHostType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"mac": cty.String, "ip": cty.String, "name": cty.String}, []string{"name"})
	// dns: fiat's host entries { ip, hostnames }, or upstream's block
	// { enabled, local_only, forwarders { address, domain }, hosts { hostname, ip },
	// srvs { service, protocol, domain, target, port, weight, priority } }.
	dnsForwarderType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"address": cty.String, "domain": cty.String}, []string{"address", "domain"})
	dnsUpHostType    = cty.Object(map[string]cty.Type{"hostname": cty.String, "ip": cty.String})
	dnsSRVType       = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"service": cty.String, "protocol": cty.String, "domain": cty.String,
		"target": cty.String, "port": cty.String, "weight": cty.String, "priority": cty.String},
		[]string{"service", "protocol", "domain", "target", "port", "weight", "priority"})
	dnsHostType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"ip": cty.String, "hostnames": cty.List(cty.String),
		"enabled": cty.Bool, "local_only": cty.Bool, "forwarders": cty.List(dnsForwarderType), "hosts": cty.List(dnsUpHostType),
		"srvs": cty.List(dnsSRVType)},
		[]string{"ip", "hostnames", "enabled", "local_only", "forwarders", "hosts", "srvs"})
	routeType = cty.Object(map[string]cty.Type{"cidr": cty.String, "gateway": cty.String})
	// dnsmasq_options { options { option_name, option_value } }
	dnsmasqOptionType  = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"option_name": cty.String, "option_value": cty.String}, []string{"option_value"})
	dnsmasqOptionsType = cty.Object(map[string]cty.Type{"options": cty.List(dnsmasqOptionType)})
)

type dnsForwarder struct{ Address, Domain string }

// dnsSRV is an SRV record as upstream writes it: numbers as strings.
type dnsSRV struct{ Service, Protocol, Domain, Target, Port, Weight, Priority string }
type staticRoute struct{ CIDR, Gateway string }

type dhcpRange struct{ Start, End string }
type dhcpHost struct{ MAC, IP, Name string }
type dnsHost struct {
	IP        string
	Hostnames []string
}

// networkSpec is a libvirt_network's config, checked.
type networkSpec struct {
	Name, Mode, Bridge string
	Addresses          []string // as written; see parseAddress
	DHCP               []dhcpRange
	Hosts              []dhcpHost
	DNS                []dnsHost
	Autostart, Active  bool

	// The upstream provider's (network_upstream.go).
	Domain      string
	MTU         uint64
	Routes      []staticRoute
	Dnsmasq     []string // dnsmasq options, "name" or "name=value"
	DHCPEnabled *bool    // dhcp { enabled }: nil when not written
	DNSEnabled  *bool    // dns { enabled }
	LocalOnly   bool
	Forwarders  []dnsForwarder
	SRVs        []dnsSRV
	XSLT        string // xml { xslt }: applied to the XML fiat generates at create (xslt.go)
}

// run is the network's run state.
func (s networkSpec) run() runState { return runState{Active: s.Active, Autostart: s.Autostart} }

// networkSpecFrom reads a known config or state.
func networkSpecFrom(v cty.Value) (networkSpec, error) {
	m, err := knownStrings(v, map[string]string{"mode": netNAT}, "name", "mode", "bridge")
	if err != nil {
		return networkSpec{}, err
	}
	s := networkSpec{Name: m["name"], Mode: m["mode"], Bridge: m["bridge"]}
	var known bool
	if s.Addresses, known, err = stringList(v, "addresses"); err != nil || !known {
		return s, orUnknown(err, "addresses")
	}
	run, err := runStateFrom(v)
	if err != nil {
		return s, err
	}
	s.Autostart, s.Active = run.Autostart, run.Active
	ranges, known, err := listAttr(v, "dhcp")
	if err != nil || !known {
		return s, orUnknown(err, "dhcp")
	}
	for _, r := range ranges {
		if e := attr(r, "enabled"); e.IsKnown() && !e.IsNull() && field(r, "start") == "" && field(r, "end") == "" {
			b := e.True()
			s.DHCPEnabled = &b
			continue
		}
		s.DHCP = append(s.DHCP, dhcpRange{Start: field(r, "start"), End: field(r, "end")})
	}
	hosts, known, err := listAttr(v, "hosts")
	if err != nil || !known {
		return s, orUnknown(err, "hosts")
	}
	for _, h := range hosts {
		s.Hosts = append(s.Hosts, dhcpHost{MAC: field(h, "mac"), IP: field(h, "ip"), Name: field(h, "name")})
	}
	dns, known, err := listAttr(v, "dns")
	if err != nil || !known {
		return s, orUnknown(err, "dns")
	}
	for _, d := range dns {
		if isUpstreamDNS(d) {
			if err := s.readUpstreamDNS(d); err != nil {
				return s, err
			}
			continue
		}
		names, _, _ := stringList(d, "hostnames")
		s.DNS = append(s.DNS, dnsHost{IP: field(d, "ip"), Hostnames: names})
	}
	if err := s.readUpstream(v); err != nil {
		return s, err
	}
	if problems := s.check(); len(problems) > 0 {
		return s, errors.New(problems[0])
	}
	return s, nil
}

func orUnknown(err error, name string) error {
	if err != nil {
		return err
	}
	return fmt.Errorf("attribute %q is not known yet", name)
}

// field is a string field of a nested object ("" when null).
func field(obj cty.Value, name string) string {
	s, _, _ := strAttr(obj, name)
	return s
}

// check lists what is wrong with the spec.
func (s networkSpec) check() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p := checkName("network", s.Name); p != "" {
		add("%s", p)
	}
	if !slices.Contains(networkModes, s.Mode) {
		add("network mode %q is not supported; use one of %q", s.Mode, networkModes)
		return problems
	}
	if s.Mode == netBridge {
		if s.Bridge == "" {
			add(`mode "bridge" uses an existing host bridge: set bridge to its name`)
		}
		if len(s.Addresses)+len(s.DHCP)+len(s.Hosts)+len(s.DNS) > 0 {
			add(`mode "bridge" hands guests to the host bridge as they are: addresses, dhcp, hosts and dns cannot be set`)
		}
		return problems
	}
	s.checkUpstream(add)
	if len(s.Bridge) > 15 {
		add("bridge name %q is longer than 15 characters (Linux limit)", s.Bridge)
	}
	var prefixes []netip.Prefix
	for _, a := range s.Addresses {
		p, _, err := parseAddress(a)
		if err != nil {
			add("%v", err)
			continue
		}
		for _, q := range prefixes {
			if q.Overlaps(p) {
				add("addresses %s and %s overlap", q, p)
			}
		}
		prefixes = append(prefixes, p)
	}
	if (s.Mode == netNAT || s.Mode == netRoute) && !slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Addr().Is4() }) {
		add("a %q network needs an IPv4 address range in addresses, e.g. [\"192.168.210.0/24\"]", s.Mode)
	}
	inRange := func(ip netip.Addr) bool {
		return slices.ContainsFunc(prefixes, func(p netip.Prefix) bool { return p.Contains(ip) })
	}
	for _, r := range s.DHCP {
		if r.Start == "" && r.End == "" {
			add("dhcp: set start and end (a range), or enabled (upstream's dhcp { enabled = true })")
			continue
		}
		start, err1 := netip.ParseAddr(r.Start)
		end, err2 := netip.ParseAddr(r.End)
		switch {
		case err1 != nil || err2 != nil:
			add("dhcp range %s-%s: start and end must be IP addresses", r.Start, r.End)
		case !inRange(start) || !prefixOf(prefixes, start).Contains(end):
			add("dhcp range %s-%s is not inside one of the network's addresses %q", r.Start, r.End, s.Addresses)
		case end.Less(start):
			add("dhcp range %s-%s ends before it starts", r.Start, r.End)
		}
	}
	macs, ips := map[string]bool{}, map[string]bool{}
	for _, h := range s.Hosts {
		mac, err := net.ParseMAC(h.MAC)
		ip, err2 := netip.ParseAddr(h.IP)
		switch {
		case err != nil || len(mac) != 6:
			add("hosts: %q is not a MAC address like 52:54:00:12:34:56", h.MAC)
		case err2 != nil:
			add("hosts: %q is not an IP address", h.IP)
		case !inRange(ip):
			add("hosts: %s is not inside one of the network's addresses %q", h.IP, s.Addresses)
		case macs[mac.String()] || ips[h.IP]:
			add("hosts: %s / %s appears twice", h.MAC, h.IP)
		}
		if mac != nil {
			macs[mac.String()] = true
		}
		ips[h.IP] = true
	}
	for _, d := range s.DNS {
		if _, err := netip.ParseAddr(d.IP); err != nil {
			add("dns: %q is not an IP address", d.IP)
		}
		if len(d.Hostnames) == 0 || slices.Contains(d.Hostnames, "") {
			add("dns: the entry for %s needs non-empty hostnames", d.IP)
		}
	}
	return problems
}

func prefixOf(prefixes []netip.Prefix, ip netip.Addr) netip.Prefix {
	for _, p := range prefixes {
		if p.Contains(ip) {
			return p
		}
	}
	return netip.Prefix{}
}

// parseAddress reads one entry of addresses: a CIDR whose host part is the
// bridge's own address ("192.168.210.1/24"), or a network CIDR
// ("192.168.210.0/24", the bridge takes the first host address).
func parseAddress(s string) (netip.Prefix, netip.Addr, error) {
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return p, netip.Addr{}, fmt.Errorf("address %q is not a CIDR like 192.168.210.0/24", s)
	}
	bits := p.Addr().BitLen()
	if p.Bits() > bits-2 {
		return p, netip.Addr{}, fmt.Errorf("address %q leaves no room for guests; use a prefix of /%d or shorter", s, bits-2)
	}
	gw := p.Addr()
	if gw == p.Masked().Addr() {
		gw = gw.Next()
	}
	return p.Masked(), gw, nil
}

// sameAddress reports whether two address entries describe the same bridge
// address and prefix.
func sameAddress(a, b string) bool {
	pa, ga, err1 := parseAddress(a)
	pb, gb, err2 := parseAddress(b)
	return err1 == nil && err2 == nil && pa == pb && ga == gb
}

// newNetworkDoc is the XML of a new network.
func newNetworkDoc(s networkSpec, uuid string) libvirtxml.Network {
	doc := libvirtxml.Network{Name: s.Name, UUID: uuid}
	switch s.Mode {
	case netNAT, netRoute, netOpen:
		doc.Forward = &libvirtxml.NetworkForward{Mode: s.Mode}
	case netBridge:
		doc.Forward = &libvirtxml.NetworkForward{Mode: netBridge}
		doc.Bridge = &libvirtxml.NetworkBridge{Name: s.Bridge}
		return doc
	}
	if s.Bridge != "" {
		doc.Bridge = &libvirtxml.NetworkBridge{Name: s.Bridge, STP: "on", Delay: "0"}
	}
	for _, a := range s.Addresses {
		p, gw, err := parseAddress(a)
		if err != nil {
			continue // check reported it
		}
		ip := libvirtxml.NetworkIP{Address: gw.String(), Prefix: uint(p.Bits())}
		if gw.Is6() {
			ip.Family = "ipv6"
		}
		doc.IPs = append(doc.IPs, ip)
	}
	setUpstreamNetwork(&doc, s)
	applyNetworkSpec(&doc, s)
	return doc
}

// applyNetworkSpec sets what an update may change (DHCP ranges and hosts,
// DNS hosts) on a network's XML and leaves everything else (UUID, bridge,
// MAC, addresses) as libvirt has it.
func applyNetworkSpec(doc *libvirtxml.Network, s networkSpec) {
	for i := range doc.IPs {
		ip := &doc.IPs[i]
		p, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", ip.Address, ipPrefix(*ip)))
		if err != nil {
			continue
		}
		p = p.Masked()
		var d libvirtxml.NetworkDHCP
		if ip.DHCP != nil {
			d.Bootp = ip.DHCP.Bootp
		}
		for _, r := range s.DHCP {
			if a, err := netip.ParseAddr(r.Start); err == nil && p.Contains(a) {
				d.Ranges = append(d.Ranges, libvirtxml.NetworkDHCPRange{Start: r.Start, End: r.End})
			}
		}
		if s.DHCPEnabled != nil && *s.DHCPEnabled {
			start, end := defaultDHCPRange(p)
			d.Ranges = append(d.Ranges, libvirtxml.NetworkDHCPRange{Start: start.String(), End: end.String()})
		}
		for _, h := range s.Hosts {
			if a, err := netip.ParseAddr(h.IP); err == nil && p.Contains(a) {
				d.Hosts = append(d.Hosts, libvirtxml.NetworkDHCPHost{MAC: h.MAC, Name: h.Name, IP: h.IP})
			}
		}
		ip.DHCP = nil
		if len(d.Ranges)+len(d.Hosts)+len(d.Bootp) > 0 {
			ip.DHCP = &d
		}
	}
	if doc.DNS != nil {
		doc.DNS.Enable, doc.DNS.Forwarders, doc.DNS.SRVs = "", nil, nil
	}
	if len(s.DNS) == 0 && s.DNSEnabled == nil && len(s.Forwarders) == 0 && len(s.SRVs) == 0 {
		if doc.DNS != nil {
			doc.DNS.Host = nil
			if isEmptyDNS(doc.DNS) {
				doc.DNS = nil
			}
		}
		return
	}
	if doc.DNS == nil {
		doc.DNS = &libvirtxml.NetworkDNS{}
	}
	applyUpstreamDNS(doc.DNS, s)
	doc.DNS.Host = nil
	for _, h := range s.DNS {
		dh := libvirtxml.NetworkDNSHost{IP: h.IP}
		for _, n := range h.Hostnames {
			dh.Hostnames = append(dh.Hostnames, libvirtxml.NetworkDNSHostHostname{Hostname: n})
		}
		doc.DNS.Host = append(doc.DNS.Host, dh)
	}
}

func isEmptyDNS(d *libvirtxml.NetworkDNS) bool {
	return d.Enable == "" && d.ForwardPlainNames == "" && len(d.Forwarders) == 0 && len(d.TXTs) == 0 &&
		len(d.Host) == 0 && len(d.SRVs) == 0
}

// ipPrefix is an <ip>'s prefix length, from prefix or netmask.
func ipPrefix(ip libvirtxml.NetworkIP) int {
	if ip.Prefix != 0 || ip.Netmask == "" {
		if ip.Prefix == 0 && ip.Family != "ipv6" {
			return 24 // libvirt's default for IPv4 without either
		}
		return int(ip.Prefix)
	}
	m := net.ParseIP(ip.Netmask).To4()
	if m == nil {
		return 0
	}
	ones, _ := net.IPMask(m).Size()
	return ones
}

// networkStateFrom turns a network's persistent XML into state. prior
// (config or state, may be cty.NilVal) decides representations the host
// does not: an address as the user wrote it, empty lists left out (null).
func networkStateFrom(doc libvirtxml.Network, uuid string, run runState, prior cty.Value) cty.Value {
	mode := netIsolated
	if doc.Forward != nil && doc.Forward.Mode != "" {
		mode = doc.Forward.Mode
	}
	bridge := ""
	if doc.Bridge != nil {
		bridge = doc.Bridge.Name
	}
	priorAddrs, _, _ := stringList(prior, "addresses")
	var addrs, ranges, hosts, dns []cty.Value
	for _, ip := range doc.IPs {
		a := canonicalAddress(ip)
		for _, pa := range priorAddrs {
			if sameAddress(pa, a) {
				a = pa
			}
		}
		addrs = append(addrs, cty.StringVal(a))
		if ip.DHCP == nil {
			continue
		}
		for _, r := range ip.DHCP.Ranges {
			ranges = append(ranges, cty.ObjectVal(map[string]cty.Value{"start": cty.StringVal(r.Start), "end": cty.StringVal(r.End), "enabled": cty.NullVal(cty.Bool)}))
		}
		for _, h := range ip.DHCP.Hosts {
			hosts = append(hosts, cty.ObjectVal(map[string]cty.Value{
				"mac": cty.StringVal(h.MAC), "ip": cty.StringVal(h.IP), "name": strOrNull(h.Name)}))
		}
	}
	if doc.DNS != nil {
		for _, h := range doc.DNS.Host {
			var names []cty.Value
			for _, n := range h.Hostnames {
				names = append(names, cty.StringVal(n.Hostname))
			}
			dns = append(dns, dnsEntry(h.IP, listOf(cty.String, names, false)))
		}
	}
	nullIfUnset := func(name string) bool { return prior == cty.NilVal || isNullAttr(prior, name) }
	out := map[string]cty.Value{
		"name":      cty.StringVal(doc.Name),
		"mode":      cty.StringVal(mode),
		"addresses": listOf(cty.String, addrs, nullIfUnset("addresses")),
		"bridge":    cty.StringVal(bridge),
		"dhcp":      listOf(dhcpRangeType.WithoutOptionalAttributesDeep(), ranges, nullIfUnset("dhcp")),
		"hosts":     listOf(dhcpHostType.WithoutOptionalAttributesDeep(), hosts, nullIfUnset("hosts")),
		"dns":       listOf(dnsHostType.WithoutOptionalAttributesDeep(), dns, nullIfUnset("dns")),
		"autostart": cty.BoolVal(run.Autostart),
		"active":    cty.BoolVal(run.Active),
		"id":        cty.StringVal(uuid),
	}
	upstreamNetworkState(doc, prior, out)
	return cty.ObjectVal(out)
}

// canonicalAddress writes an <ip> as an addresses entry: the network CIDR
// when the bridge has the first host address, else address/prefix.
func canonicalAddress(ip libvirtxml.NetworkIP) string {
	a, err := netip.ParseAddr(ip.Address)
	if err != nil {
		return ip.Address
	}
	p := netip.PrefixFrom(a, ipPrefix(ip))
	if p.Masked().Addr().Next() == a {
		return p.Masked().String()
	}
	return p.String()
}
