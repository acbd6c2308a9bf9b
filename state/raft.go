package state

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/hashicorp/go-hclog"
	"github.com/hashicorp/raft"
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
	logs  *raftLog
	snaps *raft.FileSnapshotStore
	// stable is the embedded voter's term and vote (nil in a cluster).
	stable *voterStable
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

func openNode(ctx context.Context, dir string, awaitFSM func() (*fsm, error), logger hclog.Logger, c *Cluster, notify chan bool) (*node, error) {
	n := &node{}
	if c != nil {
		if err := checkName("node id", c.ID); err != nil {
			return nil, err
		}
	}
	defer func() {
		if r := recover(); r != nil { // shut raft down and close its files, then let guard report it
			n.close(false)
			panic(r)
		}
	}()
	if err := n.open(ctx, dir, awaitFSM, logger, c, notify); err != nil {
		n.close(false)
		return nil, err
	}
	return n, nil
}

func (n *node) open(ctx context.Context, dir string, awaitFSM func() (*fsm, error), logger hclog.Logger, c *Cluster, notify chan bool) (err error) {
	if n.logs, err = openLogStore(ctx, dir, logger, c != nil); err != nil {
		return err
	}
	n.snaps, err = raft.NewFileSnapshotStoreWithLogger(dir, snapshotsRetained, logger)
	if err != nil {
		return fmt.Errorf("open snapshot store: %w", err)
	}
	conf := raftConfig(logger)
	has, err := raft.HasExistingState(n.logs, n.logs, n.snaps)
	if err != nil {
		return fmt.Errorf("read raft state: %w", err)
	}
	if c == nil && has {
		return n.openEmbedded(ctx, conf, awaitFSM)
	}
	// A cluster node, or a new store: the FSM first, then raft.
	f, err := awaitFSM()
	if err != nil {
		return err
	}
	if conf.NoSnapshotRestoreOnStart, err = checkFSM(f, n.logs, n.snaps); err != nil {
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
	boot := raft.Configuration{Servers: []raft.Server{{ID: embeddedID, Address: embeddedAddr}}}
	if err := raft.BootstrapCluster(conf, n.logs, n.logs, n.snaps, n.trans, boot); err != nil {
		return fmt.Errorf("bootstrap raft: %w", err)
	}
	if n.raft, err = raft.NewRaft(conf, f, n.logs, n.logs, n.snaps, n.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	return n.waitCurrent(ctx, f)
}

// openEmbedded starts the embedded voter while Badger may still be opening:
// the election needs only raft's own files. Raft reaches the FSM through a
// gate that opens once Badger is open and checked against the log (and the
// latest snapshot restored into it by hand if it is behind); until then it
// neither applies entries nor appends to its log, so a store that fails the
// checks is left as it was, but for raft's term.
func (n *node) openEmbedded(ctx context.Context, conf *raft.Config, awaitFSM func() (*fsm, error)) (err error) {
	gate := &fsmGate{ready: make(chan struct{})}
	defer func() {
		if r := recover(); r != nil { // a storage library's panic: guard reports it
			gate.fail(fmt.Errorf("open state: %v", r))
			panic(r)
		}
		if err != nil {
			gate.fail(err) // raft's goroutines stop waiting, and Shutdown returns
		}
	}()
	conf.NoSnapshotRestoreOnStart = true // restored below, if it must be, once Badger is open
	_, n.trans = raft.NewInmemTransport(embeddedAddr)
	if n.stable, err = newVoterStable(n.logs, n.snaps); err != nil {
		return err
	}
	if n.raft, err = raft.NewRaft(conf, gate, gatedLogs{LogStore: n.logs, gate: gate}, n.stable, n.snaps, n.trans); err != nil {
		return fmt.Errorf("start raft: %w", err)
	}
	f, err := awaitFSM()
	if err != nil {
		return err
	}
	current, err := checkFSM(f, n.logs, n.snaps)
	if err != nil {
		return err
	}
	if !current {
		if err := restoreLatest(f, n.snaps); err != nil {
			return err
		}
	}
	gate.open(f)
	return n.waitCurrent(ctx, f)
}

// fsmGate is the FSM raft is given while the embedded store opens: each
// call waits until open or fail says what the FSM is.
type fsmGate struct {
	ready chan struct{}
	once  sync.Once
	f     *fsm
	err   error
}

func (g *fsmGate) open(f *fsm)    { g.once.Do(func() { g.f = f; close(g.ready) }) }
func (g *fsmGate) fail(err error) { g.once.Do(func() { g.err = err; close(g.ready) }) }

func (g *fsmGate) wait() (*fsm, error) {
	<-g.ready
	return g.f, g.err
}

func (g *fsmGate) Apply(l *raft.Log) any {
	f, err := g.wait()
	if err != nil {
		return err
	}
	return f.Apply(l)
}

func (g *fsmGate) Snapshot() (raft.FSMSnapshot, error) {
	f, err := g.wait()
	if err != nil {
		return nil, err
	}
	return f.Snapshot()
}

func (g *fsmGate) Restore(rc io.ReadCloser) error {
	f, err := g.wait()
	if err != nil {
		rc.Close()
		return err
	}
	return f.Restore(rc)
}

// gatedLogs holds back raft's log writes until the gate opens: a store
// whose FSM fails its checks gets no new entries.
type gatedLogs struct {
	raft.LogStore
	gate *fsmGate
}

func (l gatedLogs) StoreLog(log *raft.Log) error { return l.StoreLogs([]*raft.Log{log}) }

func (l gatedLogs) StoreLogs(logs []*raft.Log) error {
	if _, err := l.gate.wait(); err != nil {
		return err
	}
	return l.LogStore.StoreLogs(logs)
}

func (l gatedLogs) DeleteRange(min, max uint64) error {
	if _, err := l.gate.wait(); err != nil {
		return err
	}
	return l.LogStore.DeleteRange(min, max)
}

// IsMonotonic passes on raft-wal's: it takes no gap between indexes, so
// after a restore raft must drop the whole log instead of leaving one.
func (l gatedLogs) IsMonotonic() bool {
	m, ok := l.LogStore.(raft.MonotonicLogStore)
	return ok && m.IsMonotonic()
}

// checkFSM checks the FSM against raft's files and says whether it holds
// everything the latest snapshot does (else that must be restored into it).
func checkFSM(f *fsm, logs raft.LogStore, snaps raft.SnapshotStore) (current bool, err error) {
	if err := checkLogCoversFSM(f, logs, snaps); err != nil {
		return false, err
	}
	return fsmCurrent(f, logs, snaps)
}

// restoreLatest does what raft does at start when NoSnapshotRestoreOnStart
// is false: loads the latest snapshot into the FSM.
func restoreLatest(f *fsm, snaps raft.SnapshotStore) error {
	list, err := snaps.List()
	if err != nil || len(list) == 0 {
		return fmt.Errorf("list snapshots: %v (%d found)", err, len(list))
	}
	_, rc, err := snaps.Open(list[0].ID)
	if err != nil {
		return fmt.Errorf("open snapshot %s: %w", list[0].ID, err)
	}
	if err := f.Restore(rc); err != nil {
		return fmt.Errorf("restore snapshot %s: %w", list[0].ID, err)
	}
	return nil
}

// waitCurrent waits until this node leads and the FSM has been handed
// every committed entry, including those replayed at start-up: from then
// on it is current. A leader commits nothing of earlier terms before the
// first entry of its own, so once it leads, raft hands the FSM every
// command in its log after the latest snapshot (which the FSM holds).
// Raft's own applied index will not do: it moves when an entry is passed
// to the FSM's goroutine, before the FSM has applied it. Waiting for the
// FSM spares the disk write of a barrier.
func (n *node) waitCurrent(ctx context.Context, f *fsm) error {
	if err := n.waitLeader(ctx); err != nil {
		return err
	}
	var floor uint64
	if list, err := n.snaps.List(); err == nil && len(list) > 0 {
		floor = list[0].Index
	}
	target, err := lastCommand(n.logs, n.raft.LastIndex(), floor)
	if err != nil {
		return fmt.Errorf("wait for raft replay: %w", err)
	}
	for {
		seen, failed := f.progress()
		switch {
		case failed != nil:
			return fmt.Errorf("wait for raft replay: %w", failed)
		case seen >= target:
			return nil
		case n.raft.State() != raft.Leader:
			return errors.New("wait for raft replay: lost leadership")
		case ctx.Err() != nil:
			return fmt.Errorf("wait for raft replay: %w", ctx.Err())
		}
		time.Sleep(100 * time.Microsecond)
	}
}

// lastCommand is the index of the last command (what the FSM applies, not
// raft's own no-ops and configurations) at or below from and above floor,
// or 0 if there is none: what the snapshot at floor holds, the FSM holds.
func lastCommand(logs raft.LogStore, from, floor uint64) (uint64, error) {
	for i := from; i > floor; i-- {
		var l raft.Log
		if err := logs.GetLog(i, &l); errors.Is(err, raft.ErrLogNotFound) {
			return 0, nil
		} else if err != nil {
			return 0, fmt.Errorf("read raft log entry %d: %w", i, err)
		}
		if l.Type == raft.LogCommand {
			return i, nil
		}
	}
	return 0, nil
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
// before the FSM's applied index, e.g. raft-wal/ deleted by hand: a new log
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
		return fmt.Errorf("the raft log ends at index %d but the state machine has applied index %d: the raft log (raft-wal/) is missing or older than the state (fsm/)", last, applied)
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
	return errors.Join(n.stop(compact), n.closeFiles())
}

// stop compacts if asked to and shuts raft down: from then on nothing
// touches the FSM.
func (n *node) stop(compact bool) error {
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
	return errors.Join(errs...)
}

// closeFiles saves the embedded voter's term and closes the raft log.
func (n *node) closeFiles() error {
	var errs []error
	if n.stable != nil {
		errs = append(errs, n.stable.flush())
	}
	if n.logs != nil {
		errs = append(errs, closeLogStore(n.logs))
	}
	return errors.Join(errs...)
}

// ensureDir creates dir (and parents) private to the user.
func ensureDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create data directory: %w", err)
	}
	return nil
}

