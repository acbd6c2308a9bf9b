package libvirt

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// libvirt_pool: a storage pool. Only "dir" pools for now.
//
//	create: define (with a UUID chosen up front), start; if the directory is
//	        missing, build it (mkdir) and remember that fiat made it; autostart.
//	        Then stop it, or turn autostart off, if config says so.
//	update: only the run state changes in place: start (building a missing
//	        directory), stop, autostart on or off. A pool stopped outside
//	        fiat is drift (active reads false) and is started again. Undo
//	        puts the run state back.
//	retire: autostart off, stop, undefine; the directory and its files stay,
//	        and the Undo keeps the XML. Undefining frees the pool's name and
//	        directory, so a replacement that keeps either can be created
//	        before the commit. Undo defines the same XML (same UUID) again
//	        and starts it.
//	purge:  remove the directory if it is empty (never files) and no other
//	        pool uses it; undefine the pool if it is still defined.
//	undo of create: stop, remove the directory only if fiat built it and it
//	        is empty, undefine.
var poolSchema = providers.ResourceSchema{
	Attributes: map[string]providers.Attribute{
		"name": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Name of the storage pool on the host."},
		"type": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal(poolTypeDir),
			Description: `Pool type; only "dir" is supported for now.`},
		"path": {Type: cty.String, Required: true, ForceNew: true,
			Description: "Absolute target directory; built if missing."},
		"id": {Type: cty.String, Computed: true,
			Description: "The pool's UUID."},
		"capacity": {Type: cty.Number, Computed: true, Volatile: true,
			Description: "Size of the file system that holds the pool, in bytes (when read)."},
		"allocation": {Type: cty.Number, Computed: true, Volatile: true,
			Description: "Bytes allocated on that file system (when read)."},
		"available": {Type: cty.Number, Computed: true, Volatile: true,
			Description: "Bytes free for new volumes (when read)."},
		"active": {Type: cty.Bool, Optional: true, Default: cty.True,
			Description: "Whether the pool runs (libvirt shows the volumes of a running pool only). A pool stopped outside fiat is drift, and the apply starts it again."},
		"autostart": {Type: cty.Bool, Optional: true, Default: cty.True,
			Description: "Start the pool when libvirtd starts."},
	},
	Delete: providers.Lossy,
	Update: providers.Reversible,
}

const poolTypeDir = "dir"

type poolSpec struct {
	Name, Type, Path string
	Run              runState // changes in place; the rest is the pool's identity
}

func poolSpecFrom(v cty.Value) (poolSpec, error) {
	m, err := knownStrings(v, map[string]string{"type": poolTypeDir}, "name", "type", "path")
	if err != nil {
		return poolSpec{}, err
	}
	s := poolSpec{Name: m["name"], Type: m["type"], Path: m["path"]}
	if s.Run, err = runStateFrom(v); err != nil {
		return s, err
	}
	for _, problem := range []string{checkName("pool", s.Name), checkPoolType(s.Type), checkPoolPath(s.Path)} {
		if problem != "" {
			return s, fmt.Errorf("%s", problem)
		}
	}
	return s, nil
}

func checkName(kind, name string) string {
	switch {
	case name == "":
		return kind + " name is empty"
	case strings.Contains(name, "/"):
		return fmt.Sprintf("%s name %q contains \"/\", which libvirt refuses (a name is also a file name)", kind, name)
	}
	return ""
}

func checkPoolType(t string) string {
	if t != poolTypeDir {
		return fmt.Sprintf("pool type %q is not supported; only %q pools are supported for now", t, poolTypeDir)
	}
	return ""
}

// checkPoolPath wants the path as libvirt stores it, so state and config
// agree: absolute and clean.
func checkPoolPath(p string) string {
	switch {
	case p == "":
		return "pool path is empty"
	case !filepath.IsAbs(p):
		return fmt.Sprintf("pool path %q is not absolute", p)
	case filepath.Clean(p) != p:
		return fmt.Sprintf("pool path %q is not clean; write it as %q", p, filepath.Clean(p))
	}
	return ""
}

func poolXML(s poolSpec, uuid string) (string, error) {
	doc := libvirtxml.StoragePool{
		Type:   s.Type,
		Name:   s.Name,
		UUID:   uuid,
		Target: &libvirtxml.StoragePoolTarget{Path: s.Path},
	}
	out, err := doc.Marshal()
	if err != nil {
		return "", fmt.Errorf("marshal pool XML: %w", err)
	}
	return out, nil
}

