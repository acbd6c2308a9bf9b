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
//	        missing, build it and its missing parents and remember exactly
//	        which directories fiat made (see pool_dirs.go); autostart.
//	        Then stop it, or turn autostart off, if config says so.
//	update: only the run state changes in place: start (building a missing
//	        directory), stop, autostart on or off. A pool stopped outside
//	        fiat is drift (active reads false) and is started again. Undo
//	        puts the run state back.
//	retire: stop, undefine (which drops autostart); the directory and its
//	        files stay, and the Undo keeps the XML. Undefining frees the
//	        pool's name and directory, so a replacement that keeps either
//	        can be created before the commit. Undo defines the same XML
//	        (same UUID) again and starts it if it ran.
//	purge:  undefine the pool if it is still defined; remove the
//	        directories its create built (built_dirs), each only if it is
//	        empty (never files) and no other pool uses it.
//	undo of create: stop, undefine, remove the directories the create
//	        built, each only if it is empty.
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
		"xml": {Type: cty.List(xmlType), Optional: true, ForceNew: true,
			Description: "xml { xslt = file(\"pool.xsl\") }: an XSLT stylesheet applied to the pool XML fiat generates when it defines the pool (runs xsltproc where fiat runs)."},
		"built_dirs": {Type: cty.List(cty.String), Computed: true,
			Description: "Directories the create made, deepest first: the pool's directory if it was missing, and missing parents made on a local host. Only these are removed again when the pool is deleted, each only while it is empty."},
	},
	Delete: providers.Lossy,
	Update: providers.Reversible,
}

const poolTypeDir = "dir"

