package libvirt

import (
	"fmt"
	"strconv"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"
)

// The parts of libvirt_domain written in the upstream provider's
// (dmacvicar/libvirt 0.8) spellings: description, qemu_agent, cpu,
// boot_device, graphics and console. Each is null unless config sets it,
// and null renders what fiat always rendered (boot from hd, one serial
// console on a pty, no graphics, no agent channel), so domains made before
// these attributes existed re-plan clean.
var (
	cpuType      = cty.ObjectWithOptionalAttrs(map[string]cty.Type{"mode": cty.String}, []string{"mode"})
	bootType     = cty.Object(map[string]cty.Type{"dev": cty.List(cty.String)})
	graphicsType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{
		"type": cty.String, "listen_type": cty.String, "autoport": cty.Bool, "listen_address": cty.String,
	}, []string{"type", "listen_type", "autoport", "listen_address"})
	consoleType = cty.ObjectWithOptionalAttrs(map[string]cty.Type{
		"type": cty.String, "target_port": cty.String, "target_type": cty.String, "source_path": cty.String,
	}, []string{"type", "target_port", "target_type", "source_path"})
)

const guestAgentChannel = "org.qemu.guest_agent.0"

type graphicsSpec struct {
	Type, ListenType, ListenAddress string
	Autoport                        bool
}

type consoleSpec struct {
	Type, TargetType, SourcePath string
	TargetPort                   *uint
}

// upstreamSpec reads the upstream-spelled parts of a domain's config into s.
func (s *domainSpec) readUpstream(v cty.Value) error {
	s.Description = field(v, "description")
	var err error
	if s.XSLT, err = xsltOf(v); err != nil {
		return err
	}
	s.Ignition, s.FwCfgName = field(v, "coreos_ignition"), field(v, "fw_cfg_name")
	s.Type = field(v, "type")
	if s.QemuAgent, _, err = boolAttr(v, "qemu_agent", false); err != nil {
		return err
	}
	cpus, _, err := listAttr(v, "cpu")
	if err != nil {
		return err
	}
	for _, c := range cpus {
		s.CPUMode = field(c, "mode")
	}
	boots, _, err := listAttr(v, "boot_device")
	if err != nil {
		return err
	}
	for _, b := range boots {
		devs, _, err := stringList(b, "dev")
		if err != nil {
			return fmt.Errorf("boot_device: %w", err)
		}
		s.Boot = append(s.Boot, devs...)
	}
	gs, _, err := listAttr(v, "graphics")
	if err != nil {
		return err
	}
	for _, g := range gs {
		auto, _, err := boolAttr(g, "autoport", true)
		if err != nil {
			return fmt.Errorf("graphics: %w", err)
		}
		s.Graphics = append(s.Graphics, graphicsSpec{Type: orDefault(field(g, "type"), "spice"),
			ListenType: orDefault(field(g, "listen_type"), "none"), ListenAddress: field(g, "listen_address"), Autoport: auto})
	}
	cs, _, err := listAttr(v, "console")
	if err != nil {
		return err
	}
	s.ConsolesSet = !isNullAttr(v, "console")
	for i, c := range cs {
		cs := consoleSpec{Type: orDefault(field(c, "type"), "pty"), TargetType: field(c, "target_type"), SourcePath: field(c, "source_path")}
		if p := field(c, "target_port"); p != "" {
			n, err := strconv.ParseUint(p, 10, 16)
			if err != nil {
				return fmt.Errorf("console %d: target_port %q is not a port number", i, p)
			}
			port := uint(n)
			cs.TargetPort = &port
		}
		s.Consoles = append(s.Consoles, cs)
	}
	return nil
}

