package libvirt

import (
	"cmp"
	"crypto/sha256"
	"errors"
	"fmt"
	"net"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"
)

// Nested attribute types of libvirt_domain.
var (
	nvramType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"file": cty.String, "template": cty.String}, []string{"template"})
	// disk: a volume (volume_id), or upstream's disk { file = "x.iso" }, a
	// file on the host attached as a read-only CD-ROM.
	diskType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"volume_id": cty.String, "file": cty.String}, []string{"volume_id", "file"})
	nicType  = cty.ObjectWithOptionalAttrs(map[string]cty.Type{
		"network_name": cty.String, "mac": cty.String, "wait_for_lease": cty.Bool,
		"network_id": cty.String, "bridge": cty.String, "hostname": cty.String, "addresses": cty.List(cty.String),
	}, []string{"network_name", "mac", "wait_for_lease", "network_id", "bridge", "hostname", "addresses"})
)

const (
	firmwareBIOS = "bios"
	firmwareEFI  = "efi"
)

type nicSpec struct {
	Network, MAC string
	WaitForLease bool
	// NetworkID is network_id (a network's UUID; Network is filled in from
	// it at create and update), Bridge a host bridge instead of a network.
	NetworkID, Bridge, Hostname string
	Addresses                   []string // set in config: refused (not yet)
}

// domainSpec is a libvirt_domain's config, checked.
type domainSpec struct {
	Name               string
	VCPU, MemoryMiB    uint64
	Running, Autostart bool
	Disks              []string // volume ids (keys) or paths
	CDROMs             []string // disk { file }: files on the host, read-only
	NICs               []nicSpec
	CloudInit          string // a libvirt_cloudinit_disk id, "" for none
	Firmware           string // bios, efi, or a UEFI code image's path
	NVRAM, NVTemplate  string // nvram { file, template }

	// The upstream provider's attributes (domain_upstream.go).
	Description string
	QemuAgent   bool
	CPUMode     string
	Boot        []string // nil: hd
	Graphics    []graphicsSpec
	Consoles    []consoleSpec
	ConsolesSet bool   // console given: it replaces the default serial console
	XSLT        string // xml { xslt }: applied to the generated XML (xslt.go)
	// coreos_ignition: a libvirt_ignition id, handed to QEMU as fw_cfg
	// named FwCfgName ("" for upstream's default); IgnitionPath is its
	// file, once resolved.
	Ignition, FwCfgName, IgnitionPath string
	// Type is the domain type config asks for ("kvm", "qemu"); "" lets
	// the host decide (kvm where it has it).
	Type string
}

func domainSpecFrom(v cty.Value) (domainSpec, error) {
	m, err := knownStrings(v, map[string]string{"firmware": firmwareBIOS}, "name", "cloudinit", "firmware")
	if err != nil {
		return domainSpec{}, err
	}
	s := domainSpec{Name: m["name"], CloudInit: m["cloudinit"], Firmware: m["firmware"]}
	var known bool
	if s.VCPU, known, err = uintAttr(v, "vcpu", 1); err != nil || !known {
		return s, orUnknown(err, "vcpu")
	}
	if s.MemoryMiB, known, err = uintAttr(v, "memory", defaultMemoryMiB); err != nil || !known {
		return s, orUnknown(err, "memory")
	}
	if s.Running, known, err = boolAttr(v, "running", true); err != nil || !known {
		return s, orUnknown(err, "running")
	}
	if s.Autostart, known, err = boolAttr(v, "autostart", false); err != nil || !known {
		return s, orUnknown(err, "autostart")
	}
	disks, known, err := listAttr(v, "disk")
	if err != nil || !known {
		return s, orUnknown(err, "disk")
	}
	for i, d := range disks {
		vol, file := field(d, "volume_id"), field(d, "file")
		switch {
		case file != "" && vol != "":
			return s, fmt.Errorf("disk %d: give volume_id or file, not both", i)
		case file != "":
			s.CDROMs = append(s.CDROMs, file)
		default:
			s.Disks = append(s.Disks, vol)
		}
	}
	nvrams, known, err := listAttr(v, "nvram")
	if err != nil || !known {
		return s, orUnknown(err, "nvram")
	}
	for _, n := range nvrams {
		s.NVRAM, s.NVTemplate = field(n, "file"), field(n, "template")
	}
	nics, known, err := listAttr(v, "network_interface")
	if err != nil || !known {
		return s, orUnknown(err, "network_interface")
	}
	for _, n := range nics {
		wait, _, _ := boolAttr(n, "wait_for_lease", false)
		addrs, _, _ := stringList(n, "addresses")
		s.NICs = append(s.NICs, nicSpec{Network: field(n, "network_name"), MAC: canonicalMAC(field(n, "mac")), WaitForLease: wait,
			NetworkID: field(n, "network_id"), Bridge: field(n, "bridge"), Hostname: field(n, "hostname"), Addresses: addrs})
	}
	if err := s.readUpstream(v); err != nil {
		return s, err
	}
	if problems := s.check(); len(problems) > 0 {
		return s, errors.New(problems[0])
	}
	return s, nil
}

