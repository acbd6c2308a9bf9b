package libvirt

import (
	"bytes"
	"context"
	"fmt"
	"io"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// A cloud-init disk and an Ignition volume are the same thing to libvirt:
// a raw volume whose bytes fiat makes from config. contentVolume is what
// they share: create uploads the bytes; read downloads them and compares;
// every attribute forces a replacement, which keeps the volume's name and
// so its id; settle knows a create by its content; retire, undo and purge
// are the volume's. C is what each makes its bytes from and reads them
// back as.
type contentVolume[C comparable] struct {
	kind  string   // "cloud-init disk", "ignition"
	typ   string   // the resource type
	attrs []string // the config's attributes, each forcing a replacement
	max   uint64   // the most bytes read back
	spec  func(cty.Value) (volumeSpec, C, error)
	build func(C) ([]byte, error)
	parse func([]byte) (C, error)
	// state is the resource's state for a volume holding got (prior:
	// config or state, cty.NilVal when importing).
	state func(l *golibvirt.Libvirt, vol golibvirt.StorageVol, got C, prior cty.Value) (cty.Value, error)
	key   func(id string) string // the volume key an id names
}

// contentVolumeType is the resource type of a content volume: its own
// create, update, read, settle and import; the volume's retire and purge.
func contentVolumeType[C comparable](schema providers.ResourceSchema, pf func(*preflight, context.Context, providers.PreflightStep) []string, cv *contentVolume[C]) resourceType {
	return resourceType{schema: schema, preflight: pf, create: cv.create, update: cv.update,
		retire: (*Provider).retireVolume, purge: (*Provider).purgeVolume, read: cv.read, settle: cv.settle, imp: cv.imp}
}

func (cv *contentVolume[C]) download(ctx context.Context, p *Provider, l *golibvirt.Libvirt, vol golibvirt.StorageVol, op string) (C, error) {
	var zero C
	_, capacity, _, err := l.StorageVolGetInfo(vol)
	if err != nil {
		return zero, readErr(op, err)
	}
	if capacity > cv.max {
		return zero, fmt.Errorf("%s: volume %s holds %d bytes, too large for a %s", op, vol.Name, capacity, cv.kind)
	}
	var buf bytes.Buffer
	if err := p.download(ctx, l, vol, capacity, &buf, op+": read back its content"); err != nil {
		return zero, err
	}
	got, err := cv.parse(buf.Bytes())
	if err != nil {
		return zero, fmt.Errorf("%s: %w", op, err)
	}
	return got, nil
}

func (cv *contentVolume[C]) create(p *Provider, ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	spec, content, err := cv.spec(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s %s: %w", cv.kind, req.Address, err)
	}
	op := fmt.Sprintf("create %s %s", cv.kind, spec.Name)
	b, err := cv.build(content)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	spec.Size, spec.SizeSet = uint64(len(b)), true
	resp, err := p.createVolumeWith(ctx, req, spec, &volumeContent{
		open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }, size: uint64(len(b))})
	if err != nil {
		return resp, err
	}
	l, err := p.client(ctx)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := l.StorageVolLookupByKey(resp.ID)
	if err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, readErr(op, err)
	}
	if resp.State, err = cv.state(l, vol, content, req.Config); err != nil {
		return providers.CreateResponse{ID: resp.ID, Undo: resp.Undo}, err
	}
	return resp, nil
}

// update has nothing to change: every attribute forces a replacement. It
// reads the volume back.
func (cv *contentVolume[C]) update(p *Provider, ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	for _, a := range cv.attrs {
		if eq := attr(req.Prior, a).Equals(attr(req.Config, a)); !eq.IsKnown() || eq.False() {
			return providers.UpdateResponse{}, fmt.Errorf("update %s %s: %s cannot change in place; it must be replaced", cv.kind, req.Address, a)
		}
	}
	read, err := cv.read(p, ctx, providers.ReadRequest{Address: req.Address, Type: cv.typ, ID: req.ID, State: req.Prior})
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	if !read.Exists {
		return providers.UpdateResponse{}, fmt.Errorf("update %s %s: it no longer exists", cv.kind, req.Address)
	}
	return providers.UpdateResponse{State: read.State, Undo: noUndo}, nil
}

