package state

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"sort"
	"sync"
	"time"

	"github.com/dgraph-io/badger/v4"
	"github.com/hashicorp/raft"
)

// Cluster makes Open start one node of a multi-node cluster (fiat server)
// instead of the embedded single voter. The FSM is the same; what changes
// is the transport (TCP, optionally TLS), who may write (only the leader),
// and when a read is linearizable (on the leader, once it has applied
// everything committed before its term).
type Cluster struct {
	// ID names this node; unique in the cluster and stable across restarts.
	ID string
	// RaftAddr is host:port the node listens on for raft and peers dial.
	RaftAddr string
	// TLS, if set, wraps every raft connection: the config must hold this
	// node's certificate and the CA that signed its peers' (both ways).
	TLS *tls.Config
	// OnLeadership is called, from one goroutine in order, when this node
	// becomes leader (after it has applied every earlier entry, just before
	// it serves linearizable reads) and when it stops being leader. It
	// must not block for long.
	OnLeadership func(leader bool)
}

// Peer is one voter: its node ID and raft address.
type Peer struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
}

// ErrNotLeader is returned, on a cluster node, for a write or a
// linearizable read that only the leader can serve. A write that fails
// with it after submission (leadership lost while it was in flight) has an
// unknown outcome: the new leader's state says whether it committed.
var ErrNotLeader = errors.New("this node is not the raft leader")

type staleKey struct{}

// WithStale marks ctx so that reads are served from this node's FSM as it
// is, without confirming leadership: possibly behind the leader, never
// half of a command. It is the explicit opt-in of `-stale`.
func WithStale(ctx context.Context) context.Context {
	return context.WithValue(ctx, staleKey{}, true)
}

func isStale(ctx context.Context) bool { v, _ := ctx.Value(staleKey{}).(bool); return v }

// notLeader maps raft's leadership errors to ErrNotLeader, naming the
// leader when one is known.
func (s *Store) notLeader(err error) error {
	if !errors.Is(err, raft.ErrNotLeader) && !errors.Is(err, raft.ErrLeadershipLost) &&
		!errors.Is(err, raft.ErrLeadershipTransferInProgress) {
		return err
	}
	if _, id := s.node.raft.LeaderWithID(); id != "" {
		return fmt.Errorf("%w (the leader is %s): %w", ErrNotLeader, id, err)
	}
	return fmt.Errorf("%w (no leader is elected yet): %w", ErrNotLeader, err)
}

// IsCluster reports whether the store is a node of a multi-node cluster.
func (s *Store) IsCluster() bool { return s.cluster != nil }

// NodeID is this node's ID ("embedded" for the embedded store).
func (s *Store) NodeID() string {
	if s.cluster == nil {
		return string(embeddedID)
	}
	return s.cluster.ID
}

// Leader returns the current leader's node ID and raft address, or empty
// strings while there is none.
func (s *Store) Leader() (id, raftAddr string) {
	addr, lid := s.node.raft.LeaderWithID()
	return string(lid), string(addr)
}

// IsLeader reports whether this node is the leader and has applied every
// entry committed before it became leader: it can serve linearizable reads.
func (s *Store) IsLeader() bool {
	return s.node.raft.State() == raft.Leader && s.ready.Load()
}

// RaftState is this node's raft role: Leader, Follower, Candidate, Shutdown.
func (s *Store) RaftState() string { return s.node.raft.State().String() }

// RaftStats are raft's own counters (commit and applied index, term, ...).
func (s *Store) RaftStats() map[string]string { return s.node.raft.Stats() }

// Bootstrap starts a new cluster whose voters are peers (this node among
// them). Every node started with the same list may call it: raft accepts
// identical configurations. It is refused, harmlessly, if the node already
// has raft state.
func (s *Store) Bootstrap(peers []Peer) error {
	conf := raft.Configuration{}
	for _, p := range peers {
		conf.Servers = append(conf.Servers, raft.Server{Suffrage: raft.Voter, ID: raft.ServerID(p.ID), Address: raft.ServerAddress(p.RaftAddr)})
	}
	sort.Slice(conf.Servers, func(i, j int) bool { return conf.Servers[i].ID < conf.Servers[j].ID })
	err := s.node.raft.BootstrapCluster(conf).Error()
	if err != nil && !errors.Is(err, raft.ErrCantBootstrap) {
		return fmt.Errorf("bootstrap cluster: %w", err)
	}
	return nil
}

