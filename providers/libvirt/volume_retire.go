package libvirt

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// retiredVolumeName is the name a retire gives a volume: its own with a
// suffix derived from the retire's operation, as a settle of that retire
// derives it again. Every retire has a name of its own: two incarnations
// of one volume (same name, so the same key: the path), retired by two
// transactions of which the first's purge is still pending, never share
// one, and the name depends on nothing the volume's path or key could
// change. The retire's Undo records it; purge and undo take it from there.
func retiredVolumeName(name, opID, address string) string {
	return name + ".fiat-retired-" + opMark(opID, address)[:8]
}

// legacyRetiredName is the name an older fiat's retire gave a volume,
// derived from its key: the purge of a retire whose Undo is not at hand
// looks for it.
func legacyRetiredName(name, key string) string {
	sum := sha256.Sum256([]byte(key))
	return name + ".fiat-retired-" + hex.EncodeToString(sum[:4])
}

func retireVolumeUndo(r volumeRef, retired string) []byte {
	return undoRecord{Op: undoRetireVolume, Pool: r.Pool, Volume: r.Name, Key: r.Key, Path: r.Dir, Retired: retired}.encode()
}

func (p *Provider) retireVolume(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	r := volumeRefFrom(req.ID, req.State)
	op := "retire " + r.String()
	retired := retiredVolumeName(r.Name, req.OpID, req.Address)
	undo := retireVolumeUndo(r, retired)
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return providers.RetireResponse{}, err
	}
	defer unlock()
	_, err = withVolume(l, r, r.Name, op, func(pool golibvirt.StoragePool, vol golibvirt.StorageVol) error {
		// A volume under the retired name can only be this operation's
		// own: a copy (remote hosts) an earlier attempt did not finish.
		if old, err := l.StorageVolLookupByName(pool, retired); err == nil {
			if err := l.StorageVolDelete(old, 0); err != nil && !notFound(err) {
				return mutErr(op+": delete the leftover "+retired, err)
			}
		} else if !notFound(err) {
			return readErr(op, err)
		}
		if err := ctx.Err(); err != nil {
			return fmt.Errorf("%s: %w", op, err)
		}
		return p.renameVolume(l, pool, vol, retired, op)
	})
	if err != nil {
		return providers.RetireResponse{Undo: undo}, err
	}
	return providers.RetireResponse{Undo: undo}, nil
}

// undoRetireVolume renames the retired volume back. When both names exist,
// a clone finished but the delete of the original did not: the copy goes.
func (p *Provider) undoRetireVolume(ctx context.Context, u undoRecord) error {
	if u.Retired == "" { // a retire that left the volume as it was
		return nil
	}
	r := volumeRef{Key: u.Key, Pool: u.Pool, Name: u.Volume, Dir: u.Path}
	op := "undo retire " + r.String()
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return err
	}
	defer unlock()
	_, err = withVolume(l, r, u.Retired, op, func(pool golibvirt.StoragePool, ret golibvirt.StorageVol) error {
		orig, err := l.StorageVolLookupByName(pool, r.Name)
		switch {
		case notFound(err):
			return p.renameVolume(l, pool, ret, r.Name, op)
		case err != nil:
			return readErr(op, err)
		}
		same, err := sameVolumeInfo(l, orig, ret)
		if err != nil {
			return readErr(op, err)
		}
		if !same {
			return fmt.Errorf("%s: both %s and %s exist and differ; the original name holds another volume (was its create undone?): leaving both",
				op, r.Name, u.Retired)
		}
		return mutErr(op+": delete the unfinished copy", l.StorageVolDelete(ret, 0))
	})
	return err
}

func sameVolumeInfo(l *golibvirt.Libvirt, a, b golibvirt.StorageVol) (bool, error) {
	_, ca, aa, err := l.StorageVolGetInfo(a)
	if err != nil {
		return false, err
	}
	_, cb, ab, err := l.StorageVolGetInfo(b)
	return ca == cb && aa == ab, err
}

// purgeVolume deletes the volume its retire renamed, by the name the
// retire's Undo records (by the name an older fiat derived from the key,
// when the Undo is not at hand).
func (p *Provider) purgeVolume(ctx context.Context, req providers.PurgeRequest) error {
	r := volumeRefFrom(req.ID, req.State)
	retired := legacyRetiredName(r.Name, r.Key)
	if u, err := decodeUndo(req.Undo); err == nil {
		switch {
		case u.Op == undoRetireVolume && u.Retired != "":
			retired = u.Retired
		case u.Op == undoNone || u.Op == undoRetireVolume: // the retire found nothing to rename
			return nil
		}
	}
	return p.deleteVolume(ctx, r, retired, "purge "+r.String())
}

