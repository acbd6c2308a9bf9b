package libvirt

import (
	"context"
	"encoding/json"
	"fmt"

	"fiat/providers"
)

// Undo operations.
const (
	undoNone         = "none"          // nothing to reverse
	undoCreatePool   = "create-pool"   // destroy, delete the dir if fiat built it, undefine
	undoRetirePool   = "retire-pool"   // start again, restore autostart
	undoCreateVolume = "create-volume" // delete the volume
	undoResizeVolume = "resize-volume" // resize back to From
	undoRetireVolume = "retire-volume" // nothing: retire kept the volume as is
)

// undoRecord is the Undo of one Create, Update or Retire. The executor
// journals it and another process may replay it after a crash, so it is
// self-contained: the operation, the object's identity (UUID, pool and
// volume names, key) and what the reversal needs. Every undo is idempotent.
type undoRecord struct {
	V  int    `json:"v"`
	Op string `json:"op"`

	UUID      string `json:"uuid,omitempty"` // pool
	Pool      string `json:"pool,omitempty"` // pool name (pool and volume undos)
	Path      string `json:"path,omitempty"` // pool target directory
	Built     bool   `json:"built,omitempty"`
	WasActive bool   `json:"was_active,omitempty"`
	Autostart bool   `json:"autostart,omitempty"`

	Volume string `json:"volume,omitempty"` // volume name
	Key    string `json:"key,omitempty"`    // volume key
	From   uint64 `json:"from,omitempty"`   // capacity before a resize
	To     uint64 `json:"to,omitempty"`     // capacity after a resize
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

// Undo reverses one earlier Create, Update or Retire from its Undo bytes.
func (p *Provider) Undo(ctx context.Context, req providers.UndoRequest) error {
	u, err := decodeUndo(req.Undo)
	if err != nil {
		return fmt.Errorf("undo %s: %w", req.Address, err)
	}
	switch u.Op {
	case undoNone, undoRetireVolume:
		return nil
	case undoCreatePool:
		return p.undoCreatePool(ctx, u)
	case undoRetirePool:
		return p.undoRetirePool(ctx, u)
	case undoCreateVolume:
		return p.undoCreateVolume(ctx, u)
	case undoResizeVolume:
		return p.undoResizeVolume(ctx, u)
	}
	return fmt.Errorf("undo %s: unknown operation %q", req.Address, u.Op)
}
