package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Entity is one object fiat manages, addressed "<stack>/<type>.<name>[<key>]".
type Entity struct {
	Address  string `json:"address"`
	Stack    string `json:"stack"`
	Type     string `json:"type"`
	Name     string `json:"name"`
	Provider string `json:"provider"` // provider config address: "libvirt", "libvirt.host2"
	ID       string `json:"id"`       // the provider's identity (libvirt UUID, volume key)
	// Attributes is the full state as a go-cty SimpleJSONValue (type and
	// value), so the store stays ignorant of schemas.
	Attributes   json.RawMessage `json:"attributes"`
	Dependencies []string        `json:"dependencies,omitempty"` // addresses
	Revision     uint64          `json:"revision"`               // revision at which it last changed
	Status       Status          `json:"status"`
	Reason       string          `json:"reason,omitempty"` // why it needs attention
	Source       string          `json:"source,omitempty"` // file:line of its block when last applied
	// Sensitive names attributes whose values are sensitive (from the
	// provider's schema or derived from sensitive variables): never shown.
	Sensitive []string `json:"sensitive,omitempty"`
	// Attention, on a needs-attention entity, holds the rollback steps
	// that failed; `fiat recover` retries them.
	Attention *Attention `json:"attention,omitempty"`
}

// Attention records the undos that failed while rolling back one entity's
// object (a replacement has two: its new half and its old half).
type Attention struct {
	TxID  string        `json:"tx_id"`
	Time  time.Time     `json:"time"`
	Undos []PendingUndo `json:"undos"` // in the order they must run
	// Untracked: the store had no entity for the object before; this one
	// was added so the object is not lost track of, and goes once undone.
	Untracked bool `json:"untracked,omitempty"`
}

// PendingUndo is one failed undo, kept to retry.
type PendingUndo struct {
	Operation string          `json:"operation"` // the operation it reverses: create, update, retire
	Error     string          `json:"error"`     // the provider's message
	Undo      json.RawMessage `json:"undo"`      // the provider's undo
}

// Status of an entity.
type Status string

const (
	StatusOK             Status = "ok"
	StatusNeedsAttention Status = "needs-attention"
)

// Meta says who/what/why for one revision.
type Meta struct {
	PlanID    string    `json:"plan_id,omitempty"`
	Actor     string    `json:"actor,omitempty"`
	Command   string    `json:"command,omitempty"` // "apply", "destroy", ...
	GitCommit string    `json:"git_commit,omitempty"`
	Time      time.Time `json:"time"`
}

// Commit is everything one apply changes, made visible at once.
type Commit struct {
	Stack string `json:"stack"`
	TxID  string `json:"tx_id,omitempty"`
	// Expect maps each address the plan read to the revision it read
	// (0 = it did not exist). If any differs now the commit fails with a
	// *StaleError and nothing changes.
	Expect map[string]uint64 `json:"expect,omitempty"`
	Put    []Entity          `json:"put,omitempty"`
	Delete []string          `json:"delete,omitempty"`
	Meta   Meta              `json:"meta"`
}

// Change is one entity's change in a revision.
type Change struct {
	Address string `json:"address"`
	Action  string `json:"action"` // "create", "update", "delete"
}

// Revision is one entry of history.
type Revision struct {
	Revision uint64   `json:"revision"`
	Stack    string   `json:"stack"`
	Meta     Meta     `json:"meta"`
	Changes  []Change `json:"changes"`
}

// ErrNotFound is returned for an address the store does not hold.
var ErrNotFound = errors.New("not found")

// StaleError says which entities changed since a plan read them.
type StaleError struct {
	Entities []StaleEntity
}

// StaleEntity is one entity that changed since it was read.
type StaleEntity struct {
	Address string
	Read    uint64 // revision the plan read (0: absent)
	Now     uint64 // revision now (0: absent)
}

func (e *StaleError) Error() string {
	parts := make([]string, len(e.Entities))
	for i, s := range e.Entities {
		parts[i] = fmt.Sprintf("%s changed since the plan read it (read at revision %d, now at revision %d)", s.Address, s.Read, s.Now)
	}
	return "stale plan: " + strings.Join(parts, "; ")
}