// poolDoc reads a pool's live definition.
func poolDoc(l *golibvirt.Libvirt, pool golibvirt.StoragePool) (libvirtxml.StoragePool, error) {
	var doc libvirtxml.StoragePool
	x, err := l.StoragePoolGetXMLDesc(pool, 0)
	if err != nil {
		return doc, readErr("read pool "+pool.Name, err)
	}
	if err := doc.Unmarshal(x); err != nil {
		return doc, fmt.Errorf("read pool %s: parse XML: %w", pool.Name, err)
	}
	return doc, nil
}

func poolState(l *golibvirt.Libvirt, pool golibvirt.StoragePool) (cty.Value, error) {
	doc, err := poolDoc(l, pool)
	if err != nil {
		return cty.NilVal, err
	}
	path := ""
	if doc.Target != nil {
		path = doc.Target.Path
	}
	_, capacity, allocation, available, err := l.StoragePoolGetInfo(pool)
	if err != nil {
		return cty.NilVal, readErr("read pool "+pool.Name, err)
	}
	run, err := poolRun(l, pool, "read pool "+pool.Name)
	if err != nil {
		return cty.NilVal, err
	}
	return cty.ObjectVal(map[string]cty.Value{
		"name":       cty.StringVal(doc.Name),
		"type":       cty.StringVal(doc.Type),
		"path":       cty.StringVal(path),
		"id":         cty.StringVal(formatUUID(pool.UUID)),
		"capacity":   cty.NumberUIntVal(capacity),
		"allocation": cty.NumberUIntVal(allocation),
		"available":  cty.NumberUIntVal(available),
		"active":     cty.BoolVal(run.Active),
		"autostart":  cty.BoolVal(run.Autostart),
	}), nil
}

// findPool looks a pool up by UUID, or by the name in state when id is empty.
func findPool(l *golibvirt.Libvirt, id string, state cty.Value) (golibvirt.StoragePool, bool, error) {
	return findObject("pool", id, state, l.StoragePoolLookupByUUID, l.StoragePoolLookupByName)
}

// objectName names an existing object in messages (and, for a pool, its
// lock): the name in state, else the id.
func objectName(id string, state cty.Value) string {
	if name, known, err := strAttr(state, "name"); err == nil && known && name != "" {
		return name
	}
	return id
}

func (p *Provider) createPool(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, err := poolSpecFrom(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create pool %s: %w", req.Address, err)
	}
	op := "create pool " + spec.Name
	l, unlock, err := p.poolClient(ctx, spec.Name, op)
	if err != nil {
		return providers.CreateResponse{}, err
	}
	defer unlock()
	uuid := formatUUID(newUUID(req.OpID, req.Address))
	doc, err := poolXML(spec, uuid)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	undo := undoRecord{Op: undoCreatePool, UUID: uuid, Pool: spec.Name, Path: spec.Path}
	c := &creation{op: op, id: uuid, undo: &undo}
	pool, err := l.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return c.makeFailed(err)
	}
	c.cleanUp = func() error { return removePool(l, pool, undo.Built, "clean up pool "+spec.Name) }
	step := func(err error) error {
		if err != nil {
			return mutErr(op, err)
		}
		return ctxErr(ctx, op)
	}

	if err := ctxErr(ctx, op); err != nil {
		return c.fail(err)
	}
	// Starting a dir pool fails when its directory is missing; that is how
	// the provider learns, over any transport, whether the directory
	// existed. Only a directory fiat built is ever removed again.
	if err := l.StoragePoolCreate(pool, 0); err != nil {
		if !hasMessage(err, "No such file or directory") {
			return c.fail(mutErr(op, err))
		}
		undo.Built = true // before the call: the undo must cover a build whose outcome is unknown
		if err := step(l.StoragePoolBuild(pool, 0)); err != nil {
			return c.fail(err)
		}
		if err := step(l.StoragePoolCreate(pool, 0)); err != nil {
			return c.fail(err)
		}
	}
	if err := step(l.StoragePoolSetAutostart(pool, 1)); err != nil {
		return c.fail(err)
	}
	state, err := poolState(l, pool)
	if err != nil {
		return c.fail(err)
	}
	return c.done(state)
}