const defaultMemoryMiB = 512

func (s domainSpec) check() []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	if p := checkName("domain", s.Name); p != "" {
		add("%s", p)
	}
	if strings.Contains(s.Name, "/") {
		add("domain name %q contains a /", s.Name)
	}
	if s.Type != "" && s.Type != "kvm" && s.Type != "qemu" {
		add("type %q: the QEMU driver runs \"kvm\" or \"qemu\" domains", s.Type)
	}
	if s.VCPU == 0 {
		add("vcpu must be at least 1")
	}
	if s.MemoryMiB == 0 {
		add("memory must be at least 1 (MiB)")
	}
	if s.Firmware != firmwareBIOS && s.Firmware != firmwareEFI && !strings.HasPrefix(s.Firmware, "/") {
		add("firmware %q is not supported; use %q, %q, or the absolute path of a UEFI code image on the host", s.Firmware, firmwareBIOS, firmwareEFI)
	}
	if s.NVRAM != "" && !strings.HasPrefix(s.Firmware, "/") {
		add("nvram needs firmware set to the path of a UEFI code image (with %q, libvirt keeps the variables itself)", s.Firmware)
	}
	for _, p := range []string{s.NVRAM, s.NVTemplate} {
		if p != "" && !strings.HasPrefix(p, "/") {
			add("nvram path %q: give an absolute path on the libvirt host", p)
		}
	}
	for i, d := range s.Disks {
		if d == "" {
			add("disk %d: volume_id is empty (give volume_id, or file for a CD-ROM image)", i)
		}
	}
	if n := len(s.CDROMs); n > maxCDROMs {
		add("%d disks with file: at most %d CD-ROMs (the cloud-init disk takes one more)", n, maxCDROMs)
	}
	for _, f := range s.CDROMs {
		if !strings.HasPrefix(f, "/") {
			add("disk file %q: give an absolute path on the libvirt host (e.g. \"${abspath(path.module)}/image.iso\")", f)
		}
	}
	s.checkUpstream(add)
	for i, n := range s.NICs {
		if len(n.Addresses) > 0 {
			add("network_interface %d: addresses set in config (a static DHCP reservation) is not supported yet; leave it out (it reads the leased addresses) and reserve the address with the network's hosts", i)
		}
		if n.MAC != "" {
			if mac, err := net.ParseMAC(n.MAC); err != nil || len(mac) != 6 {
				add("network_interface %d: %q is not a MAC address like 52:54:00:12:34:56", i, n.MAC)
			}
		}
	}
	return problems
}

// canonicalMAC writes a MAC the way libvirt stores it: lower case, colons
// (libvirt lower-cases what it is given, and refuses dashes). Anything that
// is not a MAC is left for check to report.
func canonicalMAC(s string) string {
	if mac, err := net.ParseMAC(s); err == nil && len(mac) == 6 {
		return mac.String()
	}
	return s
}

// resolvedDisk is a disk's file as libvirt knows it.
type resolvedDisk struct{ Path, Format string }

