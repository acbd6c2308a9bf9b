package libvirt

import (
	"context"
	"encoding/json"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// Shared shapes of the resource types' lifecycles.

// findObject looks a pool, network or domain up by UUID, or by the name in
// state when id is empty. found=false when libvirt has no such object.
func findObject[T any](kind, id string, state cty.Value, byUUID func(golibvirt.UUID) (T, error), byName func(string) (T, error)) (T, bool, error) {
	var (
		obj  T
		err  error
		what = id
	)
	if id != "" {
		u, perr := parseUUID(id)
		if perr != nil {
			return obj, false, fmt.Errorf("look up %s: %w", kind, perr)
		}
		obj, err = byUUID(u)
	} else {
		name, known, serr := strAttr(state, "name")
		if serr != nil || !known || name == "" {
			return obj, false, fmt.Errorf("look up %s: neither an id nor a name is known", kind)
		}
		what = name
		obj, err = byName(name)
	}
	if notFound(err) {
		return obj, false, nil
	}
	if err != nil {
		return obj, false, readErr("look up "+kind+" "+what, err)
	}
	return obj, true, nil
}

// lookupUserID finds the object an import names: by UUID when id parses as
// one, else by name. libvirt's error is returned as is.
func lookupUserID[T any](id string, byUUID func(golibvirt.UUID) (T, error), byName func(string) (T, error)) (T, error) {
	if u, err := parseUUID(id); err == nil {
		return byUUID(u)
	}
	return byName(id)
}

// removeFound runs remove on what find finds; an object that is gone is
// fine (undo of a create, purge).
func removeFound[T any](find func() (T, bool, error), remove func(T) error) error {
	obj, found, err := find()
	if err != nil || !found {
		return err
	}
	return remove(obj)
}

// creation is the bookkeeping of one Create from the moment its identity
// and Undo are known: what goes back when the call that makes the object
// fails, and the clean-up of a later failure.
type creation struct {
	op      string
	id      string      // the new object's ID ("" while unknown: a volume's key)
	undo    *undoRecord // encoded at each response: a pool sets Built late
	cleanUp func() error
}

// response is the answer that leaves the object to the Undo.
func (c *creation) response() providers.CreateResponse {
	return providers.CreateResponse{ID: c.id, Undo: c.undo.encode()}
}

// makeFailed answers the failure of the call that makes the object (define,
// create): when its outcome is in doubt, the ID and Undo go back.
func (c *creation) makeFailed(err error) (providers.CreateResponse, error) {
	err = mutErr(c.op, err)
	if isOutcomeUnknown(err) {
		return c.response(), err
	}
	return providers.CreateResponse{}, err
}

// fail takes back what the create did. The response keeps the ID and Undo
// when that is not certain (outcome unknown, or clean-up failed).
func (c *creation) fail(err error) (providers.CreateResponse, error) {
	if isOutcomeUnknown(err) {
		return c.response(), err
	}
	if cerr := c.cleanUp(); cerr != nil {
		return c.response(), fmt.Errorf("%w (clean up: %v)", err, cerr)
	}
	return providers.CreateResponse{}, err
}

// done is the answer of a create that finished.
func (c *creation) done(state cty.Value) (providers.CreateResponse, error) {
	return providers.CreateResponse{ID: c.id, State: state, Undo: c.undo.encode()}, nil
}

// ctxErr is ctx's error as op's, nil while ctx is live: mutating calls
// check it before they start.
func ctxErr(ctx context.Context, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return nil
}

// settledCreate answers the settle of a create whose object exists: check
// says whether the create finished and, if so, the state. An unfinished
// create reports its ID and the Undo that removes what it left.
func settledCreate(id string, undo json.RawMessage, check func() (bool, cty.Value, error)) (providers.SettleResponse, error) {
	done, state, err := check()
	if err != nil {
		return providers.SettleResponse{}, err
	}
	if !done {
		return providers.SettleResponse{ID: id, Undo: undo}, nil
	}
	return providers.SettleResponse{TookEffect: true, ID: id, State: state, Undo: undo}, nil
}

// readFound reads what find finds; an object that is gone reads as
// Exists=false.
func readFound[T any](find func() (T, bool, error), state func(T) (cty.Value, error)) (providers.ReadResponse, error) {
	obj, found, err := find()
	if err != nil || !found {
		return providers.ReadResponse{}, err
	}
	s, err := state(obj)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: s}, nil
}
