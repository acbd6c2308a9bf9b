package libvirt

import (
	"context"
	"fmt"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// libvirt_domain: a virtual machine.
//
//	create: define (UUID chosen up front, XML validated by libvirt),
//	        autostart, start; wait for DHCP leases where asked.
//	update: redefine with the same UUID (never undefined first: a failed
//	        define leaves the old definition in place). vcpu, memory, disks,
//	        interfaces and cloudinit take effect at the next start of a
//	        running domain (the schema marks them RestartNeeded); running
//	        and autostart take effect at once. Undo redefines the previous
//	        inactive XML and restores running and autostart.
//	retire: autostart off, power off, rename to <name>.fiat-retired-<uuid
//	        prefix>: the definition (UUID, disks, MACs) stays, the name is
//	        free for a replacement. Undo renames it back and starts it if it
//	        ran.
//	purge:  power off and undefine by UUID (with managed save, snapshot and
//	        NVRAM metadata). Disks are volumes of their own; they stay.
//
// Powering off terminates QEMU gracefully (SIGTERM: it flushes its disk
// caches); the guest OS is not asked to shut down first.
var domainSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the domain on the host."},
		"vcpu": {Type: cty.Number, Optional: true, Default: cty.NumberIntVal(1), RestartNeeded: true,
			Description: "Number of virtual CPUs."},
		"memory": {Type: cty.Number, Optional: true, Default: cty.NumberIntVal(defaultMemoryMiB), RestartNeeded: true,
			Description: "Memory in MiB."},
		"running": {Type: cty.Bool, Optional: true, Default: cty.True,
			Description: "Whether the domain runs; changing it starts or powers off the domain."},
		"autostart": {Type: cty.Bool, Optional: true, Default: cty.False,
			Description: "Start the domain when libvirtd starts."},
		"disk": {Type: cty.List(diskType), Optional: true, RestartNeeded: true, LocalPathNested: []string{"file"},
			Description: "Disks in boot order, [{ volume_id = libvirt_volume.root.id }]: virtio vda, vdb, ...; or { file = \"x.iso\" }: a file on the host as a read-only SATA CD-ROM (sdb, sdc, ...; at most 4; relative to the module)."},
		"network_interface": {Type: cty.List(nicType), Optional: true, RestartNeeded: true, VolatileNested: []string{"addresses"},
			Description: "Interfaces, [{ network_name = libvirt_network.lan.name (or network_id = libvirt_network.lan.id, or bridge = \"br0\": a host bridge), mac = \"52:54:00:..\" (optional: derived from the UUID; planned as libvirt writes it, lower case with colons), wait_for_lease = true (optional: create waits for a DHCP lease), hostname (kept, not sent to the network yet) }]; each reads back addresses, the IPv4 addresses it leased."},
		"cloudinit": {Type: cty.String, Optional: true, RestartNeeded: true,
			Description: "Id of a libvirt_cloudinit_disk, attached as a CD-ROM."},
		"firmware": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(firmwareBIOS),
			Description: `"bios", "efi" (libvirt picks the host's OVMF), or the path of a UEFI code image on the host, as upstream writes it (e.g. "/usr/share/OVMF/OVMF_CODE.fd"; loaded read-only as pflash).`},
		"nvram": {Type: cty.List(nvramType), Optional: true, ForceNew: true,
			Description: `With firmware set to a path: nvram { file = "/var/lib/libvirt/qemu/nvram/vm_VARS.fd", template = "/usr/share/OVMF/OVMF_VARS.fd" } backs the UEFI variables (the template seeds a new file). Left out, libvirt makes one.`},
		"id": {Type: cty.String, Computed: true,
			Description: "The domain's UUID."},
		"addresses": {Type: cty.List(cty.String), Computed: true, Volatile: true,
			Description: "The IPv4 address of each network_interface from its DHCP lease, \"\" while it has none."},
		"description": {Type: cty.String, Optional: true,
			Description: "Free text kept in the domain's <description>."},
		"qemu_agent": {Type: cty.Bool, Optional: true, RestartNeeded: true,
			Description: "Add the QEMU guest agent's virtio channel (org.qemu.guest_agent.0)."},
		"cpu": {Type: cty.List(cpuType), Optional: true, RestartNeeded: true,
			Description: "cpu { mode = \"host-passthrough\" } (or host-model, ...): the CPU model mode; libvirt's default when left out."},
		"boot_device": {Type: cty.List(bootType), Optional: true, RestartNeeded: true,
			Description: "boot_device { dev = [\"cdrom\", \"hd\", \"network\"] }: boot order; hd when left out."},
		"graphics": {Type: cty.List(graphicsType), Optional: true, RestartNeeded: true,
			Description: "graphics { type = \"spice\" | \"vnc\" (spice), listen_type = \"none\" | \"address\" | \"network\" | \"socket\" (none), autoport (true), listen_address }: none when left out."},
		"xml": {Type: cty.List(xmlType), Optional: true, ForceNew: true,
			Description: "xml { xslt = file(\"nic.xsl\") }: an XSLT stylesheet applied to the domain XML fiat generates before libvirt defines it (runs xsltproc where fiat runs)."},
		"type": {Type: cty.String, Optional: true, Computed: true, ForceNew: true,
			Description: `The domain type: "kvm" (hardware virtualisation) or "qemu" (emulation, slower, for hosts without a usable KVM); left out, kvm where the host offers it. Read back either way.`},
		"coreos_ignition": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "Id of a libvirt_ignition: its config reaches the guest through QEMU's fw_cfg (Fedora CoreOS, Flatcar)."},
		"fw_cfg_name": {Type: cty.String, Optional: true, ForceNew: true,
			Description: `The fw_cfg entry coreos_ignition is given as: "opt/com.coreos/config" when left out; Flatcar reads "opt/org.flatcar-linux/config".`},
		"console": {Type: cty.List(consoleType), Optional: true, RestartNeeded: true,
			Description: "console { type = \"pty\" (or file, dev, pipe, unix with source_path), target_type = \"serial\" | \"virtio\", target_port = \"0\" }: replace the default console (one serial console on a pty)."},
	},
	Delete: providers.Lossy, // the undo boots it again: its running state is lost, not its disks
	Update: providers.Reversible,
}

