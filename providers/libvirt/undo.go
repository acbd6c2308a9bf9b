package libvirt

import (
	"context"
	"encoding/json"
	"fmt"

	"fiat/providers"
)

// Undo operations.
const (
	undoNone          = "none"           // nothing to reverse
	undoCreatePool    = "create-pool"    // destroy, undefine, remove the directories the create built (if empty)
	undoUpdatePool    = "update-pool"    // running and autostart as before; remove the dir the update built
	undoRetirePool    = "retire-pool"    // define again from XML, start, restore autostart
	undoCreateVolume  = "create-volume"  // delete the volume (under its temporary name, or its own when it is the create's)
	undoResizeVolume  = "resize-volume"  // resize back to From
	undoRetireVolume  = "retire-volume"  // rename the volume back from Retired to Volume
	undoCreateNetwork = "create-network" // destroy, undefine
	undoUpdateNetwork = "update-network" // define XML again, put the live config back, autostart
	undoRetireNetwork = "retire-network" // define again from XML, start, restore autostart
	undoCreateDomain  = "create-domain"  // destroy, undefine
	undoUpdateDomain  = "update-domain"  // define XML again (same UUID), running and autostart as before
	undoRetireDomain  = "retire-domain"  // rename back from Retired, autostart, start if it ran
)

// undoRecord is the Undo of one Create, Update or Retire. The executor
// journals it and another process may replay it after a crash, so it is
// self-contained: the operation, the object's identity (UUID, names, key)
// and what the reversal needs (e.g. the previous XML). Every undo is
// idempotent. Fields are added, never renamed: journals outlive releases.
type undoRecord struct {
	V  int    `json:"v"`
	Op string `json:"op"`

	UUID      string `json:"uuid,omitempty"`       // pool, network, domain
	Pool      string `json:"pool,omitempty"`       // pool name (pool and volume undos)
	Path      string `json:"path,omitempty"`       // pool target directory (pool undos); the volume's directory (volume undos)
	Built     bool   `json:"built,omitempty"`      // the create built Path (all that records from before Dirs say)
	WasActive bool   `json:"was_active,omitempty"` // pool, network, domain was running
	// WasStopped says a network update found the network stopped. With
	// neither it nor WasActive set, the update recorded no run state (an
	// older fiat's, which never started or stopped one): leave it.
	WasStopped bool `json:"was_stopped,omitempty"`
	Autostart  bool `json:"autostart,omitempty"`
	// Dirs are the directories a pool's create built, deepest first:
	// Path, and the missing parents fiat made on a local host. Only these
	// are ever removed again, each only when it is empty.
	Dirs []string `json:"dirs,omitempty"`

	Volume  string `json:"volume,omitempty"`  // volume name
	Key     string `json:"key,omitempty"`     // volume key (of a local create's volume: only when it could not be marked)
	From    uint64 `json:"from,omitempty"`    // capacity before a resize
	To      uint64 `json:"to,omitempty"`      // capacity after a resize
	Retired string `json:"retired,omitempty"` // the name a retire gave a volume or domain
	Temp    string `json:"temp,omitempty"`    // the name a volume is created under before it gets its own (local hosts)
	Mark    string `json:"mark,omitempty"`    // the mark the create put on the volume's file (see mark.go)

	Name string `json:"name,omitempty"` // network or domain name
	XML  string `json:"xml,omitempty"`  // the definition to restore (inactive XML)
}

const undoVersion = 1

func (u undoRecord) encode() json.RawMessage {
	u.V = undoVersion
	b, err := json.Marshal(u)
	if err != nil {
		panic(fmt.Sprintf("libvirt: marshal undo: %v", err)) // plain struct: cannot fail
	}
	return b
}

func decodeUndo(raw json.RawMessage) (undoRecord, error) {
	var u undoRecord
	if len(raw) == 0 {
		return u, fmt.Errorf("decode undo: empty")
	}
	if err := json.Unmarshal(raw, &u); err != nil {
		return u, fmt.Errorf("decode undo: %w", err)
	}
	if u.V != undoVersion {
		return u, fmt.Errorf("decode undo: version %d, want %d", u.V, undoVersion)
	}
	return u, nil
}

var noUndo = undoRecord{Op: undoNone}.encode()

// Undo reverses one earlier Create, Update or Retire from its Undo bytes.
func (p *Provider) Undo(ctx context.Context, req providers.UndoRequest) (providers.UndoResponse, error) {
	return providers.UndoResponse{}, p.undo(ctx, req)
}

// undo does the work of Undo.
func (p *Provider) undo(ctx context.Context, req providers.UndoRequest) error {
	u, err := decodeUndo(req.Undo)
	if err != nil {
		return fmt.Errorf("undo %s: %w", req.Address, err)
	}
	fn, ok := map[string]func(*Provider, context.Context, undoRecord) error{
		undoNone:          func(*Provider, context.Context, undoRecord) error { return nil },
		undoCreatePool:    (*Provider).undoCreatePool,
		undoUpdatePool:    (*Provider).undoUpdatePool,
		undoRetirePool:    (*Provider).undoRetirePool,
		undoCreateVolume:  (*Provider).undoCreateVolume,
		undoResizeVolume:  (*Provider).undoResizeVolume,
		undoRetireVolume:  (*Provider).undoRetireVolume,
		undoCreateNetwork: (*Provider).undoCreateNetwork,
		undoUpdateNetwork: (*Provider).undoUpdateNetwork,
		undoRetireNetwork: (*Provider).undoRetireNetwork,
		undoCreateDomain:  (*Provider).undoCreateDomain,
		undoUpdateDomain:  (*Provider).undoUpdateDomain,
		undoRetireDomain:  (*Provider).undoRetireDomain,
	}[u.Op]
	if !ok {
		return fmt.Errorf("undo %s: unknown operation %q", req.Address, u.Op)
	}
	return fn(p, ctx, u)
}