// resolveVolume finds the file and format of a volume id (key) or path.
func resolveVolume(l *golibvirt.Libvirt, id, what string) (resolvedDisk, error) {
	vol, err := lookupVolumeRef(l, id)
	if err != nil {
		return resolvedDisk{}, readErr(fmt.Sprintf("look up %s %s", what, id), err)
	}
	doc, err := volumeXMLDoc(l, vol, "read volume "+vol.Name)
	if err != nil {
		return resolvedDisk{}, err
	}
	d := resolvedDisk{Path: doc.Target.Path, Format: formatRaw}
	if doc.Target.Format != nil && (doc.Target.Format.Type == formatQcow2 || doc.Target.Format.Type == formatRaw) {
		d.Format = doc.Target.Format.Type
	}
	return d, nil
}

// deviceNames are disk targets: vda, vdb, ... (virtio) in disk order.
func diskTarget(i int) string {
	if i < 26 {
		return "vd" + string(rune('a'+i))
	}
	return fmt.Sprintf("vd%c%c", rune('a'+i/26-1), rune('a'+i%26))
}

const cloudInitTarget = "sda" // a SATA CD-ROM: works on the pc and q35 machines

// maxCDROMs bounds disk { file } CD-ROMs (sdb, sdc, ...), as upstream does.
const maxCDROMs = 4

// cdromTarget is the i-th disk { file } CD-ROM's SATA device.
func cdromTarget(i int) string { return "sd" + string(rune('b'+i)) }

// newDomainDoc is the XML of a new domain; setDomainSpec fills in the parts
// config owns.
func newDomainDoc(s domainSpec, uuid string, host *hostFacts) libvirtxml.Domain {
	pty := &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
	doc := libvirtxml.Domain{
		Type: cmp.Or(s.Type, host.domainType),
		Name: s.Name,
		UUID: uuid,
		OS: &libvirtxml.DomainOS{
			Type:        &libvirtxml.DomainOSType{Arch: host.arch, Type: "hvm"},
			BootDevices: []libvirtxml.DomainBootDevice{{Dev: "hd"}},
		},
		Features: &libvirtxml.DomainFeatureList{ACPI: &libvirtxml.DomainFeature{}, APIC: &libvirtxml.DomainFeatureAPIC{}},
		Devices: &libvirtxml.DomainDeviceList{
			Serials:  []libvirtxml.DomainSerial{{Source: pty}},
			Consoles: []libvirtxml.DomainConsole{{Source: pty, Target: &libvirtxml.DomainConsoleTarget{Type: "serial"}}},
		},
	}
	switch {
	case s.Firmware == firmwareEFI:
		doc.OS.Firmware = firmwareEFI
	case strings.HasPrefix(s.Firmware, "/"):
		doc.OS.Loader = &libvirtxml.DomainLoader{Path: s.Firmware, Readonly: "yes", Type: "pflash"}
		if s.NVRAM != "" {
			doc.OS.NVRam = &libvirtxml.DomainNVRam{NVRam: s.NVRAM, Template: s.NVTemplate}
		}
	}
	return doc
}

