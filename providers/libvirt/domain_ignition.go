package libvirt

import (
	"cmp"
	"strings"

	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"
)

// A domain's coreos_ignition, as upstream passes it: QEMU's command line
// gets "-fw_cfg name=NAME,file=PATH", the libvirt_ignition volume's file,
// where Ignition (Fedora CoreOS, Flatcar) reads its config on first boot.
// The file must be readable by QEMU: with a non-root qemu user (qemu.conf)
// or AppArmor, the pool's directory and volumes need to allow it.

// defaultFwCfgName is upstream's default fw_cfg_name.
const defaultFwCfgName = "opt/com.coreos/config"

const fwCfgFlag = "-fw_cfg"

// setIgnition puts the fw_cfg arguments on doc's QEMU command line (or
// takes fiat's off, when the spec has none), keeping any others.
func setIgnition(doc *libvirtxml.Domain, s domainSpec) {
	var args []libvirtxml.DomainQEMUCommandlineArg
	if doc.QEMUCommandline != nil {
		for i := 0; i < len(doc.QEMUCommandline.Args); i++ {
			a := doc.QEMUCommandline.Args[i]
			if a.Value == fwCfgFlag && i+1 < len(doc.QEMUCommandline.Args) {
				if _, _, ok := parseFwCfg(doc.QEMUCommandline.Args[i+1].Value); ok {
					i++
					continue
				}
			}
			args = append(args, a)
		}
	}
	if s.Ignition != "" {
		name := cmp.Or(s.FwCfgName, defaultFwCfgName)
		// QEMU's option syntax doubles a comma inside a value.
		val := "name=" + strings.ReplaceAll(name, ",", ",,") + ",file=" + strings.ReplaceAll(s.IgnitionPath, ",", ",,")
		args = append(args, libvirtxml.DomainQEMUCommandlineArg{Value: fwCfgFlag}, libvirtxml.DomainQEMUCommandlineArg{Value: val})
	}
	if len(args) == 0 {
		if doc.QEMUCommandline != nil && len(doc.QEMUCommandline.Envs) == 0 {
			doc.QEMUCommandline = nil
		} else if doc.QEMUCommandline != nil {
			doc.QEMUCommandline.Args = nil
		}
		return
	}
	if doc.QEMUCommandline == nil {
		doc.QEMUCommandline = &libvirtxml.DomainQEMUCommandline{}
	}
	doc.QEMUCommandline.Args = args
}

// parseFwCfg reads "name=NAME,file=PATH" (commas doubled inside values).
func parseFwCfg(v string) (name, file string, ok bool) {
	const sentinel = "\x00"
	parts := strings.Split(strings.ReplaceAll(v, ",,", sentinel), ",")
	for _, p := range parts {
		p = strings.ReplaceAll(p, sentinel, ",")
		switch {
		case strings.HasPrefix(p, "name="):
			name = strings.TrimPrefix(p, "name=")
		case strings.HasPrefix(p, "file="):
			file = strings.TrimPrefix(p, "file=")
		default:
			return "", "", false // string=, or something fiat did not write
		}
	}
	return name, file, name != "" && file != ""
}

// ignitionDomainState reads coreos_ignition and fw_cfg_name back from the
// QEMU command line: the id as config wrote it (upstream's "key;uuid"
// too) while it names the file in use, and fw_cfg_name only if config set
// it or it is not the default.
func ignitionDomainState(doc libvirtxml.Domain, f domainFacts, prior cty.Value, out map[string]cty.Value) {
	out["coreos_ignition"], out["fw_cfg_name"] = cty.NullVal(cty.String), cty.NullVal(cty.String)
	if doc.QEMUCommandline == nil {
		return
	}
	// fiat's is the -fw_cfg whose value is name=...,file=... (there may be
	// others, of a stylesheet's or an imported domain's).
	var name, file string
	args := doc.QEMUCommandline.Args
	for i := 0; i+1 < len(args) && file == ""; i++ {
		if args[i].Value == fwCfgFlag {
			name, file, _ = parseFwCfg(args[i+1].Value)
		}
	}
	if file == "" {
		return
	}
	id := f.keyOf(file)
	if pid, _, _ := strAttr(prior, "coreos_ignition"); pid != "" && (ignitionKey(pid) == file || ignitionKey(pid) == id) {
		id = pid
	}
	out["coreos_ignition"] = cty.StringVal(id)
	if name != defaultFwCfgName || prior != cty.NilVal && !isNullAttr(prior, "fw_cfg_name") {
		out["fw_cfg_name"] = cty.StringVal(name)
	}
}
