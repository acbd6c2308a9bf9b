package libvirt

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// libvirt_volume: a storage volume in a pool.
//
//	create: StorageVolCreateXML (sparse); a qcow2 overlay on base_volume;
//	        or the bytes of a local file (source) uploaded. On a local host
//	        under a temporary name, marked, then renamed (see
//	        createVolumeWith). Undo deletes it.
//	update: grow in place (StorageVolResize). Undo resizes back.
//	retire: rename the volume to <name>.fiat-retired-<hash of the retire's
//	        operation>, so a replacement may take the name before the
//	        commit; the data stays. On a local host the file is renamed
//	        (instant); on a remote one libvirt has no rename, so the volume
//	        is cloned under the new name and the original deleted (time and
//	        space of its allocated data). Undo renames it back.
//	purge:  delete the retired volume (its name from the retire's Undo),
//	        starting (or briefly defining) a pool on its directory if the
//	        pool was stopped or undefined by a retire in the same apply.
//
// Every job on a volume holds its pool's lock (see poolLocks): libvirt runs
// one job per pool.
var volumeSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the volume (the file name in a dir pool)."},
		"pool": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(defaultPool),
			Description: "Name of the storage pool that holds the volume (\"default\" when left out, as the upstream provider)."},
		"size": {Type: cty.Number, Optional: true, Computed: true,
			Description: "Capacity in bytes; required unless base_volume or source gives it. A qcow2 image's is rounded up to whole KiB, as libvirt creates it (the plan shows the rounded size). Growing resizes in place; shrinking is refused (replace the volume instead)."},
		"format": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(formatQcow2),
			Description: `"qcow2" or "raw"; with source, the format of that file.`},
		"base_volume": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "Id (key) or path of a volume this one is a qcow2 overlay on: only the changes are stored here. size defaults to the base's."},
		"base_volume_id": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "The upstream provider's spelling of base_volume (set one of them)."},
		"base_volume_name": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "Name of the volume this one is a qcow2 overlay on, found in base_volume_pool (instead of base_volume)."},
		"base_volume_pool": {Type: cty.String, Optional: true, ForceNew: true,
			Description: "Pool of base_volume_name; the volume's own pool when left out."},
		"source": {Type: cty.String, Optional: true, ForceNew: true, LocalPath: true,
			Description: "Path of a local file (where fiat runs), or an http(s) URL downloaded (streamed) by fiat, uploaded into the volume, e.g. a cloud image; size is taken from it. A relative path is relative to the module's directory. A change of the URL or path replaces the volume; a change of the content under the same one is not seen."},
		"xml": {Type: cty.List(xmlType), Optional: true, ForceNew: true,
			Description: "xml { xslt = file(\"vol.xsl\") }: an XSLT stylesheet applied to the volume XML fiat generates when it creates the volume (runs xsltproc where fiat runs)."},
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
	kib         = 1024
)

const defaultPool = "default"

type volumeSpec struct {
	Name, Pool, Format string
	Size               uint64
	SizeSet            bool
	Base, Source       string
	// BaseName (and BasePool, the volume's own pool when empty) name the
	// base volume by name instead of Base (base_volume_name/_pool).
	BaseName, BasePool string
	baseAttr           string // the attribute Base came from, for messages
	XSLT               string // xml { xslt }: applied to the XML at create (xslt.go)
}

// hasBase says whether the volume is an overlay on a base volume.
func (s volumeSpec) hasBase() bool { return s.Base != "" || s.BaseName != "" }

// basePool is the pool base_volume_name is looked up in.
func (s volumeSpec) basePool() string { return orDefault(s.BasePool, s.Pool) }

// baseDesc names the base volume as config does.
func (s volumeSpec) baseDesc() string {
	if s.BaseName != "" {
		return fmt.Sprintf("base_volume_name %s in pool %s", s.BaseName, s.basePool())
	}
	return orDefault(s.baseAttr, "base_volume") + " " + s.Base
}

