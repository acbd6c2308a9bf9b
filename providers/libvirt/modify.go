package libvirt

import (
	"net/netip"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

var _ providers.PlanModifier = (*Provider)(nil)

// ModifyPlan predicts, with no connection, what libvirt will report for
// values config sets that libvirt normalises, so the plan shows them and
// compares them with the stored state as libvirt has them:
//
//	libvirt_domain  network_interface[*].mac  lower case, colons (libvirt lower-cases MACs)
//	libvirt_domain  network_interface[*].addresses  the prior's (from the leases), else unknown
//	libvirt_volume  size                      a qcow2 image's rounded up to whole KiB (qemu-img)
//
// Without it a MAC written in upper case, or a qcow2 size of 1536 bytes,
// would plan a change after every apply (and the size a refused shrink).
// Create and Update normalise their config the same way (canonicalMAC,
// volumeSpec.normalized). Unknown values are left as they are.
func (p *Provider) ModifyPlan(req providers.ModifyPlanRequest) providers.ModifyPlanResponse {
	v := req.Planned
	if v == cty.NilVal || v.IsNull() || !v.IsKnown() || !v.Type().IsObjectType() {
		return providers.ModifyPlanResponse{Planned: v}
	}
	switch req.Type {
	case TypeDomain:
		v = withAttr(v, "network_interface", plannedNICs(attr(v, "network_interface"), attr(req.Prior, "network_interface")))
	case TypeVolume:
		v = withAttr(v, "size", plannedVolumeSize(v, req.Prior))
	case TypeNetwork:
		v = withAttr(v, "dhcp", sameDHCP(attr(v, "dhcp"), attr(v, "addresses"), attr(req.Prior, "dhcp")))
	}
	return providers.ModifyPlanResponse{Planned: v}
}

// sameDHCP keeps prior's dhcp when it names, as ranges, exactly what
// upstream's dhcp { enabled = true } renders for these addresses (a
// network read back on import, or made by the upstream provider): the two
// forms are one network, and no change is planned.
func sameDHCP(planned, addrs, prior cty.Value) cty.Value {
	if !planned.IsWhollyKnown() || planned.IsNull() || planned.LengthInt() != 1 || !prior.IsWhollyKnown() || prior.IsNull() || !addrs.IsWhollyKnown() || addrs.IsNull() {
		return planned
	}
	p := planned.Index(cty.NumberIntVal(0))
	if e := attr(p, "enabled"); field(p, "start") != "" || field(p, "end") != "" || e.IsNull() || !e.True() {
		return planned
	}
	if prior.LengthInt() != addrs.LengthInt() {
		return planned
	}
	for i := 0; i < addrs.LengthInt(); i++ {
		pre, err := netip.ParsePrefix(addrs.Index(cty.NumberIntVal(int64(i))).AsString())
		if err != nil {
			return planned
		}
		start, end := defaultDHCPRange(pre)
		r := prior.Index(cty.NumberIntVal(int64(i)))
		if field(r, "start") != start.String() || field(r, "end") != end.String() {
			return planned
		}
	}
	return prior
}

// withAttr is obj with attribute name set to val; obj itself when it has
// no such attribute.
func withAttr(obj cty.Value, name string, val cty.Value) cty.Value {
	if !obj.Type().HasAttribute(name) || val.RawEquals(obj.GetAttr(name)) {
		return obj
	}
	attrs := obj.AsValueMap()
	attrs[name] = val
	return cty.ObjectVal(attrs)
}

// plannedNICs writes each known MAC of a network_interface list as
// libvirt will. A MAC config leaves to libvirt is the one libvirt gave the
// same interface before (prior, the stored state or an imported object's):
// leaving it out asks for any MAC, and that one is any.
func plannedNICs(nics, prior cty.Value) cty.Value {
	if nics.IsNull() || !nics.IsKnown() || !nics.Type().IsListType() || nics.LengthInt() == 0 {
		return nics
	}
	elems := nics.AsValueSlice()
	for i, nic := range elems {
		if !nic.IsKnown() || nic.IsNull() || !nic.Type().IsObjectType() {
			continue
		}
		if a := attr(nic, "addresses"); a.IsKnown() && a.IsNull() {
			// Read back from the leases: what the same interface had, else
			// known after apply.
			nic = withAttr(nic, "addresses", plannedAddresses(prior, i, nic))
			elems[i] = nic
		}
		mac := attr(nic, "mac")
		if mac.IsKnown() && mac.IsNull() {
			if was := priorMAC(prior, i, nic); was != cty.NilVal {
				elems[i] = withAttr(nic, "mac", was)
			}
			continue
		}
		if !mac.IsKnown() || mac.Type() != cty.String {
			continue
		}
		elems[i] = withAttr(nic, "mac", cty.StringVal(canonicalMAC(mac.AsString())))
	}
	return cty.ListVal(elems)
}

// plannedVolumeSize is the capacity libvirt will report for a volume's
// size (volumeCapacity); the size as it is when it, the format or the
// source is unknown, when the size comes from a source file, or when it is
// the prior state's (libvirt's own figure, e.g. a resize made outside
// fiat to a multiple of 512).
func plannedVolumeSize(v, prior cty.Value) cty.Value {
	size := attr(v, "size")
	n, known, set, err := sizeAttr(v, "size")
	format, formatKnown, ferr := strAttr(v, "format")
	source, sourceKnown, serr := strAttr(v, "source")
	if err != nil || ferr != nil || serr != nil || !known || !set || !formatKnown || !sourceKnown || source != "" {
		return size
	}
	if was, _, wasSet, _ := sizeAttr(prior, "size"); wasSet && was == n {
		return size
	}
	return cty.NumberUIntVal(volumeCapacity(n, orDefault(format, formatQcow2)))
}

// priorMAC is the MAC prior's interface i had, when it is the same
// interface (on the same network); cty.NilVal otherwise.
func priorMAC(prior cty.Value, i int, nic cty.Value) cty.Value {
	if prior == cty.NilVal || prior.IsNull() || !prior.IsKnown() || !prior.Type().IsListType() || prior.LengthInt() <= i {
		return cty.NilVal
	}
	was := prior.AsValueSlice()[i]
	if !was.IsKnown() || was.IsNull() || !was.Type().IsObjectType() {
		return cty.NilVal
	}
	same := sameNIC(was, nic)
	if mac := attr(was, "mac"); same && mac.IsKnown() && !mac.IsNull() && mac.Type() == cty.String {
		return mac
	}
	return cty.NilVal
}

// sameNIC says whether two network_interface objects use the same network
// or bridge.
func sameNIC(a, b cty.Value) bool {
	for _, n := range []string{"network_name", "network_id", "bridge"} {
		x, y := attr(a, n), attr(b, n)
		if !x.IsKnown() || !y.IsKnown() || field(a, n) != field(b, n) {
			return false
		}
	}
	return true
}

// plannedAddresses is a network_interface's addresses while config leaves
// them to the leases: prior's for the same interface, else unknown.
func plannedAddresses(prior cty.Value, i int, nic cty.Value) cty.Value {
	unknown := cty.UnknownVal(cty.List(cty.String))
	if prior == cty.NilVal || prior.IsNull() || !prior.IsKnown() || !prior.Type().IsListType() || prior.LengthInt() <= i {
		return unknown
	}
	was := prior.AsValueSlice()[i]
	if !was.IsKnown() || was.IsNull() || !was.Type().IsObjectType() || !sameNIC(was, nic) {
		return unknown
	}
	if a := attr(was, "addresses"); a.IsKnown() && a.Type().Equals(cty.List(cty.String)) {
		return a
	}
	return cty.NullVal(cty.List(cty.String)) // stored before addresses existed: the next read fills it
}
