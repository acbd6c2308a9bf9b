package libvirt

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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
// Like a cloud-init disk (content_volume.go), every attribute forces a
// replacement, which keeps the volume's name and so its id; retire, undo
// and purge are the volume's.
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
	err := json.Unmarshal([]byte(content), &obj)
	if err == nil {
		return []byte(content), nil
	}
	if strings.HasPrefix(strings.TrimSpace(content), "{") {
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
func ignitionState(l *golibvirt.Libvirt, vol golibvirt.StorageVol, got string, prior cty.Value) (cty.Value, error) {
	vs, err := volumeState(l, vol, cty.NilVal)
	if err != nil {
		return cty.NilVal, err
	}
	content := cty.StringVal(got)
	if pc, _, _ := strAttr(prior, "content"); pc != "" {
		want, err := ignitionContent(pc)
		switch {
		case err == nil && string(want) == got:
			content = cty.StringVal(pc)
		case err != nil && !strings.HasPrefix(strings.TrimSpace(pc), "{"):
			// A file path that cannot be read here (another machine, a
			// server's run): what the volume holds is no evidence against it.
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

// ignitionVolume is the libvirt_ignition resource (content_volume.go): C
// is the config's bytes.
var ignitionVolume = &contentVolume[string]{
	kind: "ignition volume", typ: TypeIgnition, max: maxIgnitionBytes,
	attrs: []string{"name", "pool", "content"},
	spec: func(v cty.Value) (volumeSpec, string, error) {
		s, b, err := ignitionSpecFrom(v)
		return s, string(b), err
	},
	build: func(c string) ([]byte, error) { return []byte(c), nil },
	parse: func(b []byte) (string, error) { return string(b), nil },
	state: ignitionState,
	key:   ignitionKey,
}

// ignition's preflight: the content is a JSON object, or a file that
// holds one.
func (pf *preflight) ignition(_ context.Context, step providers.PreflightStep) []string {
	return ignitionVolume.preflight(pf, step, func(cfg cty.Value) []string {
		if c, ok, _ := strAttr(cfg, "content"); ok {
			if _, err := ignitionContent(c); err != nil {
				return []string{err.Error()}
			}
		}
		return nil
	})
}
