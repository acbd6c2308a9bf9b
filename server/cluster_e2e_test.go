package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

const randomConfig = `
resource "random_id" "a" {
  byte_length = 4
}
`

// Five nodes keep serving with two down (the leader among them); the
// killed nodes restart, rejoin with their data and catch up; a member is
// removed; a snapshot saved before a change restores the cluster to it.
func TestFiveNodesSurviveTwoFailuresAndRejoin(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts five server processes")
	}
	c := startCluster(t, 5, nil)
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.tf": randomConfig})
	if r := c.fiat(dir, "apply", "-auto-approve", "-stack", "five", "."); r.code != 0 || !strings.Contains(r.stdout, "Apply complete: 1 created") {
		t.Fatalf("first apply:\n%s", r)
	}
	members := c.fiat(dir, "operator", "members")
	if members.code != 0 || strings.Count(members.stdout, "127.0.0.") != 10 || strings.Count(members.stdout, "*") != 1 {
		t.Fatalf("members of a 5-node cluster:\n%s", members)
	}
	before := c.converged()

	lead := c.leader()
	down := []*node{lead}
	for _, nd := range c.nodes {
		if nd != lead {
			down = append(down, nd)
			break
		}
	}
	for _, nd := range down {
		nd.kill()
	}
	// Two of five down, the leader among them: the other three elect a
	// leader and take writes.
	writeFiles(t, dir, map[string]string{"more.tf": `resource "random_id" "b" { byte_length = 4 }`})
	if r := c.fiat(dir, "apply", "-auto-approve", "-stack", "five", "."); r.code != 0 || !strings.Contains(r.stdout, "1 created") {
		t.Fatalf("apply with two of five nodes down:\n%s", r)
	}
	if r := c.fiat(dir, "operator", "members"); !strings.Contains(r.stdout, "unreachable") {
		t.Errorf("members does not show the down nodes:\n%s", r)
	}
	for _, nd := range down {
		nd.start()
	}
	c.waitReady(down...)
	after := c.converged()
	if after == before {
		t.Error("the state did not change with the second apply")
	}

	// A snapshot, a change, a restore: the change is gone on every node.
	snap := filepath.Join(t.TempDir(), "backup.snap")
	if r := c.fiat(dir, "operator", "snapshot", "save", snap); r.code != 0 {
		t.Fatalf("snapshot save:\n%s", r)
	}
	if err := os.Remove(filepath.Join(dir, "more.tf")); err != nil {
		t.Fatal(err)
	}
	if r := c.fiat(dir, "apply", "-auto-approve", "-stack", "five", "."); r.code != 0 || !strings.Contains(r.stdout, "1 deleted") {
		t.Fatalf("apply that deletes b:\n%s", r)
	}
	if r := c.fiat(dir, "operator", "snapshot", "restore", snap); r.code != 0 {
		t.Fatalf("snapshot restore:\n%s", r)
	}
	list := c.fiat(dir, "state", "list", "-stack", "five", ".")
	if list.code != 0 || !strings.Contains(list.stdout, "random_id.b") {
		t.Fatalf("after restore, random_id.b should be back:\n%s", list)
	}
	c.converged()
	// A damaged backup is refused and changes nothing.
	b, _ := os.ReadFile(snap)
	b[len(b)/2] ^= 1
	bad := snap + ".bad"
	os.WriteFile(bad, b, 0o600)
	if r := c.fiat(dir, "operator", "snapshot", "restore", bad); r.code == 0 || !strings.Contains(r.stderr, "damaged") {
		t.Errorf("a damaged backup was not refused as damaged:\n%s", r)
	}

	// Removing a member leaves four.
	victim := c.nodes[4]
	if victim == c.leader() {
		victim = c.nodes[3]
	}
	if r := c.fiat(dir, "operator", "remove", victim.name); r.code != 0 {
		t.Fatalf("remove %s:\n%s", victim.name, r)
	}
	victim.kill()
	if r := c.fiat(dir, "operator", "members"); strings.Count(r.stdout, "\n") != 5 || strings.Contains(r.stdout, victim.name+" ") {
		t.Errorf("after removing %s:\n%s", victim.name, r)
	}
}

// One apply per stack at a time: the next queues, -no-wait refuses naming
// the running run; a plan of the same stack and an apply of another stack
// do not wait behind it.
func TestRunsQueuePerStackAndPlansNeverWait(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	c := startCluster(t, 3, nil)
	slow, other := t.TempDir(), t.TempDir()
	writeFiles(t, slow, map[string]string{"main.tf": `resource "time_sleep" "w" { create_duration = "8s" }`})
	writeFiles(t, other, map[string]string{"main.tf": randomConfig})

	first := make(chan result, 1)
	go func() { first <- c.fiat(slow, "apply", "-auto-approve", "-stack", "slow", ".") }()
	// Wait until the slow apply is applying (its run says so).
	waitFor(t, 20*time.Second, func() bool {
		r := c.fiat(slow, "runs", "slow")
		return strings.Contains(r.stdout, "applying")
	})
	// While it applies: a plan of the same stack answers at once ...
	if r := c.fiat(slow, "plan", "-stack", "slow", "."); r.code != 0 {
		t.Fatalf("plan during an apply:\n%s", r)
	}
	// ... another stack applies ...
	if r := c.fiat(other, "apply", "-auto-approve", "-stack", "other", "."); r.code != 0 {
		t.Fatalf("apply of another stack during an apply:\n%s", r)
	}
	// ... and a -no-wait apply of the same stack is refused, naming the run.
	nw := c.fiat(slow, "apply", "-auto-approve", "-no-wait", "-stack", "slow", ".")
	if nw.code == 0 || !strings.Contains(nw.stderr, "is busy with run") {
		t.Fatalf("-no-wait during an apply of the same stack:\n%s", nw)
	}
	select {
	case r := <-first:
		t.Fatalf("the slow apply ended before the others were checked:\n%s", r)
	default:
	}
	// A second apply queues behind the first and then runs (nothing to do).
	second := c.fiat(slow, "apply", "-auto-approve", "-stack", "slow", ".")
	r := <-first
	if r.code != 0 || !strings.Contains(r.stdout, "Apply complete: 1 created") {
		t.Fatalf("slow apply:\n%s", r)
	}
	if second.code != 0 || !strings.Contains(second.stdout, "No changes") {
		t.Fatalf("queued apply (planned after the first committed):\n%s", second)
	}
	runs := c.fiat(slow, "runs", "slow")
	if strings.Count(runs.stdout, "applied") != 2 {
		t.Errorf("runs of stack slow:\n%s", runs)
	}
}

func waitFor(t *testing.T, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %s", timeout)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
