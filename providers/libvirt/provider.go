// Package libvirt is fiat's provider for libvirt hosts: storage pools,
// volumes, networks, domains (VMs) and cloud-init seeds, one file per
// resource type, and data sources for existing pools, volumes and networks.
//
// It talks to libvirtd with github.com/digitalocean/go-libvirt (the RPC
// protocol, no cgo) and builds every XML document with libvirtxml.
//
// Context: ctx is checked before each libvirt call. A call already sent is
// not abandoned when ctx ends, because its outcome would be unknown; it runs
// to completion and the provider returns what happened.
//
// Identity: pools, networks and domains are known by UUID, chosen by the
// provider before the define (derived from the request's OpID), so it is
// known even when the call's outcome is not, and Settle finds the object
// again. A volume's (and a cloud-init disk's) id is its libvirt key (the
// file path for dir pools); it is unique by pool and name. Read with an
// empty ID falls back to the names in State.
//
// Retire frees the name so a replacement can be created before the commit,
// and keeps the object recoverable: pools and networks are stopped and
// undefined with their XML kept in the Undo; domains are powered off and
// renamed; volumes are renamed. Purge works from the ID and prior state
// alone (see each type).
//
// Failures: libvirt's own errors come back as *providers.Error (Op, libvirt's
// Message and Code); a create refused because the name (or a pool's
// directory) is taken also satisfies errors.Is(err, ErrConflict). A dropped
// connection during a mutating call satisfies errors.Is(err,
// providers.ErrOutcomeUnknown); the next call dials again. When a Create,
// Update or Retire fails after something may have taken effect (the outcome
// is unknown, or its own cleanup failed), the response still carries the
// Undo that takes it back: journal it and run it (undos are idempotent, so
// running one for a call that did nothing succeeds). When libvirt refused
// the call and the provider cleaned up, no Undo is returned. Settle may
// likewise return an Undo with TookEffect=false when a call got part of the
// way (a volume created but not filled): running it removes the remains.
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
	conn *conn
	// remoteFiles makes the provider treat a local host's files as out
	// of reach (tests: the paths a remote host takes).
	remoteFiles bool
	// allowOvercommit lets preflight accept volumes whose full sizes
	// exceed their pool's free space (provider attribute
	// allow_overcommit).
	allowOvercommit bool
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
	settle    func(*Provider, context.Context, providers.SettleRequest) (providers.SettleResponse, error)
	imp       func(*Provider, context.Context, providers.ImportRequest) (providers.ImportResponse, error)
}

// Resource type names.
const (
	TypePool      = "libvirt_pool"
	TypeVolume    = "libvirt_volume"
	TypeNetwork   = "libvirt_network"
	TypeDomain    = "libvirt_domain"
	TypeCloudInit = "libvirt_cloudinit_disk"
	TypeIgnition  = "libvirt_ignition"
)

var resourceTypes = map[string]resourceType{
	TypePool: {
		schema:    poolSchema,
		preflight: (*preflight).pool,
		create:    (*Provider).createPoolAs,
		update:    (*Provider).updatePoolKeepingDirs,
		retire:    (*Provider).retirePool,
		purge:     (*Provider).purgePool,
		read:      (*Provider).readPoolKeepingDirs,
		settle:    (*Provider).settlePool,
		imp:       (*Provider).importPool,
	},
	TypeVolume: {
		schema:    volumeSchema,
		preflight: (*preflight).volume,
		create:    (*Provider).createVolume,
		update:    (*Provider).updateVolume,
		retire:    (*Provider).retireVolume,
		purge:     (*Provider).purgeVolume,
		read:      (*Provider).readVolume,
		settle:    (*Provider).settleVolume,
		imp:       (*Provider).importVolume,
	},
	TypeNetwork: {
		schema:    networkSchema,
		preflight: (*preflight).network,
		create:    (*Provider).createNetwork,
		update:    (*Provider).updateNetwork,
		retire:    (*Provider).retireNetwork,
		purge:     (*Provider).purgeNetwork,
		read:      (*Provider).readNetwork,
		settle:    (*Provider).settleNetwork,
		imp:       (*Provider).importNetwork,
	},
	TypeDomain: {
		schema:    domainSchema,
		preflight: (*preflight).domain,
		create:    (*Provider).createDomain,
		update:    (*Provider).updateDomain,
		retire:    (*Provider).retireDomain,
		purge:     (*Provider).purgeDomain,
		read:      (*Provider).readDomain,
		settle:    (*Provider).settleDomain,
		imp:       (*Provider).importDomain,
	},
	TypeCloudInit: contentVolumeType(cloudInitSchema, (*preflight).cloudInit, cloudInitVolume),
	TypeIgnition:  contentVolumeType(ignitionSchema, (*preflight).ignition, ignitionVolume),
}