// deleteVolume deletes the volume called name in r's pool; a volume that is
// gone is fine.
func (p *Provider) deleteVolume(ctx context.Context, r volumeRef, name, op string) error {
	l, unlock, err := p.poolClient(ctx, op, volumeDir(r, op))
	if err != nil {
		return err
	}
	defer unlock()
	_, err = withVolume(l, r, name, op, func(_ golibvirt.StoragePool, vol golibvirt.StorageVol) error {
		if err := l.StorageVolDelete(vol, 0); err != nil && !notFound(err) {
			return mutErr(op, err)
		}
		return nil
	})
	return err
}

// withVolume runs fn on the volume called name in the pool that holds r
// (see withPoolAt). When name is r's own name and r has a key, the volume
// must have that key. found=false when the volume (or its directory) is
// gone. The caller holds the pool's lock.
func withVolume(l *golibvirt.Libvirt, r volumeRef, name, op string, fn func(golibvirt.StoragePool, golibvirt.StorageVol) error) (found bool, err error) {
	var volFound bool
	poolFound, err := withPoolAt(l, r, op, func(pool golibvirt.StoragePool) error {
		vol, err := l.StorageVolLookupByName(pool, name)
		if notFound(err) {
			return nil
		}
		if err != nil {
			return readErr(op, err)
		}
		if name == r.Name && r.Key != "" && vol.Key != r.Key {
			return fmt.Errorf("%s: pool %s now holds another volume of that name (key %s, not %s); leaving it alone",
				op, r.Pool, vol.Key, r.Key)
		}
		volFound = true
		return fn(pool, vol)
	})
	return poolFound && volFound, err
}

// withPoolAt runs fn on the pool that holds r's directory, running for the
// call: the pool named r.Pool if its directory is r.Dir (or r.Dir is not
// known), else any pool on r.Dir (a replacement under another name), else
// a scratch pool defined on r.Dir for the call (the pool was undefined by a
// retire in the same apply). A stopped pool is started for the call and
// stopped again. found=false when there is no such pool or directory.
func withPoolAt(l *golibvirt.Libvirt, r volumeRef, op string, fn func(golibvirt.StoragePool) error) (found bool, err error) {
	pool, have, err := poolHolding(l, r, op)
	if err != nil {
		return false, err
	}
	if !have && r.Dir != "" {
		scratch, err := defineScratchPool(l, r.Dir, op)
		if err != nil {
			return false, err
		}
		if scratch != nil {
			pool, have = *scratch, true
			defer func() {
				if uerr := l.StoragePoolUndefine(pool); uerr != nil && !notFound(uerr) && err == nil {
					err = mutErr(op+": undefine the scratch pool", uerr)
				}
			}()
		}
	}
	if !have {
		return false, nil
	}
	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return false, readErr(op, err)
	}
	if active == 0 {
		if err := l.StoragePoolCreate(pool, 0); err != nil {
			if hasMessage(err, "No such file or directory") {
				return false, nil // the directory, and so the volume, is gone
			}
			return false, mutErr(fmt.Sprintf("%s: start pool %s", op, pool.Name), err)
		}
		defer func() {
			if derr := l.StoragePoolDestroy(pool); derr != nil && err == nil {
				err = mutErr(fmt.Sprintf("%s: stop pool %s again", op, pool.Name), derr)
			}
		}()
	}
	return true, fn(pool)
}

// poolHolding finds, read-only, the defined pool that holds r (see
// withPoolAt).
func poolHolding(l *golibvirt.Libvirt, r volumeRef, op string) (golibvirt.StoragePool, bool, error) {
	if r.Pool != "" {
		pool, err := l.StoragePoolLookupByName(r.Pool)
		switch {
		case err == nil:
			if r.Dir == "" {
				return pool, true, nil
			}
			doc, err := poolDoc(l, pool)
			if err != nil && !notFound(err) {
				return pool, false, err
			}
			if err == nil && doc.Target != nil && filepath.Clean(doc.Target.Path) == filepath.Clean(r.Dir) {
				return pool, true, nil
			}
		case !notFound(err):
			return pool, false, readErr(op, err)
		}
	}
	if r.Dir == "" {
		return golibvirt.StoragePool{}, false, nil
	}
	hp, err := poolWithPath(l, r.Dir)
	if err != nil || hp == nil {
		return golibvirt.StoragePool{}, false, err
	}
	return *hp, true, nil
}

