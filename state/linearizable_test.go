package state

import (
	"context"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/hashicorp/raft"
)

// A concurrent history of document reads and writes, lock acquisitions
// and releases (compare-and-set), and commits (the store revision), made
// by several clients against a 3-node cluster whose leader is stopped and
// restarted again and again, must be linearizable (porcupine).

type linIn struct {
	Key, Op, Val string
}

type linOut struct {
	Val     string
	Rev     uint64
	OK      bool
	Unknown bool // the write was submitted and its outcome is unknown
}

var linModel = porcupine.NondeterministicModel{
	Partition: func(h []porcupine.Operation) [][]porcupine.Operation {
		by := map[string][]porcupine.Operation{}
		for _, op := range h {
			k := op.Input.(linIn).Key
			by[k] = append(by[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range by {
			out = append(out, ops)
		}
		return out
	},
	Init: func() []any { return []any{""} },
	Step: func(st, in, out any) []any {
		s, i, o := st.(string), in.(linIn), out.(linOut)
		switch i.Op {
		case "put":
			if o.Unknown {
				return []any{s, i.Val}
			}
			return []any{i.Val}
		case "get":
			if o.Val == s {
				return []any{s}
			}
		case "commit": // state: the revision, as a decimal string
			next := fmt.Sprint(revOf(s) + 1)
			if o.Unknown {
				return []any{s, next}
			}
			if fmt.Sprint(o.Rev) == next {
				return []any{next}
			}
		case "revision":
			if o.Rev == revOf(s) {
				return []any{s}
			}
		case "acquire": // state: the holder, "" when free
			if o.Unknown {
				if s == "" {
					return []any{s, i.Val}
				}
				return []any{s}
			}
			if o.OK && s == "" {
				return []any{i.Val}
			}
			if !o.OK && s != "" {
				return []any{s}
			}
		case "release":
			if o.Unknown {
				if s == i.Val {
					return []any{s, ""}
				}
				return []any{s}
			}
			if o.OK && s == i.Val {
				return []any{""}
			}
			if !o.OK && s != i.Val {
				return []any{s}
			}
		}
		return nil
	},
	DescribeOperation: func(in, out any) string { return fmt.Sprintf("%+v -> %+v", in, out) },
}

func revOf(s string) uint64 {
	var n uint64
	fmt.Sscan(s, &n)
	return n
}

type linNode struct {
	mu   sync.RWMutex
	st   *Store
	dir  string
	peer Peer
}

func (n *linNode) get() *Store {
	n.mu.RLock()
	defer n.mu.RUnlock()
	return n.st
}

func TestLinearizableDuringLeaderRestarts(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: a few seconds of load on a 3-node cluster")
	}
	var nodes []*linNode
	var peers []Peer
	for i := range 3 {
		n := &linNode{dir: t.TempDir(), peer: Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: freeAddr(t)}}
		peers = append(peers, n.peer)
		nodes = append(nodes, n)
	}
	open := func(n *linNode) {
		st, err := Open(context.Background(), Options{Dir: n.dir, Cluster: &Cluster{ID: n.peer.ID, RaftAddr: n.peer.RaftAddr}})
		if err != nil {
			t.Error(err)
			return
		}
		n.mu.Lock()
		n.st = st
		n.mu.Unlock()
	}
	for _, n := range nodes {
		open(n)
		if err := n.get().Bootstrap(peers); err != nil {
			t.Fatal(err)
		}
	}
	defer func() {
		for _, n := range nodes {
			if st := n.get(); st != nil {
				st.Close()
			}
		}
	}()
	leader := func() *Store {
		for {
			for _, n := range nodes {
				if st := n.get(); st != nil && st.IsLeader() {
					if _, err := st.Identity(context.Background()); err == nil {
						return st
					}
				}
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	leader()

	start := time.Now()
	now := func() int64 { return int64(time.Since(start)) }
	var (
		hmu     sync.Mutex
		history []porcupine.Operation
	)
	record := func(client int, in linIn, call int64, out linOut) {
		ret := now()
		if out.Unknown {
			ret = math.MaxInt64 // may take effect any time after the call
		}
		hmu.Lock()
		history = append(history, porcupine.Operation{ClientId: client, Input: in, Call: call, Output: out, Return: ret})
		hmu.Unlock()
	}
	// outcome classifies a write's error: not submitted (drop the op),
	// refused (a definite answer), or unknown.
	notSubmitted := func(err error) bool {
		return errors.Is(err, raft.ErrNotLeader) || errors.Is(err, ErrClosed) || errors.Is(err, raft.ErrLeadershipTransferInProgress) ||
			errors.Is(err, raft.ErrRaftShutdown)
	}

	stop := make(chan struct{})
	var wg sync.WaitGroup
	// The nemesis stops the leader, then starts it again, over and over.
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			select {
			case <-stop:
				return
			case <-time.After(400 * time.Millisecond):
			}
			lead := leader()
			for _, n := range nodes {
				if n.get() == lead {
					n.mu.Lock()
					n.st = nil
					n.mu.Unlock()
					lead.Close()
					time.Sleep(150 * time.Millisecond)
					open(n)
				}
			}
		}
	}()
	for c := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx := context.Background()
			stack := fmt.Sprintf("c%d", c)
			var own *Lock    // this client's stack lock, for commits
			var shared *Lock // the contended lock, when held
			holder := fmt.Sprintf("client %d", c)
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				st := nodes[rand.IntN(len(nodes))].get()
				if st == nil || !st.IsLeader() {
					st = leader()
				}
				call := now()
				key := []string{"doc:a", "doc:b"}[rand.IntN(2)]
				switch op := rand.IntN(6); {
				case op == 0:
					val := fmt.Sprintf("%d-%d", c, i)
					err := st.PutDoc(ctx, "lin", key, []byte(val))
					if notSubmitted(err) {
						continue
					}
					record(c, linIn{Key: key, Op: "put", Val: val}, call, linOut{OK: err == nil, Unknown: err != nil})
				case op == 1:
					b, err := st.GetDoc(ctx, "lin", key)
					if err != nil && !errors.Is(err, ErrNotFound) {
						continue
					}
					record(c, linIn{Key: key, Op: "get"}, call, linOut{Val: string(b)})
				case op == 2 && own != nil:
					rev, err := st.Commit(ctx, *own, Commit{Stack: stack, Put: []Entity{{Address: stack + "/x.a", Provider: "p", ID: fmt.Sprint(i)}}})
					if notSubmitted(err) {
						continue
					}
					record(c, linIn{Key: "rev", Op: "commit"}, call, linOut{Rev: rev, OK: err == nil, Unknown: err != nil})
				case op == 2:
					l, err := st.Lock(ctx, stack, holder, time.Hour)
					if err == nil {
						own = &l
					}
				case op == 3:
					rev, err := st.Revision(ctx)
					if err != nil {
						continue
					}
					record(c, linIn{Key: "rev", Op: "revision"}, call, linOut{Rev: rev})
				case op == 4 && shared == nil:
					l, err := st.Lock(ctx, "shared", holder, time.Hour)
					var le *LockedError
					switch {
					case notSubmitted(err):
						continue
					case err == nil:
						shared = &l
						record(c, linIn{Key: "lock", Op: "acquire", Val: holder}, call, linOut{OK: true})
					case errors.As(err, &le):
						record(c, linIn{Key: "lock", Op: "acquire", Val: holder}, call, linOut{OK: false})
					default:
						// Unknown: maybe ours now. Stop contending (a lock we
						// may hold but cannot name would block the others).
						record(c, linIn{Key: "lock", Op: "acquire", Val: holder}, call, linOut{Unknown: true})
						return
					}
				case op == 4 || op == 5:
					if shared == nil {
						continue
					}
					err := st.Unlock(ctx, *shared)
					switch {
					case notSubmitted(err):
						continue
					case err == nil:
						record(c, linIn{Key: "lock", Op: "release", Val: holder}, call, linOut{OK: true})
						shared = nil
					default:
						record(c, linIn{Key: "lock", Op: "release", Val: holder}, call, linOut{Unknown: true})
						return
					}
				}
			}
		}()
	}
	time.Sleep(4 * time.Second)
	close(stop)
	wg.Wait()

	res, info := porcupine.CheckOperationsVerbose(linModel.ToModel(), history, 60*time.Second)
	counts := map[string]int{}
	for _, op := range history {
		counts[op.Input.(linIn).Op]++
	}
	t.Logf("%d operations %v: %s", len(history), counts, res)
	if res != porcupine.Ok {
		f, _ := osCreateTemp("fiat-linearizability-*.html")
		if f != nil {
			porcupine.Visualize(linModel.ToModel(), info, f)
			t.Logf("visualization: %s", f.Name())
			f.Close()
		}
		t.Fatalf("the history is not linearizable: %s", res)
	}
	if counts["commit"] == 0 || counts["acquire"] == 0 || counts["get"] == 0 {
		t.Fatalf("too few operations of some kind: %v", counts)
	}
}

func osCreateTemp(pattern string) (*os.File, error) { return os.CreateTemp("", pattern) }