// lookupBase finds the base volume of a spec.
func lookupBase(l *golibvirt.Libvirt, s volumeSpec) (golibvirt.StorageVol, error) {
	if s.BaseName == "" {
		return lookupVolumeRef(l, s.Base)
	}
	pool, err := l.StoragePoolLookupByName(s.basePool())
	if err != nil {
		return golibvirt.StorageVol{}, err
	}
	return l.StorageVolLookupByName(pool, s.BaseName)
}

// baseOf reads base_volume and base_volume_id (the same thing in two
// spellings): one may be set, or both to the same value.
func baseOf(b, id string) (base, from string, err error) {
	switch {
	case b != "" && id != "" && b != id:
		return "", "", fmt.Errorf("base_volume and base_volume_id are two spellings of one argument; set one of them")
	case id != "":
		return id, "base_volume_id", nil
	}
	return b, "base_volume", nil
}

func volumeSpecFrom(v cty.Value) (volumeSpec, error) {
	m, err := knownStrings(v, map[string]string{"format": formatQcow2, "pool": defaultPool}, "name", "pool", "format", "base_volume", "base_volume_id", "base_volume_name", "base_volume_pool", "source")
	if err != nil {
		return volumeSpec{}, err
	}
	base, baseAttr, err := baseOf(m["base_volume"], m["base_volume_id"])
	if err != nil {
		return volumeSpec{}, err
	}
	size, known, set, err := sizeAttr(v, "size")
	if err != nil {
		return volumeSpec{}, err
	}
	if !known {
		return volumeSpec{}, fmt.Errorf(`attribute "size" is not known`)
	}
	s := volumeSpec{Name: m["name"], Pool: m["pool"], Format: m["format"], Size: size, SizeSet: set,
		Base: base, Source: m["source"], BaseName: m["base_volume_name"], BasePool: m["base_volume_pool"], baseAttr: baseAttr}
	if s.XSLT, err = xsltOf(v); err != nil {
		return s, err
	}
	if p := s.check(); p != "" {
		return s, errors.New(p)
	}
	return s, nil
}

// check says what is wrong with a spec ("" if nothing).
func (s volumeSpec) check() string {
	for _, p := range []string{checkName("volume", s.Name), checkName("pool", s.Pool), checkFormat(s.Format)} {
		if p != "" {
			return p
		}
	}
	switch {
	case s.Base != "" && s.BaseName != "":
		return "a volume's base is base_volume (or base_volume_id) or base_volume_name, not both"
	case s.BasePool != "" && s.BaseName == "":
		return "base_volume_pool is the pool of base_volume_name; set base_volume_name too"
	case s.hasBase() && s.Source != "":
		return "a volume takes its content from base_volume or from source, not both"
	case s.hasBase() && s.Format != formatQcow2:
		return fmt.Sprintf("a volume on a base_volume is a qcow2 overlay; its format must be %q, not %q", formatQcow2, s.Format)
	case checkSource(s.Source) != "":
		return checkSource(s.Source)
	case !s.SizeSet && !s.hasBase() && s.Source == "":
		return "volume size is not set (it may only be left out with base_volume or source)"
	case s.SizeSet:
		return checkSize(s.Size)
	}
	return ""
}

func checkFormat(f string) string {
	if f != formatQcow2 && f != formatRaw {
		return fmt.Sprintf("volume format %q is not supported; use %q or %q", f, formatQcow2, formatRaw)
	}
	return ""
}

// checkSize: any whole size works; one libvirt rounds is planned rounded
// (volumeCapacity).
func checkSize(size uint64) string {
	if size == 0 {
		return "volume size must be more than 0 bytes"
	}
	return ""
}

