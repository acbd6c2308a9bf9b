package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Settling, importing and reading libvirt_pool objects fiat did not just make.

// settlePool: a create took effect when the pool with the UUID derived
// from the OpID is defined and runs and autostarts as config asks (both,
// by default); an update when the pool runs and autostarts as asked; a
// retire when the pool's UUID is no longer defined. A create that got only
// part of the way reports TookEffect=false with the Undo that removes what
// it left: the directories it built are those on this machine that carry
// its mark (see pool_dirs.go); on a remote host, or for one libvirt built,
// fiat cannot tell, and they stay.
func (p *Provider) settlePool(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	op := "settle pool " + req.Address
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	switch req.Action {
	case providers.ActionCreate:
		spec, err := poolSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		uuid := formatUUID(newUUID(req.OpID, req.Address))
		pool, found, err := findPool(l, uuid, cty.NilVal)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		u := undoRecord{Op: undoCreatePool, UUID: uuid, Pool: spec.Name, Path: spec.Path}
		if p.localFiles() {
			u.Dirs = markedDirs(spec.Path, opMark(req.OpID, req.Address))
			u.Built = len(u.Dirs) > 0
		}
		return settledCreate(uuid, u.encode(), func() (bool, cty.Value, error) {
			run, err := poolRun(l, pool, op)
			if err != nil || run != spec.Run {
				return false, cty.NilVal, err
			}
			state, err := poolState(l, pool, req.Config)
			return true, withBuiltDirs(state, builtDirsValue(u.builtDirs())), err
		})
	case providers.ActionUpdate:
		prior, err := poolSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		next, err := poolSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		pool, found, err := findPool(l, req.ID, req.Prior)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		// Whether the update built the directory is not known here: keep it.
		undo := undoRecord{Op: undoUpdatePool, UUID: req.ID, Pool: prior.Name, WasActive: prior.Run.Active, Autostart: prior.Run.Autostart}.encode()
		run, err := poolRun(l, pool, op)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		read, err := p.readPoolKeepingDirs(ctx, providers.ReadRequest{Address: req.Address, Type: TypePool, ID: req.ID, State: req.Prior})
		if err != nil || !read.Exists {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: run == next.Run, ID: req.ID, State: read.State, Undo: undo}, nil
	case providers.ActionDelete:
		spec, err := poolSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		x, err := poolXML(spec, req.ID)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		pool, found, err := findPool(l, req.ID, cty.NilVal)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		active, autostart, err := poolWas(l, pool, found, req.Prior)
		if err != nil {
			return providers.SettleResponse{}, readErr(op, err)
		}
		undo := undoRecord{Op: undoRetirePool, UUID: req.ID, Pool: spec.Name, Path: spec.Path,
			WasActive: active, Autostart: autostart, XML: x}.encode()
		return providers.SettleResponse{TookEffect: !found, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
}

// poolWas decides how a pool was before a retire whose outcome is unknown,
// so the undo brings back that and no more. The prior state says it when
// it records the pool's run state ("active" or "running") and "autostart".
// Else the pool does, while it is still defined: a retire stops it and
// undefines it, nothing else, so a pool that runs ran before and one that
// is stopped most likely was (the retire would have had to be cut off
// between its two calls); undefining drops autostart and nothing before
// it touches it, so a defined pool's autostart is what it was. What
// neither tells (the pool is gone) is taken to be how fiat makes pools:
// running, autostarted.
func poolWas(l *golibvirt.Libvirt, pool golibvirt.StoragePool, found bool, prior cty.Value) (active, autostart bool, err error) {
	active, autostart = true, true
	if found {
		a, err := l.StoragePoolIsActive(pool)
		if err != nil && !notFound(err) {
			return false, false, err
		}
		s, err := l.StoragePoolGetAutostart(pool)
		if err != nil && !notFound(err) {
			return false, false, err
		}
		active, autostart = a == 1, s == 1
	}
	if b, ok := priorBool(prior, "active", "running"); ok {
		active = b
	}
	if b, ok := priorBool(prior, "autostart"); ok {
		autostart = b
	}
	return active, autostart, nil
}

// priorBool is the first of the named bool attributes prior has and knows.
func priorBool(prior cty.Value, names ...string) (b, ok bool) {
	for _, n := range names {
		if v := attr(prior, n); v.IsKnown() && !v.IsNull() && v.Type() == cty.Bool {
			return v.True(), true
		}
	}
	return false, false
}

// importPool adopts a pool by UUID or name.
func (p *Provider) importPool(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import pool " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	pool, err := lookupUserID(req.ID, l.StoragePoolLookupByUUID, l.StoragePoolLookupByName)
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	state, err := poolState(l, pool, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	if _, err := poolSpecFrom(state); err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	// fiat built none of an adopted pool's directories: deleting it
	// later leaves them.
	return providers.ImportResponse{ID: formatUUID(pool.UUID), State: withBuiltDirs(state, builtDirsValue(nil))}, nil
}

// readPoolData is the data source libvirt_pool: an existing pool by name.
func (p *Provider) readPoolData(ctx context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	name, known, err := strAttr(req.Config, "name")
	if err != nil || !known || name == "" {
		return providers.ReadDataResponse{}, fmt.Errorf("read pool %s: name must be a known, non-empty string (%v)", req.Address, err)
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadDataResponse{}, fmt.Errorf("read pool %s: %w", name, err)
	}
	pool, err := l.StoragePoolLookupByName(name)
	if err != nil {
		return providers.ReadDataResponse{}, readErr("read pool "+name, err)
	}
	state, err := poolState(l, pool, cty.NilVal)
	return providers.ReadDataResponse{State: withBuiltDirs(state, builtDirsValue(nil))}, err
}
