package libvirt

import (
	"context"
	"fmt"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// preflight is one Preflight call: the request's steps and the host's pools
// (read once), networks, domains and interfaces (read once when a step
// needs them). It only reads.
type preflight struct {
	p     *Provider
	l     *golibvirt.Libvirt
	steps []providers.PreflightStep
	pools []hostPool

	nets    *[]hostNet
	domains *[]hostDomain
	ifaces  *[]string
}

// hostPool is a storage pool as found on the host.
type hostPool struct {
	pool   golibvirt.StoragePool
	uuid   string
	path   string
	active bool
	free   uint64 // bytes available, when active
}

// Preflight checks every step, read-only: names are free on the host and in
// the request (or freed by a delete in the request: retires run first),
// referenced pools, volumes and networks exist or are created by the
// request, a pool's directory is not another pool's, pools have room for
// the new volumes, network subnets and bridges collide with nothing,
// attribute values are supported, the XML marshals, a volume only grows.
// Unknown values skip the checks that need them.
func (p *Provider) Preflight(ctx context.Context, req providers.PreflightRequest) (providers.PreflightResponse, error) {
	l, err := p.client(ctx)
	if err != nil {
		return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
	}
	pf := &preflight{p: p, l: l, steps: req.Steps}
	if err := pf.loadPools(); err != nil {
		return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
	}
	var resp providers.PreflightResponse
	for _, step := range req.Steps {
		if err := ctx.Err(); err != nil {
			return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
		}
		if step.Action == "" {
			continue // a step that changes nothing (a read, a record in the store)
		}
		rt, err := lookupType(step.Type)
		if err != nil {
			resp.Problems = append(resp.Problems, providers.Problem{Address: step.Address, Message: err.Error()})
			continue
		}
		for _, msg := range rt.preflight(pf, ctx, step) {
			resp.Problems = append(resp.Problems, providers.Problem{Address: step.Address, Message: msg})
		}
	}
	return resp, nil
}

func (pf *preflight) loadPools() error {
	pools, _, err := pf.l.ConnectListAllStoragePools(1, 0)
	if err != nil {
		return readErr("list pools", err)
	}
	for _, pool := range pools {
		x, err := pf.l.StoragePoolGetXMLDesc(pool, 0)
		if notFound(err) { // undefined meanwhile
			continue
		}
		if err != nil {
			return readErr("read pool "+pool.Name, err)
		}
		var doc libvirtxml.StoragePool
		if err := doc.Unmarshal(x); err != nil {
			return fmt.Errorf("read pool %s: parse XML: %w", pool.Name, err)
		}
		active, err := pf.l.StoragePoolIsActive(pool)
		if err != nil && !notFound(err) {
			return readErr("read pool "+pool.Name, err)
		}
		hp := hostPool{pool: pool, uuid: formatUUID(pool.UUID), active: active == 1}
		if hp.active {
			if _, _, _, hp.free, err = pf.l.StoragePoolGetInfo(pool); err != nil && !notFound(err) {
				return readErr("read pool "+pool.Name, err)
			}
		}
		if doc.Target != nil && doc.Target.Path != "" {
			hp.path = filepath.Clean(doc.Target.Path)
		}
		pf.pools = append(pf.pools, hp)
	}
	return nil
}

func (pf *preflight) hostPoolByName(name string) *hostPool {
	for i := range pf.pools {
		if pf.pools[i].pool.Name == name {
			return &pf.pools[i]
		}
	}
	return nil
}

func (pf *preflight) hostPoolByPath(path string) *hostPool {
	path = filepath.Clean(path)
	for i := range pf.pools {
		if pf.pools[i].path == path {
			return &pf.pools[i]
		}
	}
	return nil
}

// otherStep returns the address of the first step other than self with this
// type and action for which match holds, or "".
func (pf *preflight) otherStep(self providers.PreflightStep, typ string, action providers.Action, match func(providers.PreflightStep) bool) string {
	for _, s := range pf.steps {
		if s.Address == self.Address || (typ != "" && s.Type != typ) || s.Action != action {
			continue
		}
		if match(s) {
			return s.Address
		}
	}
	return ""
}

// deleting returns the address of a step of the request, any step (the
// delete half of self's own replacement too), that deletes an object of
// type typ with this id, or, when the step has no id, with this name.
func (pf *preflight) deleting(typ, id, name string) string {
	for _, s := range pf.steps {
		if s.Type != typ || s.Action != providers.ActionDelete {
			continue
		}
		if s.ID != "" && id != "" {
			if s.ID == id {
				return s.Address
			}
			continue
		}
		if n, known, _ := strAttr(s.Prior, "name"); known && n == name {
			return s.Address
		}
	}
	return ""
}

// deletedBy returns the address of a step of the request that deletes the
// host pool hp, or "". Retires undefine pools, so a pool deleted by the
// plan frees its name and directory for creates in the same plan.
func (pf *preflight) deletedBy(hp *hostPool) string {
	return pf.deleting(TypePool, hp.uuid, hp.pool.Name)
}

// knownAttr returns a string attribute of a step's config when it is known
// and set.
func knownAttr(s providers.PreflightStep, name string) (string, bool) {
	v, known, err := strAttr(s.Config, name)
	return v, err == nil && known && v != ""
}

func (pf *preflight) pool(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		return pf.poolCreate(ctx, step)
	case providers.ActionUpdate:
		return pf.poolUpdate(step)
	case providers.ActionDelete:
		return nil // a pool that is gone already is fine
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) poolCreate(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	problems = append(problems, xsltProblems(ctx, step.Config, "<pool type='dir'><name>preflight</name></pool>")...)

	name, nameKnown, err := strAttr(step.Config, "name")
	if err != nil {
		add("%v", err)
	}
	typ, typKnown, err := strAttr(step.Config, "type")
	if err != nil {
		add("%v", err)
	}
	if typ == "" {
		typ = poolTypeDir
	}
	path, pathKnown, err := strAttr(step.Config, "path")
	if err != nil {
		add("%v", err)
	}

	if nameKnown {
		if p := checkName("pool", name); p != "" {
			add("%s", p)
		} else if hp := pf.hostPoolByName(name); hp != nil && pf.deletedBy(hp) == "" {
			add("pool %q already exists on the host (uuid %s); choose another name, or import or delete that pool", name, hp.uuid)
		} else if other := pf.otherStep(step, TypePool, providers.ActionCreate, func(s providers.PreflightStep) bool {
			n, ok := knownAttr(s, "name")
			return ok && n == name
		}); other != "" {
			add("pool %q is also created by %s in this plan", name, other)
		}
	}
	if typKnown {
		if p := checkPoolType(typ); p != "" {
			add("%s", p)
		}
	}
	if pathKnown {
		if p := checkPoolPath(path); p != "" {
			add("%s", p)
		} else if hp := pf.hostPoolByPath(path); hp != nil && pf.deletedBy(hp) == "" {
			add("path %s is already the directory of pool %q (uuid %s); libvirt allows one pool per directory (it would answer \"Storage source conflict with pool: '%s'\")",
				path, hp.pool.Name, hp.uuid, hp.pool.Name)
		} else if other := pf.otherStep(step, TypePool, providers.ActionCreate, func(s providers.PreflightStep) bool {
			p, ok := knownAttr(s, "path")
			return ok && filepath.Clean(p) == path
		}); other != "" {
			add("path %s is also the directory of the pool that %s creates in this plan; libvirt allows one pool per directory", path, other)
		}
	}
	if nameKnown && typKnown && pathKnown && len(problems) == 0 {
		x, err := poolXML(poolSpec{Name: name, Type: typ, Path: path}, formatUUID(newUUID("preflight", step.Address)))
		if err == nil {
			err = pf.p.validateXML("storagepool", x)
		}
		if err != nil {
			add("%v", err)
		}
	}
	return problems
}

func (pf *preflight) poolUpdate(step providers.PreflightStep) []string {
	var problems []string
	for _, a := range []string{"name", "type", "path"} {
		prior, pk, _ := strAttr(step.Prior, a)
		next, nk, _ := strAttr(step.Config, a)
		if a == "type" {
			prior, next = orDefault(prior, poolTypeDir), orDefault(next, poolTypeDir)
		}
		if pk && nk && prior != next {
			problems = append(problems, fmt.Sprintf("a pool's %s cannot change in place (%q to %q); it must be replaced", a, prior, next))
		}
	}
	if !pf.hasPoolUUID(step.ID) {
		problems = append(problems, fmt.Sprintf("pool %s (uuid %s) no longer exists on the host", objectName(step.ID, step.Prior), step.ID))
	}
	return problems
}

func (pf *preflight) hasPoolUUID(id string) bool {
	for _, hp := range pf.pools {
		if hp.uuid == id {
			return true
		}
	}
	return false
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
}
