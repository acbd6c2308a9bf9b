package state

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

func benchmarkCommit(b *testing.B, n int) {
	s := openStore(b, b.TempDir())
	l := mustLock(b, s, "bench")
	puts := make([]Entity, n)
	for i := range puts {
		puts[i] = entity("bench", fmt.Sprintf("e%06d", i), 1024)
	}
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Commit(ctx, l, Commit{Stack: "bench", Put: puts}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(n)*float64(b.N)/b.Elapsed().Seconds(), "entities/s")
}

func BenchmarkCommit1000(b *testing.B)  { benchmarkCommit(b, 1000) }
func BenchmarkCommit10000(b *testing.B) { benchmarkCommit(b, 10000) }

// BenchmarkCommit1 is the latency floor of a write: one raft entry, one
// disk sync, one small FSM apply.
func BenchmarkCommit1(b *testing.B) { benchmarkCommit(b, 1) }

var journalRecord = json.RawMessage(`{"kind":"intent","step":"create","address":"prod/libvirt_volume.data[3]","provider":"libvirt","detail":{"pool":"default","capacity":10737418240}}`)

func benchmarkAppendJournal(b *testing.B, parallel bool) {
	s := openStore(b, b.TempDir())
	l := mustLock(b, s, "bench")
	ctx := context.Background()
	if err := s.BeginTx(ctx, l, Tx{ID: "tx"}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	if !parallel {
		for b.Loop() {
			if err := s.AppendJournal(ctx, l, "tx", journalRecord); err != nil {
				b.Fatal(err)
			}
		}
		return
	}
	b.SetParallelism(8) // steps running at once on one host
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := s.AppendJournal(ctx, l, "tx", journalRecord); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// BenchmarkAppendJournal appends one record per call, one caller.
func BenchmarkAppendJournal(b *testing.B) { benchmarkAppendJournal(b, false) }

// BenchmarkAppendJournalParallel appends one record per call from many
// goroutines: raft batches their entries into shared disk syncs.
func BenchmarkAppendJournalParallel(b *testing.B) { benchmarkAppendJournal(b, true) }

func BenchmarkGet(b *testing.B) {
	s := openStore(b, b.TempDir())
	l := mustLock(b, s, "bench")
	ctx := context.Background()
	mustCommit(b, s, l, Commit{Stack: "bench", Put: []Entity{entity("bench", "x", 1024)}})
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.Get(ctx, "bench/libvirt_volume.x"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkOpen measures Open+Close of an existing store (open-ms: Open
// alone, what a command waits for before it can read), and reports the
// peak RSS of a separate process that opens an empty one.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	var opening time.Duration
	for i := 0; i < b.N; i++ {
		start := time.Now()
		s, err := Open(context.Background(), Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		opening += time.Since(start)
		s.Close()
	}
	b.StopTimer()
	b.ReportMetric(float64(opening.Microseconds())/1000/float64(b.N), "open-ms")
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "FIAT_STATE_HELPER_DIR="+b.TempDir())
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.Fatalf("helper: %v: %s", err, out)
	}
	for _, line := range strings.Split(string(out), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmHWM: %f kB", &kb); err == nil {
			b.ReportMetric(kb/1024, "empty-open-peak-RSS-MB")
		}
	}
}

// BenchmarkClusterCommit measures one commit (one entity, one raft entry)
// on the leader of a cluster on loopback TCP: p50 and p99 per node count.
func BenchmarkClusterCommit(b *testing.B) {
	for _, n := range []int{1, 3} {
		b.Run(fmt.Sprintf("nodes-%d", n), func(b *testing.B) {
			stores := startClusterB(b, n)
			lead := waitLeaderB(b, stores)
			ctx := context.Background()
			lock, err := lead.Lock(ctx, "bench", "bench", time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				t0 := time.Now()
				if _, err := lead.Commit(ctx, lock, Commit{Stack: "bench", Put: []Entity{{Address: "bench/x.a", Provider: "p", ID: fmt.Sprint(i)}}}); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, time.Since(t0))
			}
			b.StopTimer()
			sort.Slice(lat, func(i, j int) bool { return lat[i] < lat[j] })
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}

// BenchmarkFailover measures the time from stopping the leader of a
// 3-node cluster to the first write the new leader serves.
func BenchmarkFailover(b *testing.B) {
	var total time.Duration
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		stores := startClusterB(b, 3)
		lead := waitLeaderB(b, stores)
		b.StartTimer()
		t0 := time.Now()
		lead.Close()
		var rest []*Store
		for _, s := range stores {
			if s != lead {
				rest = append(rest, s)
			}
		}
		for done := false; !done; {
			for _, s := range rest {
				if s.IsLeader() && s.PutDoc(context.Background(), "b", "k", []byte("v")) == nil {
					done = true
					break
				}
			}
			time.Sleep(time.Millisecond)
		}
		total += time.Since(t0)
		b.StopTimer()
		for _, s := range rest {
			s.Close()
		}
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "ms-to-writes")
}

func startClusterB(b *testing.B, n int) []*Store {
	var peers []Peer
	for i := range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, Peer{ID: fmt.Sprintf("n%d", i+1), RaftAddr: ln.Addr().String()})
		ln.Close()
	}
	var stores []*Store
	for _, p := range peers {
		s, err := Open(context.Background(), Options{Dir: b.TempDir(), Cluster: &Cluster{ID: p.ID, RaftAddr: p.RaftAddr}})
		if err != nil {
			b.Fatal(err)
		}
		b.Cleanup(func() { s.Close() })
		stores = append(stores, s)
	}
	for _, s := range stores {
		if err := s.Bootstrap(peers); err != nil {
			b.Fatal(err)
		}
	}
	return stores
}

func waitLeaderB(b *testing.B, stores []*Store) *Store {
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		for _, s := range stores {
			if _, err := s.Identity(context.Background()); err == nil && s.IsLeader() {
				return s
			}
		}
	}
	b.Fatal("no leader")
	return nil
}

// BenchmarkDiskSync is the floor under every durable write: appending 512
// bytes and fdatasync-ing the file, by one writer, and by three at once on
// three files of the same disk, as the nodes of a cluster on one machine
// do. p50 per sync, each writer timing its own.
func BenchmarkDiskSync(b *testing.B) {
	for _, writers := range []int{1, 3} {
		b.Run(fmt.Sprintf("writers-%d", writers), func(b *testing.B) {
			dir := b.TempDir()
			lat := make([][]time.Duration, writers)
			var wg sync.WaitGroup
			b.ResetTimer()
			for w := range writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					f, err := os.Create(filepath.Join(dir, fmt.Sprint(w)))
					if err != nil {
						b.Error(err)
						return
					}
					defer f.Close()
					buf := make([]byte, 512)
					for range b.N {
						t0 := time.Now()
						if _, err := f.Write(buf); err != nil {
							b.Error(err)
							return
						}
						if err := syscall.Fdatasync(int(f.Fd())); err != nil {
							b.Error(err)
							return
						}
						lat[w] = append(lat[w], time.Since(t0))
					}
				}()
			}
			wg.Wait()
			var all []time.Duration
			for _, l := range lat {
				all = append(all, l...)
			}
			if len(all) == 0 {
				return
			}
			sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
			b.ReportMetric(float64(all[len(all)/2].Microseconds())/1000, "p50-ms")
		})
	}
}
