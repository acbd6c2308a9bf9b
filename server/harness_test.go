package server_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"fiat/internal/testenv"
)

// The cluster tests run the built fiat binary: every node is its own
// process on its own loopback address (127.0.0.1 to 127.0.0.5), and the
// CLI is the binary too, as an operator would run them.

var fiatBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fiat-server-test-")
	if err != nil {
		panic(err)
	}
	fiatBin = filepath.Join(dir, "fiat")
	// FIAT_TEST_RACE=1 builds the nodes with the race detector (their
	// logs, printed when a test fails, then carry any race report).
	build := []string{"build", "-o", fiatBin}
	if os.Getenv("FIAT_TEST_RACE") != "" {
		build = append(build, "-race")
	}
	if out, err := exec.Command("go", append(build, "../cmd/fiat")...).CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build fiat: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type node struct {
	t          testing.TB
	name       string
	api, raft  string
	dir        string
	args, env  []string
	cmd        *exec.Cmd
	log        *testenv.SyncBuffer
	exited     chan struct{}
	scheme     string
	tokenAdmin string
}

// freePort finds a port free on every loopback address the nodes use.
func freePort(t testing.TB) int {
	t.Helper()
	for range 50 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		ok := true
		for i := 2; i <= 5 && ok; i++ {
			l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.%d:%d", i, port))
			if err != nil {
				ok = false
				continue
			}
			l.Close()
		}
		if ok {
			return port
		}
	}
	t.Fatal("no port free on 127.0.0.1-5")
	return 0
}

type cluster struct {
	t     testing.TB
	nodes []*node
	env   []string // for the CLI
}

// startCluster starts n nodes that bootstrap together; env goes to every
// node (e.g. FIAT_FAILPOINT), extra to every node's command line.
func startCluster(t testing.TB, n int, env []string, extra ...string) *cluster {
	t.Helper()
	c := newCluster(t, n, func(nd *node) {
		nd.env = env
		nd.args = append(nd.args, extra...)
	})
	c.launch()
	return c
}

// newCluster lays out n nodes on 127.0.0.1-n (not started); tweak
// adjusts each.
func newCluster(t testing.TB, n int, tweak func(*node)) *cluster {
	apiPort, raftPort := freePort(t), freePort(t)
	c := &cluster{t: t}
	var joins []string
	for i := 1; i <= n; i++ {
		joins = append(joins, fmt.Sprintf("127.0.0.%d:%d", i, apiPort))
	}
	for i := 1; i <= n; i++ {
		nd := &node{t: t, name: fmt.Sprintf("n%d", i), api: fmt.Sprintf("127.0.0.%d:%d", i, apiPort),
			raft: fmt.Sprintf("127.0.0.%d:%d", i, raftPort), dir: t.TempDir(), scheme: "http"}
		nd.args = []string{"server", "-name", nd.name, "-data-dir", nd.dir, "-api", nd.api, "-raft", nd.raft,
			"-bootstrap-expect", fmt.Sprint(n), "-join", strings.Join(joins, ",")}
		tweak(nd)
		c.nodes = append(c.nodes, nd)
	}
	return c
}

// launch starts every node, stops them when the test ends (printing their
// logs if it failed), and waits until all are ready.
func (c *cluster) launch() {
	c.t.Helper()
	for _, nd := range c.nodes {
		nd.start()
	}
	c.t.Cleanup(func() {
		if c.t.Failed() {
			for _, nd := range c.nodes {
				nd.dumpGoroutines()
			}
		}
		for _, nd := range c.nodes {
			nd.kill()
		}
		if c.t.Failed() {
			for _, nd := range c.nodes {
				c.t.Logf("--- log of %s:\n%s", nd.name, nd.log.String())
			}
		}
	})
	c.waitReady(c.nodes...)
}

func (nd *node) start() {
	nd.t.Helper()
	nd.log = &testenv.SyncBuffer{}
	nd.cmd = exec.Command(fiatBin, nd.args...)
	nd.cmd.Env = append(os.Environ(), nd.env...)
	nd.cmd.Stdout, nd.cmd.Stderr = nd.log, nd.log
	if err := nd.cmd.Start(); err != nil {
		nd.t.Fatal(err)
	}
	nd.exited = make(chan struct{})
	go func(cmd *exec.Cmd, ch chan struct{}) { cmd.Wait(); close(ch) }(nd.cmd, nd.exited)
}

