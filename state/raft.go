package state

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
	raftboltdb "github.com/hashicorp/raft-boltdb/v2"
	"go.etcd.io/bbolt"
)

// The embedded store is a one-voter raft cluster talking to nobody: an
// in-memory transport with a fixed address. The cluster mode will swap the
// transport and the configuration; the FSM does not change.
const (
	embeddedID   raft.ServerID      = "embedded"
	embeddedAddr raft.ServerAddress = "embedded"
)

const (
	// A snapshot lets the log be truncated; with the embedded node living
	// for one command, Close also snapshots once the log since the last
	// snapshot is this long, so start-up replay stays short.
	snapshotThreshold = 512
	trailingLogs      = 128
	snapshotsRetained = 2
)

// node is the raft half of a Store.
type node struct {
	raft  *raft.Raft
	trans raft.Transport
	logs  *raftboltdb.BoltStore
	snaps *raft.FileSnapshotStore
	// stream is the cluster's network (nil embedded); tests partition it.
	stream *streamLayer
}

func raftConfig(logger hclog.Logger) *raft.Config {
	conf := raft.DefaultConfig()
	conf.LocalID = embeddedID
	conf.Logger = logger
	// One voter elects itself as soon as its heartbeat timeout fires; short
	// timeouts make Open fast. Lease checks against a quorum of one never fail.
	conf.HeartbeatTimeout = 5 * time.Millisecond
	conf.ElectionTimeout = 5 * time.Millisecond
	conf.LeaderLeaseTimeout = 5 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
	conf.SnapshotThreshold = snapshotThreshold
	conf.SnapshotInterval = 30 * time.Second
	conf.TrailingLogs = trailingLogs
	// Commands submitted back to back (a commit's stage entries, parallel
	// journal appends) reach the disk in one batch.
	conf.BatchApplyCh = true
	return conf
}

// clusterConfig tunes raft for a cluster on a LAN: a leader that stops
// hearing from a quorum steps down within LeaderLeaseTimeout, and a
// follower that stops hearing from the leader calls an election within
// one to two HeartbeatTimeouts, so failover takes about a second.
func clusterConfig(conf *raft.Config, c *Cluster) {
	conf.LocalID = raft.ServerID(c.ID)
	conf.HeartbeatTimeout = 400 * time.Millisecond
	conf.ElectionTimeout = 400 * time.Millisecond
	conf.LeaderLeaseTimeout = 300 * time.Millisecond
	conf.CommitTimeout = 5 * time.Millisecond
}

func openNode(ctx context.Context, dir string, f *fsm, logger hclog.Logger, c *Cluster, notify chan bool) (*node, error) {
	n := &node{}
	if c != nil {
		if err := checkName("node id", c.ID); err != nil {
			return nil, err
		}
	}
	if err := n.open(ctx, dir, f, logger, c, notify); err != nil {
		n.close(false)
		return nil, err
	}
	return n, nil
}

func (n *node) open(ctx context.Context, dir string, f *fsm, logger hclog.Logger, c *Cluster, notify chan bool) (err error) {
	n.logs, err = raftboltdb.New(raftboltdb.Options{
		Path:        filepath.Join(dir, "raft.db"),
		BoltOptions: &bbolt.Options{Timeout: time.Second},
	})
	if err != nil {
		return fmt.Errorf("open raft log: %w", err)
	}
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, logger)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	if err := checkLogCoversFSM(f, n.logs, n.snaps); err != nil {
		return err
	}
	conf := raftConfig(logger)
	conf.NoSnapshotRestoreOnStart, err = fsmCurrent(f, n.logs, n.snaps)
	if err != nil {
		return err
	}
	if c != nil {
		stream, err := newStreamLayer(c.RaftAddr, c.TLS)
		if err != nil {
			return err
		}
		n.stream = stream
		n.trans = raft.NewNetworkTransportWithConfig(&raft.NetworkTransportConfig{
			Stream: stream, MaxPool: 3, Timeout: 10 * time.Second, Logger: logger})
		clusterConfig(conf, c)
		conf.NotifyCh = notify
		if n.raft, err = raft.NewRaft(conf, f, n.logs, n.logs, n.snaps, n.trans); err != nil {
			return fmt.Errorf("start raft: %w", err)
		}
		return nil // bootstrap and joining are the server's
	}
	_, n.trans = raft.NewInmemTransport(embeddedAddr)
	has, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if !has {
		boot := raft.Configuration{Servers: []raft.Server{{ID: embeddedID, Address: embeddedAddr}}}
		if err := raft.BootstrapCluster(conf, n.logs, n.logs, n.snaps, n.trans, boot); err != nil {
			return fmt.Errorf("bootstrap raft: %w", err)
		}
	}
	n.raft, err = raft.NewRaft(conf, f, n.logs, n.logs, n.snaps, n.trans)
	if err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	if err := n.waitLeader(ctx); err != nil {
		return err
	}
	// The barrier returns once every committed entry, including those
	// replayed at start-up, is applied: from here the FSM is current.
	if err := n.raft.Barrier(0).Error(); err != nil {
		return fmt.Errorf("wait for raft replay: %w", err)
	}
	return nil
}

