package libvirt

import (
	"context"
	"fmt"

	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Settling, importing and reading libvirt_pool objects fiat did not just make.

// settlePool: a create took effect when the pool with the UUID derived
// from the OpID is defined and runs and autostarts as config asks (both,
// by default); an update when the pool runs and autostarts as asked; a
// retire when the pool's UUID is no longer defined. A create that got only
// part of the way reports TookEffect=false with the Undo that removes what
// it left.
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
		// Whether fiat built the directory is not known here: keep it.
		undo := undoRecord{Op: undoCreatePool, UUID: uuid, Pool: spec.Name, Path: spec.Path}.encode()
		return settledCreate(uuid, undo, func() (bool, cty.Value, error) {
			run, err := poolRun(l, pool, op)
			if err != nil || run != spec.Run {
				return false, cty.NilVal, err
			}
			state, err := poolState(l, pool)
			return true, state, err
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
		state, err := poolState(l, pool)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: run == next.Run, ID: req.ID, State: state, Undo: undo}, nil
	case providers.ActionDelete:
		spec, err := poolSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		x, err := poolXML(spec, req.ID)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		// The undo puts the pool back running as its state says.
		undo := undoRecord{Op: undoRetirePool, UUID: req.ID, Pool: spec.Name, WasActive: spec.Run.Active, Autostart: spec.Run.Autostart, XML: x}.encode()
		_, found, err := findPool(l, req.ID, cty.NilVal)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: !found, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
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
	state, err := poolState(l, pool)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	if _, err := poolSpecFrom(state); err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	return providers.ImportResponse{ID: formatUUID(pool.UUID), State: state}, nil
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
	state, err := poolState(l, pool)
	return providers.ReadDataResponse{State: state}, err
}