// setDomainSpec sets what config owns on a domain's XML: memory, vCPUs,
// file disks, the cloud-init CD-ROM and network interfaces. A device that
// stays (same file, same MAC) keeps what libvirt added to it (its PCI
// address, model), so a redefine changes no more than config did.
// cloudinit is nil when there is none.
func setDomainSpec(doc *libvirtxml.Domain, s domainSpec, disks []resolvedDisk, cloudinit *resolvedDisk) {
	kib := uint(s.MemoryMiB * 1024)
	doc.Memory = &libvirtxml.DomainMemory{Value: kib, Unit: "KiB"}
	doc.CurrentMemory = &libvirtxml.DomainCurrentMemory{Value: kib, Unit: "KiB"}
	if doc.VCPU == nil {
		doc.VCPU = &libvirtxml.DomainVCPU{Placement: "static"}
	}
	doc.VCPU.Value = uint(s.VCPU)
	doc.VCPU.Current = 0
	if doc.Devices == nil {
		doc.Devices = &libvirtxml.DomainDeviceList{}
	}
	dev := doc.Devices

	byPath := map[string]libvirtxml.DomainDisk{}
	var others []libvirtxml.DomainDisk
	for _, d := range dev.Disks {
		if p := diskFile(d); p != "" && (d.Device == "" || d.Device == "disk" || d.Device == "cdrom") {
			byPath[d.Device+"\x00"+p] = d
			continue
		}
		others = append(others, d) // not fiat's: a block device, a network disk
	}
	fileDisk := func(device string, rd resolvedDisk, target, bus string) libvirtxml.DomainDisk {
		d, ok := byPath[device+"\x00"+rd.Path]
		if !ok {
			d = libvirtxml.DomainDisk{Device: device, Source: &libvirtxml.DomainDiskSource{File: &libvirtxml.DomainDiskSourceFile{File: rd.Path}}}
		}
		if d.Driver == nil {
			d.Driver = &libvirtxml.DomainDiskDriver{Name: "qemu"}
		}
		d.Driver.Type = rd.Format
		if d.Target == nil || d.Target.Dev != target || d.Target.Bus != bus {
			d.Target = &libvirtxml.DomainDiskTarget{Dev: target, Bus: bus}
			d.Address = nil // the bus changed: let libvirt place it
		}
		return d
	}
	var out []libvirtxml.DomainDisk
	for i, rd := range disks {
		out = append(out, fileDisk("disk", rd, diskTarget(i), "virtio"))
	}
	if cloudinit != nil {
		d := fileDisk("cdrom", resolvedDisk{Path: cloudinit.Path, Format: formatRaw}, cloudInitTarget, "sata")
		d.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		out = append(out, d)
	}
	for i, f := range s.CDROMs {
		d := fileDisk("cdrom", resolvedDisk{Path: f, Format: formatRaw}, cdromTarget(i), "sata")
		d.ReadOnly = &libvirtxml.DomainDiskReadOnly{}
		out = append(out, d)
	}
	dev.Disks = append(out, others...)

	bridges := false // config has bridge interfaces: those on the domain are fiat's
	for _, n := range s.NICs {
		bridges = bridges || n.Bridge != ""
	}
	byMAC := map[string]libvirtxml.DomainInterface{}
	var keep []libvirtxml.DomainInterface
	var oldNets []libvirtxml.DomainInterface
	for _, ifc := range dev.Interfaces {
		if ifc.Source != nil && (ifc.Source.Network != nil || bridges && ifc.Source.Bridge != nil) && ifc.MAC != nil {
			byMAC[strings.ToLower(ifc.MAC.Address)] = ifc
			oldNets = append(oldNets, ifc)
			continue
		}
		keep = append(keep, ifc) // not fiat's: a bridge, a direct interface
	}
	var nics []libvirtxml.DomainInterface
	for i, n := range s.NICs {
		mac := n.MAC
		if mac == "" && i < len(oldNets) && sameSource(oldNets[i].Source, n) {
			mac = oldNets[i].MAC.Address // config leaves the MAC to the provider: keep the one it has
		}
		if mac == "" {
			mac = derivedMAC(doc.UUID, i)
		}
		ifc, ok := byMAC[strings.ToLower(mac)]
		if !ok {
			ifc = libvirtxml.DomainInterface{
				MAC:   &libvirtxml.DomainInterfaceMAC{Address: mac},
				Model: &libvirtxml.DomainInterfaceModel{Type: "virtio"},
			}
		}
		if n.Bridge != "" {
			ifc.Source = &libvirtxml.DomainInterfaceSource{Bridge: &libvirtxml.DomainInterfaceSourceBridge{Bridge: n.Bridge}}
		} else {
			ifc.Source = &libvirtxml.DomainInterfaceSource{Network: &libvirtxml.DomainInterfaceSourceNetwork{Network: n.Network}}
		}
		nics = append(nics, ifc)
	}
	dev.Interfaces = append(nics, keep...)
	setUpstream(doc, s)
	setIgnition(doc, s)
}

// sameSource says whether an interface's source is the network or bridge n names.
func sameSource(src *libvirtxml.DomainInterfaceSource, n nicSpec) bool {
	if n.Bridge != "" {
		return src.Bridge != nil && src.Bridge.Bridge == n.Bridge
	}
	return src.Network != nil && src.Network.Network == n.Network
}

