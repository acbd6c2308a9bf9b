package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// libvirt_volume: a storage volume in a pool.
//
//	create: StorageVolCreateXML (sparse). Undo deletes it.
//	update: grow in place (StorageVolResize). Undo resizes back.
//	retire: nothing; the volume and its data stay until the purge.
//	purge:  delete the volume; a pool stopped by a retire in the same apply
//	        is started for the delete and stopped again.
//
// Every job on a volume holds its pool's lock: libvirt runs one job per pool.
var volumeSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the volume (the file name in a dir pool)."},
		"pool": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the storage pool that holds the volume."},
		"size": {Type: cty.Number, Required: true,
			Description: "Capacity in bytes. Growing resizes in place; shrinking is refused (replace the volume instead)."},
		"format": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(formatQcow2),
			Description: `"qcow2" or "raw".`},
		"id": {Type: cty.String, Computed: true,
			Description: "The volume's key (its path, for dir pools)."},
		"path": {Type: cty.String, Computed: true,
			Description: "Path of the volume on the host."},
	},
	Delete: providers.Irreversible,
	Update: providers.Reversible,
}

const (
	formatQcow2 = "qcow2"
	formatRaw   = "raw"
	sectorSize  = 512
)

type volumeSpec struct {
	Name, Pool, Format string
	Size               uint64
}

func volumeSpecFrom(v cty.Value) (volumeSpec, error) {
	m, err := knownStrings(v, map[string]string{"format": formatQcow2}, "name", "pool", "format")
	if err != nil {
		return volumeSpec{}, err
	}
	size, known, set, err := sizeAttr(v, "size")
	if err != nil {
		return volumeSpec{}, err
	}
	if !known || !set {
		return volumeSpec{}, fmt.Errorf(`attribute "size" is not known`)
	}
	s := volumeSpec{Name: m["name"], Pool: m["pool"], Format: m["format"], Size: size}
	for _, problem := range []string{checkName("volume", s.Name), checkName("pool", s.Pool),
		checkFormat(s.Format), checkSize(s.Size, s.Format)} {
		if problem != "" {
			return s, fmt.Errorf("%s", problem)
		}
	}
	return s, nil
}

func checkFormat(f string) string {
	if f != formatQcow2 && f != formatRaw {
		return fmt.Sprintf("volume format %q is not supported; use %q or %q", f, formatQcow2, formatRaw)
	}
	return ""
}

// checkSize: qcow2 rounds capacity up to whole 512-byte sectors, so any other
// size would read back different from the config, forever.
func checkSize(size uint64, format string) string {
	if size == 0 {
		return "volume size must be more than 0 bytes"
	}
	if format == formatQcow2 && size%sectorSize != 0 {
		return fmt.Sprintf("qcow2 volume size %d is not a multiple of %d bytes (qcow2 would round it up to %d)",
			size, sectorSize, (size/sectorSize+1)*sectorSize)
	}
	return ""
}

func volumeXML(s volumeSpec) (string, error) {
	doc := libvirtxml.StorageVolume{
		Name:       s.Name,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: s.Size},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0}, // sparse
		Target: &libvirtxml.StorageVolumeTarget{
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: s.Format},
		},
	}
	out, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal volume XML: %w", err)
	}
	return out, nil
}

func volumeState(l *golibvirt.Libvirt, vol golibvirt.StorageVol) (cty.Value, error) {
	op := fmt.Sprintf("read volume %s in pool %s", vol.Name, vol.Pool)
	x, err := l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return cty.NilVal, readErr(op, err)
	}
	var doc libvirtxml.StorageVolume
	if err := doc.Unmarshal(x); err != nil {
		return cty.NilVal, fmt.Errorf("%s: parse XML: %w", op, err)
	}
	_, capacity, _, err := l.StorageVolGetInfo(vol)
	if err != nil {
		return cty.NilVal, readErr(op, err)
	}
	format, path := "", ""
	if doc.Target != nil {
		path = doc.Target.Path
		if doc.Target.Format != nil {
			format = doc.Target.Format.Type
		}
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":   cty.StringVal(vol.Name),
		"pool":   cty.StringVal(vol.Pool),
		"size":   cty.NumberUIntVal(capacity),
		"format": cty.StringVal(format),
		"id":     cty.StringVal(vol.Key),
		"path":   cty.StringVal(path),
	}), nil
}

// volumeRef names a volume: its pool and name, and its key once known.
type volumeRef struct {
	Key, Pool, Name string
}

func (r volumeRef) String() string { return fmt.Sprintf("volume %s in pool %s", r.Name, r.Pool) }

func volumeRefFrom(id string, state cty.Value) volumeRef {
	r := volumeRef{Key: id}
	r.Pool, _, _ = strAttr(state, "pool")
	r.Name, _, _ = strAttr(state, "name")
	return r
}

// errPoolInactive is returned by lookupVolume when the volume's pool is
// stopped: libvirt cannot see the volumes of a stopped pool.
type errPoolInactive struct{ pool string }

func (e errPoolInactive) Error() string {
	return fmt.Sprintf("pool %s is not active; libvirt cannot see its volumes", e.pool)
}