// volumeCapacity is the capacity libvirt reports for a volume asked to
// hold size bytes: libvirt creates a qcow2 image (an overlay too) in whole
// KiB (it hands qemu-img the size rounded up to KiB), so 1536 reads back
// 2048; a raw file is exact. A resize would round a qcow2 image to 512
// bytes only: fiat resizes to this same figure, so create and grow agree.
// The plan shows it (ModifyPlan), so a re-plan is clean.
func volumeCapacity(size uint64, format string) uint64 {
	if format == formatRaw || size%kib == 0 || size > math.MaxUint64-kib {
		return size
	}
	return (size/kib + 1) * kib
}

// normalized is a config's spec with the size libvirt will report; the
// size of a source file is what it is.
func (s volumeSpec) normalized() volumeSpec {
	if s.SizeSet && s.Source == "" {
		s.Size = volumeCapacity(s.Size, s.Format)
	}
	return s
}

// volumeDoc is the XML of a new volume: sparse (allocation 0), and a qcow2
// overlay when backing is set.
func volumeDoc(name, format string, capacity uint64, backing *libvirtxml.StorageVolumeBackingStore) libvirtxml.StorageVolume {
	return libvirtxml.StorageVolume{
		Name:       name,
		Capacity:   &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: capacity},
		Allocation: &libvirtxml.StorageVolumeSize{Unit: "bytes", Value: 0},
		Target: &libvirtxml.StorageVolumeTarget{
			Format: &libvirtxml.StorageVolumeTargetFormat{Type: format},
		},
		BackingStore: backing,
	}
}

func marshalVolume(doc libvirtxml.StorageVolume) (string, error) {
	out, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal volume XML: %w", err)
	}
	return out, nil
}

func volumeXMLDoc(l *golibvirt.Libvirt, vol golibvirt.StorageVol, op string) (libvirtxml.StorageVolume, error) {
	var doc libvirtxml.StorageVolume
	x, err := l.StorageVolGetXMLDesc(vol, 0)
	if err != nil {
		return doc, readErr(op, err)
	}
	if err := doc.Unmarshal(x); err != nil {
		return doc, fmt.Errorf("%s: parse XML: %w", op, err)
	}
	return doc, nil
}

// volumeState reads a volume. prior (state or config, may be cty.NilVal)
// supplies what the host cannot tell: source, and base_volume as the user
// wrote it (a key or a path naming the same file).
func volumeState(l *golibvirt.Libvirt, vol golibvirt.StorageVol, prior cty.Value) (cty.Value, error) {
	op := fmt.Sprintf("read volume %s in pool %s", vol.Name, vol.Pool)
	doc, err := volumeXMLDoc(l, vol, op)
	if err != nil {
		return cty.NilVal, err
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
	if format == "iso" { // libvirt probes uploaded bytes; an ISO image is raw
		format = formatRaw
	}
	base, baseID := cty.NullVal(cty.String), cty.NullVal(cty.String)
	baseName, basePool := cty.NullVal(cty.String), cty.NullVal(cty.String)
	if doc.BackingStore != nil && doc.BackingStore.Path != "" {
		path := doc.BackingStore.Path
		b, _, _ := strAttr(prior, "base_volume")
		id, _, _ := strAttr(prior, "base_volume_id")
		bn, _, _ := strAttr(prior, "base_volume_name")
		bp, _, _ := strAttr(prior, "base_volume_pool")
		switch {
		case b != "" && sameVolume(l, b, path):
			base = cty.StringVal(b)
			if id == b {
				baseID = base
			}
		case id != "" && sameVolume(l, id, path):
			baseID = cty.StringVal(id)
		case bn != "" && sameVolumeNamed(l, orDefault(bp, vol.Pool), bn, path):
			baseName = cty.StringVal(bn)
			if bp != "" {
				basePool = cty.StringVal(bp)
			}
		case id != "" && b == "":
			baseID = cty.StringVal(path) // the base changed: drift on the attribute config uses
		default:
			base = cty.StringVal(path)
		}
	}
	source := cty.NullVal(cty.String)
	if s, _, _ := strAttr(prior, "source"); s != "" {
		source = cty.StringVal(s)
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":             cty.StringVal(vol.Name),
		"pool":             cty.StringVal(vol.Pool),
		"size":             cty.NumberUIntVal(capacity),
		"format":           cty.StringVal(format),
		"base_volume":      base,
		"base_volume_id":   baseID,
		"base_volume_name": baseName,
		"base_volume_pool": basePool,
		"source":           source,
		"id":               cty.StringVal(vol.Key),
		"path":             cty.StringVal(path),
		"xml":              xmlState(prior),
	}), nil
}

