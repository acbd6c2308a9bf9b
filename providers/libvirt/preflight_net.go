package libvirt

import (
	"context"
	"fmt"
	"net/netip"
	"slices"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// hostNet is a network as found on the host (its persistent definition).
type hostNet struct {
	n      golibvirt.Network
	uuid   string
	doc    libvirtxml.Network
	active bool
}

func (pf *preflight) networks() ([]hostNet, error) {
	if pf.nets != nil {
		return *pf.nets, nil
	}
	list, _, err := pf.l.ConnectListAllNetworks(1, 0)
	if err != nil {
		return nil, readErr("list networks", err)
	}
	var out []hostNet
	for _, n := range list {
		doc, _, err := networkDoc(pf.l, n, true)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		active, err := pf.l.NetworkIsActive(n)
		if err != nil && !notFound(err) {
			return nil, readErr("read network "+n.Name, err)
		}
		out = append(out, hostNet{n: n, uuid: formatUUID(n.UUID), doc: doc, active: active == 1})
	}
	pf.nets = &out
	return out, nil
}

// hostInterfaces lists the host's network interfaces (empty if the host's
// libvirt cannot tell: the check is then skipped).
func (pf *preflight) hostInterfaces() []string {
	if pf.ifaces != nil {
		return *pf.ifaces
	}
	var names []string
	if list, _, err := pf.l.ConnectListAllInterfaces(1, 0); err == nil {
		for _, i := range list {
			names = append(names, i.Name)
		}
	}
	pf.ifaces = &names
	return names
}

// netDeletedBy returns the step of the plan that deletes host network hn.
func (pf *preflight) netDeletedBy(hn hostNet) string {
	return pf.deleting(TypeNetwork, hn.uuid, hn.doc.Name)
}

func (pf *preflight) network(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		return pf.networkCreate(ctx, step)
	case providers.ActionUpdate:
		return pf.networkUpdate(step)
	case providers.ActionDelete:
		return pf.networkDelete(step)
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) networkCreate(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	nets, err := pf.networks()
	if err != nil {
		return []string{err.Error()}
	}
	// A bridge left to libvirt is unknown until it is made; the XML is
	// validated without it, as libvirt will be given it.
	cfg := step.Config
	if b := attr(cfg, "bridge"); !b.IsKnown() && cfg.Type().IsObjectType() && cfg.IsKnown() && !cfg.IsNull() {
		attrs := cfg.AsValueMap()
		attrs["bridge"] = cty.NullVal(cty.String)
		cfg = cty.ObjectVal(attrs)
	}
	full := knownAll(cfg, "name", "mode", "bridge", "addresses", "dhcp", "hosts", "dns", "autostart", "active")
	spec, err := networkSpecFrom(cfg)
	if !full {
		spec, err = partialNetworkSpec(step)
	}
	if err != nil {
		add("%v", err)
	}
	if spec.Name != "" {
		for _, hn := range nets {
			if hn.doc.Name == spec.Name && pf.netDeletedBy(hn) == "" {
				add("network %q already exists on the host (uuid %s); choose another name, or import or delete that network", spec.Name, hn.uuid)
			}
		}
		if other := pf.otherStep(step, TypeNetwork, providers.ActionCreate, func(s providers.PreflightStep) bool {
			n, ok := knownAttr(s, "name")
			return ok && n == spec.Name
		}); other != "" {
			add("network %q is also created by %s in this plan", spec.Name, other)
		}
	}
	// Subnets: libvirt refuses to start a network whose subnet another
	// running network (or a host route) has; fiat checks the libvirt side
	// here, the host's routes are libvirt's to check at start.
	for _, a := range spec.Addresses {
		p, _, err := parseAddress(a)
		if err != nil {
			continue
		}
		for _, hn := range nets {
			for _, ip := range hn.doc.IPs {
				hp, err := netip.ParsePrefix(fmt.Sprintf("%s/%d", ip.Address, ipPrefix(ip)))
				if err == nil && hp.Masked().Overlaps(p) && pf.netDeletedBy(hn) == "" {
					add("address %s overlaps %s of network %q (uuid %s)", a, hp.Masked(), hn.doc.Name, hn.uuid)
				}
			}
		}
		if other := pf.otherStep(step, TypeNetwork, providers.ActionCreate, func(s providers.PreflightStep) bool {
			addrs, known, _ := stringList(s.Config, "addresses")
			return known && slices.ContainsFunc(addrs, func(b string) bool {
				q, _, err := parseAddress(b)
				return err == nil && q.Overlaps(p)
			})
		}); other != "" {
			add("address %s overlaps the addresses of the network %s creates in this plan", a, other)
		}
	}
	if spec.Bridge != "" {
		if spec.Mode == netBridge {
			if ifaces := pf.hostInterfaces(); len(ifaces) > 0 && !slices.Contains(ifaces, spec.Bridge) {
				add("bridge %q does not exist on the host; mode \"bridge\" uses an existing bridge", spec.Bridge)
			}
		} else {
			for _, hn := range nets {
				if hn.doc.Bridge != nil && hn.doc.Bridge.Name == spec.Bridge && pf.netDeletedBy(hn) == "" {
					add("bridge %q is already the bridge of network %q (uuid %s)", spec.Bridge, hn.doc.Name, hn.uuid)
				}
			}
			owned := false
			for _, hn := range nets {
				owned = owned || (hn.doc.Bridge != nil && hn.doc.Bridge.Name == spec.Bridge)
			}
			if !owned && slices.Contains(pf.hostInterfaces(), spec.Bridge) {
				add("bridge %q is already an interface of the host", spec.Bridge)
			}
			if other := pf.otherStep(step, TypeNetwork, providers.ActionCreate, func(s providers.PreflightStep) bool {
				b, ok := knownAttr(s, "bridge")
				return ok && b == spec.Bridge
			}); other != "" {
				add("bridge %q is also the bridge of the network %s creates in this plan", spec.Bridge, other)
			}
		}
	}
	if err == nil && full {
		x, err := marshalNetwork(newNetworkDoc(spec, formatUUID(newUUID("preflight", step.Address))))
		if err == nil {
			x, err = applyXSLT(ctx, x, spec.XSLT)
		}
		if err == nil {
			err = pf.p.validateXML("network", x)
		}
		if err != nil {
			add("%v", err)
		}
	}
	return problems
}

// partialNetworkSpec reads the known parts of a network's config, for the
// checks that can be made before everything is known.
func partialNetworkSpec(step providers.PreflightStep) (networkSpec, error) {
	var s networkSpec
	s.Name, _ = knownAttr(step, "name")
	s.Mode, _ = knownAttr(step, "mode")
	s.Bridge, _ = knownAttr(step, "bridge")
	s.Addresses, _, _ = stringList(step.Config, "addresses")
	return s, nil
}

func (pf *preflight) networkUpdate(step providers.PreflightStep) []string {
	prior, err := networkSpecFrom(step.Prior)
	if err != nil {
		return []string{"stored state: " + err.Error()}
	}
	if !step.Config.IsWhollyKnown() {
		return nil
	}
	next, err := networkSpecFrom(step.Config)
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	if p := networkChange(prior, next); p != "" {
		problems = append(problems, p)
	}
	if _, found, err := findNetwork(pf.l, step.ID, step.Prior); err != nil {
		problems = append(problems, err.Error())
	} else if !found {
		problems = append(problems, fmt.Sprintf("network %s (uuid %s) no longer exists on the host", prior.Name, step.ID))
	}
	return problems
}

// networkDelete refuses to take a network away from running domains that
// the plan keeps: their interfaces would stay unplugged.
func (pf *preflight) networkDelete(step providers.PreflightStep) []string {
	name, _, _ := strAttr(step.Prior, "name")
	domains, err := pf.hostDomains()
	if err != nil {
		return []string{err.Error()}
	}
	var problems []string
	for _, hd := range domains {
		if !hd.running || pf.domainDeletedBy(hd) != "" {
			continue
		}
		for _, ifc := range hd.doc.Devices.Interfaces {
			if ifc.Source != nil && ifc.Source.Network != nil && ifc.Source.Network.Network == name {
				problems = append(problems, fmt.Sprintf("network %q is used by running domain %q, which this plan keeps; its interface would be unplugged: replace or delete that domain in the same plan, or stop it first",
					name, hd.doc.Name))
				break
			}
		}
	}
	return problems
}
