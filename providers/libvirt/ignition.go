package libvirt

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// libvirt_ignition: an Ignition config (Fedora CoreOS, Flatcar) in a raw
// volume, as the upstream provider makes it. A domain hands it to its
// guest with coreos_ignition = libvirt_ignition.x.id: QEMU's fw_cfg
// (-fw_cfg name=opt/com.coreos/config,file=PATH), where Ignition looks on
// first boot.
//
// Like a cloud-init disk, every attribute forces a replacement, which keeps
// the volume's name and so its id; retire, undo and purge are the volume's.
var ignitionSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the volume, e.g. node-01-ignition."},
		"pool": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal("default"),
			Description: "Name of the storage pool that holds it."},
		"content": {Type: cty.String, Required: true, ForceNew: true,
			Description: "The Ignition config: JSON (e.g. data.ignition_config.x.rendered), or the path of a file holding it where fiat runs."},
		"id": {Type: cty.String, Computed: true,
			Description: "The volume's key (its path, for dir pools); upstream's \"key;uuid\" ids are read too."},
	},
	Delete: providers.Lossy,
	Update: providers.Reversible,
}

// maxIgnitionBytes bounds an Ignition config, written or read back.
const maxIgnitionBytes = 16 << 20

// ignitionSpecFrom reads the volume to make and the bytes it holds.
func ignitionSpecFrom(v cty.Value) (volumeSpec, []byte, error) {
	m, err := knownStrings(v, map[string]string{"pool": "default"}, "name", "pool", "content")
	if err != nil {
		return volumeSpec{}, nil, err
	}
	s := volumeSpec{Name: m["name"], Pool: m["pool"], Format: formatRaw}
	for _, p := range []string{checkName("ignition volume", s.Name), checkName("pool", s.Pool)} {
		if p != "" {
			return s, nil, errors.New(p)
		}
	}
	b, err := ignitionContent(m["content"])
	return s, b, err
}

// ignitionContent is content as upstream takes it: a JSON object, or a
// file that holds one.
func ignitionContent(content string) ([]byte, error) {
	var obj map[string]any
	if json.Unmarshal([]byte(content), &obj) == nil {
		return []byte(content), nil
	}
	if strings.HasPrefix(strings.TrimSpace(content), "{") {
		err := json.Unmarshal([]byte(content), &obj)
		return nil, fmt.Errorf("content is not valid JSON: %v", err)
	}
	st, err := os.Stat(content)
	if err != nil || st.IsDir() {
		return nil, errors.New("content is neither a JSON object nor the path of a file (it should be an Ignition config, e.g. data.ignition_config.x.rendered)")
	}
	if st.Size() > maxIgnitionBytes {
		return nil, fmt.Errorf("content file %s is %d bytes; an Ignition config may be at most %d", content, st.Size(), maxIgnitionBytes)
	}
	return os.ReadFile(content)
}

// ignitionKey is the volume key an ignition id names: upstream's ids are
// "key;uuid".
func ignitionKey(id string) string {
	key, _, _ := strings.Cut(id, ";")
	return key
}

// ignitionState is the state of an ignition volume holding got; content
// stays as config wrote it (JSON or a path) while the volume holds what
// it gives.
func ignitionState(l *golibvirt.Libvirt, vol golibvirt.StorageVol, got []byte, prior cty.Value) (cty.Value, error) {
	vs, err := volumeState(l, vol, cty.NilVal)
	if err != nil {
		return cty.NilVal, err
	}
	content := cty.StringVal(string(got))
	if pc, ok, _ := strAttr(prior, "content"); ok {
		if want, err := ignitionContent(pc); err == nil && bytes.Equal(want, got) {
			content = cty.StringVal(pc)
		}
	}
	id := vs.GetAttr("id")
	if pid, ok, _ := strAttr(prior, "id"); ok && ignitionKey(pid) == id.AsString() {
		id = cty.StringVal(pid) // upstream's "key;uuid", kept
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name": vs.GetAttr("name"), "pool": vs.GetAttr("pool"), "content": content, "id": id,
	}), nil
}