// sameVolume reports whether ref (a key or path) names the volume at path.
func sameVolume(l *golibvirt.Libvirt, ref, path string) bool {
	if ref == path {
		return true
	}
	vol, err := lookupVolumeRef(l, ref)
	return err == nil && (vol.Key == path || vol.Key == ref)
}

// sameVolumeNamed reports whether the volume name in pool is the one at path.
func sameVolumeNamed(l *golibvirt.Libvirt, pool, name, path string) bool {
	p, err := l.StoragePoolLookupByName(pool)
	if err != nil {
		return false
	}
	vol, err := l.StorageVolLookupByName(p, name)
	if err != nil {
		return false
	}
	if vol.Key == path {
		return true
	}
	doc, err := volumeXMLDoc(l, vol, "read volume "+name)
	return err == nil && doc.Target != nil && doc.Target.Path == path
}

// lookupVolumeRef finds a volume by its key, else by its path.
func lookupVolumeRef(l *golibvirt.Libvirt, ref string) (golibvirt.StorageVol, error) {
	vol, err := l.StorageVolLookupByKey(ref)
	if err == nil || !notFound(err) {
		return vol, err
	}
	return l.StorageVolLookupByPath(ref)
}

// volumeRef names a volume: its pool and name, its key once known, and the
// directory that holds it (dir pools; "" if unknown).
type volumeRef struct {
	Key, Pool, Name, Dir string
}

func (r volumeRef) String() string { return fmt.Sprintf("volume %s in pool %s", r.Name, r.Pool) }

func volumeRefFrom(id string, state cty.Value) volumeRef {
	r := volumeRef{Key: id}
	r.Pool, _, _ = strAttr(state, "pool")
	r.Name, _, _ = strAttr(state, "name")
	if path, _, _ := strAttr(state, "path"); path != "" {
		r.Dir = filepath.Dir(path)
	}
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

// volumeContent is what a new volume is filled with: nothing (a blank or
// overlay volume), or bytes uploaded after the create.
type volumeContent struct {
	open func() (io.ReadCloser, error)
	size uint64
}

func (p *Provider) createVolume(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, err := volumeSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create volume %s: %w", req.Address, err)
	}
	spec = spec.normalized()
	var content *volumeContent
	if spec.Source != "" {
		// A URL is requested before the volume is made: a server that
		// refuses it leaves nothing to clean up. Its body streams into
		// the volume at the upload.
		format, size, r, err := openSource(ctx, spec.Source)
		if err != nil {
			return providers.CreateResponse{}, fmt.Errorf("create volume %s: %w", spec.Name, err)
		}
		defer r.Close()
		if format != spec.Format {
			return providers.CreateResponse{}, fmt.Errorf("create volume %s: source %s is a %s image; set format = %q", spec.Name, spec.Source, format, format)
		}
		content = &volumeContent{open: func() (io.ReadCloser, error) { return io.NopCloser(r), nil }, size: size}
	}
	return p.createVolumeWith(ctx, req, spec, content)
}

