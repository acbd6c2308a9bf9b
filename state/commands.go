package state

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A command is the payload of one raft log entry: one kind byte, then JSON.
// Commands carry everything the FSM needs to be deterministic, including the
// caller's clock (At), against which lock leases are checked: the FSM never
// reads the time itself, so replaying a log gives the same answers.
type cmdKind byte

const (
	cmdLock cmdKind = iota + 1
	cmdRenew
	cmdUnlock
	cmdForceUnlock
	cmdStage
	cmdCommit
	cmdBeginTx
	cmdAppend
	cmdEndTx
	cmdInit
	cmdMember
	cmdDoc
)

func (k cmdKind) String() string {
	switch k {
	case cmdLock:
		return "lock"
	case cmdRenew:
		return "renew"
	case cmdUnlock:
		return "unlock"
	case cmdForceUnlock:
		return "force-unlock"
	case cmdStage:
		return "stage"
	case cmdCommit:
		return "commit"
	case cmdBeginTx:
		return "begin-tx"
	case cmdAppend:
		return "append-journal"
	case cmdEndTx:
		return "end-tx"
	case cmdInit:
		return "init"
	case cmdMember:
		return "member"
	case cmdDoc:
		return "doc"
	}
	return fmt.Sprintf("command(%d)", byte(k))
}

// Raft entries must stay well under 512 KiB. chunkTarget is the size a
// client aims for when it splits a commit or a journal append;
// maxEntryBytes is the hard limit the apply path enforces on every entry.
// MaxEntityBytes is the most one entity's encoded attributes may take:
// it must fit one raft entry with room to spare. Plans refuse a resource
// whose attributes exceed it before anything is created.
const MaxEntityBytes = 256<<10 - 8<<10 // a chunk, less room for the address and framing

const (
	chunkTarget    = 256 << 10
	maxEntryBytes  = 400 << 10
	maxEntityBytes = MaxEntityBytes
)

type lockCmd struct {
	ID     string `json:"id"`
	Stack  string `json:"stack"`
	Holder string `json:"holder"`
	TTL    int64  `json:"ttl"` // nanoseconds
	At     int64  `json:"at"`  // unix nanoseconds, caller's clock
}

type renewCmd struct {
	Lock Lock  `json:"lock"`
	TTL  int64 `json:"ttl"`
	At   int64 `json:"at"`
}

type unlockCmd struct {
	Lock Lock  `json:"lock"`
	At   int64 `json:"at"`
}

type forceUnlockCmd struct {
	LockID string `json:"lock_id"`
	At     int64  `json:"at"`
}

// stageCmd carries one chunk (its payload) of a commit too big for one entry.
type stageCmd struct {
	Lock     Lock   `json:"lock"`
	At       int64  `json:"at"`
	CommitID string `json:"commit_id"`
	Seq      int    `json:"seq"`
	chunk    []byte
}

type commitCmd struct {
	Lock     Lock   `json:"lock"`
	At       int64  `json:"at"`
	CommitID string `json:"commit_id"`
	Stack    string `json:"stack"`
	TxID     string `json:"tx_id,omitempty"`
	Meta     Meta   `json:"meta"`
	Staged   int    `json:"staged"` // number of chunks staged before
	inline   []byte // payload: the only chunk, when Staged == 0
}

type beginTxCmd struct {
	Lock Lock  `json:"lock"`
	At   int64 `json:"at"`
	Tx   Tx    `json:"tx"`
}

type appendCmd struct {
	Lock    Lock              `json:"lock"`
	At      int64             `json:"at"`
	TxID    string            `json:"tx_id"`
	Records []json.RawMessage `json:"records"`
}

type endTxCmd struct {
	Lock Lock   `json:"lock"`
	At   int64  `json:"at"`
	TxID string `json:"tx_id"`
}

// payloader is a command with a binary payload after its JSON header.
// Chunks travel as payload so the FSM never parses entity JSON.
type payloader interface {
	payload() []byte
	setPayload([]byte)
}

func (c *stageCmd) payload() []byte      { return c.chunk }
func (c *stageCmd) setPayload(b []byte)  { c.chunk = b }
func (c *commitCmd) payload() []byte     { return c.inline }
func (c *commitCmd) setPayload(b []byte) { c.inline = b }

// encodeCmd lays out an entry as: kind byte, uvarint length of the JSON
// header, the header, then the payload if the command has one.
func encodeCmd(kind cmdKind, v any) ([]byte, error) {
	h, err := json.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("encode %s command: %w", kind, err)
	}
	var payload []byte
	if p, ok := v.(payloader); ok {
		payload = p.payload()
	}
	b := make([]byte, 0, 1+binary.MaxVarintLen64+len(h)+len(payload))
	b = append(b, byte(kind))
	b = binary.AppendUvarint(b, uint64(len(h)))
	b = append(b, h...)
	return append(b, payload...), nil
}

// decodeCmd is the inverse of encodeCmd for the command after the kind byte.
func decodeCmd(body []byte, v any) error {
	n, w := binary.Uvarint(body)
	if w <= 0 || uint64(len(body)-w) < n {
		return errors.New("bad command header length")
	}
	if err := json.Unmarshal(body[w:w+int(n)], v); err != nil {
		return err
	}
	if p, ok := v.(payloader); ok {
		p.setPayload(body[w+int(n):])
	}
	return nil
}

// result is what FSM.Apply returns for a command; raft hands it back through
// ApplyFuture.Response. Err is a refusal (stale, fenced, locked, not found):
// the entry was consumed and changed nothing except cleanup.
type result struct {
	Revision uint64
	Lock     Lock
	Err      error
}

func unixNano(t time.Time) int64 { return t.UnixNano() }

func fromUnixNano(ns int64) time.Time { return time.Unix(0, ns).UTC() }