// removePool stops the pool, removes its directory when rmDir (rmdir: a
// directory with files stays, silently), and undefines it. Each step
// tolerates having been done already.
func removePool(l *golibvirt.Libvirt, pool golibvirt.StoragePool, rmDir bool, op string) error {
	active, err := l.StoragePoolIsActive(pool)
	if notFound(err) {
		return nil
	}
	if err != nil {
		return readErr(op, err)
	}
	if active == 1 {
		if err := l.StoragePoolDestroy(pool); err != nil && !hasCode(err, golibvirt.ErrOperationInvalid) {
			return mutErr(op, err)
		}
	}
	if rmDir {
		err := l.StoragePoolDelete(pool, golibvirt.StoragePoolDeleteNormal)
		if err != nil && !hasMessage(err, "Directory not empty") && !hasMessage(err, "No such file or directory") {
			return mutErr(op, err)
		}
	}
	if err := l.StoragePoolUndefine(pool); err != nil && !notFound(err) {
		return mutErr(op, err)
	}
	return nil
}

func (p *Provider) undoCreatePool(ctx context.Context, u undoRecord) error {
	op := "undo create pool " + u.Pool
	l, unlock, err := p.poolClient(ctx, u.Pool, op)
	if err != nil {
		return err
	}
	defer unlock()
	return removeFound(func() (golibvirt.StoragePool, bool, error) { return findPool(l, u.UUID, cty.NilVal) },
		func(pool golibvirt.StoragePool) error { return removePool(l, pool, u.Built, op) })
}

func (p *Provider) updatePool(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	prior, err := poolSpecFrom(req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update pool %s: prior state: %w", req.Address, err)
	}
	next, err := poolSpecFrom(req.Config)
	if err != nil {
		return providers.UpdateResponse{}, fmt.Errorf("update pool %s: %w", req.Address, err)
	}
	if prior.Name != next.Name || prior.Type != next.Type || prior.Path != next.Path {
		return providers.UpdateResponse{}, fmt.Errorf("update pool %s: a pool's name, type and path cannot change in place; it must be replaced", prior.Name)
	}
	op := "update pool " + prior.Name
	l, unlock, err := p.poolClient(ctx, prior.Name, op)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	defer unlock()
	pool, found, err := findPool(l, req.ID, req.Prior)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !found {
		return providers.UpdateResponse{}, fmt.Errorf("%s: pool %s no longer exists", op, req.ID)
	}
	was, err := poolRun(l, pool, op)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	undo := undoRecord{Op: undoUpdatePool, UUID: formatUUID(pool.UUID), Pool: pool.Name, WasActive: was.Active, Autostart: was.Autostart}
	if err := ctxErr(ctx, op); err != nil {
		return providers.UpdateResponse{}, err
	}
	// From here the Undo goes back with any error: it restores whatever
	// part of the change took effect.
	if err := setPoolRun(l, pool, next.Run, &undo.Built, op); err != nil {
		return providers.UpdateResponse{Undo: undo.encode()}, err
	}
	state, err := poolState(l, pool)
	if err != nil {
		return providers.UpdateResponse{Undo: undo.encode()}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo.encode()}, nil
}

func (p *Provider) retirePool(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	name := objectName(req.ID, req.State)
	op := "retire pool " + name
	l, unlock, err := p.poolClient(ctx, name, op)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	defer unlock()
	pool, found, err := findPool(l, req.ID, req.State)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	if !found { // already gone: nothing to retire, nothing to bring back
		return providers.RetireResponse{Undo: noUndo}, nil
	}
	active, err := l.StoragePoolIsActive(pool)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	autostart, err := l.StoragePoolGetAutostart(pool)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	x, err := l.StoragePoolGetXMLDesc(pool, golibvirt.StorageXMLInactive)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	undo := undoRecord{Op: undoRetirePool, UUID: formatUUID(pool.UUID), Pool: pool.Name,
		WasActive: active == 1, Autostart: autostart == 1, XML: x}
	resp := providers.RetireResponse{Undo: undo.encode()}
	if err := ctx.Err(); err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	// From here the Undo goes back with any error: it restores whatever
	// subset of autostart-off, stop and undefine took effect.
	if undo.Autostart {
		if err := l.StoragePoolSetAutostart(pool, 0); err != nil {
			return resp, mutErr(op, err)
		}
	}
	if undo.WasActive {
		if err := l.StoragePoolDestroy(pool); err != nil && !notActive(err) {
			return resp, mutErr(op, err)
		}
	}
	if err := l.StoragePoolUndefine(pool); err != nil && !notFound(err) {
		return resp, mutErr(op, err)
	}
	return resp, nil
}

