package libvirt

import (
	"context"
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	golibvirt "github.com/digitalocean/go-libvirt"
)

// Moving bytes in and out of volumes (sources, cloud-init seeds).

// upload streams content into vol and refreshes the pool, so libvirt reads
// the new bytes (format, capacity) before anyone looks. The caller holds
// the pool's lock.
func upload(ctx context.Context, l *golibvirt.Libvirt, pool golibvirt.StoragePool, vol golibvirt.StorageVol, c *volumeContent, op string) error {
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	r, err := c.open()
	if err != nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	defer r.Close()
	sr := &sourceErrReader{r: io.LimitReader(r, int64(c.size))}
	if err := l.StorageVolUpload(vol, sr, 0, c.size, 0); err != nil {
		if sr.err != nil {
			// The source failed (a download cut short), not libvirt.
			return fmt.Errorf("%s: %w", op, sr.err)
		}
		return mutErr(op+": upload", err)
	}
	// libvirt refreshes the pool by itself after an upload, in the
	// background; this refresh waits for that one and makes the result
	// visible now.
	if err := l.StoragePoolRefresh(pool, 0); err != nil {
		return mutErr(op+": refresh pool", err)
	}
	return nil
}

// sourceErrReader remembers the error its reader gave, so a failed source
// is told apart from a failed libvirt call.
type sourceErrReader struct {
	r   io.Reader
	err error
}

func (s *sourceErrReader) Read(b []byte) (int, error) {
	n, err := s.r.Read(b)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// download writes the first size bytes of vol to w. On a local host it
// reads the file. Otherwise it streams them from libvirtd on a connection
// of its own: go-libvirt can deadlock at the end of a download stream
// (libvirtd sends a second end-of-stream packet after the call has
// returned, and go-libvirt's reader then waits on a channel nobody reads,
// holding the lock every call needs). On that connection the deadlock hurts
// nobody: once the bytes are in, the connection is left behind.
func (p *Provider) download(ctx context.Context, l *golibvirt.Libvirt, vol golibvirt.StorageVol, size uint64, w io.Writer, op string) error {
	if p.conn.local() && !p.remoteFiles {
		doc, err := volumeXMLDoc(l, vol, op)
		if err != nil {
			return err
		}
		if _, ok := localFile(doc); ok {
			f, err := os.Open(doc.Target.Path)
			if err == nil {
				defer f.Close()
				if _, err := io.Copy(w, io.LimitReader(f, int64(size))); err != nil {
					return fmt.Errorf("%s: read %s: %w", op, doc.Target.Path, err)
				}
				return nil
			}
		}
	}
	// libvirtd sometimes sends the first data packet before its reply to
	// the call, and go-libvirt then takes the data for the reply and the
	// reply for the end of the stream: no bytes. Nothing was written then,
	// so the download is tried again.
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		var n uint64
		if n, err = p.downloadOnce(ctx, vol, size, w, op); err == nil || n > 0 || ctx.Err() != nil {
			return err
		}
	}
	return err
}

// downloadStall is how long a download may deliver nothing before it is
// given up and tried again.
var downloadStall = 20 * time.Second

// downloadOnce streams the bytes on a connection of its own and reports how
// many reached w.
func (p *Provider) downloadOnce(ctx context.Context, vol golibvirt.StorageVol, size uint64, w io.Writer, op string) (uint64, error) {
	own, err := golibvirt.ConnectToURI(p.conn.uri)
	if err != nil {
		return 0, fmt.Errorf("%s: connect to libvirt at %s: %w", op, p.conn.uri.Redacted(), err)
	}
	cw := &countingWriter{w: w, want: size, full: make(chan struct{})}
	if size == 0 {
		close(cw.full)
	}
	errc := make(chan error, 1)
	go func() { errc <- own.StorageVolDownload(vol, cw, 0, size, 0) }()
	leave := func() { go func() { _ = own.Disconnect() }() }
	// A stream that has delivered nothing for a while is one of
	// go-libvirt's lost starts (a busy libvirtd makes them likelier):
	// give it up, and download tries again on a new connection.
	stalled := time.NewTimer(downloadStall)
	defer stalled.Stop()
	stallC := stalled.C
	for {
		select {
		case err := <-errc:
			leave()
			n := cw.written()
			if err != nil {
				return n, readErr(op+": download", err)
			}
			if n < size {
				return n, fmt.Errorf("%s: download ended after %d of %d bytes", op, n, size)
			}
			return n, nil
		case <-cw.full:
			select {
			case err := <-errc:
				leave()
				if err != nil {
					return size, readErr(op+": download", err)
				}
			case <-time.After(2 * time.Second): // the deadlock above: the bytes are in
				leave()
			}
			return size, nil
		case <-stallC:
			if cw.written() == 0 && size > 0 {
				leave()
				return 0, fmt.Errorf("%s: download: no data from libvirtd after %s", op, downloadStall)
			}
			stallC = nil // it is moving: let it finish
		case <-ctx.Done():
			leave()
			return cw.written(), fmt.Errorf("%s: %w", op, ctx.Err())
		}
	}
}

// countingWriter passes the first want bytes on to w and closes full when
// they are in; later bytes are dropped.
type countingWriter struct {
	mu   sync.Mutex
	w    io.Writer
	n    uint64
	want uint64
	full chan struct{}
	err  error
}

func (c *countingWriter) written() uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func (c *countingWriter) Write(b []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.n >= c.want || c.err != nil {
		return len(b), nil
	}
	take := b
	if uint64(len(take)) > c.want-c.n {
		take = take[:c.want-c.n]
	}
	if _, err := c.w.Write(take); err != nil {
		c.err = err
		return 0, err
	}
	c.n += uint64(len(take))
	if c.n == c.want {
		close(c.full)
	}
	return len(b), nil
}

// probeFile tells a local image's format (qcow2 by its magic, else raw) and
// its size in bytes.
func probeFile(path string) (format string, size uint64, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, fmt.Errorf("read source: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", 0, fmt.Errorf("read source: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return "", 0, fmt.Errorf("read source: %s is not a regular file", path)
	}
	if fi.Size() == 0 {
		return "", 0, fmt.Errorf("read source: %s is empty", path)
	}
	magic := make([]byte, 4)
	if _, err := io.ReadFull(f, magic); err == nil && string(magic) == "QFI\xfb" {
		return formatQcow2, uint64(fi.Size()), nil
	}
	return formatRaw, uint64(fi.Size()), nil
}
