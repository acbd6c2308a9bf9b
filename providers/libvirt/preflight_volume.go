package libvirt

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

func (pf *preflight) volume(ctx context.Context, step providers.PreflightStep) []string {
	switch step.Action {
	case providers.ActionCreate:
		return pf.volumeCreate(ctx, step)
	case providers.ActionUpdate:
		return pf.volumeUpdate(step)
	case providers.ActionDelete:
		return pf.volumeDelete(step)
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}

func (pf *preflight) volumeCreate(ctx context.Context, step providers.PreflightStep) []string {
	var problems []string
	add := func(format string, args ...any) { problems = append(problems, fmt.Sprintf(format, args...)) }
	problems = append(problems, xsltProblems(ctx, step.Config, "<volume><name>preflight</name></volume>")...)

	format, formatKnown, err := strAttr(step.Config, "format")
	if err != nil {
		add("%v", err)
	}
	format = orDefault(format, formatQcow2)
	size, sizeKnown, sizeSet, err := sizeAttr(step.Config, "size")
	if err != nil {
		add("%v", err)
	}
	base, baseKnown, _ := strAttr(step.Config, "base_volume")
	baseID, baseIDKnown, _ := strAttr(step.Config, "base_volume_id")
	baseName, baseNameKnown, _ := strAttr(step.Config, "base_volume_name")
	basePool, basePoolKnown, _ := strAttr(step.Config, "base_volume_pool")
	pool, poolKnown, _ := strAttr(step.Config, "pool")
	baseAttr := "base_volume"
	if baseKnown && baseIDKnown {
		b, from, err := baseOf(base, baseID)
		if err != nil {
			add("%v", err)
		}
		base, baseAttr = b, from
	}
	baseKnown = baseKnown && baseIDKnown
	source, sourceKnown, _ := strAttr(step.Config, "source")

	if formatKnown {
		if p := checkFormat(format); p != "" {
			add("%s", p)
			formatKnown = false
		}
	}
	if sizeKnown && baseKnown && sourceKnown && formatKnown {
		spec := volumeSpec{Name: "v", Pool: "p", Format: format, Size: size, SizeSet: sizeSet, Base: base, Source: source}
		if baseNameKnown && basePoolKnown {
			spec.BaseName, spec.BasePool = baseName, basePool
		}
		if p := spec.check(); p != "" {
			add("%s", p)
		}
	}
	if sourceKnown && source != "" {
		if f, n, err := probeSource(ctx, source); err != nil {
			add("%v", err)
		} else {
			if formatKnown && f != format {
				add("source %s is a %s image; set format = %q", source, f, f)
			}
			size, sizeKnown, sizeSet = n, true, true
		}
	}
	if baseKnown && base != "" {
		if _, err := lookupVolumeRef(pf.l, base); err != nil {
			if !notFound(err) {
				add("check %s %s: %v", baseAttr, base, readErr("look up volume", err))
			} else {
				add("%s %s does not exist on the host (no volume has that key or path)", baseAttr, base)
			}
		} else if by := pf.volumeDeletedBy(base); by != "" {
			add("%s %s is deleted by %s in this plan", baseAttr, base, by)
		}
	}
	if baseNameKnown && basePoolKnown && poolKnown && baseName != "" {
		problems = append(problems, pf.baseByName(step, baseName, orDefault(basePool, orDefault(pool, defaultPool)))...)
	}
	problems = append(problems, pf.volumePlacement(step)...)
	if sizeKnown && sizeSet {
		problems = append(problems, pf.poolSpace(step, size)...)
	}
	return problems
}

// baseByName checks that base_volume_name names a volume of its pool, or
// one the plan creates there.
func (pf *preflight) baseByName(self providers.PreflightStep, name, pool string) []string {
	created := pf.otherStep(self, TypeVolume, providers.ActionCreate, func(s providers.PreflightStep) bool {
		n, ok := knownAttr(s, "name")
		p, _, _ := strAttr(s.Config, "pool")
		return ok && n == name && orDefault(p, defaultPool) == pool
	})
	if created != "" {
		return nil
	}
	what := fmt.Sprintf("base_volume_name %s in pool %s", name, pool)
	vol, err := lookupBase(pf.l, volumeSpec{BaseName: name, BasePool: pool})
	switch {
	case err != nil && notFound(err):
		return []string{what + " does not exist on the host and no step of this plan creates it"}
	case err != nil:
		return []string{fmt.Sprintf("check %s: %v", what, readErr("look up volume", err))}
	}
	if by := pf.volumeDeletedBy(vol.Key); by != "" {
		return []string{fmt.Sprintf("%s is deleted by %s in this plan", what, by)}
	}
	return nil
}

// volumePlacement checks a new volume's (or cloud-init disk's) name and
// pool: the pool exists and runs or the plan creates it, the name is free
// in it (or freed by a delete in the plan) and not created twice.
func (pf *preflight) volumePlacement(step providers.PreflightStep) []string {
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
	if nameKnown {
		if p := checkName("volume", name); p != "" {
			add("%s", p)
			nameKnown = false
		}
	}
	if !poolKnown {
		return problems
	}
	if p := checkName("pool", poolName); p != "" {
		add("%s", p)
		return problems
	}
	createdBy := pf.poolCreatedBy(step, poolName)
	if hp := pf.hostPoolByName(poolName); hp != nil && createdBy == "" {
		if by := pf.deletedBy(hp); by != "" {
			add("pool %q is deleted by %s in this plan", poolName, by)
		} else if !hp.active {
			// Names in a stopped pool cannot be checked; one the plan
			// starts first (the volume depends on it) is started by then.
			if pf.poolStartedBy(step, poolName) == "" {
				add("pool %q exists but is not active; start it (virsh pool-start %s), or set active = true on the libvirt_pool that manages it", poolName, poolName)
			}
		} else if nameKnown {
			vol, err := pf.l.StorageVolLookupByName(hp.pool, name)
			switch {
			case err == nil:
				if pf.volumeDeletedBy(vol.Key) == "" {
					add("volume %q already exists in pool %q (key %s); choose another name, or import or delete that volume", name, poolName, vol.Key)
				}
			case !notFound(err):
				add("check volume %q in pool %q: %v", name, poolName, readErr("look up volume", err))
			}
		}
	} else if hp == nil && createdBy == "" {
		add("pool %q does not exist on the host and no step of this plan creates it", poolName)
	}
	if nameKnown {
		if other := pf.otherStep(step, "", providers.ActionCreate, func(s providers.PreflightStep) bool {
			if s.Type != TypeVolume && s.Type != TypeCloudInit && s.Type != TypeIgnition {
				return false
			}
			n, ok1 := knownAttr(s, "name")
			p, ok2 := knownAttr(s, "pool")
			return ok1 && ok2 && n == name && p == poolName
		}); other != "" {
			add("volume %q in pool %q is also created by %s in this plan", name, poolName, other)
		}
	}
	return problems
}

// poolSpace checks that the pool has room for the volumes the plan creates
// in it, counted at full capacity (a sparse qcow2 volume may grow to it),
// up to and including this one. With the provider's allow_overcommit the
// volumes may exceed it (thin provisioning): nothing is checked.
func (pf *preflight) poolSpace(step providers.PreflightStep, size uint64) []string {
	poolName, ok := knownAttr(step, "pool")
	if !ok || pf.p.allowOvercommit {
		return nil
	}
	hp := pf.hostPoolByName(poolName)
	if hp == nil || !hp.active || pf.poolCreatedBy(step, poolName) != "" {
		return nil
	}
	need := uint64(0)
	for _, s := range pf.steps {
		if s.Action != providers.ActionCreate || s.Type != TypeVolume || s.Address == step.Address {
			continue
		}
		if p, ok := knownAttr(s, "pool"); ok && p == poolName && s.Address < step.Address {
			if n, known, set, _ := sizeAttr(s.Config, "size"); known && set {
				need += n
			}
		}
	}
	if need+size > hp.free {
		return []string{fmt.Sprintf("pool %q has %d bytes free; this volume needs %d (and the volumes created in it before this one %d): out of space (set allow_overcommit = true in the provider block to allow thin provisioning)",
			poolName, hp.free, size, need)}
	}
	return nil
}

// volumeDeletedBy returns the step that deletes the volume with key id.
func (pf *preflight) volumeDeletedBy(id string) string {
	if by := pf.deleting(TypeVolume, id, ""); by != "" {
		return by
	}
	if by := pf.deleting(TypeCloudInit, id, ""); by != "" {
		return by
	}
	return pf.deleting(TypeIgnition, id, "")
}

// poolCreatedBy returns the address of a step that creates the named pool.
func (pf *preflight) poolCreatedBy(self providers.PreflightStep, name string) string {
	return pf.otherStep(self, TypePool, providers.ActionCreate, func(s providers.PreflightStep) bool {
		n, ok := knownAttr(s, "name")
		return ok && n == name
	})
}

// poolStartedBy returns the address of a step that updates the named pool
// to run (active = true): a pool stopped outside fiat that the plan starts
// again before the volumes that depend on it.
func (pf *preflight) poolStartedBy(self providers.PreflightStep, name string) string {
	return pf.otherStep(self, TypePool, providers.ActionUpdate, func(s providers.PreflightStep) bool {
		n, ok := knownAttr(s, "name")
		active, known, err := boolAttr(s.Config, "active", true)
		return ok && n == name && known && err == nil && active
	})
}

func (pf *preflight) volumeUpdate(step providers.PreflightStep) []string {
	var problems []string
	for _, a := range []string{"name", "pool", "format", "base_volume", "base_volume_id", "base_volume_name", "base_volume_pool", "source"} {
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
	next = volumeCapacity(next, orDefault(format, formatQcow2)) // as the update resizes it
	if pk && ps && nk && ns {
		if next < prior {
			problems = append(problems, shrinkProblem(name, prior, next))
		} else if p := checkSize(next); p != "" {
			problems = append(problems, p)
		}
	}
	r := volumeRefFrom(step.ID, step.Prior)
	vol, found, err := lookupVolume(pf.l, r)
	var inactive errPoolInactive
	switch {
	case errors.As(err, &inactive) && pf.poolStartedBy(step, r.Pool) != "":
		// Not visible until the plan starts the pool; checked by the resize.
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

// volumeDelete refuses to delete a volume that another volume the plan
// keeps uses as its backing file (the overlay would lose its base).
func (pf *preflight) volumeDelete(step providers.PreflightStep) []string {
	r := volumeRefFrom(step.ID, step.Prior)
	path, _, _ := strAttr(step.Prior, "path")
	if path == "" {
		return nil
	}
	pool, have, err := poolHolding(pf.l, r, "check "+r.String())
	if err != nil || !have {
		return nil // gone already, or not visible: the purge copes
	}
	if active, err := pf.l.StoragePoolIsActive(pool); err != nil || active == 0 {
		return nil
	}
	vols, _, err := pf.l.StoragePoolListAllVolumes(pool, 1, 0)
	if err != nil {
		return []string{readErr("list volumes of pool "+pool.Name, err).Error()}
	}
	var problems []string
	for _, v := range vols {
		if v.Key == r.Key {
			continue
		}
		x, err := pf.l.StorageVolGetXMLDesc(v, 0)
		if err != nil {
			continue
		}
		var doc libvirtxml.StorageVolume
		if doc.Unmarshal(x) != nil || doc.BackingStore == nil || filepath.Clean(doc.BackingStore.Path) != filepath.Clean(path) {
			continue
		}
		if pf.volumeDeletedBy(v.Key) == "" {
			problems = append(problems, fmt.Sprintf("volume %s is the base (backing file) of volume %s in pool %s, which this plan keeps; delete or replace that volume too",
				r.Name, v.Name, pool.Name))
		}
	}
	return problems
}
