package libvirt

import (
	"context"
	"fmt"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// preflight is one Preflight call: the request's steps and the host's pools,
// read once. It only reads.
type preflight struct {
	l     *golibvirt.Libvirt
	steps []providers.PreflightStep
	pools []hostPool
}

// hostPool is a storage pool as found on the host.
type hostPool struct {
	pool   golibvirt.StoragePool
	uuid   string
	path   string
	active bool
}

// Preflight checks every step, read-only: names are free on the host and in
// the request, a volume's pool exists or is created by the request, a pool's
// directory is not another pool's, types, formats and sizes are supported,
// the XML marshals, a volume only grows. Unknown values skip the checks that
// need them.
func (p *Provider) Preflight(ctx context.Context, req providers.PreflightRequest) (providers.PreflightResponse, error) {
	l, err := p.client(ctx)
	if err != nil {
		return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
	}
	pf := &preflight{l: l, steps: req.Steps}
	if err := pf.loadPools(); err != nil {
		return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
	}
	var resp providers.PreflightResponse
	for _, step := range req.Steps {
		if err := ctx.Err(); err != nil {
			return providers.PreflightResponse{}, fmt.Errorf("preflight: %w", err)
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
		if s.Address == self.Address || s.Type != typ || s.Action != action {
			continue
		}
		if match(s) {
			return s.Address
		}
	}
	return ""
}

// deletedBy returns the address of a step of the request that deletes the
// host pool hp, or "".
func (pf *preflight) deletedBy(self providers.PreflightStep, hp *hostPool) string {
	return pf.otherStep(self, TypePool, providers.ActionDelete, func(s providers.PreflightStep) bool {
		if s.ID != "" {
			return s.ID == hp.uuid
		}
		name, known, _ := strAttr(s.Prior, "name")
		return known && name == hp.pool.Name
	})
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
		return pf.poolCreate(step)
	case providers.ActionUpdate:
		return pf.poolUpdate(step)
	case providers.ActionDelete:
		return nil // a pool that is gone already is fine
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) poolCreate(step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

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
		} else if hp := pf.hostPoolByName(name); hp != nil {
			msg := fmt.Sprintf("pool %q already exists on the host (uuid %s); choose another name, or import or delete that pool", name, hp.uuid)
			if by := pf.deletedBy(step, hp); by != "" {
				msg += fmt.Sprintf("; %s deletes it in this plan, but only after the commit, later than this create", by)
			}
			add("%s", msg)
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
		} else if hp := pf.hostPoolByPath(path); hp != nil {
			msg := fmt.Sprintf("path %s is already the directory of pool %q (uuid %s); libvirt allows one pool per directory (it would answer \"Storage source conflict with pool: '%s'\")",
				path, hp.pool.Name, hp.uuid, hp.pool.Name)
			if by := pf.deletedBy(step, hp); by != "" {
				msg += fmt.Sprintf("; %s deletes that pool in this plan, but only after the commit, later than this create", by)
			}
			add("%s", msg)
		} else if other := pf.otherStep(step, TypePool, providers.ActionCreate, func(s providers.PreflightStep) bool {
			p, ok := knownAttr(s, "path")
			return ok && filepath.Clean(p) == path
		}); other != "" {
			add("path %s is also the directory of the pool that %s creates in this plan; libvirt allows one pool per directory", path, other)
		}
	}
	if nameKnown && typKnown && pathKnown && len(problems) == 0 {
		if _, err := poolXML(poolSpec{Name: name, Type: typ, Path: path}, formatUUID(newUUID("preflight", step.Address))); err != nil {
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
		problems = append(problems, fmt.Sprintf("pool %s (uuid %s) no longer exists on the host", poolName(step.ID, step.Prior), step.ID))
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

func (pf *preflight) volume(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		return pf.volumeCreate(step)
	case providers.ActionUpdate:
		return pf.volumeUpdate(step)
	case providers.ActionDelete:
		return nil // purge starts a stopped pool; a volume that is gone is fine
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) volumeCreate(step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }

	name, nameKnown, err := strAttr(step.Config, "name")
	if err != nil {
		add("%v", err)
	}
	poolName, poolKnown, err := strAttr(step.Config, "pool")
	if err != nil {
		add("%v", err)
	}
	format, formatKnown, err := strAttr(step.Config, "format")
	if err != nil {
		add("%v", err)
	}
	format = orDefault(format, formatQcow2)
	size, sizeKnown, sizeSet, err := sizeAttr(step.Config, "size")
	if err != nil {
		add("%v", err)
	}

	if nameKnown {
		if p := checkName("volume", name); p != "" {
			add("%s", p)
			nameKnown = false
		}
	}
	if formatKnown {
		if p := checkFormat(format); p != "" {
			add("%s", p)
			formatKnown = false
		}
	}
	if sizeKnown && !sizeSet {
		add("volume size is not set")
	}
	if sizeKnown && sizeSet && formatKnown {
		if p := checkSize(size, format); p != "" {
			add("%s", p)
		}
	}

	if poolKnown {
		if p := checkName("pool", poolName); p != "" {
			add("%s", p)
		} else if hp := pf.hostPoolByName(poolName); hp != nil {
			if by := pf.deletedBy(step, hp); by != "" && pf.poolCreatedBy(step, poolName) == "" {
				add("pool %q is deleted by %s in this plan", poolName, by)
			} else if !hp.active {
				add("pool %q exists but is not active; start it (virsh pool-start %s)", poolName, poolName)
			} else if nameKnown {
				vol, err := pf.l.StorageVolLookupByName(hp.pool, name)
				switch {
				case err == nil:
					add("volume %q already exists in pool %q (key %s); choose another name, or import or delete that volume", name, poolName, vol.Key)
				case !notFound(err):
					add("check volume %q in pool %q: %v", name, poolName, readErr("look up volume", err))
				}
			}
		} else if pf.poolCreatedBy(step, poolName) == "" {
			add("pool %q does not exist on the host and no step of this plan creates it", poolName)
		}
		if nameKnown {
			if other := pf.otherStep(step, TypeVolume, providers.ActionCreate, func(s providers.PreflightStep) bool {
				n, ok1 := knownAttr(s, "name")
				p, ok2 := knownAttr(s, "pool")
				return ok1 && ok2 && n == name && p == poolName
			}); other != "" {
				add("volume %q in pool %q is also created by %s in this plan", name, poolName, other)
			}
		}
	}
	if nameKnown && poolKnown && formatKnown && sizeKnown && sizeSet && len(problems) == 0 {
		if _, err := volumeXML(volumeSpec{Name: name, Pool: poolName, Format: format, Size: size}); err != nil {
			add("%v", err)
		}
	}
	return problems
}

// poolCreatedBy returns the address of a step that creates the named pool.
func (pf *preflight) poolCreatedBy(self providers.PreflightStep, name string) string {
	return pf.otherStep(self, TypePool, providers.ActionCreate, func(s providers.PreflightStep) bool {
		n, ok := knownAttr(s, "name")
		return ok && n == name
	})
}

func (pf *preflight) volumeUpdate(step providers.PreflightStep) []string {
	var problems []string
	for _, a := range []string{"name", "pool", "format"} {
		prior, pk, _ := strAttr(step.Prior, a)
		next, nk, _ := strAttr(step.Config, a)
		if a == "format" {
			prior, next = orDefault(prior, formatQcow2), orDefault(next, formatQcow2)
		}
		if pk && nk && prior != next {
			problems = append(problems, fmt.Sprintf("a volume's %s cannot change in place (%q to %q); it must be replaced", a, prior, next))
		}
	}
	name, _, _ := strAttr(step.Prior, "name")
	format, _, _ := strAttr(step.Config, "format")
	prior, pk, ps, _ := sizeAttr(step.Prior, "size")
	next, nk, ns, err := sizeAttr(step.Config, "size")
	if err != nil {
		problems = append(problems, err.Error())
	}
	if pk && ps && nk && ns {
		if next < prior {
			problems = append(problems, shrinkProblem(name, prior, next))
		} else if p := checkSize(next, orDefault(format, formatQcow2)); p != "" {
			problems = append(problems, p)
		}
	}
	r := volumeRefFrom(step.ID, step.Prior)
	vol, found, err := lookupVolume(pf.l, r)
	switch {
	case err != nil:
		problems = append(problems, err.Error())
	case !found:
		problems = append(problems, fmt.Sprintf("%s no longer exists on the host", r))
	case nk && ns && !(pk && ps && next < prior):
		if _, capacity, _, err := pf.l.StorageVolGetInfo(vol); err == nil && capacity > next {
			problems = append(problems, shrinkProblem(name, capacity, next)+" (the volume on the host is larger than its stored state)")
		}
	}
	return problems
}
