// Package testenv holds what the integration tests of several packages
// share: reaching the real libvirtd, and a buffer for a process's output.
package testenv

import (
	"net/url"
	"os"
	"strings"
	"sync"
	"testing"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// RequireLibvirt connects to the local libvirtd (started by
// scripts/libvirtd.sh). Without it the test skips, or fails when CI=true:
// CI must not count a skipped integration test as a pass.
func RequireLibvirt(t testing.TB) *golibvirt.Libvirt {
	t.Helper()
	if testing.Short() {
		t.Skip("-short: needs libvirtd")
	}
	u, _ := url.Parse("qemu:///system")
	l, err := golibvirt.ConnectToURI(u)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("libvirtd is not reachable (CI=true, so this fails): %v", err)
		}
		t.Skipf("libvirtd is not reachable (%v); run: bash scripts/libvirtd.sh", err)
	}
	t.Cleanup(func() { l.Disconnect() })
	return l
}

// SyncBuffer collects a process's output: safe for a writer goroutine and
// a reader.
type SyncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// GuestImage is the test guest's disk image (built by
// scripts/guest-image.sh: Linux and busybox asking for DHCP leases), or
// FIAT_GUEST_IMAGE. Without it the test skips, or fails when CI=true.
func GuestImage(t testing.TB) string {
	t.Helper()
	p := os.Getenv("FIAT_GUEST_IMAGE")
	if p == "" {
		p = "/var/lib/fiat-test/guest-v2.qcow2"
	}
	if _, err := os.Stat(p); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no test guest image (CI=true, so this fails): %v; make libvirtd builds it", err)
		}
		t.Skipf("no test guest image (%v); run: bash scripts/guest-image.sh", err)
	}
	return p
}