func (p *Provider) downloadIgnition(ctx context.Context, l *golibvirt.Libvirt, vol golibvirt.StorageVol, op string) ([]byte, error) {
	_, capacity, _, err := l.StorageVolGetInfo(vol)
	if err != nil {
		return nil, readErr(op, err)
	}
	if capacity > maxIgnitionBytes {
		return nil, fmt.Errorf("%s: volume %s holds %d bytes, too large for an Ignition config", op, vol.Name, capacity)
	}
	var buf bytes.Buffer
	if err := p.download(ctx, l, vol, capacity, &buf, op+": read back the config"); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

func (p *Provider) createIgnition(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, content, err := ignitionSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create ignition %s: %w", req.Address, err)
	}
	spec.Size, spec.SizeSet = uint64(len(content)), true
	resp, err := p.createVolumeWith(ctx, req, spec, &volumeContent{
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(content)), nil }, size: uint64(len(content))})
	if err != nil {
		return resp, err
	}
	op := "create ignition " + spec.Name
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := l.StorageVolLookupByKey(resp.ID)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, readErr(op, err)
	}
	if resp.State, err = ignitionState(l, vol, content, req.Config); err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, err
	}
	return resp, nil
}

// updateIgnition has nothing to change: every attribute forces a
// replacement. It reads the volume back.
func (p *Provider) updateIgnition(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	for _, a := range []string{"name", "pool", "content"} {
		if eq := attr(req.Prior, a).Equals(attr(req.Config, a)); !eq.IsKnown() || eq.False() {
			return providers.UpdateResponse{}, fmt.Errorf("update ignition %s: %s cannot change in place; the volume must be replaced", req.Address, a)
		}
	}
	read, err := p.readIgnition(ctx, providers.ReadRequest{Address: req.Address, Type: TypeIgnition, ID: req.ID, State: req.Prior})
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !read.Exists {
		return providers.UpdateResponse{}, fmt.Errorf("update ignition %s: it no longer exists", req.Address)
	}
	return providers.UpdateResponse{State: read.State, Undo: noUndo}, nil
}

func (p *Provider) readIgnition(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	r := volumeRefFrom(ignitionKey(req.ID), req.State)
	op := "read ignition " + r.Name
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
	got, err := p.downloadIgnition(ctx, l, vol, op)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	state, err := ignitionState(l, vol, got, req.State)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: state}, nil
}

// settleIgnition: a create took effect when the volume it made holds the
// config under its name; retires are the volume's.
func (p *Provider) settleIgnition(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	if req.Action != providers.ActionCreate {
		if req.Action == providers.ActionUpdate {
			read, err := p.readIgnition(ctx, providers.ReadRequest{Address: req.Address, Type: TypeIgnition, ID: req.ID, State: req.Prior})
			if err != nil || !read.Exists {
				return providers.SettleResponse{}, err
			}
			return providers.SettleResponse{TookEffect: true, ID: req.ID, State: read.State, Undo: noUndo}, nil
		}
		return p.settleVolume(ctx, req)
	}
	spec, content, err := ignitionSpecFrom(req.Config)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("settle %s: %w", req.Address, err)
	}
	op := "settle ignition " + spec.Name
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
			return false, cty.NilVal, nil
		}
		got, err := p.downloadIgnition(ctx, l, vol, op)
		if err != nil || !bytes.Equal(got, content) {
			return false, cty.NilVal, nil // created, not (fully) written
		}
		state, err := ignitionState(l, vol, got, req.Config)
		return true, state, err
	})
}

// importIgnition adopts an ignition volume by key, path, "pool/name" or
// upstream's "key;uuid".
func (p *Provider) importIgnition(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import ignition " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := findVolumeByUserID(l, ignitionKey(req.ID))
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	got, err := p.downloadIgnition(ctx, l, vol, op)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	state, err := ignitionState(l, vol, got, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: vol.Key, State: state}, nil
}

// ignitionPreflight: the content is an Ignition config fiat can read, the
// volume's place is free.
func (pf *preflight) ignition(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		var problems []string
		if c, ok, _ := strAttr(step.Config, "content"); ok {
			if _, err := ignitionContent(c); err != nil {
				problems = append(problems, err.Error())
			}
		}
		return append(problems, pf.volumePlacement(step)...)
	case providers.ActionUpdate:
		return []string{"an ignition volume cannot change in place; it must be replaced"}
	case providers.ActionDelete:
		return pf.volumeDelete(step)
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}