// fsmCurrent reports whether the FSM on disk already holds everything the
// latest snapshot does, so raft need not restore it at start (a full reload
// of the database). Badger does not sync every write, so after an OS crash
// it may be behind; then the snapshot is restored and the log replayed.
// Entries the FSM never sees (no-ops, configuration) may sit between its
// applied index and the snapshot's: those do not make it stale.
func fsmCurrent(f *fsm, logs raft.LogStore, snaps raft.SnapshotStore) (bool, error) {
	list, err := snaps.List()
	if err != nil {
		return false, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) == 0 {
		return true, nil
	}
	for i := f.appliedIndex() + 1; i <= list[0].Index; i++ {
		var l raft.Log
		if err := logs.GetLog(i, &l); err != nil {
			return false, nil // compacted away: only the snapshot has it
		}
		if l.Type == raft.LogCommand {
			return false, nil
		}
	}
	return true, nil
}

// checkLogCoversFSM refuses a directory whose raft log (and snapshots) end
// before the FSM's applied index, e.g. raft.db deleted by hand: a new log
// would start at index 1 and the FSM would skip its entries as replays.
func checkLogCoversFSM(f *fsm, logs raft.LogStore, snaps raft.SnapshotStore) error {
	last, err := logs.LastIndex()
	if err != nil {
		return fmt.Errorf("read raft log: %w", err)
	}
	if list, err := snaps.List(); err == nil && len(list) > 0 {
		last = max(last, list[0].Index)
	}
	if applied := f.appliedIndex(); applied > last {
		return fmt.Errorf("the raft log ends at index %d but the state machine has applied index %d: the raft log (raft.db) is missing or older than the state (fsm/)", last, applied)
	}
	return nil
}

func (n *node) waitLeader(ctx context.Context) error {
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for n.raft.State() != raft.Leader {
		select {
		case <-n.raft.LeaderCh():
		case <-tick.C:
		case <-ctx.Done():
			return fmt.Errorf("wait for raft leadership: %w", ctx.Err())
		case <-deadline.C:
			return errors.New("wait for raft leadership: no leader after 10s")
		}
	}
	return nil
}

// compact snapshots if the log has grown past snapshotThreshold since the
// last snapshot; raft then truncates the log.
func (n *node) compact() error {
	var last uint64
	if list, err := n.snaps.List(); err == nil && len(list) > 0 {
		last = list[0].Index
	}
	if n.raft.AppliedIndex()-last < snapshotThreshold {
		return nil
	}
	if err := n.raft.Snapshot().Error(); err != nil && !errors.Is(err, raft.ErrNothingNewToSnapshot) {
		return fmt.Errorf("snapshot: %w", err)
	}
	return nil
}

// close shuts raft down and closes what openNode opened, after compacting
// the log if asked to; it keeps the first error.
func (n *node) close(compact bool) error {
	var errs []error
	if n.raft != nil && compact {
		errs = append(errs, n.compact())
	}
	if n.raft != nil {
		errs = append(errs, n.raft.Shutdown().Error())
	}
	if c, ok := n.trans.(interface{ Close() error }); ok {
		errs = append(errs, c.Close())
	}
	if n.logs != nil {
		errs = append(errs, n.logs.Close())
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// ensureDir creates dir (and parents) private to the user.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}
