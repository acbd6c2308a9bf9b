package server_test

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// git runs the git CLI in dir and returns its combined output.
func git(t testing.TB, dir string, args ...string) (string, error) {
	t.Helper()
	// A hung push fails its test (with the nodes' goroutines in the log),
	// not the whole package at the test timeout.
	ctx, cancel := context.WithTimeout(context.Background(), gitTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, "git", args...)
	cmd.WaitDelay = 5 * time.Second // git's helpers may hold the output open
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=Ann Operator", "GIT_AUTHOR_EMAIL=ann@example.com",
		"GIT_COMMITTER_NAME=Ann Operator", "GIT_COMMITTER_EMAIL=ann@example.com", "GIT_TERMINAL_PROMPT=0")
	out, err := cmd.CombinedOutput()
	return string(out), err
}

const gitTimeout = 2 * time.Minute

func mustGit(t testing.TB, dir string, args ...string) string {
	t.Helper()
	out, err := git(t, dir, args...)
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return out
}

// commitFiles writes files into the work tree and commits them all.
func commitFiles(t testing.TB, dir, msg string, files map[string]string) {
	t.Helper()
	for name, src := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if src == "" {
			os.Remove(p)
			continue
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	mustGit(t, dir, "add", "-A")
	mustGit(t, dir, "commit", "-q", "-m", msg)
}

func gitConfig(t testing.TB, extra string) string {
	p := filepath.Join(t.TempDir(), "server.hcl")
	os.WriteFile(p, []byte(`
repo "infra" {
  branch = "main"
  stacks = { web = "stacks/web", db = "stacks/db" }
}
`+extra), 0o600)
	return p
}

func uniqName(prefix string) string {
	b := make([]byte, 3)
	rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

// A push applies before the ref moves: a good push (to a follower, which
// sends git to the leader) creates the objects and moves the branch, its
// progress streamed as remote: lines; a push whose apply rolls back is
// rejected with the precise error and libvirt keeps nothing new; a commit
// that changes nothing for a stack makes no run; a forced non-fast-forward
// push is rejected.
func TestPushToApply(t *testing.T) {
	l := requireLibvirt(t)
	c := startCluster(t, 3, nil, "-config", gitConfig(t, ""))
	lead := c.leader()
	var follower *node
	for _, nd := range c.nodes {
		if nd != lead {
			follower = nd
		}
	}
	work := t.TempDir()
	mustGit(t, work, "init", "-q", "-b", "main")
	mustGit(t, work, "remote", "add", "origin", follower.url()+"/git/infra.git")
	good, bad := uniqName("fiatgit-"), uniqName("fiatgit-")
	t.Cleanup(func() { removePool(good); removePool(bad) })

	commitFiles(t, work, "web: a pool", map[string]string{
		"stacks/web/main.tf": fmt.Sprintf("resource \"libvirt_pool\" \"p\" {\n  name = %q\n  path = \"/var/lib/libvirt/images/%s\"\n}\n", good, good),
		"stacks/db/main.tf":  randomConfig,
	})
	out, err := git(t, work, "push", "origin", "main")
	if err != nil {
		t.Fatalf("good push failed: %v\n%s", err, out)
	}
	for _, want := range []string{"remote: libvirt_pool.p: Creating...", "remote: fiat: stack web applied", "remote: fiat: stack db applied", "main -> main"} {
		if !strings.Contains(out, want) {
			t.Errorf("push output lacks %q:\n%s", want, out)
		}
	}
	if _, err := l.StoragePoolLookupByName(good); err != nil {
		t.Errorf("the good push did not create pool %s: %v", good, err)
	}
	head := strings.TrimSpace(mustGit(t, work, "rev-parse", "HEAD"))
	if remote := mustGit(t, work, "ls-remote", "origin", "main"); !strings.Contains(remote, head+"\trefs/heads/main") {
		t.Errorf("the branch did not move to %s: %s", head, remote)
	}
	runs := c.fiat(work, "runs", "-json", "web")
	if !strings.Contains(runs.stdout, `"commit":"`+head+`"`) || !strings.Contains(runs.stdout, `"source":"git"`) {
		t.Errorf("the run does not record its commit:\n%s", runs.stdout)
	}

	// A failing push: a network, then a pool libvirt cannot create; the
	// network is rolled back, the push rejected, the branch unmoved.
	netName := uniqName("fiatgn-")
	t.Cleanup(func() {
		exec.Command("virsh", "net-destroy", netName).Run()
		exec.Command("virsh", "net-undefine", netName).Run()
	})
	commitFiles(t, work, "web: a network and a broken pool", map[string]string{
		"stacks/web/bad.tf": fmt.Sprintf(`resource "libvirt_network" "n" {
  name = %q
  mode = "isolated"
}
resource "libvirt_pool" "bad" {
  name       = %q
  path       = "/proc/%s"
  depends_on = [libvirt_network.n]
}
`, netName, bad, bad),
	})
	out, err = git(t, work, "push", "origin", "main")
	if err == nil {
		t.Fatalf("a push whose apply rolls back was accepted:\n%s", out)
	}
	for _, want := range []string{"! [remote rejected] main -> main (apply rolled back)", "remote: Error: create libvirt_pool.bad (stacks/web/bad.tf:5) failed",
		"the branch stays at " + head[:12]} {
		if !strings.Contains(out, want) {
			t.Errorf("rejected push output lacks %q:\n%s", want, out)
		}
	}
	if remote := mustGit(t, work, "ls-remote", "origin", "main"); !strings.Contains(remote, head+"\trefs/heads/main") {
		t.Errorf("the branch moved after a rolled-back apply: %s", remote)
	}
	if _, err := l.StoragePoolLookupByName(bad); err == nil {
		t.Errorf("pool %s exists after the rollback", bad)
	}
	if _, err := l.NetworkLookupByName(netName); err == nil {
		t.Errorf("network %s exists after the rollback", netName)
	}

	// Back out the broken change, then a commit outside every stack: the
	// branch moves, no run is made.
	mustGit(t, work, "reset", "-q", "--hard", head)
	before := strings.Count(c.fiat(work, "runs").stdout, "\n")
	commitFiles(t, work, "docs", map[string]string{"README.md": "infra\n"})
	if out, err := git(t, work, "push", "origin", "main"); err != nil || strings.Contains(out, "fiat: applying") {
		t.Fatalf("a commit that changes no stack: %v\n%s", err, out)
	}
	if after := strings.Count(c.fiat(work, "runs").stdout, "\n"); after != before {
		t.Errorf("a commit that changes no stack made runs: %d → %d lines", before, after)
	}

	// A forced non-fast-forward push is refused by the server.
	mustGit(t, work, "reset", "-q", "--hard", "HEAD~1")
	commitFiles(t, work, "rewrite", map[string]string{"stacks/db/other.tf": `resource "random_id" "o" { byte_length = 2 }`})
	out, err = git(t, work, "push", "-f", "origin", "main")
	if err == nil || !strings.Contains(out, "non-fast-forward") {
		t.Errorf("a forced non-fast-forward push: %v\n%s", err, out)
	}
	if r := c.fiat(work, "destroy", "-auto-approve", "-stack", "web", filepath.Join(work, "stacks/web")); r.code != 0 {
		t.Errorf("destroy web:\n%s", r)
	}
}

// Two pushes at once to one repository are serialised: the second is
// decided after the first has applied (and is refused, since the branch
// moved under it). A preview plan of the same stack returns while a push
// applies. Repository and stack names cannot leave the data directory.
func TestPushesSerialiseAndPreviewsDoNotWait(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	c := startCluster(t, 1, nil, "-config", gitConfig(t, ""))
	url := c.nodes[0].url() + "/git/infra.git"
	a, b := t.TempDir(), t.TempDir()
	for _, w := range []string{a, b} {
		mustGit(t, w, "init", "-q", "-b", "main")
		mustGit(t, w, "remote", "add", "origin", url)
	}
	commitFiles(t, a, "base", map[string]string{"stacks/db/main.tf": randomConfig})
	mustGit(t, a, "push", "-q", "origin", "main")
	mustGit(t, b, "pull", "-q", "origin", "main")

	commitFiles(t, a, "slow", map[string]string{"stacks/db/slow.tf": `resource "time_sleep" "s" { create_duration = "8s" }`})
	commitFiles(t, b, "other", map[string]string{"stacks/db/b.tf": `resource "random_id" "b" { byte_length = 2 }`})
	type res struct {
		out string
		err error
	}
	first := make(chan res, 1)
	go func() { out, err := git(t, a, "push", "origin", "main"); first <- res{out, err} }()
	waitFor(t, 20*time.Second, func() bool { return strings.Contains(c.fiat(a, "runs", "db").stdout, "applying") })
	// The preview: plan the other clone's branch against the live store.
	prev := c.fiat(b, "plan", "-markdown", "-detailed-exitcode", "-stack", "db", filepath.Join(b, "stacks/db"))
	if prev.code != 2 || !strings.Contains(prev.stdout, "random_id.b") {
		t.Errorf("preview during a push:\n%s", prev)
	}
	select {
	case r := <-first:
		t.Fatalf("the slow push ended before the preview was checked:\n%s", r.out)
	default:
	}
	second, err := git(t, b, "push", "origin", "main")
	r1 := <-first
	if r1.err != nil || !strings.Contains(r1.out, "fiat: stack db applied") {
		t.Fatalf("first push: %v\n%s", r1.err, r1.out)
	}
	if err == nil || !strings.Contains(second, "fetch first") && !strings.Contains(second, "non-fast-forward") && !strings.Contains(second, "rejected") {
		t.Errorf("the second, concurrent push should be refused once the first moved the branch: %v\n%s", err, second)
	}

	// Names that would leave the data directory.
	resp, err := http.Get(c.nodes[0].url() + "/git/..%2f..%2fetc.git/info/refs?service=git-upload-pack")
	if err == nil {
		if resp.StatusCode != http.StatusNotFound {
			t.Errorf("repository path traversal answered %s", resp.Status)
		}
		resp.Body.Close()
	}
	bad := filepath.Join(t.TempDir(), "bad.hcl")
	os.WriteFile(bad, []byte(`repo "x" { stacks = { web = "../../etc" } }`), 0o600)
	out, err := exec.Command(fiatBin, "server", "-config", bad, "-name", "z", "-data-dir", t.TempDir(), "-api", "127.0.0.1:0", "-raft", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "leaves the repository") {
		t.Errorf("a stack directory outside the repository was accepted: %v\n%s", err, out)
	}
}

// A watched branch: each new commit makes exactly one run; a commit whose
// run failed is not retried by polls, webhooks or a restart, only by a
// person (fiat runs retry); a webhook with a bad signature is refused and
// starts nothing, a good one makes the server fetch at once.
func TestWatchedBranch(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	upstream := t.TempDir()
	mustGit(t, upstream, "init", "-q", "-b", "main")
	commitFiles(t, upstream, "one", map[string]string{"app/main.tf": randomConfig})
	const secret = "hook-secret-0123456789"
	conf := gitConfig(t, fmt.Sprintf(`
source "git" "app" {
  url            = "file://%s"
  branch         = "main"
  path           = "app"
  poll           = "1s"
  auto_apply     = true
  webhook_secret = %q
}
`, upstream, secret))
	c := startCluster(t, 1, nil, "-config", conf)
	applyRuns := func(list string) []string {
		var ids []string
		for _, line := range strings.Split(list, "\n") {
			if strings.Contains(line, "apply") {
				ids = append(ids, strings.Fields(line)[0])
			}
		}
		return ids
	}
	runsFor := func() []string { return applyRuns(c.fiat(upstream, "runs", "app").stdout) }
	waitFor(t, 20*time.Second, func() bool { return len(runsFor()) == 1 })
	// Several polls later there is still one run for that commit.
	waitChecks(t, c.nodes[0], 3)
	if n := len(runsFor()); n != 1 {
		t.Fatalf("one commit made %d runs", n)
	}

	// A failing commit: its run fails once.
	commitFiles(t, upstream, "broken", map[string]string{"app/bad.tf": `resource "local_file" "f" {
  filename = "/proc/fiat-cannot-write-here"
  content  = "x"
}`})
	// Wait for the second run to settle: it is listed while still applying.
	var list string
	waitFor(t, 20*time.Second, func() bool {
		list = c.fiat(upstream, "runs", "app").stdout // one listing for every check
		return len(applyRuns(list)) == 2 && !strings.Contains(list, "applying") && !strings.Contains(list, "planning") && !strings.Contains(list, "queued")
	})
	if !strings.Contains(list, "rolled back") && !strings.Contains(list, "failed") {
		t.Fatalf("the broken commit's run did not fail:\n%s", list)
	}
	failedID := runsFor()[0]
	// Restart: the failed commit is not run again.
	c.nodes[0].kill()
	c.nodes[0].start()
	c.waitReady(c.nodes[0])
	waitChecks(t, c.nodes[0], 3)
	if n := len(runsFor()); n != 2 {
		t.Fatalf("after a restart the failed commit ran again: %d runs\n%s", n, c.fiat(upstream, "runs", "app").stdout)
	}
	// A person retries it: a new run of the same commit.
	retry := c.fiat(upstream, "runs", "retry", failedID)
	if retry.code == 0 || len(runsFor()) != 3 {
		t.Errorf("retry of a still-broken commit should run once more and fail:\n%s", retry)
	}

	// Webhooks: a bad signature is refused; a good one is accepted.
	payload := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte(secret))
	mac.Write(payload)
	good := "sha256=" + hex.EncodeToString(mac.Sum(nil))
	for sig, want := range map[string]int{"sha256=" + strings.Repeat("0", 64): 401, "": 401, good: 202} {
		req, _ := http.NewRequest(http.MethodPost, c.nodes[0].url()+"/hooks/github", bytes.NewReader(payload))
		if sig != "" {
			req.Header.Set("X-Hub-Signature-256", sig)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("webhook with signature %q: %s, want %d", sig, resp.Status, want)
		}
	}
	req, _ := http.NewRequest(http.MethodPost, c.nodes[0].url()+"/hooks/gitlab", bytes.NewReader(payload))
	req.Header.Set("X-Gitlab-Token", "wrong")
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != 401 {
		t.Errorf("gitlab webhook with a wrong token: %v %v", resp.Status, err)
	}
}

// waitChecks waits until the node has fetched the watched branch n more
// times (its fiat_git_source_checks_total metric).
func waitChecks(t *testing.T, nd *node, n int) {
	t.Helper()
	read := func() int {
		resp, err := httpClient.Get(nd.url() + "/metrics")
		if err != nil {
			return -1
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		for _, line := range strings.Split(string(b), "\n") {
			if strings.HasPrefix(line, "fiat_git_source_checks_total{") {
				var v float64
				fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
				return int(v)
			}
		}
		return -1
	}
	start := -1
	waitFor(t, 30*time.Second, func() bool { start = read(); return start >= 0 })
	waitFor(t, 60*time.Second, func() bool { return read() >= start+n })
}

// The pre-merge preview as the CI examples run it (the plan command of
// examples/ci/*.yml, run by bash): Markdown on stdout, exit 2 for changes,
// nothing applied; a warning when the branch is not based on the commit
// the stack was last applied from.
func TestCIPreview(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	c := startCluster(t, 1, nil, "-config", gitConfig(t, ""))
	work := t.TempDir()
	mustGit(t, work, "init", "-q", "-b", "main")
	mustGit(t, work, "remote", "add", "origin", c.nodes[0].url()+"/git/infra.git")
	commitFiles(t, work, "base", map[string]string{"stacks/db/main.tf": randomConfig})
	mustGit(t, work, "push", "-q", "origin", "main")
	base := strings.TrimSpace(mustGit(t, work, "rev-parse", "HEAD"))
	mustGit(t, work, "checkout", "-q", "-b", "feature")
	commitFiles(t, work, "feature", map[string]string{"stacks/db/b.tf": `resource "random_id" "b" { byte_length = 2 }`})

	for _, file := range []string{"github-actions.yml", "gitlab-ci.yml"} {
		src, err := os.ReadFile(filepath.Join("..", "examples", "ci", file))
		if err != nil {
			t.Fatal(err)
		}
		var line string
		for _, l := range strings.Split(string(src), "\n") {
			if strings.Contains(l, "fiat plan -markdown") {
				line = strings.TrimPrefix(strings.TrimSpace(l), "- ")
			}
		}
		if line == "" {
			t.Fatalf("%s has no fiat plan line", file)
		}
		preview := func(baseCommit string) (string, int) {
			os.Remove(filepath.Join(work, "plan.md"))
			cmd := exec.Command("bash", "-c", line+"\necho \"exit=${code:-$?}\"")
			cmd.Dir = work
			cmd.Env = append(os.Environ(), "PATH="+filepath.Dir(fiatBin)+":"+os.Getenv("PATH"), "FIAT_ADDR="+c.nodes[0].url(),
				"STACK=db", "DIR=stacks/db", "FIAT_BASE_COMMIT="+baseCommit)
			out, err := cmd.CombinedOutput()
			if err != nil && !strings.Contains(string(out), "exit=") {
				t.Fatalf("%s: %v\n%s", line, err, out)
			}
			md, _ := os.ReadFile(filepath.Join(work, "plan.md"))
			code := -1
			fmt.Sscanf(string(out)[strings.LastIndex(string(out), "exit="):], "exit=%d", &code)
			return string(md), code
		}
		md, code := preview(base)
		if code != 2 || !strings.Contains(md, "random_id.b") || strings.Contains(md, "WARNING") {
			t.Errorf("%s preview based on the applied commit: exit %d\n%s", file, code, md)
		}
		if strings.Contains(c.fiat(work, "state", "list", "-stack", "db", filepath.Join(work, "stacks/db")).stdout, "random_id.b") {
			t.Fatalf("a preview applied something")
		}
		md, _ = preview("0123456789abcdef0123456789abcdef01234567")
		if !strings.Contains(md, "[!WARNING]") || !strings.Contains(md, "last applied from commit "+base[:12]) {
			t.Errorf("%s preview based on another commit has no warning:\n%s", file, md)
		}
	}

	// A preview's saved plan applies after the merge only if nothing it
	// read has changed: one made before another change to the stack is
	// refused, naming the entity; a fresh one applies.
	dbDir := filepath.Join(work, "stacks/db")
	stalePlan := filepath.Join(t.TempDir(), "stale.fiat")
	if r := c.fiat(work, "plan", "-out", stalePlan, "-stack", "db", dbDir); r.code != 0 {
		t.Fatalf("preview -out:\n%s", r)
	}
	mustGit(t, work, "checkout", "-q", "main")
	commitFiles(t, work, "rotate a", map[string]string{"stacks/db/main.tf": `resource "random_id" "a" { byte_length = 8 }`})
	mustGit(t, work, "push", "-q", "origin", "main")
	r := c.fiat(work, "apply", stalePlan)
	if r.code == 0 || !strings.Contains(r.stderr, "random_id.a") {
		t.Errorf("a preview plan made before random_id.a changed was applied:\n%s", r)
	}
	mustGit(t, work, "checkout", "-q", "feature")
	mustGit(t, work, "rebase", "-q", "main")
	fresh := filepath.Join(t.TempDir(), "fresh.fiat")
	if r := c.fiat(work, "plan", "-out", fresh, "-stack", "db", dbDir); r.code != 0 {
		t.Fatalf("preview -out after rebase:\n%s", r)
	}
	if r := c.fiat(work, "apply", fresh); r.code != 0 || !strings.Contains(r.stdout, "1 created") {
		t.Errorf("a fresh preview plan did not apply:\n%s", r)
	}
}

// Followers mirror the hosted repositories: after the leader is killed,
// the new leader has the branch, and the next push is a fast-forward it
// applies.
func TestPushAfterFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	c := startCluster(t, 3, nil, "-config", gitConfig(t, ""))
	work := t.TempDir()
	mustGit(t, work, "init", "-q", "-b", "main")
	mustGit(t, work, "remote", "add", "origin", c.leader().url()+"/git/infra.git")
	commitFiles(t, work, "one", map[string]string{"stacks/db/main.tf": randomConfig})
	mustGit(t, work, "push", "-q", "origin", "main")
	head := strings.TrimSpace(mustGit(t, work, "rev-parse", "HEAD"))
	// Every node's copy reaches the pushed commit.
	waitFor(t, 20*time.Second, func() bool {
		for _, nd := range c.nodes {
			st, _ := nd.status()
			heads, _ := st["repo_heads"].(map[string]any)
			if heads["infra"] != head {
				return false
			}
		}
		return true
	})
	old := c.leader()
	old.kill()
	lead := c.leader()
	mustGit(t, work, "remote", "set-url", "origin", lead.url()+"/git/infra.git")
	commitFiles(t, work, "two", map[string]string{"stacks/db/b.tf": `resource "random_id" "b" { byte_length = 2 }`})
	if out, err := git(t, work, "push", "origin", "main"); err != nil || !strings.Contains(out, "fiat: stack db applied") {
		t.Fatalf("push to the new leader %s: %v\n%s", lead.name, err, out)
	}
	clone := t.TempDir()
	mustGit(t, clone, "clone", "-q", lead.url()+"/git/infra.git", ".")
	if log := mustGit(t, clone, "log", "--oneline"); !strings.Contains(log, "one") || !strings.Contains(log, "two") {
		t.Errorf("the new leader's repository lacks history:\n%s", log)
	}
}