// createVolumeWith creates the volume spec describes and uploads content
// into it (cloud-init disks come here too). A volume with content is created
// raw at the content's size; libvirt probes the uploaded bytes (a qcow2
// image reads back as qcow2).
//
// On a host whose files the provider sees, the volume is created under a
// temporary name unique to the operation, filled, marked (see mark.go) and
// only then renamed to its own name, never over another volume: until the
// rename the temporary name says whose it is, after it the mark does, so a
// settle claims exactly what this create made. On a remote host the
// volume is created under its own name and cannot be marked.
func (p *Provider) createVolumeWith(ctx context.Context, req providers.CreateRequest, spec volumeSpec, content *volumeContent) (providers.CreateResponse, error) {
	op := fmt.Sprintf("create volume %s in pool %s", spec.Name, spec.Pool)
	l, unlock, err := p.poolClient(ctx, op, poolNamed(spec.Pool, op))
	if err != nil {
		return providers.CreateResponse{}, err
	}
	defer unlock()
	pool, err := l.StoragePoolLookupByName(spec.Pool)
	if err != nil {
		return providers.CreateResponse{}, readErr(op, err)
	}
	doc, err := newVolumeDoc(l, spec, content, op)
	if err != nil {
		return providers.CreateResponse{}, err
	}
	undo := undoRecord{Op: undoCreateVolume, Pool: spec.Pool, Volume: spec.Name}
	local := p.localFiles()
	if local {
		if undo.Path, err = poolNamed(spec.Pool, op)(l); err != nil {
			return providers.CreateResponse{}, err
		}
		undo.Mark = opMark(req.OpID, req.Address)
		undo.Temp = tempVolumeName(spec.Name, undo.Mark)
		doc.Name = undo.Temp
	}
	x, err := marshalVolume(doc)
	if err == nil {
		x, err = applyXSLT(ctx, x, spec.XSLT)
	}
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	if err := ctx.Err(); err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	c := &creation{op: op, undo: &undo}
	vol, err := l.StorageVolCreateXML(pool, x, 0)
	if err != nil {
		return c.makeFailed(err)
	}
	c.cleanUp = func() error { return mutErr(op, l.StorageVolDelete(vol, 0)) }
	if local {
		c.cleanUp = func() error { return removeCreatedVolume(l, pool, undo, op) }
	} else {
		undo.Key, c.id = vol.Key, vol.Key
	}
	if content != nil {
		if err := upload(ctx, l, pool, vol, content, op); err != nil {
			return c.fail(err)
		}
		if vol, err = l.StorageVolLookupByName(pool, doc.Name); err != nil {
			return c.fail(readErr(op, err))
		}
	}
	if local {
		if vol, err = p.publishVolume(l, pool, vol, &undo, op); err != nil {
			return c.fail(err)
		}
		c.id = vol.Key
	}
	state, err := volumeState(l, vol, req.Config)
	if err != nil {
		return c.fail(err)
	}
	return c.done(state)
}

// newVolumeDoc is the XML of the volume spec describes: blank, a qcow2
// overlay on its base_volume, or raw at content's size.
func newVolumeDoc(l *golibvirt.Libvirt, spec volumeSpec, content *volumeContent, op string) (libvirtxml.StorageVolume, error) {
	switch {
	case content != nil:
		return volumeDoc(spec.Name, formatRaw, content.size, nil), nil
	case spec.hasBase():
		base, err := lookupBase(l, spec)
		if err != nil {
			return libvirtxml.StorageVolume{}, readErr(fmt.Sprintf("%s: look up %s", op, spec.baseDesc()), err)
		}
		bdoc, err := volumeXMLDoc(l, base, op)
		if err != nil {
			return libvirtxml.StorageVolume{}, err
		}
		capacity := spec.Size
		if !spec.SizeSet {
			if _, capacity, _, err = l.StorageVolGetInfo(base); err != nil {
				return libvirtxml.StorageVolume{}, readErr(op, err)
			}
		}
		return volumeDoc(spec.Name, formatQcow2, capacity, &libvirtxml.StorageVolumeBackingStore{
			Path: bdoc.Target.Path, Format: bdoc.Target.Format}), nil
	}
	return volumeDoc(spec.Name, spec.Format, spec.Size, nil), nil
}

