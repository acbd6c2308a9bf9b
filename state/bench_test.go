package state

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
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

// BenchmarkOpen measures Open+Close of an existing store, and reports the
// peak RSS of a separate process that opens an empty one.
func BenchmarkOpen(b *testing.B) {
	dir := b.TempDir()
	s, err := Open(context.Background(), Options{Dir: dir})
	if err != nil {
		b.Fatal(err)
	}
	s.Close()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s, err := Open(context.Background(), Options{Dir: dir})
		if err != nil {
			b.Fatal(err)
		}
		s.Close()
	}
	b.StopTimer()
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