func diskFile(d libvirtxml.DomainDisk) string {
	if d.Source == nil || d.Source.File == nil {
		return ""
	}
	return d.Source.File.File
}

// derivedMAC is the MAC of the i-th interface of the domain with this UUID
// when config gives none: stable across updates and replays, in the
// locally administered range QEMU uses (52:54:00).
func derivedMAC(uuid string, i int) string {
	sum := sha256.Sum256([]byte(fmt.Sprintf("fiat-mac\x00%s\x00%d", uuid, i)))
	return fmt.Sprintf("52:54:00:%02x:%02x:%02x", sum[0], sum[1], sum[2])
}

// domainFacts are what state needs beyond the XML.
type domainFacts struct {
	uuid               string
	running, autostart bool
	addresses          map[string]string // MAC (lower case) -> first IPv4 address
	keyOf              func(path string) string
	networkOf          func(uuid string) string // a network's name by UUID; nil: not checked
}

// domainStateFrom turns a domain's persistent XML into state. prior (config
// or state, may be cty.NilVal) keeps what the host does not decide: a
// volume id as written, a MAC left to the provider (null), wait_for_lease.
func diskVal(volumeID, file cty.Value) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"volume_id": volumeID, "file": file})
}

// interleaveDisks lists volume and file disks in the order prior (the
// config) gives them — libvirt keeps virtio disks and SATA CD-ROMs apart —
// and any the config does not have after them.
func interleaveDisks(prior, vols, files []cty.Value) []cty.Value {
	var out []cty.Value
	for _, d := range prior {
		if field(d, "file") != "" {
			if len(files) > 0 {
				out, files = append(out, files[0]), files[1:]
			}
		} else if len(vols) > 0 {
			out, vols = append(out, vols[0]), vols[1:]
		}
	}
	return append(append(out, vols...), files...)
}

