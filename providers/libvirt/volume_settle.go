package libvirt

import (
	"context"
	"fmt"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Settling, importing and reading libvirt_volume objects fiat did not just make.

// settleVolume: a create took effect when the pool holds the volume it
// made under its name (see createdVolume); one that made the volume only
// under its temporary name did not finish, and its Undo removes it. A
// resize took effect when the capacity is the new size; a retire when the
// retired name exists and the original is gone.
// Cloud-init disks settle their resizes and retires here too.
func (p *Provider) settleVolume(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	op := "settle " + req.Address
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	switch req.Action {
	case providers.ActionCreate:
		vol, u, named, err := p.createdVolume(l, volumeRefFrom("", req.Config), req.OpID, req.Address)
		if err != nil || u.Op == "" {
			return providers.SettleResponse{}, err
		}
		return settledCreate(vol.Key, u.encode(), func() (bool, cty.Value, error) {
			if !named {
				return false, cty.NilVal, nil // not filled, or not renamed yet
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
		retired := retiredVolumeName(r.Name, req.OpID, req.Address)
		undo := retireVolumeUndo(r, retired)
		origFound, retFound, err := p.volumeNames(ctx, l, r, retired)
		if err != nil || !retFound {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: !origFound, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
}

// createdVolume finds, read-only, what the create with this op id made in
// r's pool (see createVolumeWith): the volume under its temporary name
// (named=false: the create did not finish), or the volume under its own
// name when it carries the create's mark. u is the Undo that removes it;
// u.Op is "" when the create made nothing there. Any other volume of that
// name is not the create's: someone else made it, and it is left alone.
// On a remote host no volume is marked, so none is claimed: a volume whose
// create was cut off stays, and the next preflight names it.
func (p *Provider) createdVolume(l *golibvirt.Libvirt, r volumeRef, opID, address string) (vol golibvirt.StorageVol, u undoRecord, named bool, err error) {
	if !p.localFiles() {
		return vol, u, false, nil
	}
	mark := opMark(opID, address)
	found := undoRecord{Op: undoCreateVolume, Pool: r.Pool, Volume: r.Name, Temp: tempVolumeName(r.Name, mark), Mark: mark}
	if dir, err := poolNamed(r.Pool, "settle "+r.String())(l); err == nil {
		found.Path = dir
	}
	vol, ok, err := lookupVolume(l, volumeRef{Pool: r.Pool, Name: found.Temp})
	if err != nil || ok {
		return vol, found, false, err
	}
	if vol, ok, err = lookupVolume(l, r); err != nil || !ok {
		return vol, u, false, err
	}
	doc, err := volumeXMLDoc(l, vol, "settle "+r.String())
	if err != nil || doc.Target == nil || !hasMark(doc.Target.Path, mark) {
		return vol, u, false, err
	}
	return vol, found, true, nil
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