// lookupVolume finds a volume by key, else by pool and name. It changes
// nothing: a volume in a stopped pool is reported as errPoolInactive.
func lookupVolume(l *golibvirt.Libvirt, r volumeRef) (golibvirt.StorageVol, bool, error) {
	op := "look up " + r.String()
	if r.Key != "" {
		vol, err := l.StorageVolLookupByKey(r.Key)
		if err == nil {
			return vol, true, nil
		}
		if !notFound(err) {
			return vol, false, readErr(op, err)
		}
	}
	if r.Pool == "" {
		return golibvirt.StorageVol{}, false, nil
	}
	pool, err := l.StoragePoolLookupByName(r.Pool)
	if notFound(err) {
		return golibvirt.StorageVol{}, false, nil
	}
	if err != nil {
		return golibvirt.StorageVol{}, false, readErr(op, err)
	}
	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return golibvirt.StorageVol{}, false, readErr(op, err)
	}
	if active == 0 {
		return golibvirt.StorageVol{}, false, fmt.Errorf("%s: %w", op, errPoolInactive{r.Pool})
	}
	if r.Name == "" {
		return golibvirt.StorageVol{}, false, nil
	}
	vol, err := l.StorageVolLookupByName(pool, r.Name)
	if notFound(err) {
		return vol, false, nil
	}
	if err != nil {
		return vol, false, readErr(op, err)
	}
	if r.Key != "" && vol.Key != r.Key { // the name now holds another volume
		return golibvirt.StorageVol{}, false, nil
	}
	return vol, true, nil
}

// withVolume runs fn on the volume r names, starting its pool for the call
// if it is stopped (a pool retired in the same apply) and stopping it again
// afterwards. found=false when the volume (or its pool) is gone. The caller
// holds the pool's lock.
func withVolume(l *golibvirt.Libvirt, r volumeRef, op string, fn func(golibvirt.StorageVol) error) (found bool, err error) {
	var pool golibvirt.StoragePool
	if r.Pool != "" {
		pool, err = l.StoragePoolLookupByName(r.Pool)
		if notFound(err) {
			r.Pool = ""
		} else if err != nil {
			return false, readErr(op, err)
		}
	}
	if r.Pool == "" { // no pool by that name: a key still finds it in an active pool
		if r.Key == "" {
			return false, nil
		}
		vol, err := l.StorageVolLookupByKey(r.Key)
		if notFound(err) {
			return false, nil
		}
		if err != nil {
			return false, readErr(op, err)
		}
		return true, fn(vol)
	}

	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return false, readErr(op, err)
	}
	if active == 0 {
		if err := l.StoragePoolCreate(pool, 0); err != nil {
			if hasMessage(err, "No such file or directory") {
				return false, nil // the pool's directory, and so the volume, is gone
			}
			return false, mutErr(fmt.Sprintf("%s: start pool %s", op, r.Pool), err)
		}
		defer func() {
			if derr := l.StoragePoolDestroy(pool); derr != nil && err == nil {
				err = mutErr(fmt.Sprintf("%s: stop pool %s again", op, r.Pool), derr)
			}
		}()
	}
	vol, err := l.StorageVolLookupByName(pool, r.Name)
	if notFound(err) {
		return false, nil
	}
	if err != nil {
		return false, readErr(op, err)
	}
	if r.Key != "" && vol.Key != r.Key {
		return false, fmt.Errorf("%s: pool %s now holds another volume of that name (key %s, not %s); leaving it alone",
			op, r.Pool, vol.Key, r.Key)
	}
	return true, fn(vol)
}

// deleteVolume deletes the volume r names; a volume that is gone is fine.
func (p *Provider) deleteVolume(ctx context.Context, r volumeRef, op string) error {
	unlock, err := p.pools.lock(ctx, r.Pool)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	_, err = withVolume(l, r, op, func(vol golibvirt.StorageVol) error {
		if err := l.StorageVolDelete(vol, 0); err != nil && !notFound(err) {
			return mutErr(op, err)
		}
		return nil
	})
	return err
}

func (p *Provider) createVolume(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, err := volumeSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create volume %s: %w", req.Address, err)
	}
	op := fmt.Sprintf("create volume %s in pool %s", spec.Name, spec.Pool)
	doc, err := volumeXML(spec)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	unlock, err := p.pools.lock(ctx, spec.Pool)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	pool, err := l.StoragePoolLookupByName(spec.Pool)
	if err != nil {
		return providers.CreateResponse{}, readErr(op, err)
	}
	if err := ctx.Err(); err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	undo := undoRecord{Op: undoCreateVolume, Pool: spec.Pool, Volume: spec.Name}
	vol, err := l.StorageVolCreateXML(pool, doc, 0)
	if err != nil {
		err = mutErr(op, err)
		if isOutcomeUnknown(err) {
			return providers.CreateResponse{Undo: undo.encode()}, err
		}
		return providers.CreateResponse{}, err
	}
	undo.Key = vol.Key
	state, err := volumeState(l, vol)
	if err != nil {
		resp := providers.CreateResponse{ID: vol.Key, Undo: undo.encode()}
		if derr := l.StorageVolDelete(vol, 0); derr != nil {
			return resp, fmt.Errorf("%w (clean up: %v)", err, mutErr(op, derr))
		}
		return providers.CreateResponse{}, err
	}
	return providers.CreateResponse{ID: vol.Key, State: state, Undo: undo.encode()}, nil
}

