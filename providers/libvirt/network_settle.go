package libvirt

import (
	"context"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

// Settling, importing and reading libvirt_network objects fiat did not just make.

// settleNetwork: a create took effect when the network with the UUID
// derived from the OpID is defined, and runs and autostarts as asked; an
// update when the definition and the running network hold the new entries
// and it runs and autostarts as asked; a retire when the UUID is no longer
// defined.
func (p *Provider) settleNetwork(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	op := "settle network " + req.Address
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	switch req.Action {
	case providers.ActionCreate:
		spec, err := networkSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		uuid := formatUUID(newUUID(req.OpID, req.Address))
		n, found, err := findNetwork(l, uuid, cty.NilVal)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		undo := undoRecord{Op: undoCreateNetwork, UUID: uuid, Name: spec.Name}.encode()
		return settledCreate(uuid, undo, func() (bool, cty.Value, error) {
			run, err := networkRun(l, n, op)
			if err != nil || run != spec.run() {
				return false, cty.NilVal, err
			}
			state, err := networkState(l, n, req.Config)
			return err == nil, state, err
		})
	case providers.ActionUpdate:
		prior, err := networkSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		next, err := networkSpecFrom(req.Config)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		n, found, err := findNetwork(l, req.ID, req.Prior)
		if err != nil || !found {
			return providers.SettleResponse{}, err
		}
		doc, x, err := networkDoc(l, n, true)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		// Each copy is parsed anew: the documents share slices.
		var want, back libvirtxml.Network
		if err := want.Unmarshal(x); err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		if err := back.Unmarshal(x); err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		applyNetworkSpec(&want, next)
		applyNetworkSpec(&back, prior)
		bx, err := marshalNetwork(back)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		undo := undoRecord{Op: undoUpdateNetwork, UUID: req.ID, Name: prior.Name, XML: bx,
			Autostart: prior.Autostart, WasActive: prior.Active, WasStopped: !prior.Active}.encode()
		state, err := networkState(l, n, req.Config)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		live, _, err := networkDoc(l, n, false)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		wx, err := marshalNetwork(want)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		dx, err := marshalNetwork(doc)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		run, err := networkRun(l, n, op)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		done := dx == wx && run == next.run() && sameEntries(live, want)
		return providers.SettleResponse{TookEffect: done, ID: req.ID, State: state, Undo: undo}, nil
	case providers.ActionDelete:
		spec, err := networkSpecFrom(req.Prior)
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: prior state: %w", op, err)
		}
		n, found, err := findNetwork(l, req.ID, cty.NilVal)
		if err != nil {
			return providers.SettleResponse{}, err
		}
		x, err := marshalNetwork(newNetworkDoc(spec, req.ID))
		if err != nil {
			return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
		}
		active, err := networkWasActive(l, n, found, req.Prior)
		if err != nil {
			return providers.SettleResponse{}, readErr(op, err)
		}
		undo := undoRecord{Op: undoRetireNetwork, UUID: req.ID, Name: spec.Name, XML: x, WasActive: active, Autostart: spec.Autostart}.encode()
		return providers.SettleResponse{TookEffect: !found, ID: req.ID, Undo: undo}, nil
	}
	return providers.SettleResponse{}, fmt.Errorf("%s: unsupported action %q", op, req.Action)
}

// networkWasActive decides, as poolWas does for a pool, whether a network
// ran before a retire whose outcome is unknown: the prior state says it
// when it records the run state; else a network still defined says it
// (a retire only stops and undefines); one that is gone is taken to have
// run, as fiat makes networks.
func networkWasActive(l *golibvirt.Libvirt, n golibvirt.Network, found bool, prior cty.Value) (bool, error) {
	if b, ok := priorBool(prior, "active", "running"); ok {
		return b, nil
	}
	if !found {
		return true, nil
	}
	active, err := l.NetworkIsActive(n)
	if notFound(err) {
		return true, nil
	}
	return active == 1, err
}

// sameEntries reports whether a running network has want's DHCP ranges,
// DHCP hosts and DNS hosts.
func sameEntries(live, want libvirtxml.Network) bool {
	if len(live.IPs) != len(want.IPs) {
		return false
	}
	for i := range live.IPs {
		var lr, wr, lh, wh []any
		if d := live.IPs[i].DHCP; d != nil {
			lr, lh = elems(d.Ranges), elems(d.Hosts)
		}
		if d := want.IPs[i].DHCP; d != nil {
			wr, wh = elems(d.Ranges), elems(d.Hosts)
		}
		if !sameElems(lr, wr) || !sameElems(lh, wh) {
			return false
		}
	}
	var ld, wd []any
	if live.DNS != nil {
		ld = elems(live.DNS.Host)
	}
	if want.DNS != nil {
		wd = elems(want.DNS.Host)
	}
	return sameElems(ld, wd)
}

func sameElems(a, b []any) bool {
	if len(a) != len(b) {
		return false
	}
	for _, x := range a {
		if !containsElem(b, x) {
			return false
		}
	}
	return true
}

// importNetwork adopts a network by UUID or name.
func (p *Provider) importNetwork(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := "import network " + req.ID
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	n, err := lookupUserID(req.ID, l.NetworkLookupByUUID, l.NetworkLookupByName)
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	state, err := networkState(l, n, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: formatUUID(n.UUID), State: state}, nil
}

// readNetworkData is the data source libvirt_network: by name.
func (p *Provider) readNetworkData(ctx context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	name, known, err := strAttr(req.Config, "name")
	if err != nil || !known || name == "" {
		return providers.ReadDataResponse{}, fmt.Errorf("read network %s: name must be a known, non-empty string (%v)", req.Address, err)
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadDataResponse{}, fmt.Errorf("read network %s: %w", name, err)
	}
	n, err := l.NetworkLookupByName(name)
	if err != nil {
		return providers.ReadDataResponse{}, readErr("read network "+name, err)
	}
	state, err := networkState(l, n, cty.NilVal)
	return providers.ReadDataResponse{State: state}, err
}