// publishVolume gives a volume created under its temporary name (u.Temp)
// its own (u.Volume): it marks the file, renames it without replacing
// anything and refreshes the pool so libvirt sees the new name. A file
// the provider cannot see after all (another file system than libvirtd's)
// is renamed as on a remote host (see renameVolume), unmarked. Where no
// mark could be set, u.Key records the volume's key instead. The caller
// holds the pool's lock.
func (p *Provider) publishVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, vol golibvirt.StorageVol, u *undoRecord, op string) (golibvirt.StorageVol, error) {
	doc, err := volumeXMLDoc(l, vol, op)
	if err != nil {
		return vol, err
	}
	marked := false
	if _, ok := localFile(doc); !ok {
		if err := p.renameVolume(l, pool, vol, u.Volume, op); err != nil {
			return vol, err
		}
	} else {
		marked = setMark(doc.Target.Path, u.Mark) == nil
		if err := renameLocalVolume(l, pool, doc.Target.Path, u.Volume, op); err != nil {
			return vol, err
		}
	}
	published, err := l.StorageVolLookupByName(pool, u.Volume)
	if err != nil {
		return vol, readErr(op, err)
	}
	if !marked {
		u.Key = published.Key
	}
	return published, nil
}

// renameLocalVolume renames the file at path to name in its directory,
// refusing (as libvirt would, with its code) when name is taken, and
// refreshes the pool. If the refresh fails the file gets its old name
// back, so libvirt's view stays true.
func renameLocalVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, path, name, op string) error {
	to := filepath.Join(filepath.Dir(path), name)
	if err := renameNoReplace(path, to); err != nil {
		if errors.Is(err, os.ErrExist) {
			return mutErr(op, golibvirt.Error{Code: uint32(golibvirt.ErrStorageVolExist),
				Message: fmt.Sprintf("storage volume '%s' exists already", name)})
		}
		return fmt.Errorf("%s: %w", op, err)
	}
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		_ = renameNoReplace(to, path)
		return mutErr(op+": refresh pool", err)
	}
	return nil
}

// tempVolumeName is the name a volume is created under before it gets its
// own (see createVolumeWith): unique to the operation whose mark it is.
func tempVolumeName(name, mark string) string {
	return name + ".fiat-new-" + mark[:8]
}

// poolNamed is the where (see poolClient) of a job on the pool called
// name: that pool's directory.
func poolNamed(name, op string) func(*golibvirt.Libvirt) (string, error) {
	return func(l *golibvirt.Libvirt) (string, error) {
		pool, err := l.StoragePoolLookupByName(name)
		if err != nil {
			return "", readErr(op, err)
		}
		doc, err := poolDoc(l, pool)
		if err != nil {
			return "", err
		}
		if doc.Target == nil || doc.Target.Path == "" {
			return "pool " + name, nil
		}
		return doc.Target.Path, nil
	}
}

// volumeDir is the where (see poolClient) of a job on the volume r: the
// directory holding it (a dir pool's volume is in its pool's directory,
// whatever the pool is called now), else the directory of the pool that
// holds the volume with r's key, else that of the pool named r.Pool.
func volumeDir(r volumeRef, op string) func(*golibvirt.Libvirt) (string, error) {
	return func(l *golibvirt.Libvirt) (string, error) {
		if r.Dir != "" {
			return r.Dir, nil
		}
		pool := r.Pool
		if r.Key != "" {
			vol, err := l.StorageVolLookupByKey(r.Key)
			if err != nil && !notFound(err) {
				return "", readErr(op, err)
			}
			if err == nil {
				pool = vol.Pool
			}
		}
		dir, err := poolNamed(pool, op)(l)
		if notFound(err) {
			return "pool " + pool, nil // gone: the job finds nothing either
		}
		return dir, err
	}
}

