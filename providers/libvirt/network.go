package libvirt

import (
	"context"
	"encoding/xml"
	"fmt"
	"reflect"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// libvirt_network: a virtual network (a bridge, with dnsmasq for DHCP and
// DNS, and NAT or routing rules as the mode asks).
//
//	create: define (UUID chosen up front), start (unless active = false),
//	        autostart.
//	update: DHCP ranges, static hosts, DNS entries, autostart and active
//	        change in place: the definition is redefined with the same UUID
//	        (never undefined first) and the running network gets the same
//	        change live (virNetworkUpdate), without a restart; a stopped
//	        network that should run is started (with the new definition),
//	        one that should not is stopped. A network stopped outside fiat
//	        is drift (active reads false) and is started again. Undo
//	        redefines the previous XML, puts the live config back the same
//	        way, and the run state as it was.
//	retire: autostart off, stop, undefine; the Undo keeps the XML. This
//	        frees the name, bridge and subnet for a replacement. Undo defines
//	        the same XML (same UUID, bridge, MAC) and starts it; DHCP leases
//	        handed out before are forgotten.
//	purge:  nothing is left once the retire has run; a network still
//	        defined under its UUID is stopped and undefined.
//
// Guests attached to a network that is retired lose their link until the
// retire is undone; a domain that uses it should be replaced or changed in
// the same plan (preflight checks this).
var networkSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the network on the host."},
		"mode": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(netNAT),
			Description: `"nat" (default), "isolated", "route", "open", or "bridge" (an existing host bridge, named by bridge).`},
		"addresses": {Type: cty.List(cty.String), Optional: true, ForceNew: true,
			Description: `CIDRs of the network, e.g. ["192.168.210.0/24"]: the bridge takes the first host address, or the one written ("192.168.210.254/24").`},
		"bridge": {Type: cty.String, Optional: true, Computed: true, ForceNew: true,
			Description: "Name of the Linux bridge; libvirt picks virbrN when unset."},
		"dhcp": {Type: cty.List(dhcpRangeType), Optional: true, TerraformDefault: upstreamDHCPDefault,
			Description: "DHCP ranges, [{ start = \"192.168.210.10\", end = \"192.168.210.99\" }], or upstream's dhcp { enabled = true } (a range over each address, .2 to the last but one; false: none). Changes apply live."},
		"hosts": {Type: cty.List(dhcpHostType), Optional: true,
			Description: "Static DHCP hosts, [{ mac = \"52:54:00:00:00:01\", ip = \"192.168.210.5\", name = \"web\" }] (name optional). Changes apply live."},
		"dns": {Type: cty.List(dnsHostType), Optional: true,
			Description: "DNS host entries, [{ ip = \"192.168.210.5\", hostnames = [\"web\"] }] (changes apply live), or upstream's dns { enabled, local_only (needs domain), forwarders { address, domain }, hosts { hostname, ip }, srvs { service, protocol, domain, target, port, weight, priority } } (hosts apply live; enabled, forwarders and srvs when the network next starts)."},
		"domain": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "DNS domain of the network (its guests' names are answered under it)."},
		"mtu": {Type: cty.Number, Optional: true, ForceNew: true,
			Description: "MTU of the bridge; libvirt's default when left out."},
		"routes": {Type: cty.List(routeType), Optional: true, ForceNew: true,
			Description: "Static routes, routes { cidr = \"10.17.0.0/16\", gateway = \"10.18.0.2\" }: the gateway must be in one of addresses."},
		"xml": {Type: cty.List(xmlType), Optional: true, ForceNew: true,
			Description: "xml { xslt = file(\"net.xsl\") }: an XSLT stylesheet applied to the network XML fiat generates when it creates the network (runs xsltproc where fiat runs); later updates start from libvirt's XML, which keeps its changes."},
		"dnsmasq_options": {Type: cty.List(dnsmasqOptionsType), Optional: true, ForceNew: true,
			Description: "Raw options for the network's dnsmasq, as upstream writes them: dnsmasq_options { options { option_name = \"server\", option_value = \"/example.com/10.0.0.1\" } } (option_value optional)."},
		"autostart": {Type: cty.Bool, Optional: true, Default: cty.True,
			Description: "Start the network when libvirtd starts."},
		"active": {Type: cty.Bool, Optional: true, Default: cty.True,
			Description: "Whether the network runs. A network stopped outside fiat is drift, and the apply starts it again."},
		"id": {Type: cty.String, Computed: true,
			Description: "The network's UUID."},
	},
	Delete: providers.Lossy, // the undo restores the definition; DHCP leases are forgotten
	Update: providers.Reversible,
}

