package libvirt

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// hostDomain is a domain as found on the host (its persistent definition).
type hostDomain struct {
	d       golibvirt.Domain
	uuid    string
	doc     libvirtxml.Domain
	running bool
}

func (pf *preflight) hostDomains() ([]hostDomain, error) {
	if pf.domains != nil {
		return *pf.domains, nil
	}
	list, _, err := pf.l.ConnectListAllDomains(1, 0)
	if err != nil {
		return nil, readErr("list domains", err)
	}
	var out []hostDomain
	for _, d := range list {
		doc, _, err := domainDoc(pf.l, d)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if doc.Devices == nil {
			doc.Devices = &libvirtxml.DomainDeviceList{}
		}
		active, err := pf.l.DomainIsActive(d)
		if err != nil && !notFound(err) {
			return nil, readErr("read domain "+d.Name, err)
		}
		out = append(out, hostDomain{d: d, uuid: formatUUID(d.UUID), doc: doc, running: active == 1})
	}
	pf.domains = &out
	return out, nil
}

func (pf *preflight) domainDeletedBy(hd hostDomain) string {
	return pf.deleting(TypeDomain, hd.uuid, hd.doc.Name)
}

func (pf *preflight) domain(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		return pf.domainCreate(ctx, step)
	case providers.ActionUpdate:
		return pf.domainUpdate(ctx, step)
	case providers.ActionDelete:
		return nil // powered off and renamed; a domain that is gone is fine
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) domainCreate(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if name, ok := knownAttr(step, "name"); ok {
		domains, err := pf.hostDomains()
		if err != nil {
			return []string{err.Error()}
		}
		for _, hd := range domains {
			if hd.doc.Name == name && pf.domainDeletedBy(hd) == "" {
				add("domain %q already exists on the host (uuid %s); choose another name, or import or delete that domain", name, hd.uuid)
			}
		}
		if other := pf.otherStep(step, TypeDomain, providers.ActionCreate, func(s providers.PreflightStep) bool {
			n, ok := knownAttr(s, "name")
			return ok && n == name
		}); other != "" {
			add("domain %q is also created by %s in this plan", name, other)
		}
	}
	return append(problems, pf.domainSettings(ctx, step)...)
}

func (pf *preflight) domainUpdate(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	for _, a := range []string{"name", "firmware"} {
		prior, pk, _ := strAttr(step.Prior, a)
		next, nk, _ := strAttr(step.Config, a)
		if pk && nk && orDefault(prior, firmwareBIOS) != orDefault(next, firmwareBIOS) {
			problems = append(problems, fmt.Sprintf("a domain's %s cannot change in place (%q to %q); it must be replaced", a, prior, next))
		}
	}
	if _, found, err := findDomain(pf.l, step.ID, step.Prior); err != nil {
		problems = append(problems, err.Error())
	} else if !found {
		problems = append(problems, fmt.Sprintf("domain %s no longer exists on the host", step.ID))
	}
	return append(problems, pf.domainSettings(ctx, step)...)
}

