package executor

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Failpoints let a test kill the fiat process at a precise moment of an apply
// or recovery, to prove that recovery leaves the world entirely before or
// entirely after. FIAT_FAILPOINT=name kills at the first hit of name;
// name:N at the Nth; name:N:pause sleeps there for 3 s instead (for signal
// tests), after printing "fiat: failpoint NAME paused" to stderr so the test
// knows the moment has come. Unset in normal use, where failpoint costs one
// check.
const failpointEnv = "FIAT_FAILPOINT"

// FailPoints lists every failpoint, in the order an apply reaches them.
var FailPoints = []string{
	"after-begin",   // the transaction is open, nothing journaled
	"after-intent",  // an intent is durable, the provider not yet called
	"after-call",    // the provider call returned, its result not yet journaled
	"before-commit", // every operation done and journaled, not committed
	"after-commit",  // committed, nothing purged
	"after-purge",   // a retired object was purged, not yet journaled
	"before-end",    // everything purged, the transaction not yet ended
	"after-undo",    // during a rollback: an undo ran, not yet journaled
}

var fp = struct {
	once  sync.Once
	name  string
	nth   int
	pause bool
	mu    sync.Mutex
	count int
}{}

func failpoint(name string) {
	fp.once.Do(func() {
		v := os.Getenv(failpointEnv)
		if v == "" {
			return
		}
		fp.name, fp.nth = v, 1
		parts := strings.Split(v, ":")
		fp.name = parts[0]
		if len(parts) > 1 {
			if i, err := strconv.Atoi(parts[1]); err == nil && i > 0 {
				fp.nth = i
			}
		}
		fp.pause = len(parts) > 2 && parts[2] == "pause"
	})
	if fp.name == "" || fp.name != name {
		return
	}
	fp.mu.Lock()
	fp.count++
	hit := fp.count == fp.nth
	fp.mu.Unlock()
	if hit && fp.pause {
		fmt.Fprintf(os.Stderr, "fiat: failpoint %s paused\n", name)
		time.Sleep(3 * time.Second)
		return
	}
	if hit {
		// As abrupt as a power cut: no deferred cleanup runs.
		syscall.Kill(os.Getpid(), syscall.SIGKILL)
		select {}
	}
}
