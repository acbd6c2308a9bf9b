// Package state is fiat's strictly consistent entity store.
//
// A Store is a hashicorp/raft node whose state machine (fsm.go) is a Badger
// database on disk. Open starts the embedded form: one voter in a data
// directory, with an in-memory transport (raft.go). Everything that changes
// state is a raft command (commands.go), applied deterministically: the
// caller's clock travels in the command, and replaying the log after a
// restart skips entries whose effect is already on disk.
//
// Files, one concept each:
//
//	store.go     Open/Close, reads, the path every write takes through raft
//	commit.go    Commit: chunking, staging, stale checks, phased apply
//	chunk.go     the binary chunk format and entity values
//	lock.go      stack locks: leases with fencing tokens
//	journal.go   apply transactions and their journals
//	snapshot.go  raft snapshots of the FSM and their restore
//	keys.go      the Badger key layout
//	dirlock.go   one process per data directory
package state