func (cv *contentVolume[C]) read(p *Provider, ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	r := volumeRefFrom(cv.key(req.ID), req.State)
	op := fmt.Sprintf("read %s %s", cv.kind, r.Name)
	l, err := p.client(ctx)
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, found, err := lookupVolume(l, r)
	if resp, ok := storedRead(err, req); ok {
		return resp, nil
	}
	if err != nil || !found {
		return providers.ReadResponse{}, err
	}
	state, err := cv.load(ctx, p, l, vol, op, req.State)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return providers.ReadResponse{Exists: true, State: state}, nil
}

// load is the state of vol as it is: its content downloaded, beside prior.
func (cv *contentVolume[C]) load(ctx context.Context, p *Provider, l *golibvirt.Libvirt, vol golibvirt.StorageVol, op string, prior cty.Value) (cty.Value, error) {
	got, err := cv.download(ctx, p, l, vol, op)
	if err != nil {
		return cty.NilVal, err
	}
	return cv.state(l, vol, got, prior)
}

// settle: a create took effect when the volume it made (see createdVolume)
// holds the content under its name (a cloud-init ISO is compared by its
// files: the image itself differs in its timestamps); retires are the
// volume's.
func (cv *contentVolume[C]) settle(p *Provider, ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	if req.Action != providers.ActionCreate {
		if req.Action == providers.ActionUpdate {
			read, err := cv.read(p, ctx, providers.ReadRequest{Address: req.Address, Type: cv.typ, ID: req.ID, State: req.Prior})
			if err != nil || !read.Exists {
				return providers.SettleResponse{}, err
			}
			return providers.SettleResponse{TookEffect: true, ID: req.ID, State: read.State, Undo: noUndo}, nil
		}
		return p.settleVolume(ctx, req)
	}
	spec, want, err := cv.spec(req.Config)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("settle %s: %w", req.Address, err)
	}
	op := fmt.Sprintf("settle %s %s", cv.kind, spec.Name)
	l, err := p.client(ctx)
	if err != nil {
		return providers.SettleResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, u, named, err := p.createdVolume(l, volumeRef{Pool: spec.Pool, Name: spec.Name}, req.OpID, req.Address)
	if err != nil || u.Op == "" {
		return providers.SettleResponse{}, err
	}
	return settledCreate(vol.Key, u.encode(), func() (bool, cty.Value, error) {
		if !named {
			return false, cty.NilVal, nil // not written, or not renamed yet
		}
		got, err := cv.download(ctx, p, l, vol, op)
		if err != nil || got != want {
			return false, cty.NilVal, nil // created, not (fully) written
		}
		state, err := cv.state(l, vol, got, req.Config)
		return true, state, err
	})
}

// imp adopts a volume by key, path or "pool/name" (or what key reads).
func (cv *contentVolume[C]) imp(p *Provider, ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	op := fmt.Sprintf("import %s %s", cv.kind, req.ID)
	l, err := p.client(ctx)
	if err != nil {
		return providers.ImportResponse{}, fmt.Errorf("%s: %w", op, err)
	}
	vol, err := findVolumeByUserID(l, cv.key(req.ID))
	if err != nil {
		return providers.ImportResponse{}, readErr(op, err)
	}
	state, err := cv.load(ctx, p, l, vol, op, cty.NilVal)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return providers.ImportResponse{ID: vol.Key, State: state}, nil
}

// preflight: the content builds (check: the problems a create of the
// config has before its place is looked at), the volume's place is free.
func (cv *contentVolume[C]) preflight(pf *preflight, step providers.PreflightStep, check func(cty.Value) []string) []string {
	switch step.Action {
	case providers.ActionCreate:
		return append(check(step.Config), pf.volumePlacement(step)...)
	case providers.ActionUpdate:
		return []string{fmt.Sprintf("a %s cannot change in place; it must be replaced", cv.kind)}
	case providers.ActionDelete:
		return pf.volumeDelete(step)
	}
	return []string{fmt.Sprintf("unsupported action %q", step.Action)}
}