func (s domainSpec) checkUpstream(add func(string, ...any)) {
	for i, g := range s.Graphics {
		if g.Type != "spice" && g.Type != "vnc" {
			add("graphics %d: type %q is not supported; use \"spice\" or \"vnc\"", i, g.Type)
		}
		switch g.ListenType {
		case "none", "address", "network", "socket":
		default:
			add("graphics %d: listen_type %q is not one of none, address, network, socket", i, g.ListenType)
		}
	}
	if len(s.Graphics) > 1 {
		add("graphics: at most one block")
	}
	for i, c := range s.Consoles {
		switch c.Type {
		case "pty":
		case "file", "dev", "pipe", "unix":
			if c.SourcePath == "" {
				add("console %d: type %q needs source_path", i, c.Type)
			}
		default:
			add("console %d: type %q is not supported; use pty, file, dev, pipe or unix", i, c.Type)
		}
	}
	for _, b := range s.Boot {
		switch b {
		case "hd", "cdrom", "network", "fd":
		default:
			add("boot_device: dev %q is not one of hd, cdrom, network, fd", b)
		}
	}
	for i, n := range s.NICs {
		set := 0
		for _, x := range []string{n.Network, n.NetworkID, n.Bridge} {
			if x != "" {
				set++
			}
		}
		if set != 1 && !(set == 2 && n.Network != "" && n.NetworkID != "") {
			add("network_interface %d: set one of network_name, network_id and bridge", i)
		}
	}
}

// setUpstream renders the upstream-spelled parts of a spec into doc.
func setUpstream(doc *libvirtxml.Domain, s domainSpec) {
	doc.Description = s.Description
	if doc.OS == nil {
		doc.OS = &libvirtxml.DomainOS{}
	}
	boot := s.Boot
	if len(boot) == 0 {
		boot = []string{"hd"}
	}
	doc.OS.BootDevices = nil
	for _, b := range boot {
		doc.OS.BootDevices = append(doc.OS.BootDevices, libvirtxml.DomainBootDevice{Dev: b})
	}
	switch {
	case s.CPUMode != "":
		if doc.CPU == nil || doc.CPU.Mode != s.CPUMode {
			doc.CPU = &libvirtxml.DomainCPU{Mode: s.CPUMode}
		}
	case doc.CPU != nil && doc.CPU.Mode != "" && doc.CPU.Mode != "custom":
		doc.CPU = nil // config dropped its cpu block
	}
	dev := doc.Devices
	var channels []libvirtxml.DomainChannel
	for _, c := range dev.Channels {
		if c.Target == nil || c.Target.VirtIO == nil || c.Target.VirtIO.Name != guestAgentChannel {
			channels = append(channels, c)
		}
	}
	if s.QemuAgent {
		channels = append(channels, libvirtxml.DomainChannel{
			Source: &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind"}},
			Target: &libvirtxml.DomainChannelTarget{VirtIO: &libvirtxml.DomainChannelTargetVirtIO{Name: guestAgentChannel}},
		})
	}
	dev.Channels = channels
	dev.Graphics = nil
	for _, g := range s.Graphics {
		l := libvirtxml.DomainGraphicListener{}
		switch g.ListenType {
		case "address":
			l.Address = &libvirtxml.DomainGraphicListenerAddress{Address: g.ListenAddress}
		case "network":
			l.Network = &libvirtxml.DomainGraphicListenerNetwork{}
		case "socket":
			l.Socket = &libvirtxml.DomainGraphicListenerSocket{}
		}
		var ls []libvirtxml.DomainGraphicListener
		if g.ListenType != "none" {
			ls = []libvirtxml.DomainGraphicListener{l}
		}
		auto := "no"
		if g.Autoport {
			auto = "yes"
		}
		if g.Type == "vnc" {
			dev.Graphics = append(dev.Graphics, libvirtxml.DomainGraphic{VNC: &libvirtxml.DomainGraphicVNC{AutoPort: auto, Listeners: ls}})
		} else {
			dev.Graphics = append(dev.Graphics, libvirtxml.DomainGraphic{Spice: &libvirtxml.DomainGraphicSpice{AutoPort: auto, Listeners: ls}})
		}
	}
	if !s.ConsolesSet {
		if len(dev.Serials) == 0 && len(dev.Consoles) == 0 {
			pty := &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{}}
			dev.Serials = []libvirtxml.DomainSerial{{Source: pty}}
			dev.Consoles = []libvirtxml.DomainConsole{{Source: pty, Target: &libvirtxml.DomainConsoleTarget{Type: "serial"}}}
		}
		return
	}
	// Consoles as the upstream provider writes them: libvirt adds the
	// serial device a serial console needs.
	dev.Serials, dev.Consoles = nil, nil
	for _, c := range s.Consoles {
		con := libvirtxml.DomainConsole{Target: &libvirtxml.DomainConsoleTarget{Type: c.TargetType, Port: c.TargetPort}}
		switch c.Type {
		case "pty":
			con.Source = &libvirtxml.DomainChardevSource{Pty: &libvirtxml.DomainChardevSourcePty{Path: c.SourcePath}}
		case "file":
			con.Source = &libvirtxml.DomainChardevSource{File: &libvirtxml.DomainChardevSourceFile{Path: c.SourcePath}}
		case "dev":
			con.Source = &libvirtxml.DomainChardevSource{Dev: &libvirtxml.DomainChardevSourceDev{Path: c.SourcePath}}
		case "pipe":
			con.Source = &libvirtxml.DomainChardevSource{Pipe: &libvirtxml.DomainChardevSourcePipe{Path: c.SourcePath}}
		case "unix":
			con.Source = &libvirtxml.DomainChardevSource{UNIX: &libvirtxml.DomainChardevSourceUNIX{Mode: "bind", Path: c.SourcePath}}
		}
		dev.Consoles = append(dev.Consoles, con)
	}
}