func (p *Provider) undoRetirePool(ctx context.Context, u undoRecord) error {
	op := "undo retire pool " + u.Pool
	l, unlock, err := p.poolClient(ctx, u.Pool, op)
	if err != nil {
		return err
	}
	defer unlock()
	pool, found, err := findPool(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if !found {
		if u.XML == "" {
			return fmt.Errorf("%s: pool %s (uuid %s) no longer exists and the undo has no definition to restore", op, u.Pool, u.UUID)
		}
		if pool, err = l.StoragePoolDefineXML(u.XML, 0); err != nil {
			return mutErr(op, err)
		}
	}
	if u.WasActive {
		active, err := l.StoragePoolIsActive(pool)
		if err != nil {
			return readErr(op, err)
		}
		if active == 0 {
			err := l.StoragePoolCreate(pool, 0)
			if hasMessage(err, "No such file or directory") { // removed meanwhile: an empty directory again
				if err = l.StoragePoolBuild(pool, 0); err == nil {
					err = l.StoragePoolCreate(pool, 0)
				}
			}
			if err != nil {
				return mutErr(op, err)
			}
		}
	}
	if u.Autostart {
		if err := l.StoragePoolSetAutostart(pool, 1); err != nil {
			return mutErr(op, err)
		}
	}
	return nil
}

// purgePool removes what a retire left: the pool's directory, when it is
// empty and no other pool uses it, and the definition if it is still there
// (a pool retired by an older fiat, which only stopped it).
func (p *Provider) purgePool(ctx context.Context, req providers.PurgeRequest) error {
	name := objectName(req.ID, req.State)
	op := "purge pool " + name
	l, unlock, err := p.poolClient(ctx, name, op)
	if err != nil {
		return err
	}
	defer unlock()
	if req.ID != "" {
		pool, found, err := findPool(l, req.ID, cty.NilVal)
		if err != nil {
			return err
		}
		if found {
			return removePool(l, pool, true, op)
		}
	}
	dir, _, _ := strAttr(req.State, "path")
	if dir == "" {
		return nil
	}
	return removeEmptyDir(l, dir, op)
}

// removeEmptyDir removes dir through libvirt (so it works on a remote host
// too) when it is empty and no pool uses it: it defines a scratch pool on
// it, deletes that pool's directory (rmdir: a directory with files stays)
// and undefines the scratch pool.
func removeEmptyDir(l *golibvirt.Libvirt, dir, op string) error {
	if hp, err := poolWithPath(l, dir); err != nil || hp != nil {
		return err // in use by another pool (e.g. the replacement): keep it
	}
	scratch, err := defineScratchPool(l, dir, op)
	if err != nil || scratch == nil {
		return err
	}
	err = l.StoragePoolDelete(*scratch, golibvirt.StoragePoolDeleteNormal)
	if err != nil && (hasMessage(err, "Directory not empty") || hasMessage(err, "No such file or directory")) {
		err = nil
	}
	if uerr := l.StoragePoolUndefine(*scratch); uerr != nil && !notFound(uerr) && err == nil {
		err = uerr
	}
	return mutErr(op, err)
}

// scratchPrefix names the pools the provider defines for a moment to reach
// a directory no pool holds any more.
const scratchPrefix = "fiat-scratch-"

// defineScratchPool defines (does not start) a dir pool on dir with a
// random name. nil when libvirt refuses because another pool has the
// directory after all.
func defineScratchPool(l *golibvirt.Libvirt, dir, op string) (*golibvirt.StoragePool, error) {
	u := newUUID("", dir)
	doc, err := poolXML(poolSpec{Name: scratchPrefix + formatUUID(u)[:8], Type: poolTypeDir, Path: dir}, formatUUID(u))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	pool, err := l.StoragePoolDefineXML(doc, 0)
	if err != nil {
		if isConflict(asLibvirtErr(err)) {
			return nil, nil
		}
		return nil, mutErr(op, err)
	}
	return &pool, nil
}

// poolWithPath returns the defined pool whose target directory is dir.
func poolWithPath(l *golibvirt.Libvirt, dir string) (*golibvirt.StoragePool, error) {
	pools, _, err := l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		return nil, readErr("list pools", err)
	}
	dir = filepath.Clean(dir)
	for _, pool := range pools {
		doc, err := poolDoc(l, pool)
		if notFound(err) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if doc.Target != nil && filepath.Clean(doc.Target.Path) == dir {
			return &pool, nil
		}
	}
	return nil, nil
}

func (p *Provider) readPool(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read pool %s: %w", req.Address, err)
	}
	return readFound(func() (golibvirt.StoragePool, bool, error) { return findPool(l, req.ID, req.State) },
		func(pool golibvirt.StoragePool) (cty.Value, error) { return poolState(l, pool) })
}
