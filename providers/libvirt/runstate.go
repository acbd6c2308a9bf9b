package libvirt

import (
	"context"
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Running state and autostart of pools and networks are desired state, the
// attributes active and autostart (both true unless config says otherwise,
// which is how fiat has always made them). Read reports both, so a pool or
// network stopped outside fiat (virsh pool-destroy, net-destroy), or whose
// autostart was disabled, is drift; Update starts it again and sets
// autostart back.

// runState is whether a pool or network runs (active) and is started with
// libvirtd (autostart).
type runState struct{ Active, Autostart bool }

// runStateFrom reads active and autostart from config or state: null (or
// a state stored before the attributes existed) is true.
func runStateFrom(v cty.Value) (runState, error) {
	var r runState
	var known bool
	var err error
	if r.Active, known, err = boolAttr(v, "active", true); err != nil || !known {
		return r, orUnknown(err, "active")
	}
	if r.Autostart, known, err = boolAttr(v, "autostart", true); err != nil || !known {
		return r, orUnknown(err, "autostart")
	}
	return r, nil
}

// poolRun reads what a pool does now.
func poolRun(l *golibvirt.Libvirt, pool golibvirt.StoragePool, op string) (runState, error) {
	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return runState{}, readErr(op, err)
	}
	autostart, err := l.StoragePoolGetAutostart(pool)
	if err != nil {
		return runState{}, readErr(op, err)
	}
	return runState{Active: active == 1, Autostart: autostart == 1}, nil
}

// setPoolRun brings a pool to want: it starts it (building its directory
// when it is missing, as a create does; *built is set before the build, so
// an Undo covers a build whose outcome is unknown), or stops it, and sets
// autostart. What is already as wanted is left alone, so a replay is a
// no-op. built may be nil when nothing records it.
func setPoolRun(l *golibvirt.Libvirt, pool golibvirt.StoragePool, want runState, built *bool, op string) error {
	cur, err := poolRun(l, pool, op)
	if err != nil {
		return err
	}
	switch {
	case want.Active && !cur.Active:
		err := l.StoragePoolCreate(pool, 0)
		if hasMessage(err, "No such file or directory") { // the directory was removed: an empty one again
			if built != nil {
				*built = true
			}
			if err = l.StoragePoolBuild(pool, 0); err == nil {
				err = l.StoragePoolCreate(pool, 0)
			}
		}
		if err != nil {
			return mutErr(op+": start", err)
		}
	case !want.Active && cur.Active:
		if err := l.StoragePoolDestroy(pool); err != nil && !notActive(err) {
			return mutErr(op+": stop", err)
		}
	}
	if cur.Autostart != want.Autostart {
		if err := l.StoragePoolSetAutostart(pool, boolInt(want.Autostart)); err != nil {
			return mutErr(op+": autostart", err)
		}
	}
	return nil
}

// createPoolAs creates a pool the way every pool is made (started, which is
// how a missing directory gets built, and autostarted), then brings it to
// the run state config asks for when that is less. A failure there leaves
// the pool to the Undo that goes back with the error.
func (p *Provider) createPoolAs(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	resp, err := p.createPool(ctx, req)
	if err != nil {
		return resp, err
	}
	spec, err := poolSpecFrom(req.Config)
	if err != nil || spec.Run == (runState{Active: true, Autostart: true}) {
		return resp, err
	}
	op := "create pool " + spec.Name
	made := providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}
	l, unlock, err := p.poolClient(ctx, op, atDir(spec.Path))
	if err != nil {
		return made, err
	}
	defer unlock()
	pool, found, err := findPool(l, resp.ID, cty.NilVal)
	if err == nil && !found {
		err = fmt.Errorf("%s: pool %s vanished while it was created", op, resp.ID)
	}
	if err == nil {
		err = ctxErr(ctx, op)
	}
	if err == nil {
		err = setPoolRun(l, pool, spec.Run, nil, op)
	}
	if err != nil {
		return made, err
	}
	if resp.State, err = poolState(l, pool, req.Config); err != nil {
		return made, err
	}
	return resp, nil
}

// undoUpdatePool puts a pool's run state back, and removes the directory
// the update built when it is empty again.
func (p *Provider) undoUpdatePool(ctx context.Context, u undoRecord) error {
	op := "undo update pool " + u.Pool
	l, unlock, err := p.poolClient(ctx, op, poolDir(u.UUID, cty.NilVal))
	if err != nil {
		return err
	}
	defer unlock()
	pool, found, err := findPool(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		return fmt.Errorf("%s: pool %s (uuid %s) no longer exists; its run state cannot be restored", op, u.Pool, u.UUID)
	}
	if err := setPoolRun(l, pool, runState{Active: u.WasActive, Autostart: u.Autostart}, nil, op); err != nil {
		return err
	}
	if u.Built && !u.WasActive {
		err := l.StoragePoolDelete(pool, golibvirt.StoragePoolDeleteNormal) // rmdir: files stay
		if err != nil && !hasMessage(err, "Directory not empty") && !hasMessage(err, "No such file or directory") {
			return mutErr(op, err)
		}
	}
	return nil
}

// networkRun reads what a network does now.
func networkRun(l *golibvirt.Libvirt, n golibvirt.Network, op string) (runState, error) {
	active, err := l.NetworkIsActive(n)
	if err != nil {
		return runState{}, readErr(op, err)
	}
	autostart, err := l.NetworkGetAutostart(n)
	if err != nil {
		return runState{}, readErr(op, err)
	}
	return runState{Active: active == 1, Autostart: autostart == 1}, nil
}

// storedRead answers the read of a volume (or cloud-init disk) that
// lookupVolume could not see because its pool is stopped. libvirt shows no
// volume of a stopped pool, and a read starts nothing: the volume is
// reported as last stored, so the plan does not fail. The pool's own read
// shows it stopped (drift, when fiat manages the pool), and the plan starts
// it before anything that uses the volume, which depends on it; the next
// plan reads the volume itself. ok=false when err is another error, or
// there is no stored state to report.
func storedRead(err error, req providers.ReadRequest) (providers.ReadResponse, bool) {
	var inactive errPoolInactive
	if !errors.As(err, &inactive) || req.ID == "" || req.State == cty.NilVal || req.State.IsNull() || !req.State.IsWhollyKnown() {
		return providers.ReadResponse{}, false
	}
	return providers.ReadResponse{Exists: true, State: req.State}, true
}
