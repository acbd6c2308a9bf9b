package server_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"
)

// BenchmarkServer runs a 3-node cluster (real processes) and reports: the
// latency of submitting a run (a no-change plan, CLI start to exit), the
// leader's RSS idle, and its RSS holding 50,000 entities (five stacks of
// 10,000 fiat_data resources, applied through the CLI).
func BenchmarkServer(b *testing.B) {
	c := startCluster(b, 3, nil)
	dir := b.TempDir()
	writeFiles(b, dir, map[string]string{"main.tf": `resource "fiat_data" "a" { input = "x" }`})
	if r := c.fiat(dir, "apply", "-auto-approve", "-stack", "small", "."); r.code != 0 {
		b.Fatalf("apply:\n%s", r)
	}
	lead := c.leader()
	b.ResetTimer()
	t0 := time.Now()
	for i := 0; i < b.N; i++ {
		if r := c.fiat(dir, "plan", "-stack", "small", "."); r.code != 0 {
			b.Fatalf("plan:\n%s", r)
		}
	}
	b.StopTimer()
	b.ReportMetric(float64(time.Since(t0).Milliseconds())/float64(b.N), "ms/plan-run")
	b.ReportMetric(rssMB(b, lead), "leader-idle-RSS-MB")
	big := b.TempDir()
	var src strings.Builder
	for i := 0; i < 10000; i++ {
		fmt.Fprintf(&src, "resource \"fiat_data\" \"r%d\" {\n  input = \"v%d\"\n}\n", i, i)
	}
	writeFiles(b, big, map[string]string{"main.tf": src.String()})
	t1 := time.Now()
	for s := 0; s < 5; s++ {
		if r := c.fiat(big, "apply", "-auto-approve", "-stack", fmt.Sprintf("big%d", s), "."); r.code != 0 {
			b.Fatalf("apply 10,000:\n%s", r.stderr)
		}
	}
	b.ReportMetric(time.Since(t1).Seconds()/5, "s/apply-10k")
	b.ReportMetric(rssMB(b, c.leader()), "leader-50k-RSS-MB")
}

func rssMB(b testing.TB, nd *node) float64 {
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", nd.cmd.Process.Pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, line := range strings.Split(string(st), "\n") {
		var kb float64
		if _, err := fmt.Sscanf(line, "VmRSS: %f kB", &kb); err == nil {
			return kb / 1024
		}
	}
	return 0
}