// upstreamState reads the upstream-spelled attributes back: description,
// qemu_agent, cpu and boot_device from the XML; graphics and console as
// config (prior) wrote them while the XML has as many, else as the XML
// has them. What config left null stays null while the XML is what null
// renders.
func upstreamState(doc libvirtxml.Domain, prior cty.Value, out map[string]cty.Value) {
	out["xml"] = xmlState(prior)
	out["type"] = cty.StringVal(doc.Type)
	out["description"] = cty.NullVal(cty.String)
	if doc.Description != "" || !isNullAttr(prior, "description") && prior != cty.NilVal {
		out["description"] = cty.StringVal(doc.Description)
	}
	agent := false
	var gfx []libvirtxml.DomainGraphic
	var cons []libvirtxml.DomainConsole
	if doc.Devices != nil {
		for _, c := range doc.Devices.Channels {
			if c.Target != nil && c.Target.VirtIO != nil && c.Target.VirtIO.Name == guestAgentChannel {
				agent = true
			}
		}
		gfx, cons = doc.Devices.Graphics, doc.Devices.Consoles
	}
	out["qemu_agent"] = cty.NullVal(cty.Bool)
	if agent || (prior != cty.NilVal && !isNullAttr(prior, "qemu_agent")) {
		out["qemu_agent"] = cty.BoolVal(agent)
	}
	mode := ""
	if doc.CPU != nil {
		mode = doc.CPU.Mode
	}
	out["cpu"] = cty.NullVal(cty.List(cpuType.WithoutOptionalAttributesDeep()))
	if prior != cty.NilVal && !isNullAttr(prior, "cpu") || mode != "" && mode != "custom" {
		var cpus []cty.Value
		if mode != "" {
			cpus = append(cpus, cty.ObjectVal(map[string]cty.Value{"mode": cty.StringVal(mode)}))
		}
		out["cpu"] = listOf(cpuType.WithoutOptionalAttributesDeep(), cpus, false)
	}
	var boot []cty.Value
	if doc.OS != nil {
		for _, b := range doc.OS.BootDevices {
			boot = append(boot, cty.StringVal(b.Dev))
		}
	}
	out["boot_device"] = cty.NullVal(cty.List(bootType))
	defaultBoot := len(boot) == 1 && boot[0].AsString() == "hd"
	if !defaultBoot || (prior != cty.NilVal && !isNullAttr(prior, "boot_device")) {
		out["boot_device"] = listOf(bootType, []cty.Value{cty.ObjectVal(map[string]cty.Value{"dev": listOf(cty.String, boot, false)})}, false)
		if pb := attr(prior, "boot_device"); pb.IsWhollyKnown() && !pb.IsNull() && pb.Type().Equals(cty.List(bootType)) && samePriorBoot(pb, boot) {
			out["boot_device"] = pb // the same devices, perhaps in several blocks
		}
	}
	gt := graphicsType.WithoutOptionalAttributesDeep()
	out["graphics"] = cty.NullVal(cty.List(gt))
	if pg := attr(prior, "graphics"); pg.IsWhollyKnown() && !pg.IsNull() && pg.LengthInt() == len(gfx) && sameGraphicsTypes(pg, gfx) {
		out["graphics"] = pg
	} else if len(gfx) > 0 || !pg.IsNull() {
		var gs []cty.Value
		for _, g := range gfx {
			typ, auto, listeners := "spice", "", []libvirtxml.DomainGraphicListener(nil)
			switch {
			case g.VNC != nil:
				typ, auto, listeners = "vnc", g.VNC.AutoPort, g.VNC.Listeners
			case g.Spice != nil:
				auto, listeners = g.Spice.AutoPort, g.Spice.Listeners
			default:
				continue
			}
			lt, la := "none", cty.NullVal(cty.String)
			if len(listeners) > 0 {
				switch l := listeners[0]; {
				case l.Address != nil:
					lt, la = "address", strOrNull(l.Address.Address)
				case l.Network != nil:
					lt = "network"
				case l.Socket != nil:
					lt = "socket"
				}
			}
			gs = append(gs, cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal(typ), "listen_type": cty.StringVal(lt),
				"autoport": cty.BoolVal(auto != "no"), "listen_address": la}))
		}
		out["graphics"] = listOf(gt, gs, false)
	}
	ct := consoleType.WithoutOptionalAttributesDeep()
	out["console"] = cty.NullVal(cty.List(ct))
	if pc := attr(prior, "console"); pc.IsWhollyKnown() && !pc.IsNull() && pc.LengthInt() == len(cons) {
		out["console"] = pc
	} else if !pc.IsNull() {
		var cs []cty.Value
		for _, c := range cons {
			typ, port, ttype := "pty", cty.NullVal(cty.String), cty.NullVal(cty.String)
			if c.Source != nil && c.Source.Pty == nil {
				typ = "other"
			}
			if c.Target != nil {
				ttype = strOrNull(c.Target.Type)
				if c.Target.Port != nil {
					port = cty.StringVal(strconv.FormatUint(uint64(*c.Target.Port), 10))
				}
			}
			cs = append(cs, cty.ObjectVal(map[string]cty.Value{"type": cty.StringVal(typ), "target_port": port, "target_type": ttype, "source_path": cty.NullVal(cty.String)}))
		}
		out["console"] = listOf(ct, cs, false)
	}
}