// dataSource binds a data source's schema to its read.
type dataSource struct {
	schema providers.ResourceSchema
	read   func(*Provider, context.Context, providers.ReadDataRequest) (providers.ReadDataResponse, error)
}

var dataSources = map[string]dataSource{
	TypePool:    {schema: dataSchema(poolSchema, "name"), read: (*Provider).readPoolData},
	TypeVolume:  {schema: dataSchema(volumeSchema, "name", "pool"), read: (*Provider).readVolumeData},
	TypeNetwork: {schema: dataSchema(networkSchema, "name"), read: (*Provider).readNetworkData},
}

// dataSchema derives a data source's schema from its resource's: the
// lookup keys are required, everything else is read.
func dataSchema(rs providers.ResourceSchema, keys ...string) providers.ResourceSchema {
	out := providers.ResourceSchema{Attributes: map[string]providers.Attribute{}}
	for name, a := range rs.Attributes {
		out.Attributes[name] = providers.Attribute{Type: a.Type.WithoutOptionalAttributesDeep(), Computed: true,
			Sensitive: a.Sensitive, Description: a.Description}
	}
	for _, k := range keys {
		a := out.Attributes[k]
		a.Computed, a.Required = false, true
		out.Attributes[k] = a
	}
	return out
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
			"allow_overcommit": {Type: cty.Bool, Optional: true, Default: cty.False,
				Description: "Thin provisioning: let a plan create volumes whose full sizes exceed their pool's free space (sparse volumes take space only as they are written; the pool can then fill up later). Off by default: preflight refuses such a plan."},
		},
		Resources:   make(map[string]providers.ResourceSchema, len(resourceTypes)),
		DataSources: make(map[string]providers.ResourceSchema, len(dataSources)),
	}
	for name, rt := range resourceTypes {
		s.Resources[name] = rt.schema
	}
	for name, ds := range dataSources {
		s.DataSources[name] = ds.schema
	}
	return s
}

// Configure reads the provider block (attribute uri, default
// qemu:///system; qemu+tcp://host/system and the other go-libvirt transports
// work too) and connects.
func (p *Provider) Configure(ctx context.Context, req providers.ConfigureRequest) (providers.ConfigureResponse, error) {
	return providers.ConfigureResponse{}, p.configure(ctx, req)
}

// configure does the work of Configure.
func (p *Provider) configure(ctx context.Context, req providers.ConfigureRequest) error {
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
	overcommit, known, err := boolAttr(req.Config, "allow_overcommit", false)
	if err != nil || !known {
		return fmt.Errorf("configure libvirt provider: allow_overcommit must be a known bool (%v)", err)
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
	p.conn, p.allowOvercommit = c, overcommit
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
func (p *Provider) Purge(ctx context.Context, req providers.PurgeRequest) (providers.PurgeResponse, error) {
	return providers.PurgeResponse{}, p.purge(ctx, req)
}

// purge does the work of Purge.
func (p *Provider) purge(ctx context.Context, req providers.PurgeRequest) error {
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

// Settle decides, read-only, what became of a Create, Update or Retire
// whose outcome is unknown.
func (p *Provider) Settle(ctx context.Context, req providers.SettleRequest) (providers.SettleResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.SettleResponse{}, err
	}
	return rt.settle(p, ctx, req)
}

// Import adopts an existing object: pools, networks and domains by UUID or
// name; volumes and cloud-init disks by key, path or "pool/name".
func (p *Provider) Import(ctx context.Context, req providers.ImportRequest) (providers.ImportResponse, error) {
	rt, err := lookupType(req.Type)
	if err != nil {
		return providers.ImportResponse{}, err
	}
	return rt.imp(p, ctx, req)
}

// ReadData evaluates a data source: libvirt_pool and libvirt_network by
// name, libvirt_volume by pool and name.
func (p *Provider) ReadData(ctx context.Context, req providers.ReadDataRequest) (providers.ReadDataResponse, error) {
	ds, ok := dataSources[req.Type]
	if !ok {
		return providers.ReadDataResponse{}, fmt.Errorf("read data %s: libvirt has no data source %q", req.Address, req.Type)
	}
	return ds.read(p, ctx, req)
}
