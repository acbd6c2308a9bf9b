// Package libvirt is fiat's provider for libvirt hosts: storage pools and
// volumes for now (networks, domains and cloud-init come later, one file per
// resource type).
//
// It talks to libvirtd with github.com/digitalocean/go-libvirt (the RPC
// protocol, no cgo) and builds every XML document with libvirtxml.
//
// Context: ctx is checked before each libvirt call. A call already sent is
// not abandoned when ctx ends, because its outcome would be unknown; it runs
// to completion and the provider returns what happened.
//
// Identity: a pool's id is its UUID, chosen by the provider before the define
// (derived from the request's OpID), so it is known even when the call's
// outcome is not. A volume's id is its libvirt key (the file path for dir
// pools). Read with an empty ID falls back to the names in State, so an
// unknown-outcome create can be settled by reading its planned config.
//
// Failures: libvirt's own errors come back as *providers.Error (Op, libvirt's
// Message and Code); a create refused because the name or directory is taken
// also satisfies errors.Is(err, ErrConflict). A dropped connection during a
// mutating call satisfies errors.Is(err, providers.ErrOutcomeUnknown). When a
// Create, Update or Retire fails after something may have taken effect (the
// outcome is unknown, or its own cleanup failed), the response still carries
// the Undo that takes it back: journal it and run it (undos are idempotent,
// so running one for a call that did nothing succeeds). When libvirt refused
// the call and the provider cleaned up, no Undo is returned.
package libvirt

import (
	"context"
	"errors"
	"fmt"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

var _ providers.Provider = (*Provider)(nil)

// Provider is one configured connection to a libvirt host. Its methods may
// run concurrently; jobs on one storage pool are serialised.
type Provider struct {
	conn  *conn
	pools poolLocks
}

// New returns an unconfigured provider; Configure connects it.
func New() *Provider { return &Provider{} }

// resourceType binds one resource type's schema to its implementation.
type resourceType struct {
	schema    providers.ResourceSchema
	preflight func(*preflight, context.Context, providers.PreflightStep) []string
	create    func(*Provider, context.Context, providers.CreateRequest) (providers.CreateResponse, error)
	update    func(*Provider, context.Context, providers.UpdateRequest) (providers.UpdateResponse, error)
	retire    func(*Provider, context.Context, providers.RetireRequest) (providers.RetireResponse, error)
	purge     func(*Provider, context.Context, providers.PurgeRequest) error
	read      func(*Provider, context.Context, providers.ReadRequest) (providers.ReadResponse, error)
}

// Resource type names.
const (
	TypePool   = "libvirt_pool"
	TypeVolume = "libvirt_volume"
)

var resourceTypes = map[string]resourceType{
	TypePool: {
		schema:    poolSchema,
		preflight: (*preflight).pool,
		create:    (*Provider).createPool,
		update:    (*Provider).updatePool,
		retire:    (*Provider).retirePool,
		purge:     (*Provider).purgePool,
		read:      (*Provider).readPool,
	},
	TypeVolume: {
		schema:    volumeSchema,
		preflight: (*preflight).volume,
		create:    (*Provider).createVolume,
		update:    (*Provider).updateVolume,
		retire:    (*Provider).retireVolume,
		purge:     (*Provider).purgeVolume,
		read:      (*Provider).readVolume,
	},
}

func lookupType(typ string) (resourceType, error) {
	rt, ok := resourceTypes[typ]
	if !ok {
		return rt, fmt.Errorf("libvirt provider has no resource type %q", typ)
	}
	return rt, nil
}

// Schema lists the resource types.
func (p *Provider) Schema() providers.Schema {
	s := providers.Schema{
		Provider: map[string]providers.Attribute{
			"uri": {Type: cty.String, Optional: true, Default: cty.StringVal(DefaultURI),
				Description: "libvirt connection URI, e.g. qemu:///system or qemu+tcp://host/system"},
		},
		Resources: make(map[string]providers.ResourceSchema, len(resourceTypes)),
	}
	for name, rt := range resourceTypes {
		s.Resources[name] = rt.schema
	}
	return s
}

// Configure reads the provider block (attribute uri, default
// qemu:///system; qemu+tcp://host/system and the other go-libvirt transports
// work too) and connects.
func (p *Provider) Configure(ctx context.Context, req providers.ConfigureRequest) error {
	uri, known, err := strAttr(req.Config, "uri")
	if err != nil {
		return fmt.Errorf("configure libvirt provider: %w", err)
	}
	if !known {
		return errors.New("configure libvirt provider: uri is not known until apply")
	}
	if uri == "" {
		uri = DefaultURI
	}
	c, err := newConn(uri)
	if err != nil {
		return fmt.Errorf("configure libvirt provider: %w", err)
	}
	if _, err := c.client(ctx); err != nil {
		return fmt.Errorf("configure libvirt provider: %w", err)
	}
	if p.conn != nil {
		_ = p.conn.close()
	}
	p.conn = c
	return nil
}

// Close disconnects.
func (p *Provider) Close() error {
	if p.conn == nil {
		return nil
	}
	if err := p.conn.close(); err != nil {
		return fmt.Errorf("close libvirt connection: %w", err)
	}
	return nil
}

func (p *Provider) client(ctx context.Context) (*golibvirt.Libvirt, error) {
	if p.conn == nil {
		return nil, errors.New("libvirt provider is not configured")
	}
	return p.conn.client(ctx)
}

// Create makes a new object.
func (p *Provider) Create(ctx context.Context, req providers.CreateRequest) (providers.CreateResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.CreateResponse{}, err
	}
	return rt.create(p, ctx, req)
}

// Update changes an object in place.
func (p *Provider) Update(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.UpdateResponse{}, err
	}
	return rt.update(p, ctx, req)
}

// Retire makes an object inert but recoverable.
func (p *Provider) Retire(ctx context.Context, req providers.RetireRequest) (providers.RetireResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.RetireResponse{}, err
	}
	return rt.retire(p, ctx, req)
}

// Purge destroys a retired object; purging one that is gone succeeds.
func (p *Provider) Purge(ctx context.Context, req providers.PurgeRequest) error {
	rt, err := lookupType(req.Type)
	if err != nil {
		return err
	}
	return rt.purge(p, ctx, req)
}

// Read reports the real object.
func (p *Provider) Read(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.ReadResponse{}, err
	}
	return rt.read(p, ctx, req)
}

// Settle is not implemented yet for any libvirt type.
func (p *Provider) Settle(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	return providers.SettleResponse{}, fmt.Errorf("settle %s: not implemented for %s", req.Address, req.Type)
}

// Import is not implemented yet for any libvirt type.
func (p *Provider) Import(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	return providers.ImportResponse{}, fmt.Errorf("import %s: not implemented for %s", req.Address, req.Type)
}

// ReadData is not implemented yet: the libvirt provider has no data sources.
func (p *Provider) ReadData(ctx context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	return providers.ReadDataResponse{}, fmt.Errorf("read data %s: libvirt has no data source %s yet", req.Address, req.Type)
}