// HasState reports whether the node has ever been part of a cluster (it
// has a raft log or snapshot): such a node rejoins by itself.
func (s *Store) HasState() (bool, error) {
	return raft.HasExistingState(s.node.logs, s.node.logs, s.node.snaps)
}

// Voters returns the cluster's current voters, sorted by ID.
func (s *Store) Voters() ([]Peer, error) {
	f := s.node.raft.GetConfiguration()
	if err := f.Error(); err != nil {
		return nil, fmt.Errorf("read raft configuration: %w", err)
	}
	var ps []Peer
	for _, sv := range f.Configuration().Servers {
		ps = append(ps, Peer{ID: string(sv.ID), RaftAddr: string(sv.Address)})
	}
	sort.Slice(ps, func(i, j int) bool { return ps[i].ID < ps[j].ID })
	return ps, nil
}

// AddVoter adds (or re-addresses) a voter; leader only. Adding a voter
// already present at the same address changes nothing.
func (s *Store) AddVoter(ctx context.Context, p Peer) error {
	if err := checkName("node id", p.ID); err != nil {
		return err
	}
	err := s.node.raft.AddVoter(raft.ServerID(p.ID), raft.ServerAddress(p.RaftAddr), 0, timeoutOf(ctx)).Error()
	if err != nil {
		return fmt.Errorf("add voter %s: %w", p.ID, s.notLeader(err))
	}
	return nil
}

// RemoveVoter removes a node from the cluster; leader only.
func (s *Store) RemoveVoter(ctx context.Context, id string) error {
	err := s.node.raft.RemoveServer(raft.ServerID(id), 0, timeoutOf(ctx)).Error()
	if err != nil {
		return fmt.Errorf("remove node %s: %w", id, s.notLeader(err))
	}
	if _, err := s.run(ctx, cmdMember, &memberCmd{Member: Member{ID: id}, Delete: true}); err != nil {
		return fmt.Errorf("remove node %s: %w", id, err)
	}
	return nil
}

func timeoutOf(ctx context.Context) time.Duration {
	if d, ok := ctx.Deadline(); ok {
		return time.Until(d)
	}
	return 10 * time.Second
}

// Member is what the cluster records about a node beyond raft's own
// configuration: the address of its API, so that any node can send a
// client to the leader.
type Member struct {
	ID       string `json:"id"`
	RaftAddr string `json:"raft_addr"`
	APIAddr  string `json:"api_addr"`
}

type memberCmd struct {
	Member Member `json:"member"`
	Delete bool   `json:"delete,omitempty"`
}

func memberKey(id string) []byte { return []byte(prefixMember + id) }

// SetMember records a node's addresses; leader only.
func (s *Store) SetMember(ctx context.Context, m Member) error {
	if err := checkName("node id", m.ID); err != nil {
		return err
	}
	if _, err := s.run(ctx, cmdMember, &memberCmd{Member: m}); err != nil {
		return fmt.Errorf("record node %s: %w", m.ID, err)
	}
	return nil
}

// Members returns the recorded members (any node, from its own FSM).
func (s *Store) Members(ctx context.Context) (map[string]Member, error) {
	ms := map[string]Member{}
	err := s.read(WithStale(ctx), func(txn *badger.Txn) error {
		return scanJSON(txn, []byte(prefixMember), func(m *Member) { ms[m.ID] = *m })
	})
	if err != nil {
		return nil, fmt.Errorf("read members: %w", err)
	}
	return ms, nil
}

func (f *fsm) applyMember(index uint64, c *memberCmd) (*result, error) {
	err := f.db.Update(func(txn *badger.Txn) error {
		var err error
		if c.Delete {
			err = txn.Delete(memberKey(c.Member.ID))
		} else {
			err = setJSON(txn, memberKey(c.Member.ID), c.Member)
		}
		if err != nil {
			return err
		}
		return setApplied(txn, index)
	})
	return &result{}, err
}

