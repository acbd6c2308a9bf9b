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

// downloadSeed reads a seed volume's files.
func (p *Provider) downloadSeed(ctx context.Context, l *golibvirt.Libvirt, vol golibvirt.StorageVol, op string) (cloudInitFiles, error) {
	_, capacity, _, err := l.StorageVolGetInfo(vol)
	if err != nil {
		return cloudInitFiles{}, readErr(op, err)
	}
	if capacity > maxSeedBytes {
		return cloudInitFiles{}, fmt.Errorf("%s: volume %s holds %d bytes, too large for a cloud-init seed", op, vol.Name, capacity)
	}
	var buf bytes.Buffer
	if err := p.download(ctx, l, vol, capacity, &buf, op+": read back the ISO"); err != nil {
		return cloudInitFiles{}, err
	}
	f, err := readSeed(buf.Bytes())
	if err != nil {
		return f, fmt.Errorf("%s: %w", op, err)
	}
	return f, nil
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

func (p *Provider) createCloudInit(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, files, _, err := cloudInitSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create cloud-init disk %s: %w", req.Address, err)
	}
	iso, err := buildSeed(files)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create cloud-init disk %s: %w", spec.Name, err)
	}
	spec.Size, spec.SizeSet = uint64(len(iso)), true
	resp, err := p.createVolumeWith(ctx, req, spec, &volumeContent{
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(iso)), nil }, size: uint64(len(iso))})
	if err != nil {
		return resp, err
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, fmt.Errorf("create cloud-init disk %s: %w", spec.Name, err)
	}
	vol, err := l.StorageVolLookupByKey(resp.ID)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, readErr("create cloud-init disk "+spec.Name, err)
	}
	if resp.State, err = cloudInitState(l, vol, files, req.Config); err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, err
	}
	return resp, nil
}

// updateCloudInit has nothing to change: every attribute forces a
// replacement. It reads the seed back.
func (p *Provider) updateCloudInit(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	for _, a := range []string{"name", "pool", "user_data", "meta_data", "network_config"} {
		if eq := attr(req.Prior, a).Equals(attr(req.Config, a)); !eq.IsKnown() || eq.False() {
			return providers.UpdateResponse{}, fmt.Errorf("update cloud-init disk %s: %s cannot change in place; the disk must be replaced", req.Address, a)
		}
	}
	read, err := p.readCloudInit(ctx, providers.ReadRequest{Address: req.Address, Type: TypeCloudInit, ID: req.ID, State: req.Prior})
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !read.Exists {
		return providers.UpdateResponse{}, fmt.Errorf("update cloud-init disk %s: it no longer exists", req.Address)
	}
	return providers.UpdateResponse{State: read.State, Undo: noUndo}, nil
}

func (p *Provider) readCloudInit(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	r := volumeRefFrom(req.ID, req.State)
	op := "read cloud-init disk " + r.Name
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, found, err := lookupVolume(l, r)
	if resp, ok := storedRead(err, req); ok {
		return resp, nil
	}
	if err != nil || !found {
		return providers.ReadResponse{}, err
	}
	files, err := p.downloadSeed(ctx, l, vol, op)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	state, err := cloudInitState(l, vol, files, req.State)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: state}, nil
}

// settleCloudInit: a create took effect when the volume it made (see
// createdVolume) holds the seed's files under its name (the ISO itself
// differs in its timestamps); retires are the volume's.
func (p *Provider) settleCloudInit(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	if req.Action != providers.ActionCreate {
		if req.Action == providers.ActionUpdate {
			read, err := p.readCloudInit(ctx, providers.ReadRequest{Address: req.Address, Type: TypeCloudInit, ID: req.ID, State: req.Prior})
			if err != nil || !read.Exists {
				return providers.SettleResponse{}, err
			}
			return providers.SettleResponse{TookEffect: true, ID: req.ID, State: read.State, Undo: noUndo}, nil
		}
		return p.settleVolume(ctx, req)
	}
	spec, files, _, err := cloudInitSpecFrom(req.Config)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("settle %s: %w", req.Address, err)
	}
	op := "settle cloud-init disk " + spec.Name
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, u, named, err := p.createdVolume(l, volumeRef{Pool: spec.Pool, Name: spec.Name}, req.OpID, req.Address)
	if err != nil || u.Op == "" {
		return providers.SettleResponse{}, err
	}
	return settledCreate(vol.Key, u.encode(), func() (bool, cty.Value, error) {
		if !named {
			return false, cty.NilVal, nil // not written, or not renamed yet
		}
		got, err := p.downloadSeed(ctx, l, vol, op)
		if err != nil || got != files {
			return false, cty.NilVal, nil // created, not (fully) written
		}
		state, err := cloudInitState(l, vol, got, req.Config)
		return true, state, err
	})
}

// importCloudInit adopts a seed volume by key, path or "pool/name".
func (p *Provider) importCloudInit(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import cloud-init disk " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := findVolumeByUserID(l, req.ID)
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	files, err := p.downloadSeed(ctx, l, vol, op)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	state, err := cloudInitState(l, vol, files, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: vol.Key, State: state}, nil
}