// findNetwork looks a network up by UUID, or by the name in state when id
// is empty.
func findNetwork(l *golibvirt.Libvirt, id string, state cty.Value) (golibvirt.Network, bool, error) {
	return findObject("network", id, state, l.NetworkLookupByUUID, l.NetworkLookupByName)
}

// networkDoc reads a network's XML: the persistent definition (inactive) or
// what runs (live).
func networkDoc(l *golibvirt.Libvirt, n golibvirt.Network, inactive bool) (libvirtxml.Network, string, error) {
	var doc libvirtxml.Network
	var flags uint32
	if inactive {
		flags = uint32(golibvirt.NetworkXMLInactive)
	}
	x, err := l.NetworkGetXMLDesc(n, flags)
	if err != nil {
		return doc, "", readErr("read network "+n.Name, err)
	}
	if err := doc.Unmarshal(x); err != nil {
		return doc, "", fmt.Errorf("read network %s: parse XML: %w", n.Name, err)
	}
	return doc, x, nil
}

func networkState(l *golibvirt.Libvirt, n golibvirt.Network, prior cty.Value) (cty.Value, error) {
	doc, _, err := networkDoc(l, n, true)
	if err != nil {
		return cty.NilVal, err
	}
	run, err := networkRun(l, n, "read network "+n.Name)
	if err != nil {
		return cty.NilVal, err
	}
	return networkStateFrom(doc, formatUUID(n.UUID), run, prior), nil
}

func marshalNetwork(doc libvirtxml.Network) (string, error) {
	x, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal network XML: %w", err)
	}
	return x, nil
}

func (p *Provider) createNetwork(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, err := networkSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create network %s: %w", req.Address, err)
	}
	op := "create network " + spec.Name
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	uuid := formatUUID(newUUID(req.OpID, req.Address))
	x, err := marshalNetwork(newNetworkDoc(spec, uuid))
	if err == nil {
		x, err = applyXSLT(ctx, x, spec.XSLT)
	}
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	c := &creation{op: op, id: uuid, undo: &undoRecord{Op: undoCreateNetwork, UUID: uuid, Name: spec.Name}}
	if err := ctxErr(ctx, op); err != nil {
		return providers.CreateResponse{}, err
	}
	n, err := l.NetworkDefineXMLFlags(x, uint32(golibvirt.NetworkDefineValidate))
	if err != nil {
		return c.makeFailed(err)
	}
	c.cleanUp = func() error { return removeNetwork(l, n, "clean up network "+spec.Name) }
	if err := ctxErr(ctx, op); err != nil {
		return c.fail(err)
	}
	// libvirt refuses to start a network whose subnet the host already
	// routes ("Network is already in use by interface eth0") before it
	// touches the host: the error says what collides.
	if spec.Active {
		if err := l.NetworkCreate(n); err != nil {
			return c.fail(mutErr(op+": start", err))
		}
	}
	if spec.Autostart {
		if err := l.NetworkSetAutostart(n, 1); err != nil {
			return c.fail(mutErr(op+": autostart", err))
		}
	}
	state, err := networkState(l, n, req.Config)
	if err != nil {
		return c.fail(err)
	}
	return c.done(state)
}

// removeNetwork stops and undefines a network; each step tolerates having
// been done.
func removeNetwork(l *golibvirt.Libvirt, n golibvirt.Network, op string) error {
	if err := l.NetworkDestroy(n); err != nil && !notActive(err) && !notFound(err) {
		return mutErr(op, err)
	}
	if err := l.NetworkUndefine(n); err != nil && !notFound(err) {
		return mutErr(op, err)
	}
	return nil
}

func (p *Provider) undoCreateNetwork(ctx context.Context, u undoRecord) error {
	op := "undo create network " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return removeFound(func() (golibvirt.Network, bool, error) { return findNetwork(l, u.UUID, cty.NilVal) },
		func(n golibvirt.Network) error { return removeNetwork(l, n, op) })
}