// domainSettings checks a domain's config against the host: values are
// supported, disks and the cloud-init disk exist (or the plan creates
// them) and the plan does not delete them, networks exist or the plan
// creates them, the host has the memory, vCPUs and firmware asked for, and
// the XML marshals.
func (pf *preflight) domainSettings(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	names := []string{"name", "vcpu", "memory", "running", "autostart", "disk", "network_interface", "cloudinit", "firmware"}
	if !knownAll(step.Config, names...) {
		spec := partialDomainSpec(step)
		problems = append(problems, pf.domainRefs(step, spec)...)
		// The XML is not known yet; the stylesheet may be.
		problems = append(problems, xsltProblems(ctx, step.Config, "<domain type='kvm'><name>preflight</name></domain>")...)
		return problems
	}
	spec, err := domainSpecFrom(step.Config)
	if err != nil {
		return []string{err.Error()}
	}
	problems = append(problems, pf.domainRefs(step, spec)...)
	host, err := pf.p.conn.facts(ctx)
	if err != nil {
		return append(problems, err.Error())
	}
	if _, memKiB, _, _, _, _, _, _, err := pf.l.NodeGetInfo(); err == nil && spec.MemoryMiB*1024 > memKiB {
		add("memory %d MiB is more than the host has (%d MiB)", spec.MemoryMiB, memKiB/1024)
	}
	dtype := cmp.Or(spec.Type, host.domainType)
	if spec.Type == "kvm" && host.domainType != "kvm" {
		add("type \"kvm\": this host offers no KVM for %s (no /dev/kvm?); use type = \"qemu\" (emulation)", host.arch)
	}
	if max, err := pf.l.ConnectGetMaxVcpus([]string{dtype}); err == nil && max > 0 && spec.VCPU > uint64(max) {
		add("vcpu %d is more than a %s domain may have on this host (%d)", spec.VCPU, dtype, max)
	}
	if spec.Firmware == firmwareEFI {
		if ok, err := pf.firmwareSupported(host, firmwareEFI); err != nil {
			add("%v", err)
		} else if !ok {
			add("firmware \"efi\" is not available on the host (libvirt lists no UEFI firmware; install OVMF, e.g. the ovmf package)")
		}
	}
	doc := newDomainDoc(spec, formatUUID(newUUID("preflight", step.Address)), host)
	disks := make([]resolvedDisk, len(spec.Disks))
	for i := range disks {
		disks[i] = resolvedDisk{Path: fmt.Sprintf("/preflight/disk%d", i), Format: formatQcow2}
	}
	var ci *resolvedDisk
	if spec.CloudInit != "" {
		ci = &resolvedDisk{Path: "/preflight/cidata.iso", Format: formatRaw}
	}
	if spec.Ignition != "" {
		spec.IgnitionPath = "/preflight/ignition"
	}
	for i, n := range spec.NICs {
		if n.Network == "" && n.Bridge == "" {
			spec.NICs[i].Network = "preflight" // by network_id: domainRefs checked it
		}
	}
	setDomainSpec(&doc, spec, disks, ci)
	x, err := renderDomain(ctx, doc, spec)
	if err == nil {
		err = pf.p.validateXML("domain", x)
	}
	if err != nil {
		add("%v", err)
	}
	return problems
}

// partialDomainSpec reads the known references of a domain's config.
func partialDomainSpec(step providers.PreflightStep) domainSpec {
	var s domainSpec
	s.CloudInit, _ = knownAttr(step, "cloudinit")
	s.Ignition, _ = knownAttr(step, "coreos_ignition")
	if disks, known, _ := listAttr(step.Config, "disk"); known {
		for _, d := range disks {
			s.Disks = append(s.Disks, field(d, "volume_id"))
		}
	}
	if v := attr(step.Config, "disk"); !v.IsWhollyKnown() && v.IsKnown() && !v.IsNull() && v.CanIterateElements() {
		for it := v.ElementIterator(); it.Next(); {
			_, d := it.Element()
			if id := attr(d, "volume_id"); id.IsKnown() && !id.IsNull() {
				s.Disks = append(s.Disks, id.AsString())
			}
		}
	}
	if v := attr(step.Config, "network_interface"); v.IsKnown() && !v.IsNull() && v.CanIterateElements() {
		for it := v.ElementIterator(); it.Next(); {
			_, n := it.Element()
			if nn := attr(n, "network_name"); nn.IsKnown() && !nn.IsNull() {
				s.NICs = append(s.NICs, nicSpec{Network: nn.AsString()})
			} else if id := attr(n, "network_id"); id.IsKnown() && !id.IsNull() {
				s.NICs = append(s.NICs, nicSpec{NetworkID: id.AsString()})
			}
		}
	}
	return s
}

