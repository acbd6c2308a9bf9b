package libvirt

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/kdomanski/iso9660"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// libvirt_cloudinit_disk: a NoCloud seed for cloud-init, an ISO 9660 image
// labelled "cidata" holding user-data, meta-data and (if set)
// network-config, built in Go and uploaded into a raw volume. A domain
// attaches it by id (attribute cloudinit).
//
// Every attribute forces a replacement. The replacement keeps the volume's
// name, so its id (the path, for dir pools) stays the same and a domain
// that uses it is not changed: the new seed is read at its next boot.
// Retire, undo and purge are the volume's (rename, rename back, delete).
var cloudInitSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the volume, e.g. web-cidata.iso."},
		"pool": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the storage pool that holds it."},
		"user_data": {Type: cty.String, Optional: true, ForceNew: true, Sensitive: true,
			Description: "The user-data file (#cloud-config ...); empty when unset."},
		"meta_data": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "The meta-data file; when unset, an instance-id derived from the other files."},
		"network_config": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "The network-config file (left out when unset)."},
		"id": {Type: cty.String, Computed: true,
			Description: "The volume's key (its path, for dir pools)."},
		"path": {Type: cty.String, Computed: true,
			Description: "Path of the ISO on the host."},
	},
	// The content is config: re-creating it from the same config gives
	// the same seed. Only the definition is lost with the purge.
	Delete: providers.Lossy,
	Update: providers.Reversible,
}

// cloudInitFiles is the content of a seed.
type cloudInitFiles struct {
	UserData, MetaData, NetworkConfig string
	HasNetworkConfig                  bool
}

func cloudInitSpecFrom(v cty.Value) (volumeSpec, cloudInitFiles, cty.Value, error) {
	m, err := knownStrings(v, nil, "name", "pool", "user_data", "meta_data", "network_config")
	if err != nil {
		return volumeSpec{}, cloudInitFiles{}, cty.NilVal, err
	}
	s := volumeSpec{Name: m["name"], Pool: m["pool"], Format: formatRaw}
	for _, p := range []string{checkName("cloud-init disk", s.Name), checkName("pool", s.Pool)} {
		if p != "" {
			return s, cloudInitFiles{}, cty.NilVal, fmt.Errorf("%s", p)
		}
	}
	f := cloudInitFiles{UserData: m["user_data"], MetaData: m["meta_data"], NetworkConfig: m["network_config"],
		HasNetworkConfig: !isNullAttr(v, "network_config")}
	if isNullAttr(v, "meta_data") {
		f.MetaData = defaultMetaData(f)
	}
	return s, f, v, nil
}

// defaultMetaData gives the seed an instance-id that changes with its
// content, so cloud-init runs again when the seed is replaced.
func defaultMetaData(f cloudInitFiles) string {
	sum := sha256.Sum256([]byte(f.UserData + "\x00" + f.NetworkConfig))
	return "instance-id: fiat-" + hex.EncodeToString(sum[:8]) + "\n"
}

// buildSeed writes the NoCloud ISO.
func buildSeed(f cloudInitFiles) ([]byte, error) {
	w, err := iso9660.NewWriter()
	if err != nil {
		return nil, fmt.Errorf("build cloud-init ISO: %w", err)
	}
	defer w.Cleanup()
	files := []struct{ name, body string }{{"user-data", f.UserData}, {"meta-data", f.MetaData}}
	if f.HasNetworkConfig {
		files = append(files, struct{ name, body string }{"network-config", f.NetworkConfig})
	}
	for _, file := range files {
		if err := w.AddFile(bytes.NewReader([]byte(file.body)), file.name); err != nil {
			return nil, fmt.Errorf("build cloud-init ISO: add %s: %w", file.name, err)
		}
	}
	var buf bytes.Buffer
	if err := w.WriteTo(&buf, "cidata"); err != nil {
		return nil, fmt.Errorf("build cloud-init ISO: %w", err)
	}
	return buf.Bytes(), nil
}

// readSeed reads the files of a NoCloud ISO.
func readSeed(iso []byte) (cloudInitFiles, error) {
	var f cloudInitFiles
	img, err := iso9660.OpenImage(bytes.NewReader(iso))
	if err != nil {
		return f, fmt.Errorf("read cloud-init ISO: %w", err)
	}
	if label, err := img.Label(); err != nil || label != "cidata" {
		return f, fmt.Errorf("read cloud-init ISO: volume label %q, want cidata (%v)", label, err)
	}
	root, err := img.RootDir()
	if err != nil {
		return f, fmt.Errorf("read cloud-init ISO: %w", err)
	}
	children, err := root.GetChildren()
	if err != nil {
		return f, fmt.Errorf("read cloud-init ISO: %w", err)
	}
	for _, c := range children {
		b, err := io.ReadAll(c.Reader())
		if err != nil {
			return f, fmt.Errorf("read cloud-init ISO: %s: %w", c.Name(), err)
		}
		switch c.Name() {
		case "user-data":
			f.UserData = string(b)
		case "meta-data":
			f.MetaData = string(b)
		case "network-config":
			f.NetworkConfig, f.HasNetworkConfig = string(b), true
		}
	}
	return f, nil
}

// maxSeedBytes bounds what is read back from a volume taken for a seed.
const maxSeedBytes = 16 << 20

// cloudInitVolume is the libvirt_cloudinit_disk resource (content_volume.go).
var cloudInitVolume = &contentVolume[cloudInitFiles]{
	kind: "cloud-init disk", typ: TypeCloudInit, max: maxSeedBytes,
	attrs: []string{"name", "pool", "user_data", "meta_data", "network_config"},
	spec: func(v cty.Value) (volumeSpec, cloudInitFiles, error) {
		s, f, _, err := cloudInitSpecFrom(v)
		return s, f, err
	},
	build: buildSeed, parse: readSeed, state: cloudInitState,
	key: func(id string) string { return id },
}

func (pf *preflight) cloudInit(_ context.Context, step providers.PreflightStep) []string {
	return cloudInitVolume.preflight(pf, step, func(cfg cty.Value) []string {
		if _, files, _, err := cloudInitSpecFrom(cfg); err == nil {
			if _, err := buildSeed(files); err != nil {
				return []string{err.Error()}
			}
		}
		return nil // unknown values: the create checks them
	})
}

// cloudInitState is the state of a seed: its volume's identity, and the
// files as config wrote them when the volume holds them (prior: config or
// state; cty.NilVal when importing).
func cloudInitState(l *golibvirt.Libvirt, vol golibvirt.StorageVol, files cloudInitFiles, prior cty.Value) (cty.Value, error) {
	vs, err := volumeState(l, vol, cty.NilVal)
	if err != nil {
		return cty.NilVal, err
	}
	str := func(name, got string, present bool) cty.Value {
		pv := attr(prior, name)
		switch {
		case !present:
			return cty.NullVal(cty.String)
		case prior != cty.NilVal && pv.IsKnown() && pv.IsNull() && (name != "meta_data" || got == defaultMetaData(files)):
			return cty.NullVal(cty.String) // config left it out and got the default
		}
		return cty.StringVal(got)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":           vs.GetAttr("name"),
		"pool":           vs.GetAttr("pool"),
		"user_data":      str("user_data", files.UserData, true),
		"meta_data":      str("meta_data", files.MetaData, true),
		"network_config": str("network_config", files.NetworkConfig, files.HasNetworkConfig),
		"id":             vs.GetAttr("id"),
		"path":           vs.GetAttr("path"),
	}), nil
}