// leaseTimeout bounds the wait for a DHCP lease (wait_for_lease).
var leaseTimeout = 5 * time.Minute

// findDomain looks a domain up by UUID, or by the name in state when id is
// empty.
func findDomain(l *golibvirt.Libvirt, id string, state cty.Value) (golibvirt.Domain, bool, error) {
	return findObject("domain", id, state, l.DomainLookupByUUID, l.DomainLookupByName)
}

// domainDoc reads a domain's persistent definition.
func domainDoc(l *golibvirt.Libvirt, d golibvirt.Domain) (libvirtxml.Domain, string, error) {
	var doc libvirtxml.Domain
	x, err := l.DomainGetXMLDesc(d, golibvirt.DomainXMLInactive|golibvirt.DomainXMLSecure)
	if err != nil {
		return doc, "", readErr("read domain "+d.Name, err)
	}
	if err := doc.Unmarshal(x); err != nil {
		return doc, "", fmt.Errorf("read domain %s: parse XML: %w", d.Name, err)
	}
	return doc, x, nil
}

// renderDomain is the XML fiat defines a new domain with: doc marshalled
// and passed through the spec's stylesheet, if any. Only at create, as
// upstream: an update starts from libvirt's XML, which holds what the
// stylesheet changed (running it again would add its additions twice).
func renderDomain(ctx context.Context, doc libvirtxml.Domain, spec domainSpec) (string, error) {
	x, err := marshalDomain(doc)
	if err != nil {
		return "", err
	}
	return applyXSLT(ctx, x, spec.XSLT)
}

func marshalDomain(doc libvirtxml.Domain) (string, error) {
	x, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal domain XML: %w", err)
	}
	return x, nil
}

// domainRunState reads whether a domain runs and autostarts.
func domainRunState(l *golibvirt.Libvirt, d golibvirt.Domain, op string) (running, autostart bool, err error) {
	active, err := l.DomainIsActive(d)
	if err != nil {
		return false, false, readErr(op, err)
	}
	auto, err := l.DomainGetAutostart(d)
	if err != nil {
		return false, false, readErr(op, err)
	}
	return active == 1, auto == 1, nil
}