// watchLeadership follows raft's leadership notifications. On gaining
// leadership it waits for a barrier (every entry of earlier terms applied)
// before the node serves linearizable reads, makes sure the store has its
// identity, and tells the cluster's owner.
func (s *Store) watchLeadership(ch <-chan bool) {
	defer close(s.watchDone)
	for leader := range ch {
		s.ready.Store(false)
		if leader {
			// Retry the barrier as long as this node leads (a slow disk
			// must not leave a leader that never serves); if it loses
			// leadership, the next notification follows.
			caughtUp := false
			for s.node.raft.State() == raft.Leader && !caughtUp {
				caughtUp = s.node.raft.Barrier(5*time.Second).Error() == nil
			}
			if !caughtUp {
				continue
			}
			// The owner hears of it before the node serves, so it can hold
			// back what must wait for its own start-up as leader.
			if s.cluster.OnLeadership != nil {
				s.cluster.OnLeadership(true)
			}
			s.ready.Store(true)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := s.ensureIdentity(ctx)
			cancel()
			if err != nil {
				s.logger.Error("make store identity", "error", err)
			}
		}
		if !leader && s.cluster.OnLeadership != nil {
			s.cluster.OnLeadership(false)
		}
	}
}

// streamLayer is raft's network: TCP, with TLS when configured.
type streamLayer struct {
	net.Listener
	advertise net.Addr
	tls       *tls.Config

	// Partitions, for tests: raft addresses this node may not reach, and
	// the connections to cut when a partition starts.
	mu      sync.Mutex
	blocked map[string]bool
	conns   map[*trackedConn]bool
}

// trackedConn forgets itself when closed, so the set stays small.
type trackedConn struct {
	net.Conn
	l *streamLayer
}

func (c *trackedConn) Close() error {
	c.l.mu.Lock()
	delete(c.l.conns, c)
	c.l.mu.Unlock()
	return c.Conn.Close()
}

// partition cuts this node off from the given raft addresses (nil heals):
// dials to them fail, and every open connection is closed (the peers that
// may still talk reconnect).
func (l *streamLayer) partition(addrs []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.blocked = map[string]bool{}
	for _, a := range addrs {
		l.blocked[a] = true
	}
	for c := range l.conns {
		c.Conn.Close()
	}
	l.conns = nil
}

func (l *streamLayer) track(c net.Conn) net.Conn {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns == nil {
		l.conns = map[*trackedConn]bool{}
	}
	t := &trackedConn{Conn: c, l: l}
	l.conns[t] = true
	return t
}

func (l *streamLayer) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return l.track(c), nil
}

func newStreamLayer(addr string, conf *tls.Config) (*streamLayer, error) {
	tcp, err := net.ResolveTCPAddr("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("raft address %s: %w", addr, err)
	}
	if tcp.IP == nil || tcp.IP.IsUnspecified() {
		return nil, fmt.Errorf("raft address %s: give the address peers dial, not a wildcard", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen for raft on %s: %w", addr, err)
	}
	if conf != nil {
		ln = tls.NewListener(ln, conf)
	}
	return &streamLayer{Listener: ln, advertise: tcp, tls: conf}, nil
}

func (l *streamLayer) Addr() net.Addr { return l.advertise }

func (l *streamLayer) Dial(addr raft.ServerAddress, timeout time.Duration) (net.Conn, error) {
	l.mu.Lock()
	blocked := l.blocked[string(addr)]
	l.mu.Unlock()
	if blocked {
		return nil, fmt.Errorf("dial %s: partitioned (test)", addr)
	}
	d := &net.Dialer{Timeout: timeout}
	var c net.Conn
	var err error
	if l.tls == nil {
		c, err = d.Dial("tcp", string(addr))
	} else {
		c, err = (&tls.Dialer{NetDialer: d, Config: l.tls}).Dial("tcp", string(addr))
	}
	if err != nil {
		return nil, err
	}
	return l.track(c), nil
}

// ValidStackName refuses a stack name that would break the key layout.
func ValidStackName(name string) error { return checkName("stack name", name) }