func (p *Provider) updateNetwork(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	prior, err := networkSpecFrom(req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update network %s: prior state: %w", req.Address, err)
	}
	next, err := networkSpecFrom(req.Config)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update network %s: %w", req.Address, err)
	}
	op := "update network " + prior.Name
	if p := networkChange(prior, next); p != "" {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %s", op, p)
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	n, found, err := findNetwork(l, req.ID, req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !found {
		return providers.UpdateResponse{}, fmt.Errorf("%s: network %s no longer exists", op, req.ID)
	}
	doc, priorXML, err := networkDoc(l, n, true)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	was, err := networkRun(l, n, op)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	undo := undoRecord{Op: undoUpdateNetwork, UUID: formatUUID(n.UUID), Name: n.Name, XML: priorXML,
		Autostart: was.Autostart, WasActive: was.Active, WasStopped: !was.Active}.encode()
	applyNetworkSpec(&doc, next)
	if err := ctx.Err(); err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	// From here the Undo goes back with any error.
	if err := p.setNetwork(l, n, doc, next.run(), op); err != nil {
		return providers.UpdateResponse{Undo: undo}, err
	}
	state, err := networkState(l, n, req.Config)
	if err != nil {
		return providers.UpdateResponse{Undo: undo}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo}, nil
}

// setNetwork makes a network's definition doc (same UUID and name: a
// redefine, never an undefine), brings the running network's DHCP and DNS
// entries to doc's live, starts or stops it as want says (a start runs the
// new definition), and sets autostart.
func (p *Provider) setNetwork(l *golibvirt.Libvirt, n golibvirt.Network, doc libvirtxml.Network, want runState, op string) error {
	x, err := marshalNetwork(doc)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := l.NetworkDefineXMLFlags(x, uint32(golibvirt.NetworkDefineValidate)); err != nil {
		return mutErr(op, err)
	}
	cur, err := networkRun(l, n, op)
	if err != nil {
		return err
	}
	switch {
	case cur.Active && want.Active:
		if err := syncLiveNetwork(l, n, doc, op); err != nil {
			return err
		}
	case want.Active:
		if err := l.NetworkCreate(n); err != nil {
			return mutErr(op+": start", err)
		}
	case cur.Active:
		if err := l.NetworkDestroy(n); err != nil && !notActive(err) {
			return mutErr(op+": stop", err)
		}
	}
	if cur.Autostart != want.Autostart {
		if err := l.NetworkSetAutostart(n, boolInt(want.Autostart)); err != nil {
			return mutErr(op+": autostart", err)
		}
	}
	return nil
}

func boolInt(b bool) int32 {
	if b {
		return 1
	}
	return 0
}

// syncLiveNetwork changes the running network's DHCP ranges, DHCP hosts and
// DNS hosts to want's, one virNetworkUpdate (live only) per element that is
// gone or new: removals first, so a host whose IP changed is replaced.
func syncLiveNetwork(l *golibvirt.Libvirt, n golibvirt.Network, want libvirtxml.Network, op string) error {
	live, _, err := networkDoc(l, n, false)
	if err != nil {
		return err
	}
	type change struct {
		cmd     golibvirt.NetworkUpdateCommand
		section golibvirt.NetworkUpdateSection
		parent  int32
		elem    any
	}
	var dels, mods, adds []change
	diff := func(section golibvirt.NetworkUpdateSection, parent int32, have, wantEls []any) {
		for _, h := range have {
			if containsElem(wantEls, h) {
				continue
			}
			// A DHCP host whose MAC stays is modified in one call
			// (dnsmasq reloads once) instead of deleted and added.
			if w := sameMAC(wantEls, h); w != nil && !containsElem(have, w) {
				mods = append(mods, change{golibvirt.NetworkUpdateCommandModify, section, parent, w})
				continue
			}
			dels = append(dels, change{golibvirt.NetworkUpdateCommandDelete, section, parent, h})
		}
		for _, w := range wantEls {
			if !containsElem(have, w) && sameMAC(have, w) == nil {
				adds = append(adds, change{golibvirt.NetworkUpdateCommandAddLast, section, parent, w})
			}
		}
	}
	for i := range want.IPs {
		if i >= len(live.IPs) {
			break
		}
		var haveR, wantR, haveH, wantH []any
		if d := live.IPs[i].DHCP; d != nil {
			haveR, haveH = elems(d.Ranges), elems(d.Hosts)
		}
		if d := want.IPs[i].DHCP; d != nil {
			wantR, wantH = elems(d.Ranges), elems(d.Hosts)
		}
		diff(golibvirt.NetworkSectionIPDhcpRange, int32(i), haveR, wantR)
		diff(golibvirt.NetworkSectionIPDhcpHost, int32(i), haveH, wantH)
	}
	var haveD, wantD []any
	if live.DNS != nil {
		haveD = elems(live.DNS.Host)
	}
	if want.DNS != nil {
		wantD = elems(want.DNS.Host)
	}
	diff(golibvirt.NetworkSectionDNSHost, -1, haveD, wantD)

	for _, c := range append(append(dels, mods...), adds...) {
		b, err := xml.Marshal(c.elem)
		if err != nil {
			return fmt.Errorf("%s: marshal XML: %w", op, err)
		}
		if err := l.NetworkUpdateCompat(n, c.cmd, c.section, c.parent, string(b), golibvirt.NetworkUpdateAffectLive); err != nil {
			return mutErr(op+": change the running network", err)
		}
	}
	return nil
}

// sameMAC returns the DHCP host in s with e's MAC (nil if e is no DHCP
// host or none has its MAC).
func sameMAC(s []any, e any) any {
	h, ok := e.(libvirtxml.NetworkDHCPHost)
	if !ok || h.MAC == "" {
		return nil
	}
	for _, x := range s {
		if xh, ok := x.(libvirtxml.NetworkDHCPHost); ok && strings.EqualFold(xh.MAC, h.MAC) {
			return x
		}
	}
	return nil
}

func elems[T any](s []T) []any {
	out := make([]any, len(s))
	for i := range s {
		out[i] = s[i]
	}
	return out
}

// containsElem compares XML elements by their marshalled form: one parsed
// from libvirt carries its XMLName, one built here does not.
func containsElem(s []any, e any) bool {
	want := elemXML(e)
	for _, x := range s {
		if elemXML(x) == want {
			return true
		}
	}
	return false
}

func elemXML(e any) string {
	b, err := xml.Marshal(e)
	if err != nil {
		return fmt.Sprintf("%#v", e)
	}
	return string(b)
}

// networkChange says why prior cannot become next in place ("" if it can).
func networkChange(prior, next networkSpec) string {
	switch {
	case prior.Name != next.Name, prior.Mode != next.Mode, !reflect.DeepEqual(prior.Addresses, next.Addresses),
		next.Bridge != "" && prior.Bridge != next.Bridge:
		return "a network's name, mode, addresses and bridge cannot change in place; it must be replaced"
	}
	return ""
}

func (p *Provider) undoUpdateNetwork(ctx context.Context, u undoRecord) error {
	op := "undo update network " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	n, found, err := findNetwork(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: network %s (uuid %s) no longer exists; its previous definition cannot be restored", op, u.Name, u.UUID)
	}
	var doc libvirtxml.Network
	if err := doc.Unmarshal(u.XML); err != nil {
		return fmt.Errorf("%s: parse the saved XML: %w", op, err)
	}
	want := runState{Active: u.WasActive, Autostart: u.Autostart}
	if !u.WasActive && !u.WasStopped { // an older fiat's update: it left the run state alone
		cur, err := networkRun(l, n, op)
		if err != nil {
			return err
		}
		want.Active = cur.Active
	}
	return p.setNetwork(l, n, doc, want, op)
}

func (p *Provider) retireNetwork(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	name := objectName(req.ID, req.State)
	op := "retire network " + name
	l, err := p.client(ctx)
	if err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	n, found, err := findNetwork(l, req.ID, req.State)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	if !found {
		return providers.RetireResponse{Undo: noUndo}, nil
	}
	_, x, err := networkDoc(l, n, true)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	active, err := l.NetworkIsActive(n)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	autostart, err := l.NetworkGetAutostart(n)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	resp := providers.RetireResponse{Undo: undoRecord{Op: undoRetireNetwork, UUID: formatUUID(n.UUID), Name: n.Name,
		XML: x, WasActive: active == 1, Autostart: autostart == 1}.encode()}
	if err := ctx.Err(); err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	if autostart == 1 {
		if err := l.NetworkSetAutostart(n, 0); err != nil {
			return resp, mutErr(op, err)
		}
	}
	return resp, removeNetwork(l, n, op)
}

func (p *Provider) undoRetireNetwork(ctx context.Context, u undoRecord) error {
	op := "undo retire network " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	n, found, err := findNetwork(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		if n, err = l.NetworkDefineXML(u.XML); err != nil {
			return mutErr(op, err)
		}
	}
	if u.WasActive {
		active, err := l.NetworkIsActive(n)
		if err != nil {
			return readErr(op, err)
		}
		if active == 0 {
			if err := l.NetworkCreate(n); err != nil {
				return mutErr(op+": start", err)
			}
		}
	}
	if u.Autostart {
		if err := l.NetworkSetAutostart(n, 1); err != nil {
			return mutErr(op+": autostart", err)
		}
	}
	return nil
}

func (p *Provider) purgeNetwork(ctx context.Context, req providers.PurgeRequest) error {
	op := "purge network " + objectName(req.ID, req.State)
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if req.ID == "" {
		return nil // nothing to tell it from a network that took its name
	}
	n, found, err := findNetwork(l, req.ID, cty.NilVal)
	if err != nil || !found {
		return err
	}
	return removeNetwork(l, n, op)
}

func (p *Provider) readNetwork(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read network %s: %w", req.Address, err)
	}
	return readFound(func() (golibvirt.Network, bool, error) { return findNetwork(l, req.ID, req.State) },
		func(n golibvirt.Network) (cty.Value, error) { return networkState(l, n, req.State) })
}