func domainState(l *golibvirt.Libvirt, d golibvirt.Domain, prior cty.Value) (cty.Value, error) {
	op := "read domain " + d.Name
	doc, _, err := domainDoc(l, d)
	if err != nil {
		return cty.NilVal, err
	}
	running, autostart, err := domainRunState(l, d, op)
	if err != nil {
		return cty.NilVal, err
	}
	f := domainFacts{uuid: formatUUID(d.UUID), running: running, autostart: autostart, addresses: map[string]string{},
		keyOf: func(path string) string {
			if vol, err := l.StorageVolLookupByPath(path); err == nil {
				return vol.Key
			}
			return path
		},
		networkOf: func(id string) string {
			if u, err := parseUUID(id); err == nil {
				if n, err := l.NetworkLookupByUUID(u); err == nil {
					return n.Name
				}
			}
			return ""
		}}
	if running {
		ifaces, err := l.DomainInterfaceAddresses(d, uint32(golibvirt.DomainInterfaceAddressesSrcLease), 0)
		if err != nil && !notActive(err) {
			return cty.NilVal, readErr(op+": interface addresses", err)
		}
		for _, ifc := range ifaces {
			if len(ifc.Hwaddr) == 0 {
				continue
			}
			for _, a := range ifc.Addrs {
				if a.Type == 0 { // IPv4
					f.addresses[strings.ToLower(ifc.Hwaddr[0])] = a.Addr
					break
				}
			}
		}
	}
	return domainStateFrom(doc, f, prior), nil
}

// resolveDomainDisks finds the files of a spec's disks and cloud-init disk,
// and the names of the networks its interfaces give by network_id (set in
// s.NICs, which the caller's spec shares).
func resolveDomainDisks(l *golibvirt.Libvirt, s *domainSpec) ([]resolvedDisk, *resolvedDisk, error) {
	if err := resolveNetworkIDs(l, s); err != nil {
		return nil, nil, err
	}
	if s.Ignition != "" {
		ign, err := resolveVolume(l, ignitionKey(s.Ignition), "coreos_ignition volume")
		if err != nil {
			return nil, nil, err
		}
		s.IgnitionPath = ign.Path
	}
	var disks []resolvedDisk
	for _, id := range s.Disks {
		d, err := resolveVolume(l, id, "disk volume")
		if err != nil {
			return nil, nil, err
		}
		disks = append(disks, d)
	}
	if s.CloudInit == "" {
		return disks, nil, nil
	}
	ci, err := resolveVolume(l, s.CloudInit, "cloudinit disk")
	if err != nil {
		return nil, nil, err
	}
	return disks, &ci, nil
}

func (p *Provider) createDomain(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, err := domainSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create domain %s: %w", req.Address, err)
	}
	op := "create domain " + spec.Name
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	host, err := p.conn.facts(ctx)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	disks, ci, err := resolveDomainDisks(l, &spec)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	uuid := formatUUID(newUUID(req.OpID, req.Address))
	doc := newDomainDoc(spec, uuid, host)
	setDomainSpec(&doc, spec, disks, ci)
	x, err := renderDomain(ctx, doc, spec)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	c := &creation{op: op, id: uuid, undo: &undoRecord{Op: undoCreateDomain, UUID: uuid, Name: spec.Name}}
	if err := ctxErr(ctx, op); err != nil {
		return providers.CreateResponse{}, err
	}
	d, err := l.DomainDefineXMLFlags(x, golibvirt.DomainDefineValidate)
	if err != nil {
		return c.makeFailed(err)
	}
	c.cleanUp = func() error { return removeDomain(l, d, "clean up domain "+spec.Name) }
	if spec.Autostart {
		if err := l.DomainSetAutostart(d, 1); err != nil {
			return c.fail(mutErr(op+": autostart", err))
		}
	}
	if spec.Running {
		if err := ctxErr(ctx, op); err != nil {
			return c.fail(err)
		}
		if err := l.DomainCreate(d); err != nil {
			return c.fail(mutErr(op+": start", err))
		}
		if err := waitForLeases(ctx, l, d, doc, spec, op); err != nil {
			return c.fail(err)
		}
	}
	state, err := domainState(l, d, req.Config)
	if err != nil {
		return c.fail(err)
	}
	return c.done(state)
}

// waitForLeases waits until every interface with wait_for_lease has an
// IPv4 DHCP lease, up to leaseTimeout (or ctx).
func waitForLeases(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, doc libvirtxml.Domain, s domainSpec, op string) error {
	var macs []string
	for i, n := range s.NICs {
		if n.WaitForLease && i < len(doc.Devices.Interfaces) {
			macs = append(macs, strings.ToLower(doc.Devices.Interfaces[i].MAC.Address))
		}
	}
	if len(macs) == 0 {
		return nil
	}
	ctx, cancel := context.WithTimeout(ctx, leaseTimeout)
	defer cancel()
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		ifaces, err := l.DomainInterfaceAddresses(d, uint32(golibvirt.DomainInterfaceAddressesSrcLease), 0)
		if err != nil {
			return readErr(op+": wait for DHCP leases", err)
		}
		missing := append([]string(nil), macs...)
		for _, ifc := range ifaces {
			for _, a := range ifc.Addrs {
				if a.Type == 0 && len(ifc.Hwaddr) > 0 {
					missing = remove(missing, strings.ToLower(ifc.Hwaddr[0]))
				}
			}
		}
		if len(missing) == 0 {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s: no DHCP lease for interface %s within %v (wait_for_lease): %w", op, strings.Join(missing, ", "), leaseTimeout, ctx.Err())
		case <-tick.C:
		}
	}
}