// domainRefs checks the volumes and networks a domain uses.
func (pf *preflight) domainRefs(step providers.PreflightStep, s domainSpec) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	vols := append([]string(nil), s.Disks...)
	if s.CloudInit != "" {
		vols = append(vols, s.CloudInit)
	}
	if s.Ignition != "" {
		vols = append(vols, ignitionKey(s.Ignition))
	}
	for _, id := range vols {
		if id == "" {
			continue
		}
		vol, err := lookupVolumeRef(pf.l, id)
		switch {
		case notFound(err):
			if pf.volumeCreatedWithID(id) == "" {
				add("volume %s does not exist on the host and no step of this plan creates it", id)
			}
		case err != nil:
			add("check volume %s: %v", id, readErr("look up volume", err))
		default:
			if by := pf.volumeDeletedBy(vol.Key); by != "" && pf.volumeCreatedWithID(id) == "" {
				add("volume %s is deleted by %s in this plan", id, by)
			}
		}
	}
	nets, err := pf.networks()
	if err != nil {
		return append(problems, err.Error())
	}
	for _, n := range s.NICs {
		if n.Network == "" && n.NetworkID != "" {
			found := false
			for i := range nets {
				if nets[i].doc.UUID == n.NetworkID {
					found, n.Network = true, nets[i].doc.Name
				}
			}
			if !found {
				add("network_id %s: no network on the host has that UUID", n.NetworkID)
				continue
			}
		}
		if n.Network == "" {
			continue
		}
		createdBy := pf.otherStep(step, TypeNetwork, providers.ActionCreate, func(s providers.PreflightStep) bool {
			name, ok := knownAttr(s, "name")
			return ok && name == n.Network
		})
		if createdBy != "" {
			continue
		}
		var found *hostNet
		for i := range nets {
			if nets[i].doc.Name == n.Network {
				found = &nets[i]
			}
		}
		switch {
		case found == nil:
			add("network %q does not exist on the host and no step of this plan creates it", n.Network)
		case pf.netDeletedBy(*found) != "":
			add("network %q is deleted by %s in this plan", n.Network, pf.netDeletedBy(*found))
		case !found.active:
			add("network %q exists but is not active; start it (virsh net-start %s)", n.Network, n.Network)
		}
	}
	return problems
}

// volumeCreatedWithID returns a step that creates a volume whose id will be
// id: a same-name replacement keeps a dir pool volume's key (its path).
func (pf *preflight) volumeCreatedWithID(id string) string {
	for _, s := range pf.steps {
		if s.Action != providers.ActionCreate || (s.Type != TypeVolume && s.Type != TypeCloudInit && s.Type != TypeIgnition) {
			continue
		}
		name, ok1 := knownAttr(s, "name")
		pool, ok2 := knownAttr(s, "pool")
		if !ok1 || !ok2 {
			continue
		}
		if hp := pf.hostPoolByName(pool); hp != nil && hp.path != "" && strings.TrimSuffix(hp.path, "/")+"/"+name == id {
			return s.Address
		}
	}
	return ""
}

// firmwareSupported asks libvirt's domain capabilities whether the host
// offers the firmware.
func (pf *preflight) firmwareSupported(host *hostFacts, fw string) (bool, error) {
	x, err := pf.l.ConnectGetDomainCapabilities(nil, []string{host.arch}, nil, []string{host.domainType}, 0)
	if err != nil {
		return false, readErr("read domain capabilities", err)
	}
	var caps libvirtxml.DomainCaps
	if err := caps.Unmarshal(x); err != nil {
		return false, fmt.Errorf("read domain capabilities: parse XML: %w", err)
	}
	if caps.OS == nil {
		return false, nil
	}
	for _, e := range caps.OS.Enums {
		if e.Name == "firmware" {
			for _, v := range e.Values {
				if v == fw {
					return true, nil
				}
			}
		}
	}
	return false, nil
}