type poolSpec struct {
	Name, Type, Path string
	Run              runState // changes in place; the rest is the pool's identity
	XSLT             string   // xml { xslt }: applied to the XML at create (xslt.go)
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
	if s.XSLT, err = xsltOf(v); err != nil {
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

// poolState reads a pool's state; prior (config or state; cty.NilVal when
// importing) keeps what libvirt cannot say: the xml stylesheet.
func poolState(l *golibvirt.Libvirt, pool golibvirt.StoragePool, prior cty.Value) (cty.Value, error) {
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
		"xml":        xmlState(prior),
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
	l, unlock, err := p.poolClient(ctx, op, atDir(spec.Path))
	if err != nil {
		return providers.CreateResponse{}, err
	}
	defer unlock()
	uuid := formatUUID(newUUID(req.OpID, req.Address))
	doc, err := poolXML(spec, uuid)
	if err == nil {
		doc, err = applyXSLT(ctx, doc, spec.XSLT)
	}
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	undo := undoRecord{Op: undoCreatePool, UUID: uuid, Pool: spec.Name, Path: spec.Path}
	c := &creation{op: op, id: uuid, undo: &undo}
	pool, err := l.StoragePoolDefineXML(doc, 0)
	if err != nil {
		return c.makeFailed(err)
	}
	c.cleanUp = func() error { // also after a cancel: what was built goes
		return p.removePool(context.WithoutCancel(ctx), l, pool, undo.builtDirs(), spec.Path, "clean up pool "+spec.Name)
	}
	if err := ctxErr(ctx, op); err != nil {
		return c.fail(err)
	}
	if err := p.startNewPool(ctx, l, pool, &undo, opMark(req.OpID, req.Address), op); err != nil {
		return c.fail(err)
	}
	if err := mutErr(op, l.StoragePoolSetAutostart(pool, 1)); err != nil {
		return c.fail(err)
	}
	state, err := poolState(l, pool, req.Config)
	if err != nil {
		return c.fail(err)
	}
	return c.done(withBuiltDirs(state, builtDirsValue(undo.builtDirs())))
}

// startNewPool starts a pool the create just defined, building its
// directory when it is missing, and records in u what it built. Starting a
// dir pool fails when its directory is missing; that is how the provider
// learns, over any transport, whether it existed. The record is made
// before each call that builds: the undo must cover a build whose outcome
// is unknown.
func (p *Provider) startNewPool(ctx context.Context, l *golibvirt.Libvirt, pool golibvirt.StoragePool, u *undoRecord, mark, op string) error {
	err := l.StoragePoolCreate(pool, 0)
	if err == nil || !hasMessage(err, "No such file or directory") {
		return mutErr(op, err)
	}
	if err := ctxErr(ctx, op); err != nil {
		return err
	}
	u.Dirs, u.Built = []string{u.Path}, true
	if p.localFiles() {
		started, err := startInLocalDirs(l, pool, u, mark, op)
		if started || err != nil {
			return err
		}
	}
	if err := mutErr(op, l.StoragePoolBuild(pool, 0)); err != nil {
		return err
	}
	if err := ctxErr(ctx, op); err != nil {
		return err
	}
	return mutErr(op, l.StoragePoolCreate(pool, 0))
}

// startInLocalDirs makes the pool's missing directories on this machine
// and starts the pool in them. started=false, with u.Dirs saying what is
// missing, leaves the build to libvirt: fiat may not make them (libvirt's
// build then makes exactly those), or libvirt does not see what fiat made
// (another file system than libvirtd's, e.g. in a container: they go
// again, and fiat knows only the pool's own directory).
func startInLocalDirs(l *golibvirt.Libvirt, pool golibvirt.StoragePool, u *undoRecord, mark, op string) (started bool, err error) {
	missing, err := missingDirs(u.Path)
	if err != nil || len(missing) == 0 { // here it exists: not what libvirt sees
		return false, nil
	}
	u.Dirs = missing
	made, err := makeDirs(missing, mark)
	if err != nil {
		return false, nil
	}
	err = l.StoragePoolCreate(pool, 0)
	if err == nil || !hasMessage(err, "No such file or directory") {
		return true, mutErr(op, err)
	}
	u.Dirs = []string{u.Path}
	if err := removeLocalDirs(made); err != nil {
		return false, fmt.Errorf("%s: libvirt does not see the directories made here: %w", op, err)
	}
	return false, nil
}

// removePool stops the pool and undefines it, then removes dirs (the
// directories its create built; held is the pool's directory, whose lock
// the caller holds). Each step tolerates having been done already, so the
// directories go even when the pool went before.
func (p *Provider) removePool(ctx context.Context, l *golibvirt.Libvirt, pool golibvirt.StoragePool, dirs []string, held, op string) error {
	if err := stopAndUndefine(l, pool, op); err != nil {
		return err
	}
	return p.removeBuiltDirs(ctx, l, dirs, held, op)
}

// stopAndUndefine stops the pool if it runs and undefines it; a pool that
// is gone is fine.
func stopAndUndefine(l *golibvirt.Libvirt, pool golibvirt.StoragePool, op string) error {
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
	if err := l.StoragePoolUndefine(pool); err != nil && !notFound(err) {
		return mutErr(op, err)
	}
	return nil
}

func (p *Provider) undoCreatePool(ctx context.Context, u undoRecord) error {
	op := "undo create pool " + u.Pool
	l, unlock, err := p.poolClient(ctx, op, atDir(u.Path))
	if err != nil {
		return err
	}
	defer unlock()
	pool, found, err := findPool(l, u.UUID, cty.NilVal)
	if err != nil {
		return err
	}
	if found {
		if err := stopAndUndefine(l, pool, op); err != nil {
			return err
		}
	}
	return p.removeBuiltDirs(ctx, l, u.builtDirs(), u.Path, op)
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
	l, unlock, err := p.poolClient(ctx, op, atDir(prior.Path))
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
	state, err := poolState(l, pool, req.Config)
	if err != nil {
		return providers.UpdateResponse{Undo: undo.encode()}, err
	}
	return providers.UpdateResponse{State: state, Undo: undo.encode()}, nil
}

func (p *Provider) retirePool(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	name := objectName(req.ID, req.State)
	op := "retire pool " + name
	l, unlock, err := p.poolClient(ctx, op, poolDir(req.ID, req.State))
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
	doc, err := poolDoc(l, pool)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	x, err := l.StoragePoolGetXMLDesc(pool, golibvirt.StorageXMLInactive)
	if err != nil {
		return providers.RetireResponse{}, readErr(op, err)
	}
	undo := undoRecord{Op: undoRetirePool, UUID: formatUUID(pool.UUID), Pool: pool.Name,
		WasActive: active == 1, Autostart: autostart == 1, XML: x}
	if doc.Target != nil {
		undo.Path = doc.Target.Path
	}
	resp := providers.RetireResponse{Undo: undo.encode()}
	if err := ctx.Err(); err != nil {
		return providers.RetireResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	// From here the Undo goes back with any error: it restores whatever
	// of stop and undefine took effect. Autostart is left as it is until
	// the undefine drops it, so while the pool is defined it still says
	// what it was (a settle reads it: see poolWas).
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

// poolDir is the where (see poolClient) of a job on an existing pool: the
// directory of the pool found by id (or by the name in state), else the
// path state names.
func poolDir(id string, state cty.Value) func(*golibvirt.Libvirt) (string, error) {
	return func(l *golibvirt.Libvirt) (string, error) {
		pool, found, err := findPool(l, id, state)
		if err != nil {
			return "", err
		}
		if found {
			doc, err := poolDoc(l, pool)
			if err != nil && !notFound(err) {
				return "", err
			}
			if err == nil && doc.Target != nil && doc.Target.Path != "" {
				return doc.Target.Path, nil
			}
		}
		if path, _, _ := strAttr(state, "path"); path != "" {
			return path, nil
		}
		return "pool " + objectName(id, state), nil // neither: nothing to serialise with
	}
}

// retiredPoolDir is the directory of the pool a retire-pool undo restores:
// recorded since the lock is the directory's, else read from its XML.
func retiredPoolDir(u undoRecord) string {
	if u.Path != "" {
		return u.Path
	}
	var doc libvirtxml.StoragePool
	if doc.Unmarshal(u.XML) == nil && doc.Target != nil && doc.Target.Path != "" {
		return doc.Target.Path
	}
	return "pool " + u.Pool
}

func (p *Provider) undoRetirePool(ctx context.Context, u undoRecord) error {
	op := "undo retire pool " + u.Pool
	l, unlock, err := p.poolClient(ctx, op, atDir(retiredPoolDir(u)))
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

// purgePool removes what a retire left: the definition if it is still
// there (a pool retired by an older fiat, which only stopped it), and the
// directories the pool's create built (built_dirs in its state), each when
// it is empty and no other pool uses it. A directory the create did not
// build stays, even empty: it was there before fiat (or fiat cannot tell,
// for a state recorded before built_dirs).
func (p *Provider) purgePool(ctx context.Context, req providers.PurgeRequest) error {
	name := objectName(req.ID, req.State)
	op := "purge pool " + name
	dir, _, _ := strAttr(req.State, "path")
	l, unlock, err := p.poolClient(ctx, op, poolDir(req.ID, req.State))
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
			if err := stopAndUndefine(l, pool, op); err != nil {
				return err
			}
		}
	}
	dirs, _, err := stringList(req.State, "built_dirs")
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	return p.removeBuiltDirs(ctx, l, dirs, dir, op)
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
		func(pool golibvirt.StoragePool) (cty.Value, error) { return poolState(l, pool, req.State) })
}