func remove(s []string, x string) []string {
	out := s[:0]
	for _, e := range s {
		if e != x {
			out = append(out, e)
		}
	}
	return out
}

// powerOff stops a running domain: QEMU is terminated gracefully, then
// forcibly if it does not exit.
func powerOff(l *golibvirt.Libvirt, d golibvirt.Domain, op string) error {
	err := l.DomainDestroyFlags(d, golibvirt.DomainDestroyGraceful)
	if err == nil || notActive(err) {
		return nil
	}
	if isOutcomeUnknown(mutErr(op, err)) {
		return mutErr(op, err)
	}
	if err := l.DomainDestroy(d); err != nil && !notActive(err) {
		return mutErr(op+": power off", err)
	}
	return nil
}

// removeDomain powers a domain off and undefines it; each step tolerates
// having been done.
func removeDomain(l *golibvirt.Libvirt, d golibvirt.Domain, op string) error {
	if err := powerOff(l, d, op); err != nil && !notFound(err) {
		return err
	}
	flags := golibvirt.DomainUndefineManagedSave | golibvirt.DomainUndefineSnapshotsMetadata |
		golibvirt.DomainUndefineNvram | golibvirt.DomainUndefineCheckpointsMetadata
	if err := l.DomainUndefineFlags(d, flags); err != nil && !notFound(err) {
		return mutErr(op, err)
	}
	return nil
}

func (p *Provider) undoCreateDomain(ctx context.Context, u undoRecord) error {
	op := "undo create domain " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return removeFound(func() (golibvirt.Domain, bool, error) { return findDomain(l, u.UUID, cty.NilVal) },
		func(d golibvirt.Domain) error { return removeDomain(l, d, op) })
}