func domainStateFrom(doc libvirtxml.Domain, f domainFacts, prior cty.Value) cty.Value {
	memKiB := uint64(0)
	if doc.Memory != nil {
		memKiB = kibOf(doc.Memory.Value, doc.Memory.Unit)
	}
	vcpu := uint64(1)
	if doc.VCPU != nil {
		vcpu = uint64(doc.VCPU.Value)
	}
	firmware := firmwareBIOS
	nvram := cty.NullVal(cty.List(nvramType.WithoutOptionalAttributesDeep()))
	switch {
	case doc.OS != nil && doc.OS.Firmware == firmwareEFI:
		firmware = firmwareEFI
	case doc.OS != nil && doc.OS.Loader != nil && doc.OS.Loader.Path != "":
		firmware = doc.OS.Loader.Path
		// libvirt fills in an nvram file when config gives none: it is
		// the domain's only if config named it.
		if n := attr(prior, "nvram"); n.IsKnown() && !n.IsNull() && doc.OS.NVRam != nil {
			tmpl := cty.NullVal(cty.String)
			if doc.OS.NVRam.Template != "" {
				tmpl = cty.StringVal(doc.OS.NVRam.Template)
			}
			nvram = cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"file": cty.StringVal(doc.OS.NVRam.NVRam), "template": tmpl})})
		}
	}
	priorDisks, _, _ := listAttr(prior, "disk")
	priorNICs, _, _ := listAttr(prior, "network_interface")
	var disks, nics, addrs []cty.Value
	cloudinit := cty.NullVal(cty.String)
	if doc.Devices != nil {
		var priorVols []cty.Value // prior's volume disks, in order
		for _, d := range priorDisks {
			if field(d, "file") == "" {
				priorVols = append(priorVols, d)
			}
		}
		var vols, files []cty.Value
		for _, d := range doc.Devices.Disks {
			path := diskFile(d)
			switch {
			case path == "":
			case d.Device == "" || d.Device == "disk":
				id := f.keyOf(path)
				if i := len(vols); i < len(priorVols) {
					if pid := field(priorVols[i], "volume_id"); pid == path || pid == id || f.keyOf(pid) == id {
						id = pid
					}
				}
				vols = append(vols, diskVal(cty.StringVal(id), cty.NullVal(cty.String)))
			case d.Device == "cdrom" && d.Target != nil && d.Target.Dev == cloudInitTarget:
				id := f.keyOf(path)
				if pid, _, _ := strAttr(prior, "cloudinit"); pid == path || pid == id {
					id = pid
				}
				cloudinit = cty.StringVal(id)
			case d.Device == "cdrom":
				files = append(files, diskVal(cty.NullVal(cty.String), cty.StringVal(path)))
			}
		}
		disks = interleaveDisks(priorDisks, vols, files)
		bridges := false // prior has bridge interfaces: they are fiat's
		for _, n := range priorNICs {
			bridges = bridges || field(n, "bridge") != ""
		}
		for _, ifc := range doc.Devices.Interfaces {
			if ifc.Source == nil || (ifc.Source.Network == nil && !(bridges && ifc.Source.Bridge != nil)) || ifc.MAC == nil {
				continue
			}
			i := len(nics)
			mac, wait := cty.StringVal(ifc.MAC.Address), cty.NullVal(cty.Bool)
			netName, netID, bridge, hostname := cty.NullVal(cty.String), cty.NullVal(cty.String), cty.NullVal(cty.String), cty.NullVal(cty.String)
			if ifc.Source.Network != nil {
				netName = cty.StringVal(ifc.Source.Network.Network)
			} else {
				bridge = cty.StringVal(ifc.Source.Bridge.Bridge)
			}
			if i < len(priorNICs) {
				pn := priorNICs[i]
				if pm := attr(pn, "mac"); pm.IsKnown() && pm.IsNull() {
					mac = cty.NullVal(cty.String) // config left it to the provider
				}
				if pw := attr(pn, "wait_for_lease"); pw.IsKnown() && !pw.IsNull() {
					wait = pw
				}
				if id := field(pn, "network_id"); id != "" && !netName.IsNull() {
					// network_id as written, while the network of that UUID is the one used
					if f.networkOf == nil || f.networkOf(id) == netName.AsString() {
						netID = cty.StringVal(id)
						if isNullAttr(pn, "network_name") {
							netName = cty.NullVal(cty.String)
						}
					}
				}
				if h := field(pn, "hostname"); h != "" {
					hostname = cty.StringVal(h)
				}
			}
			addr := f.addresses[strings.ToLower(ifc.MAC.Address)]
			nicAddrs := cty.ListValEmpty(cty.String)
			if addr != "" {
				nicAddrs = cty.ListVal([]cty.Value{cty.StringVal(addr)})
			}
			nics = append(nics, cty.ObjectVal(map[string]cty.Value{
				"network_name": netName, "mac": mac, "wait_for_lease": wait,
				"network_id": netID, "bridge": bridge, "hostname": hostname, "addresses": nicAddrs}))
			addrs = append(addrs, cty.StringVal(addr))
		}
	}
	nullIfUnset := func(name string) bool { return prior == cty.NilVal || isNullAttr(prior, name) }
	out := map[string]cty.Value{
		"name":              cty.StringVal(doc.Name),
		"vcpu":              cty.NumberUIntVal(vcpu),
		"memory":            cty.NumberUIntVal(memKiB / 1024),
		"running":           cty.BoolVal(f.running),
		"autostart":         cty.BoolVal(f.autostart),
		"disk":              listOf(diskType.WithoutOptionalAttributesDeep(), disks, nullIfUnset("disk")),
		"network_interface": listOf(nicType.WithoutOptionalAttributesDeep(), nics, nullIfUnset("network_interface")),
		"cloudinit":         cloudinit,
		"firmware":          cty.StringVal(firmware),
		"nvram":             nvram,
		"id":                cty.StringVal(f.uuid),
		"addresses":         listOf(cty.String, addrs, false),
	}
	upstreamState(doc, prior, out)
	ignitionDomainState(doc, f, prior, out)
	return cty.ObjectVal(out)
}

// kibOf converts a libvirt memory size to KiB (libvirt writes KiB itself).
func kibOf(v uint, unit string) uint64 {
	switch unit {
	case "b", "bytes":
		return uint64(v) / 1024
	case "M", "MiB":
		return uint64(v) << 10
	case "G", "GiB":
		return uint64(v) << 20
	}
	return uint64(v)
}