// voterStable is the embedded voter's raft.StableStore. Raft writes the
// term and its vote at every election, and the embedded voter holds one at
// every open: three synced writes on the way to the first command. With no
// other voter they protect nothing, so they are kept in memory and only
// the term is written, once, at close (a vote matters only among several
// voters). A crash loses it, which is harmless: the term read back is
// never below the last log entry's (each leader's first entry carries its
// term, synced) nor the latest snapshot's (a restore empties the log
// before it appends), so terms still only grow.
type voterStable struct {
	disk  *raftLog
	mu    sync.Mutex
	vals  map[string][]byte
	ints  map[string]uint64
	dirty bool
}

var keyCurrentTerm = []byte("CurrentTerm") // raft's key for the current term

func newVoterStable(disk *raftLog, snaps raft.SnapshotStore) (*voterStable, error) {
	s := &voterStable{disk: disk, vals: map[string][]byte{}, ints: map[string]uint64{}}
	var floor uint64
	list, err := snaps.List()
	if err != nil {
		return nil, fmt.Errorf("list snapshots: %w", err)
	}
	if len(list) > 0 {
		floor = list[0].Term
	}
	last, err := disk.LastIndex()
	if err != nil {
		return nil, fmt.Errorf("read raft log: %w", err)
	}
	if last > 0 {
		var l raft.Log
		if err := disk.GetLog(last, &l); err != nil {
			return nil, fmt.Errorf("read raft log entry %d: %w", last, err)
		}
		floor = max(floor, l.Term)
	}
	term, err := disk.GetUint64(keyCurrentTerm)
	if err != nil {
		return nil, fmt.Errorf("read raft term: %w", err)
	}
	if floor > term {
		s.ints[string(keyCurrentTerm)] = floor
		s.dirty = true
	}
	return s, nil
}

func (s *voterStable) Set(key, val []byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.vals[string(key)] = slices.Clone(val)
	return nil
}

func (s *voterStable) Get(key []byte) ([]byte, error) {
	s.mu.Lock()
	v, ok := s.vals[string(key)]
	s.mu.Unlock()
	if ok {
		return slices.Clone(v), nil
	}
	return s.disk.Get(key)
}

func (s *voterStable) SetUint64(key []byte, val uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ints[string(key)] = val
	s.dirty = s.dirty || string(key) == string(keyCurrentTerm)
	return nil
}

func (s *voterStable) GetUint64(key []byte) (uint64, error) {
	s.mu.Lock()
	v, ok := s.ints[string(key)]
	s.mu.Unlock()
	if ok {
		return v, nil
	}
	return s.disk.GetUint64(key)
}

// flush saves the term raft reached; raft has shut down.
func (s *voterStable) flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.ints[string(keyCurrentTerm)]
	if !s.dirty || !ok {
		return nil
	}
	if err := s.disk.SetUint64(keyCurrentTerm, v); err != nil {
		return fmt.Errorf("save raft term: %w", err)
	}
	s.dirty = false
	return nil
}