// volumeNames reports, read-only, whether r's pool holds a volume named
// r.Name and one named retired. The pool must be running.
func (p *Provider) volumeNames(ctx context.Context, l *golibvirt.Libvirt, r volumeRef, retired string) (orig, ret bool, err error) {
	op := "look up " + r.String()
	pool, have, err := poolHolding(l, r, op)
	if err != nil || !have {
		return false, false, err
	}
	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return false, false, readErr(op, err)
	}
	if active == 0 {
		return false, false, fmt.Errorf("%s: %w", op, errPoolInactive{pool.Name})
	}
	for _, n := range []struct {
		name  string
		found *bool
	}{{r.Name, &orig}, {retired, &ret}} {
		_, err := l.StorageVolLookupByName(pool, n.name)
		switch {
		case err == nil:
			*n.found = true
		case !notFound(err):
			return false, false, readErr(op, err)
		}
	}
	return orig, ret, nil
}

// renameVolume gives vol a new name in its pool. libvirt has no rename: on
// a local host the file is renamed and the pool refreshed; otherwise (or
// when the file is not visible here) the volume is cloned under the new name
// (qemu-img convert for qcow2, keeping its backing file; a sparse copy for
// raw) and the original deleted. The caller holds the pool's lock.
func (p *Provider) renameVolume(l *golibvirt.Libvirt, pool golibvirt.StoragePool, vol golibvirt.StorageVol, name, op string) error {
	doc, err := volumeXMLDoc(l, vol, op)
	if err != nil {
		return err
	}
	if p.conn.local() && !p.remoteFiles && renameLocal(doc, name) {
		if err := l.StoragePoolRefresh(pool, 0); err != nil {
			_ = os.Rename(filepath.Join(filepath.Dir(doc.Target.Path), name), doc.Target.Path)
			return mutErr(op+": refresh pool", err)
		}
		return nil
	}
	clone := libvirtxml.StorageVolume{
		Name:         name,
		Capacity:     doc.Capacity,
		Target:       &libvirtxml.StorageVolumeTarget{Format: doc.Target.Format},
		BackingStore: doc.BackingStore,
	}
	x, err := marshalVolume(clone)
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	if _, err := l.StorageVolCreateXMLFrom(pool, x, vol, 0); err != nil {
		return mutErr(op+": copy to "+name, err)
	}
	return mutErr(op+": delete the original after copying it to "+name, l.StorageVolDelete(vol, 0))
}

// renameLocal renames a dir pool volume's file when it is visible on this
// machine (see localFile).
func renameLocal(doc libvirtxml.StorageVolume, name string) bool {
	if _, ok := localFile(doc); !ok {
		return false
	}
	to := filepath.Join(filepath.Dir(doc.Target.Path), name)
	if _, err := os.Lstat(to); !os.IsNotExist(err) {
		return false
	}
	return os.Rename(doc.Target.Path, to) == nil
}

// localFile reports whether a file volume's file is visible here and is the
// very file libvirt describes (same size and mtime: a provider in a
// container may see another file at the same path).
func localFile(doc libvirtxml.StorageVolume) (os.FileInfo, bool) {
	if doc.Target == nil || doc.Target.Path == "" || (doc.Type != "" && doc.Type != "file") ||
		doc.Target.Timestamps == nil || doc.Physical == nil {
		return nil, false
	}
	fi, err := os.Lstat(doc.Target.Path)
	if err != nil || !fi.Mode().IsRegular() || uint64(fi.Size()) != physicalBytes(doc.Physical) {
		return nil, false
	}
	mtime, ok := parseTimestamp(doc.Target.Timestamps.Mtime)
	if !ok || !fi.ModTime().Equal(mtime) {
		return nil, false
	}
	return fi, true
}

func physicalBytes(s *libvirtxml.StorageVolumeSize) uint64 {
	mult := map[string]uint64{"": 1, "b": 1, "bytes": 1, "KiB": 1 << 10, "MiB": 1 << 20, "GiB": 1 << 30}[s.Unit]
	return s.Value * mult
}

// parseTimestamp reads libvirt's "seconds.nanoseconds".
func parseTimestamp(s string) (time.Time, bool) {
	sec, frac, _ := strings.Cut(s, ".")
	secs, err := strconv.ParseInt(sec, 10, 64)
	if err != nil {
		return time.Time{}, false
	}
	var nsec int64
	if frac != "" {
		frac = (frac + "000000000")[:9]
		if nsec, err = strconv.ParseInt(frac, 10, 64); err != nil {
			return time.Time{}, false
		}
	}
	return time.Unix(secs, nsec), true
}
