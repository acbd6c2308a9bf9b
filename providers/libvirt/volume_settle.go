package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Settling, importing and reading libvirt_volume objects fiat did not just make.

// settleVolume: a create took effect when the pool holds a volume of that
// name (with a source, holding exactly the source's bytes); a resize when
// the capacity is the new size; a retire when the retired name exists and
// the original is gone.
func (p *Provider) settleVolume(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	var content *volumeContent
	if req.Action == providers.ActionCreate {
		if src, _, _ := strAttr(req.Config, "source"); src != "" {
			_, size, err := probeFile(src)
			if err != nil {
				return providers.SettleResponse{}, fmt.Errorf("settle %s: %w", req.Address, err)
			}
			content = &volumeContent{open: func() (io.ReadCloser, error) { return os.Open(src) }, size: size}
		}
	}
	return p.settleVolumeWith(ctx, req, content)
}

func (p *Provider) settleVolumeWith(ctx context.Context, req providers.SettleRequest, content *volumeContent) (providers.SettleResponse, error) {
	op := "settle " + req.Address
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	switch req.Action {
	case providers.ActionCreate:
		r := volumeRefFrom("", req.Config)
		vol, found, err := lookupVolume(l, r)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		undo := undoRecord{Op: undoCreateVolume, Pool: r.Pool, Volume: r.Name, Key: vol.Key}.encode()
		return settledCreate(vol.Key, undo, func() (bool, cty.Value, error) {
			if content != nil {
				same, err := p.sameContent(ctx, l, vol, content, op)
				if err != nil || !same { // !same: created, but the upload did not finish
					return false, cty.NilVal, err
				}
			}
			state, err := volumeState(l, vol, req.Config)
			return true, state, err
		})
	case providers.ActionUpdate:
		r := volumeRefFrom(req.ID, req.Prior)
		vol, found, err := lookupVolume(l, r)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		prior, _, _, _ := sizeAttr(req.Prior, "size")
		next, _, _, _ := sizeAttr(req.Config, "size")
		if spec, err := volumeSpecFrom(req.Config); err == nil {
			next = spec.normalized().Size // what the update resized to
		}
		_, capacity, _, err := l.StorageVolGetInfo(vol)
		if err != nil {
			return providers.SettleResponse{}, readErr(op, err)
		}
		if capacity != next || prior == next {
			return providers.SettleResponse{}, nil
		}
		state, err := volumeState(l, vol, req.Config)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		undo := undoRecord{Op: undoResizeVolume, Pool: r.Pool, Volume: r.Name, Key: vol.Key, From: prior, To: next}.encode()
		return providers.SettleResponse{TookEffect: true, ID: req.ID, State: state, Undo: undo}, nil
	case providers.ActionDelete:
		r := volumeRefFrom(req.ID, req.Prior)
		retired := retiredVolumeName(r.Name, r.Key)
		undo := retireVolumeUndo(r, retired)
		origFound, retFound, err := p.volumeNames(ctx, l, r, retired)
		if err != nil || !retFound {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: !origFound, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
}

// importVolume adopts a volume by key, path, or "pool/name".
func (p *Provider) importVolume(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import volume " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := findVolumeByUserID(l, req.ID)
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	state, err := volumeState(l, vol, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: vol.Key, State: state}, nil
}

// findVolumeByUserID finds a volume by key, path or "pool/name".
func findVolumeByUserID(l *golibvirt.Libvirt, id string) (golibvirt.StorageVol, error) {
	if pool, name, ok := strings.Cut(id, "/"); ok && pool != "" && !strings.Contains(name, "/") {
		lp, err := l.StoragePoolLookupByName(pool)
		if err == nil {
			return l.StorageVolLookupByName(lp, name)
		}
		if !notFound(err) {
			return golibvirt.StorageVol{}, err
		}
	}
	return lookupVolumeRef(l, id)
}

// readVolumeData is the data source libvirt_volume: by pool and name.
func (p *Provider) readVolumeData(ctx context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	m, err := knownStrings(req.Config, nil, "name", "pool")
	if err != nil || m["name"] == "" || m["pool"] == "" {
		return providers.ReadDataResponse{}, fmt.Errorf("read volume %s: name and pool must be known, non-empty strings (%v)", req.Address, err)
	}
	op := fmt.Sprintf("read volume %s in pool %s", m["name"], m["pool"])
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadDataResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := findVolumeByUserID(l, m["pool"]+"/"+m["name"])
	if err != nil {
		return providers.ReadDataResponse{}, readErr(op, err)
	}
	state, err := volumeState(l, vol, cty.NilVal)
	return providers.ReadDataResponse{State: state}, err
}