// undoCreateVolume deletes what the create made: a create under a
// temporary name (local hosts) made the volume under that name, or under
// its own with the create's mark; any other create made the volume with
// the recorded key.
func (p *Provider) undoCreateVolume(ctx context.Context, u undoRecord) error {
	r := volumeRef{Key: u.Key, Pool: u.Pool, Name: u.Volume, Dir: u.Path}
	if u.Key != "" {
		r.Dir = filepath.Dir(u.Key)
	}
	op := "undo create " + r.String()
	if u.Temp == "" {
		return p.deleteVolume(ctx, r, r.Name, op)
	}
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return err
	}
	defer unlock()
	_, err = withPoolAt(l, r, op, func(pool golibvirt.StoragePool) error { return removeCreatedVolume(l, pool, u, op) })
	return err
}

// removeCreatedVolume deletes what a create under a temporary name left in
// pool: the volume under that name, and the one under its own name when it
// is the create's. The pool is refreshed first: a crash may have renamed
// the file behind libvirt's back. The caller holds the pool's lock.
func removeCreatedVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, u undoRecord, op string) error {
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		return mutErr(op+": refresh pool", err)
	}
	for _, name := range []string{u.Temp, u.Volume} {
		vol, err := l.StorageVolLookupByName(pool, name)
		if notFound(err) {
			continue
		}
		if err != nil {
			return readErr(op, err)
		}
		if name == u.Volume {
			ours, err := createdBy(l, vol, u, op)
			if err != nil || !ours {
				return err // another volume took the name: not the create's to delete
			}
		}
		if err := l.StorageVolDelete(vol, 0); err != nil && !notFound(err) {
			return mutErr(op, err)
		}
	}
	return nil
}

// createdBy reports whether vol, under the name the create u gave it, is
// that create's: it carries the create's mark or, where the create could
// not mark it, has the key the create recorded.
func createdBy(l *golibvirt.Libvirt, vol golibvirt.StorageVol, u undoRecord, op string) (bool, error) {
	if u.Key != "" && vol.Key == u.Key {
		return true, nil
	}
	doc, err := volumeXMLDoc(l, vol, op)
	if err != nil {
		return false, err
	}
	return u.Mark != "" && doc.Target != nil && hasMark(doc.Target.Path, u.Mark), nil
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
	next = next.normalized()
	r := volumeRefFrom(req.ID, req.Prior)
	op := "resize " + r.String()
	if problem := volumeChange(prior, next); problem != "" {
		return providers.UpdateResponse{}, fmt.Errorf("%s: %s", op, problem)
	}
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	defer unlock()
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
	state, err := volumeState(l, vol, req.Config)
	if err != nil {
		return providers.UpdateResponse{Undo: undo.encode()}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo.encode()}, nil
}

// volumeChange says why prior cannot become next in place ("" if it can).
func volumeChange(prior, next volumeSpec) string {
	switch {
	case prior.Name != next.Name || prior.Pool != next.Pool || prior.Format != next.Format ||
		prior.Base != next.Base || prior.Source != next.Source || prior.BaseName != next.BaseName || prior.basePool() != next.basePool():
		return "a volume's name, pool, format, base_volume and source cannot change in place; it must be replaced"
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
	r := volumeRef{Key: u.Key, Pool: u.Pool, Name: u.Volume, Dir: filepath.Dir(u.Key)}
	op := "undo resize " + r.String()
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return err
	}
	defer unlock()
	found, err := withVolume(l, r, r.Name, op, func(pool golibvirt.StoragePool, vol golibvirt.StorageVol) error {
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

func (p *Provider) readVolume(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	r := volumeRefFrom(req.ID, req.State)
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read %s: %w", r, err)
	}
	vol, found, err := lookupVolume(l, r)
	if resp, ok := storedRead(err, req); ok {
		return resp, nil
	}
	if err != nil || !found {
		return providers.ReadResponse{}, err
	}
	state, err := volumeState(l, vol, req.State)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: state}, nil
}