func (p *Provider) updateDomain(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	prior, err := domainSpecFrom(req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update domain %s: prior state: %w", req.Address, err)
	}
	next, err := domainSpecFrom(req.Config)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update domain %s: %w", req.Address, err)
	}
	op := "update domain " + prior.Name
	if prior.Name != next.Name || prior.Firmware != next.Firmware {
		return providers.UpdateResponse{}, fmt.Errorf("%s: a domain's name and firmware cannot change in place; it must be replaced", op)
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	d, found, err := findDomain(l, req.ID, req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !found {
		return providers.UpdateResponse{}, fmt.Errorf("%s: domain %s no longer exists", op, req.ID)
	}
	doc, priorXML, err := domainDoc(l, d)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	running, autostart, err := domainRunState(l, d, op)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	disks, ci, err := resolveDomainDisks(l, &next)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	undo := undoRecord{Op: undoUpdateDomain, UUID: formatUUID(d.UUID), Name: d.Name, XML: priorXML,
		WasActive: running, Autostart: autostart}.encode()
	setDomainSpec(&doc, next, disks, ci)
	x, err := marshalDomain(doc) // doc is libvirt's: the stylesheet's changes are in it already
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	// From here the Undo goes back with any error.
	if err := setDomain(ctx, l, d, x, next.Running, next.Autostart, op); err != nil {
		return providers.UpdateResponse{Undo: undo}, err
	}
	if next.Running && !running {
		if err := waitForLeases(ctx, l, d, doc, next, op); err != nil {
			return providers.UpdateResponse{Undo: undo}, err
		}
	}
	state, err := domainState(l, d, req.Config)
	if err != nil {
		return providers.UpdateResponse{Undo: undo}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo}, nil
}

// setDomain redefines a domain from x (same UUID and name: libvirt replaces
// the persistent definition in one step, so a refused define leaves the old
// one), then sets autostart and starts or powers it off.
func setDomain(ctx context.Context, l *golibvirt.Libvirt, d golibvirt.Domain, x string, running, autostart bool, op string) error {
	cur, _, err := domainDoc(l, d)
	if err != nil {
		return err
	}
	curX, err := marshalDomain(cur)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	var want libvirtxml.Domain
	if err := want.Unmarshal(x); err != nil {
		return fmt.Errorf("%s: parse XML: %w", op, err)
	}
	wantX, err := marshalDomain(want)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if wantX != curX {
		if _, err := l.DomainDefineXMLFlags(x, golibvirt.DomainDefineValidate); err != nil {
			return mutErr(op, err)
		}
	}
	isRunning, isAutostart, err := domainRunState(l, d, op)
	if err != nil {
		return err
	}
	if isAutostart != autostart {
		if err := l.DomainSetAutostart(d, boolInt(autostart)); err != nil {
			return mutErr(op+": autostart", err)
		}
	}
	switch {
	case running && !isRunning:
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		if err := l.DomainCreate(d); err != nil {
			return mutErr(op+": start", err)
		}
	case !running && isRunning:
		return powerOff(l, d, op)
	}
	return nil
}

func (p *Provider) undoUpdateDomain(ctx context.Context, u undoRecord) error {
	op := "undo update domain " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	d, found, err := findDomain(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: domain %s (uuid %s) no longer exists; its previous definition cannot be restored", op, u.Name, u.UUID)
	}
	return setDomain(ctx, l, d, u.XML, u.WasActive, u.Autostart, op)
}

// retiredDomainName is the name a retire gives a domain.
func retiredDomainName(name, uuid string) string {
	return name + ".fiat-retired-" + strings.ReplaceAll(uuid, "-", "")[:8]
}

func (p *Provider) retireDomain(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	name := objectName(req.ID, req.State)
	op := "retire domain " + name
	l, err := p.client(ctx)
	if err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	d, found, err := findDomain(l, req.ID, req.State)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	if !found {
		return providers.RetireResponse{Undo: noUndo}, nil
	}
	running, autostart, err := domainRunState(l, d, op)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	uuid := formatUUID(d.UUID)
	retired := retiredDomainName(d.Name, uuid)
	if strings.Contains(d.Name, ".fiat-retired-") { // retired already (a replay)
		retired = d.Name
		if orig, _, _ := strAttr(req.State, "name"); orig != "" {
			name = orig
		}
	} else {
		name = d.Name
	}
	resp := providers.RetireResponse{Undo: undoRecord{Op: undoRetireDomain, UUID: uuid, Name: name, Retired: retired,
		WasActive: running, Autostart: autostart}.encode()}
	if err := ctx.Err(); err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	if autostart {
		if err := l.DomainSetAutostart(d, 0); err != nil {
			return resp, mutErr(op+": autostart", err)
		}
	}
	if running {
		if err := powerOff(l, d, op); err != nil {
			return resp, err
		}
	}
	if d.Name != retired {
		if _, err := l.DomainRename(d, []string{retired}, 0); err != nil {
			return resp, mutErr(op+": rename to "+retired, err)
		}
	}
	return resp, nil
}

func (p *Provider) undoRetireDomain(ctx context.Context, u undoRecord) error {
	op := "undo retire domain " + u.Name
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	d, found, err := findDomain(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: domain %s (uuid %s) no longer exists; it cannot be brought back", op, u.Name, u.UUID)
	}
	if d.Name != u.Name {
		if _, err := l.DomainRename(d, []string{u.Name}, 0); err != nil {
			return mutErr(op+": rename back from "+d.Name, err)
		}
		if d, err = l.DomainLookupByUUID(d.UUID); err != nil {
			return readErr(op, err)
		}
	}
	running, autostart, err := domainRunState(l, d, op)
	if err != nil {
		return err
	}
	if u.Autostart && !autostart {
		if err := l.DomainSetAutostart(d, 1); err != nil {
			return mutErr(op+": autostart", err)
		}
	}
	if u.WasActive && !running {
		if err := l.DomainCreate(d); err != nil {
			return mutErr(op+": start", err)
		}
	}
	return nil
}

func (p *Provider) purgeDomain(ctx context.Context, req providers.PurgeRequest) error {
	op := "purge domain " + objectName(req.ID, req.State)
	if req.ID == "" {
		return nil // nothing to tell it from a domain that took its name
	}
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	d, found, err := findDomain(l, req.ID, cty.NilVal)
	if err != nil || !found {
		return err
	}
	return removeDomain(l, d, op)
}

func (p *Provider) readDomain(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read domain %s: %w", req.Address, err)
	}
	return readFound(func() (golibvirt.Domain, bool, error) { return findDomain(l, req.ID, req.State) },
		func(d golibvirt.Domain) (cty.Value, error) { return domainState(l, d, req.State) })
}
