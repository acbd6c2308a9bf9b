package executor

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"fiat/state"
)

// The lease is short and renewed, so a crashed apply's lock frees itself
// soon; a holder on this host whose process is gone is taken over at once.
const (
	defaultLockTTL = 30 * time.Second
	renewEvery     = 3 // renewals per TTL
)

// Holder names this process in a lock: "fiat pid N on HOST (pidns X)". The
// pid namespace tells two containers sharing a hostname apart.
func Holder() string {
	host, _ := os.Hostname()
	return fmt.Sprintf("fiat pid %d on %s (pidns %s)", os.Getpid(), host, pidNamespace())
}

func pidNamespace() string {
	ns, err := os.Readlink("/proc/self/ns/pid")
	if err != nil {
		return "unknown"
	}
	return strings.TrimSuffix(strings.TrimPrefix(ns, "pid:["), "]")
}

// deadLocalHolder reports whether holder is a fiat process in this host's
// pid namespace that no longer runs.
func deadLocalHolder(holder string) bool {
	f := strings.Fields(holder) // fiat pid N on HOST (pidns X)
	if len(f) != 7 || f[0] != "fiat" || f[1] != "pid" || f[3] != "on" || f[5] != "(pidns" {
		return false
	}
	pid, err := strconv.Atoi(f[2])
	me, _ := os.Hostname()
	if err != nil || pid <= 0 || f[4] != me || strings.TrimSuffix(f[6], ")") != pidNamespace() {
		return false
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// lease is a held stack lock, renewed in the background until released.
type lease struct {
	store  Store
	ttl    time.Duration
	mu     sync.Mutex
	lock   state.Lock
	stop   chan struct{}
	done   chan struct{}
	lostFn func(error)
}

// acquire takes the stack's lock. A lock held by a dead fiat process on this
// host is released first (the crashed run's journal is then recovered).
func acquire(ctx context.Context, store Store, stack, holder string, ttl time.Duration) (*lease, error) {
	if ttl <= 0 {
		ttl = defaultLockTTL
	}
	lock, err := store.Lock(ctx, stack, holder, ttl)
	var le *state.LockedError
	if errors.As(err, &le) && deadLocalHolder(le.Lock.Holder) {
		if _, ferr := store.ForceUnlock(ctx, le.Lock.ID); ferr == nil {
			lock, err = store.Lock(ctx, stack, holder, ttl)
		}
	}
	if err != nil {
		return nil, err
	}
	l := &lease{store: store, ttl: ttl, lock: lock, stop: make(chan struct{}), done: make(chan struct{})}
	go l.renew()
	return l, nil
}

func (l *lease) current() state.Lock {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.lock
}

// onLost registers what to do if the lease cannot be renewed: the apply
// must stop, since the store will refuse its writes anyway.
func (l *lease) onLost(fn func(error)) {
	l.mu.Lock()
	l.lostFn = fn
	l.mu.Unlock()
}

func (l *lease) renew() {
	defer close(l.done)
	t := time.NewTicker(l.ttl / renewEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(context.Background(), l.ttl/renewEvery)
		lock, err := l.store.Renew(ctx, l.current(), l.ttl)
		cancel()
		l.mu.Lock()
		if err == nil {
			l.lock = lock
		}
		fn := l.lostFn
		// Fenced: another run took the stack. Not the leader: this node
		// can no longer prove its lease, and a new leader settles the
		// transaction. Either way no further provider call may be made.
		lost := errors.Is(err, state.ErrFenced) || errors.Is(err, state.ErrNotLeader)
		if lost {
			l.lostFn = nil // report once; keep renewing whatever lock reacquire sets
		}
		l.mu.Unlock()
		if lost && fn != nil {
			fn(fmt.Errorf("lost the stack lock: %w", err))
		}
	}
}

// check renews the lease now; it fails with ErrFenced if another run has
// taken the stack over (this run was paused or partitioned past its lease).
func (l *lease) check(ctx context.Context) error {
	lock, err := l.store.Renew(ctx, l.current(), l.ttl)
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.lock = lock
	l.mu.Unlock()
	return nil
}

// reacquire takes the stack's lock again after the lease lapsed; it fails
// if another run holds it now.
func (l *lease) reacquire(ctx context.Context) error {
	cur := l.current()
	lock, err := l.store.Lock(ctx, cur.Stack, cur.Holder, l.ttl)
	var le *state.LockedError
	if errors.As(err, &le) && le.Lock.ID == cur.ID {
		return nil // still ours: the renewal failed, the lease did not
	}
	if err != nil {
		return err
	}
	l.mu.Lock()
	l.lock = lock
	l.mu.Unlock()
	return nil
}

// release stops renewing and gives the lock back. If that fails the lock
// still expires by itself at the end of its lease.
func (l *lease) release(ctx context.Context) error {
	close(l.stop)
	<-l.done
	lock := l.current()
	err := l.store.Unlock(context.WithoutCancel(ctx), lock)
	if errors.Is(err, state.ErrFenced) {
		return nil // another run holds the stack now: nothing of ours to release
	}
	if err != nil {
		return fmt.Errorf("release the lock of stack %s (it expires by itself by %s): %w", lock.Stack, lock.Expires.Format(time.RFC3339), err)
	}
	return nil
}
