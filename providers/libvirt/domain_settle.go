package libvirt

import (
	"context"
	"fmt"

	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// Settling and importing libvirt_domain objects fiat did not just make.

// settleDomain: a create took effect when the domain with the UUID derived
// from the OpID is defined, running and autostarted as asked; an update when
// its definition is what the update would write and it runs as asked; a
// retire when it carries its retired name and is off.
func (p *Provider) settleDomain(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	op := "settle domain " + req.Address
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	switch req.Action {
	case providers.ActionCreate:
		spec, err := domainSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		uuid := formatUUID(newUUID(req.OpID, req.Address))
		d, found, err := findDomain(l, uuid, cty.NilVal)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		undo := undoRecord{Op: undoCreateDomain, UUID: uuid, Name: spec.Name}.encode()
		return settledCreate(uuid, undo, func() (bool, cty.Value, error) {
			running, autostart, err := domainRunState(l, d, op)
			if err != nil || running != spec.Running || autostart != spec.Autostart {
				return false, cty.NilVal, err
			}
			state, err := domainState(l, d, req.Config)
			return true, state, err
		})
	case providers.ActionUpdate:
		prior, err := domainSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		next, err := domainSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		d, found, err := findDomain(l, req.ID, req.Prior)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		_, x, err := domainDoc(l, d)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		specXML := func(s domainSpec) (string, error) {
			var doc libvirtxml.Domain
			if err := doc.Unmarshal(x); err != nil { // parsed anew: documents share slices
				return "", err
			}
			disks, ci, err := resolveDomainDisks(l, &s)
			if err != nil {
				return "", err
			}
			setDomainSpec(&doc, s, disks, ci)
			return marshalDomain(doc) // the stylesheet ran at create: its changes are in x
		}
		back, err := specXML(prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		undo := undoRecord{Op: undoUpdateDomain, UUID: req.ID, Name: prior.Name, XML: back,
			WasActive: prior.Running, Autostart: prior.Autostart}.encode()
		want, err := specXML(next)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		var cur libvirtxml.Domain
		if err := cur.Unmarshal(x); err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		curX, err := marshalDomain(cur)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		running, autostart, err := domainRunState(l, d, op)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		state, err := domainState(l, d, req.Config)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		done := curX == want && running == next.Running && autostart == next.Autostart
		return providers.SettleResponse{TookEffect: done, ID: req.ID, State: state, Undo: undo}, nil
	case providers.ActionDelete:
		spec, err := domainSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		d, found, err := findDomain(l, req.ID, cty.NilVal)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		if !found { // gone: nothing a retire could have left, nothing to bring back
			return providers.SettleResponse{TookEffect: true, ID: req.ID, Undo: noUndo}, nil
		}
		undo := undoRecord{Op: undoRetireDomain, UUID: req.ID, Name: spec.Name, Retired: retiredDomainName(spec.Name, req.ID),
			WasActive: spec.Running, Autostart: spec.Autostart}.encode()
		running, _, err := domainRunState(l, d, op)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		return providers.SettleResponse{TookEffect: d.Name != spec.Name && !running, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
}

// importDomain adopts a domain by UUID or name.
func (p *Provider) importDomain(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import domain " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	d, err := lookupUserID(req.ID, l.DomainLookupByUUID, l.DomainLookupByName)
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	state, err := domainState(l, d, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: formatUUID(d.UUID), State: state}, nil
}
