package libvirt

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"

	golibvirt "github.com/digitalocean/go-libvirt"
	"libvirt.org/go/libvirtxml"
)

// DefaultURI is used when the provider block sets no uri.
const DefaultURI = "qemu:///system"

// conn is the provider's connection to one libvirtd. go-libvirt does not
// reconnect by itself; client dials again when the last connection dropped,
// so a call after a lost connection (typically the Read that settles an
// unknown outcome) reaches libvirtd again.
type conn struct {
	uri *url.URL

	mu sync.Mutex
	l  *golibvirt.Libvirt

	// host facts, read once from the capabilities (they do not change
	// while libvirtd runs on that host)
	hostOnce sync.Mutex
	host     *hostFacts
}

// hostFacts are what the provider needs to know about the host once.
type hostFacts struct {
	key        string // the host's UUID, else its hostname: identifies the host across URIs
	arch       string // e.g. x86_64
	domainType string // "kvm" when the host offers it for arch, else "qemu"
}

func newConn(rawURI string) (*conn, error) {
	u, err := url.Parse(rawURI)
	if err != nil {
		return nil, fmt.Errorf("parse libvirt uri %q: %w", rawURI, err)
	}
	if u.Scheme == "" {
		return nil, fmt.Errorf("parse libvirt uri %q: no scheme (want e.g. %s or qemu+tcp://host/system)", rawURI, DefaultURI)
	}
	return &conn{uri: u}, nil
}

// client returns a connected client, dialling if there is none. ctx bounds
// the wait; a dial that outlives ctx is closed when it completes.
func (c *conn) client(ctx context.Context) (*golibvirt.Libvirt, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l != nil && c.l.IsConnected() {
		return c.l, nil
	}
	type result struct {
		l   *golibvirt.Libvirt
		err error
	}
	done := make(chan result, 1)
	go func() {
		l, err := golibvirt.ConnectToURI(c.uri)
		done <- result{l, err}
	}()
	select {
	case r := <-done:
		if r.err != nil {
			return nil, fmt.Errorf("connect to libvirt at %s: %w", c.uri.Redacted(), r.err)
		}
		c.l = r.l
		return c.l, nil
	case <-ctx.Done():
		go func() {
			if r := <-done; r.err == nil {
				_ = r.l.Disconnect()
			}
		}()
		return nil, fmt.Errorf("connect to libvirt at %s: %w", c.uri.Redacted(), ctx.Err())
	}
}

func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.l == nil || !c.l.IsConnected() {
		c.l = nil
		return nil
	}
	err := c.l.Disconnect()
	c.l = nil
	return err
}

// poolLocks serialises the jobs on one storage pool: libvirt runs one job per
// pool at a time and fails the others with "pool has asynchronous jobs
// running". One table serves the whole process, keyed by host and the
// pool's directory, so two provider instances that reach one host by
// different URIs (aliases such as qemu:///system and
// qemu+tcp://127.0.0.1/system) take turns too. Entries are never removed (a
// few bytes per pool the process has touched).
//
// The key is the directory, not a name: libvirt allows one pool per
// directory, and whatever name a request carries (a pool replaced under
// another name, a volume found by its key, the scratch pool the provider
// defines on a directory for a moment), the pool libvirt serialises is the
// one on that directory. A job may take the lock of a directory above its
// own (removing the parents a pool's create made), never below, so no two
// jobs wait for each other in a circle.
type poolLocks struct {
	mu    sync.Mutex
	locks map[string]chan struct{}
}

var hostPoolLocks poolLocks

// poolClient takes the job lock of the pool a job runs on and the
// connection; the caller runs unlock when the job is done. where finds the
// pool's directory. It is asked again once the lock is held: when the
// answer changed while the job waited (the pool was undefined, or defined
// again on another directory), the job waits for that directory's lock
// instead. Errors read "op: cause".
func (p *Provider) poolClient(ctx context.Context, op string, where func(*golibvirt.Libvirt) (string, error)) (l *golibvirt.Libvirt, unlock func(), err error) {
	for tries := 0; ; tries++ {
		if l, err = p.client(ctx); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		dir, err := where(l)
		if err != nil {
			return nil, nil, err
		}
		if unlock, err = p.lockPool(ctx, dir); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		if l, err = p.client(ctx); err != nil {
			unlock()
			return nil, nil, fmt.Errorf("%s: %w", op, err)
		}
		again, err := where(l)
		if err == nil && again == dir {
			return l, unlock, nil
		}
		unlock()
		if err != nil {
			return nil, nil, err
		}
		if tries == 2 {
			return nil, nil, fmt.Errorf("%s: the pool moved from %s to %s while the job waited for it", op, dir, again)
		}
	}
}

