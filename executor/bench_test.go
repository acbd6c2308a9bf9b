package executor_test

import (
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"

	"fiat/engine"
	"fiat/executor"
	"fiat/hcl"
	"fiat/providers"
	"fiat/providers/builtin"
	"fiat/state"
)

// dataConfig generates n fiat_data resources: independent, or a chain in
// which each depends on the previous one's output.
func dataConfig(n int, chain bool) []byte {
	b := &strings.Builder{}
	for i := 0; i < n; i++ {
		if chain && i > 0 {
			fmt.Fprintf(b, "resource \"fiat_data\" \"r%d\" {\n  input = \"${fiat_data.r%d.id}-%d\"\n}\n", i, i-1, i)
		} else {
			fmt.Fprintf(b, "resource \"fiat_data\" \"r%d\" {\n  input = \"v%d\"\n}\n", i, i)
		}
	}
	return []byte(b.String())
}

// BenchmarkApply applies N fiat_data resources from an empty store with the
// full journal on the embedded (Raft + Badger) store. Metrics: journal
// writes per step, and the process's peak RSS so far (run one case per
// process for a per-case figure: make bench does).
func BenchmarkApply(b *testing.B) {
	for _, n := range []int{1000, 2000, 10000} {
		for _, shape := range []string{"independent", "chain"} {
			if shape == "chain" && n > 2000 || shape == "independent" && n == 2000 {
				continue
			}
			b.Run(fmt.Sprintf("%s-%d", shape, n), func(b *testing.B) {
				benchApply(b, n, shape == "chain", false)
			})
			// The same with every intent made durable before its call,
			// as for a provider with effects outside the store.
			b.Run(fmt.Sprintf("%s-%d-durable", shape, n), func(b *testing.B) {
				benchApply(b, n, shape == "chain", true)
			})
			if n == 1000 {
				// On the leader of a 3-node cluster on loopback TCP (the
				// journal replicated), against the embedded store above.
				b.Run(fmt.Sprintf("%s-%d-durable-cluster3", shape, n), func(b *testing.B) {
					benchApplyOn(b, n, shape == "chain", true, 3)
				})
			}
		}
	}
}

func benchApply(b *testing.B, n int, chain, durable bool) { benchApplyOn(b, n, chain, durable, 0) }

// openBenchStore opens the embedded store (nodes 0) or a cluster of nodes
// on loopback and returns its leader.
func openBenchStore(b *testing.B, nodes int) (*state.Store, func()) {
	ctx := context.Background()
	if nodes == 0 {
		st, err := state.Open(ctx, state.Options{Dir: b.TempDir()})
		if err != nil {
			b.Fatal(err)
		}
		return st, func() { st.Close() }
	}
	var peers []state.Peer
	for i := range nodes {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Fatal(err)
		}
		peers = append(peers, state.Peer{ID: fmt.Sprintf("n%d", i), RaftAddr: ln.Addr().String()})
		ln.Close()
	}
	var all []*state.Store
	for _, p := range peers {
		st, err := state.Open(ctx, state.Options{Dir: b.TempDir(), Cluster: &state.Cluster{ID: p.ID, RaftAddr: p.RaftAddr}})
		if err != nil {
			b.Fatal(err)
		}
		st.Bootstrap(peers)
		all = append(all, st)
	}
	closeAll := func() {
		for _, st := range all {
			st.Close()
		}
	}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		for _, st := range all {
			if _, err := st.Identity(ctx); err == nil && st.IsLeader() {
				return st, closeAll
			}
		}
	}
	b.Fatal("no leader")
	return nil, nil
}

func benchApplyOn(b *testing.B, n int, chain, durable bool, nodes int) {
	ctx := context.Background()
	prov := builtin.New()
	eng := engine.Default()
	cfg, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": dataConfig(n, chain)}, hcl.Options{Env: []string{}})
	if diags.HasErrors() {
		b.Fatal(diags)
	}
	var writes, records int64
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		st, closeStore := openBenchStore(b, nodes)
		plan, err := eng.Plan(ctx, st, engine.PlanOptions{Stack: "bench", Config: cfg})
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		res, err := executor.Apply(ctx, plan, executor.Options{
			Store: st, Providers: map[string]providers.Provider{builtin.Name: prov}, PlanID: "bench", DurableLocal: durable,
			Eval: executor.NewEvaluator(cfg, plan, eng.Providers().Schemas()),
		})
		b.StopTimer()
		if err != nil {
			b.Fatal(err)
		}
		writes, records = res.JournalWrites, res.JournalRecords
		closeStore()
		b.StartTimer()
	}
	b.ReportMetric(float64(writes)/float64(n), "journal-writes/step")
	b.ReportMetric(float64(records)/float64(n), "journal-records/step")
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	b.ReportMetric(float64(ru.Maxrss)/1024, "peak-RSS-MB")
}
