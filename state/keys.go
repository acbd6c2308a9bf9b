package state

import (
	"encoding/binary"
	"fmt"
)

// Badger key layout. Every key starts with its kind so one prefix scan
// reads one kind, and the order of keys within a kind is the order
// callers want (addresses sorted, revisions and journal records ascending:
// numbers are zero-padded to 20 digits).
const (
	prefixEntity  = "e/"  // e/<address> -> Entity JSON
	prefixHistory = "h/"  // h/<rev> -> historyHeader JSON
	prefixChanges = "hc/" // hc/<rev>/<n> -> []Change JSON, one chunk of a revision's changes
	prefixTx      = "tx/" // tx/<id> -> txRecord JSON
	prefixJournal = "j/"  // j/<txid>/<seq> -> opaque JSON record
	prefixLock    = "l/"  // l/<stack> -> lockRecord JSON
	prefixStage   = "s/"  // s/<lockid>/<commitid>/<seq> -> staged chunk JSON
	prefixMember  = "n/"  // n/<node id> -> Member JSON
	prefixDoc     = "d/"  // d/<collection>/<id> -> an opaque document (docs.go)

	keyRevision = "m/revision" // uint64: the store revision
	keyApplied  = "m/applied"  // uint64: last raft index whose effect is written
	keyPending  = "m/pending"  // pendingCommit JSON while a big commit is half applied
	keyIdentity = "m/identity" // Identity JSON, written once
)

func entityKey(address string) []byte { return []byte(prefixEntity + address) }

func entityPrefix(stack string) []byte {
	if stack == "" {
		return []byte(prefixEntity)
	}
	return []byte(prefixEntity + stack + "/")
}

func historyKey(rev uint64) []byte { return fmt.Appendf(nil, "%s%020d", prefixHistory, rev) }

func changesPrefix(rev uint64) []byte { return fmt.Appendf(nil, "%s%020d/", prefixChanges, rev) }

func changesKey(rev uint64, n int) []byte { return fmt.Appendf(changesPrefix(rev), "%06d", n) }

func txKey(id string) []byte { return []byte(prefixTx + id) }

func journalPrefix(txID string) []byte { return []byte(prefixJournal + txID + "/") }

func journalKey(txID string, seq uint64) []byte {
	return fmt.Appendf(journalPrefix(txID), "%020d", seq)
}

func lockKey(stack string) []byte { return []byte(prefixLock + stack) }

func stagePrefixLock(lockID string) []byte { return []byte(prefixStage + lockID + "/") }

func stagePrefix(lockID, commitID string) []byte {
	return []byte(prefixStage + lockID + "/" + commitID + "/")
}

func stageKey(lockID, commitID string, seq int) []byte {
	return fmt.Appendf(stagePrefix(lockID, commitID), "%020d", seq)
}

func encodeUint(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

func decodeUint(b []byte) (uint64, error) {
	if len(b) != 8 {
		return 0, fmt.Errorf("decode counter: %d bytes, want 8", len(b))
	}
	return binary.BigEndian.Uint64(b), nil
}