// atDir is the where of a job whose pool's directory is known.
func atDir(dir string) func(*golibvirt.Libvirt) (string, error) {
	return func(*golibvirt.Libvirt) (string, error) { return dir, nil }
}

// lockPool waits for the lock of the pool on dir on this provider's host.
func (p *Provider) lockPool(ctx context.Context, dir string) (unlock func(), err error) {
	dir = filepath.Clean(dir)
	host, err := p.hostKey(ctx)
	if err != nil {
		return nil, fmt.Errorf("wait for pool %s: %w", dir, err)
	}
	return hostPoolLocks.lock(ctx, host+"\x00"+dir)
}

// lock waits for the lock of key or for ctx.
func (pl *poolLocks) lock(ctx context.Context, key string) (unlock func(), err error) {
	dir := key[strings.IndexByte(key, 0)+1:]
	pl.mu.Lock()
	if pl.locks == nil {
		pl.locks = make(map[string]chan struct{})
	}
	ch, ok := pl.locks[key]
	if !ok {
		ch = make(chan struct{}, 1)
		pl.locks[key] = ch
	}
	pl.mu.Unlock()
	select {
	case ch <- struct{}{}:
		return func() { <-ch }, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("wait for pool %s: %w", dir, ctx.Err())
	}
}

// newUUID returns the UUID a created object gets. It is derived from the
// operation id (plus address), so the identity is known before the call and
// a replayed operation names the same object; without an op id it is random.
func newUUID(opID, address string) golibvirt.UUID {
	var u golibvirt.UUID
	if opID == "" {
		_, _ = rand.Read(u[:])
	} else {
		sum := sha256.Sum256([]byte("fiat\x00" + opID + "\x00" + address))
		copy(u[:], sum[:])
	}
	u[6] = u[6]&0x0f | 0x80 // version 8 (custom)
	u[8] = u[8]&0x3f | 0x80 // RFC 4122 variant
	return u
}

func formatUUID(u golibvirt.UUID) string {
	h := hex.EncodeToString(u[:])
	return h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
}

func parseUUID(s string) (golibvirt.UUID, error) {
	var u golibvirt.UUID
	h := strings.ReplaceAll(s, "-", "")
	if len(h) != 32 {
		return u, fmt.Errorf("invalid uuid %q", s)
	}
	if _, err := hex.Decode(u[:], []byte(h)); err != nil {
		return u, fmt.Errorf("invalid uuid %q", s)
	}
	return u, nil
}

// facts reads the host's capabilities once per connection.
func (c *conn) facts(ctx context.Context) (*hostFacts, error) {
	c.hostOnce.Lock()
	defer c.hostOnce.Unlock()
	if c.host != nil {
		return c.host, nil
	}
	l, err := c.client(ctx)
	if err != nil {
		return nil, err
	}
	x, err := l.ConnectGetCapabilities()
	if err != nil {
		return nil, readErr("read host capabilities", err)
	}
	var caps libvirtxml.Caps
	if err := caps.Unmarshal(x); err != nil {
		return nil, fmt.Errorf("read host capabilities: parse XML: %w", err)
	}
	f := &hostFacts{key: caps.Host.UUID, arch: "x86_64", domainType: "qemu"}
	if caps.Host.CPU != nil && caps.Host.CPU.Arch != "" {
		f.arch = caps.Host.CPU.Arch
	}
	if f.key == "" {
		if f.key, err = l.ConnectGetHostname(); err != nil {
			return nil, readErr("read host name", err)
		}
	}
	for _, g := range caps.Guests {
		if g.OSType != "hvm" || g.Arch.Name != f.arch {
			continue
		}
		for _, d := range g.Arch.Domains {
			if d.Type == "kvm" {
				f.domainType = "kvm"
			}
		}
	}
	c.host = f
	return f, nil
}

// local reports whether libvirtd runs on this machine (a unix socket, or
// TCP to a loopback address): only then may the provider touch the host's
// files directly.
func (c *conn) local() bool {
	transport := "unix"
	if _, t, ok := strings.Cut(c.uri.Scheme, "+"); ok {
		transport = t
	}
	switch transport {
	case "unix":
		return c.uri.Host == ""
	case "tcp", "tls":
		h := c.uri.Hostname()
		if h == "localhost" {
			return true
		}
		ip := net.ParseIP(h)
		return ip != nil && ip.IsLoopback()
	}
	return false
}

func (p *Provider) hostKey(ctx context.Context) (string, error) {
	if p.conn == nil {
		return "", errors.New("libvirt provider is not configured")
	}
	f, err := p.conn.facts(ctx)
	if err != nil {
		return "", err
	}
	return f.key, nil
}
