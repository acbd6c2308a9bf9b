package server_test

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// chromium finds Debian's chromium (scripts/libvirtd.sh installs it for
// the tests); without it the test skips, or fails with CI=true.
func chromium(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs chromium")
	}
	for _, p := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatal("chromium is not installed (CI=true, so this fails): apt-get install chromium")
	}
	t.Skip("chromium is not installed: apt-get install chromium")
	return ""
}

// The page of runs in a real headless browser: a running apply's page
// shows its events as they happen and then its outcome; a failed run's
// page shows its precise error; the index lists the stacks and runs.
func TestRunsPageInBrowser(t *testing.T) {
	bin := chromium(t)
	c := startCluster(t, 1, nil)
	slow, broken := t.TempDir(), t.TempDir()
	writeFiles(t, slow, map[string]string{"main.tf": `resource "time_sleep" "s" { create_duration = "8s" }`})
	writeFiles(t, broken, map[string]string{"main.tf": `resource "local_file" "f" {
  filename = "/proc/fiat-ui-cannot-write"
  content  = "x"
}`})
	if r := c.fiat(broken, "apply", "-auto-approve", "-stack", "broken", "."); r.code == 0 {
		t.Fatalf("the broken apply succeeded:\n%s", r)
	}
	done := make(chan result, 1)
	go func() { done <- c.fiat(slow, "apply", "-auto-approve", "-stack", "slow", ".") }()
	var id string
	waitFor(t, 20*time.Second, func() bool {
		var runs []struct{ ID, Status string }
		json.Unmarshal([]byte(c.fiat(slow, "runs", "-json", "slow").stdout), &runs)
		if len(runs) > 0 && runs[0].Status == "applying" {
			id = runs[0].ID
		}
		return id != ""
	})

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.Headless,
		chromedp.Flag("disable-gpu", true), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel := chromedp.NewContext(actx)
	defer cancel()
	base := c.nodes[0].url()
	// text reads an element's visible text, waiting up to 10s for it.
	text := func(sel string) string {
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		s, _ := chromedp.Run(tctx, chromedp.Text(sel))
		return s
	}
	nav := func(path string) {
		if err := chromedp.Do(ctx, chromedp.Navigate(base+path)); err != nil {
			t.Fatalf("open %s: %v", path, err)
		}
	}

	// The running apply: its events arrive while it runs, then the page
	// reloads with the outcome.
	nav("/ui/runs/" + id)
	var log string
	if title := text("h1"); !strings.Contains(title, "applying") {
		t.Errorf("the running run's page says %q, want applying", title)
	}
	waitFor(t, 20*time.Second, func() bool {
		log = text("#log")
		return strings.Contains(log, "time_sleep.s: Creating...")
	})
	select {
	case r := <-done:
		t.Fatalf("the apply ended before its events were seen live:\n%s", r)
	default:
	}
	waitFor(t, 20*time.Second, func() bool {
		return strings.Contains(text("h1"), "applied") && strings.Contains(text("#log"), "Apply complete: 1 created")
	})
	if r := <-done; r.code != 0 {
		t.Errorf("slow apply:\n%s", r)
	}

	// The failed run: its precise error.
	var runs []struct{ ID string }
	json.Unmarshal([]byte(c.fiat(broken, "runs", "-json", "broken").stdout), &runs)
	if len(runs) == 0 {
		t.Fatal("no run of stack broken")
	}
	nav("/ui/runs/" + runs[0].ID)
	if errText := text("#error"); !strings.Contains(errText, "local_file.f") || !strings.Contains(errText, "main.tf:1") {
		t.Errorf("the failed run's page does not show its precise error: %q", errText)
	}

	// The index: both stacks and their runs.
	nav("/ui")
	body := text("body")
	for _, want := range []string{"slow", "broken", id} {
		if !strings.Contains(body, want) {
			t.Errorf("the index lacks %q:\n%s", want, body)
		}
	}
}