// dumpGoroutines has a running node print every goroutine's stack to its
// log and exit (Go's SIGQUIT), for a failed test to show where it hung.
func (nd *node) dumpGoroutines() {
	if !nd.alive() {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case <-nd.exited:
	case <-time.After(5 * time.Second):
	}
}

// kill sends SIGKILL (no chance to clean up) and waits for the exit.
func (nd *node) kill() {
	if nd.cmd == nil {
		return
	}
	nd.cmd.Process.Signal(syscall.SIGKILL)
	<-nd.exited
	nd.cmd = nil
}

func (nd *node) alive() bool {
	if nd.cmd == nil {
		return false
	}
	select {
	case <-nd.exited:
		return false
	default:
		return true
	}
}

func (nd *node) url() string { return nd.scheme + "://" + nd.api }

// status asks a node about itself.
func (nd *node) status() (map[string]any, int) {
	resp, err := httpClient.Get(nd.url() + "/health")
	if err != nil {
		return nil, 0
	}
	defer resp.Body.Close()
	var st map[string]any
	json.NewDecoder(resp.Body).Decode(&st)
	return st, resp.StatusCode
}

// httpClient probes nodes' health and digests; it does not check their
// certificates (the CLI under test does).
var httpClient = &http.Client{Timeout: 2 * time.Second,
	Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}

// waitReady waits until every given node reports /health ready.
func (c *cluster) waitReady(nodes ...*node) {
	c.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for _, nd := range nodes {
		for {
			if _, code := nd.status(); code == http.StatusOK {
				break
			}
			if !nd.alive() {
				c.t.Fatalf("%s exited:\n%s", nd.name, nd.log.String())
			}
			if time.Now().After(deadline) {
				c.t.Fatalf("%s not ready after 30s:\n%s", nd.name, nd.log.String())
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

// leader returns the node every live node agrees leads.
func (c *cluster) leader() *node {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, nd := range c.nodes {
			if !nd.alive() {
				continue
			}
			if st, code := nd.status(); code == http.StatusOK && st["state"] == "Leader" {
				return nd
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	c.t.Fatal("no leader after 20s")
	return nil
}

// addrs lists the live nodes' URLs with followers first, so a command
// exercises forwarding to the leader.
func (c *cluster) addrs() string {
	lead := c.leader()
	var out []string
	for _, nd := range c.nodes {
		if nd != lead {
			out = append(out, nd.url())
		}
	}
	return strings.Join(append(out, lead.url()), ",")
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
}

// fiat runs the CLI against the cluster (FIAT_ADDR = every node).
func (c *cluster) fiat(dir string, args ...string) result {
	c.t.Helper()
	return c.fiatEnv(dir, nil, args...)
}

func (c *cluster) fiatEnv(dir string, env []string, args ...string) result {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, fiatBin, args...)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "FIAT_ADDR="+c.addrs()), c.env...)
	cmd.Env = append(cmd.Env, env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatal(err)
	}
	return result{out.String(), errb.String(), code}
}

// digests returns each live node's FSM digest once all agree, failing the
// test if they do not converge.
func (c *cluster) converged() string {
	c.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	var last map[string]string
	for time.Now().Before(deadline) {
		last = map[string]string{}
		seen := map[string]bool{}
		for _, nd := range c.nodes {
			if !nd.alive() {
				continue
			}
			req, _ := http.NewRequest(http.MethodGet, nd.url()+"/v1/debug/fsm", nil)
			if nd.tokenAdmin != "" {
				req.Header.Set("Authorization", "Bearer "+nd.tokenAdmin)
			}
			resp, err := httpClient.Do(req)
			if err != nil {
				continue
			}
			var d struct {
				Applied uint64 `json:"applied_index"`
				Digest  string `json:"digest"`
			}
			json.NewDecoder(resp.Body).Decode(&d)
			resp.Body.Close()
			key := fmt.Sprintf("%d/%s", d.Applied, d.Digest)
			last[nd.name] = key
			seen[key] = true
		}
		if len(seen) == 1 {
			for k := range seen {
				return k
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	c.t.Fatalf("the nodes' state machines did not converge: %v", last)
	return ""
}

func writeFiles(t testing.TB, dir string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}