func samePriorBoot(prior cty.Value, boot []cty.Value) bool {
	var devs []cty.Value
	for _, b := range prior.AsValueSlice() {
		if d := b.GetAttr("dev"); !d.IsNull() {
			devs = append(devs, d.AsValueSlice()...)
		}
	}
	if len(devs) != len(boot) {
		return false
	}
	for i := range devs {
		if !devs[i].RawEquals(boot[i]) {
			return false
		}
	}
	return true
}

func sameGraphicsTypes(prior cty.Value, gfx []libvirtxml.DomainGraphic) bool {
	for i, g := range prior.AsValueSlice() {
		want := orDefault(field(g, "type"), "spice")
		if (want == "vnc") != (gfx[i].VNC != nil) || (want == "spice") != (gfx[i].Spice != nil) {
			return false
		}
	}
	return true
}

// resolveNetworkIDs fills in the network name of each interface given by
// network_id (a network's UUID).
func resolveNetworkIDs(l *golibvirt.Libvirt, s *domainSpec) error {
	for i, n := range s.NICs {
		if n.NetworkID == "" || n.Network != "" {
			continue
		}
		uuid, err := parseUUID(n.NetworkID)
		if err != nil {
			return fmt.Errorf("network_interface %d: network_id %q is not a UUID", i, n.NetworkID)
		}
		net, err := l.NetworkLookupByUUID(uuid)
		if err != nil {
			return readErr(fmt.Sprintf("network_interface %d: look up network_id %s", i, n.NetworkID), err)
		}
		s.NICs[i].Network = net.Name
	}
	return nil
}