func (p *Provider) undoCreateVolume(ctx context.Context, u undoRecord) error {
	r := volumeRef{Key: u.Key, Pool: u.Pool, Name: u.Volume}
	return p.deleteVolume(ctx, r, "undo create "+r.String())
}

func (p *Provider) updateVolume(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	prior, err := volumeSpecFrom(req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update volume %s: prior state: %w", req.Address, err)
	}
	next, err := volumeSpecFrom(req.Config)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update volume %s: %w", req.Address, err)
	}
	r := volumeRef{Key: req.ID, Pool: prior.Pool, Name: prior.Name}
	op := "resize " + r.String()
	if problem := volumeChange(prior, next); problem != "" {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %s", op, problem)
	}
	unlock, err := p.pools.lock(ctx, r.Pool)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()
	l, err := p.client(ctx)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, found, err := lookupVolume(l, r)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !found {
		return providers.UpdateResponse{}, fmt.Errorf("%s: the volume no longer exists", op)
	}
	_, capacity, _, err := l.StorageVolGetInfo(vol)
	if err != nil {
		return providers.UpdateResponse{}, readErr(op, err)
	}
	undo := undoRecord{Op: undoResizeVolume, Pool: r.Pool, Volume: r.Name, Key: vol.Key, From: capacity, To: next.Size}
	switch {
	case capacity == next.Size: // done already (a replay): undo goes back to the prior state
		undo.From = prior.Size
	case capacity > next.Size:
		return providers.UpdateResponse{}, fmt.Errorf("%s: the volume holds %d bytes, more than the %d asked for; shrinking would lose data, replace the volume instead",
			op, capacity, next.Size)
	default:
		if err := ctx.Err(); err != nil {
			return providers.UpdateResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		if err := l.StorageVolResize(vol, next.Size, 0); err != nil {
			err = mutErr(op, err)
			if isOutcomeUnknown(err) {
				return providers.UpdateResponse{Undo: undo.encode()}, err
			}
			return providers.UpdateResponse{}, err
		}
	}
	state, err := volumeState(l, vol)
	if err != nil {
		return providers.UpdateResponse{Undo: undo.encode()}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo.encode()}, nil
}

// volumeChange says why prior cannot become next in place ("" if it can).
func volumeChange(prior, next volumeSpec) string {
	switch {
	case prior.Name != next.Name || prior.Pool != next.Pool || prior.Format != next.Format:
		return "a volume's name, pool and format cannot change in place; it must be replaced"
	case next.Size < prior.Size:
		return shrinkProblem(prior.Name, prior.Size, next.Size)
	}
	return ""
}

func shrinkProblem(name string, from, to uint64) string {
	return fmt.Sprintf("shrinking volume %s from %d to %d bytes would lose data; fiat only grows volumes in place: replace the volume instead (e.g. under a new name) or keep its size",
		name, from, to)
}

func (p *Provider) undoResizeVolume(ctx context.Context, u undoRecord) error {
	r := volumeRef{Key: u.Key, Pool: u.Pool, Name: u.Volume}
	op := "undo resize " + r.String()
	unlock, err := p.pools.lock(ctx, r.Pool)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer unlock()
	l, err := p.client(ctx)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	found, err := withVolume(l, r, op, func(vol golibvirt.StorageVol) error {
		_, capacity, _, err := l.StorageVolGetInfo(vol)
		if err != nil {
			return readErr(op, err)
		}
		var flags golibvirt.StorageVolResizeFlags
		switch {
		case capacity == u.From:
			return nil
		case capacity > u.From:
			flags = golibvirt.StorageVolResizeShrink
		}
		return mutErr(op, l.StorageVolResize(vol, u.From, flags))
	})
	if err == nil && !found {
		return fmt.Errorf("%s: the volume no longer exists; its size cannot be restored", op)
	}
	return err
}

func (p *Provider) retireVolume(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	// Nothing to make inert: a volume does nothing by itself, and its data
	// must survive until the commit. The undo records what was retired.
	r := volumeRefFrom(req.ID, req.State)
	return providers.RetireResponse{Undo: undoRecord{Op: undoRetireVolume, Pool: r.Pool, Volume: r.Name, Key: r.Key}.encode()}, nil
}

func (p *Provider) purgeVolume(ctx context.Context, req providers.PurgeRequest) error {
	r := volumeRefFrom(req.ID, req.State)
	return p.deleteVolume(ctx, r, "purge "+r.String())
}

func (p *Provider) readVolume(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	r := volumeRefFrom(req.ID, req.State)
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read %s: %w", r, err)
	}
	vol, found, err := lookupVolume(l, r)
	if err != nil || !found {
		return providers.ReadResponse{}, err
	}
	state, err := volumeState(l, vol)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: state}, nil
}
