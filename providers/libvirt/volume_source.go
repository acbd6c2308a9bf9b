package libvirt

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
)

// A volume's source is a local file (where fiat runs) or an http(s) URL,
// downloaded while it is uploaded: the bytes stream from the server into
// libvirt, never held whole in memory. A server that does not say how long
// the image is (no Content-Length) has it spooled to a temporary file
// first, since libvirt's upload needs the length up front.

// isSourceURL says source names an http(s) URL rather than a local path.
func isSourceURL(source string) bool {
	u, err := url.Parse(source)
	return err == nil && (u.Scheme == "http" || u.Scheme == "https") && u.Host != ""
}

// checkSource is the problem with a source's spelling, or "".
func checkSource(source string) string {
	switch {
	case source == "" || isSourceURL(source) || filepath.IsAbs(source):
		return ""
	case strings.Contains(source, "://"):
		return fmt.Sprintf("source %q: only http and https URLs and local paths are supported", source)
	}
	return fmt.Sprintf("source %q is not an absolute path", source)
}

// sourceClient downloads URL sources; tests may replace it.
var sourceClient = &http.Client{}

// openSource opens a volume's source: its format (qcow2 by its magic, else
// raw), its length in bytes and its bytes from the start. The caller
// closes the reader.
func openSource(ctx context.Context, source string) (format string, size uint64, r io.ReadCloser, err error) {
	if !isSourceURL(source) {
		format, size, err := probeFile(source)
		if err != nil {
			return "", 0, nil, err
		}
		f, err := os.Open(source)
		if err != nil {
			return "", 0, nil, fmt.Errorf("read source: %w", err)
		}
		return format, size, f, nil
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, source, nil)
	if err != nil {
		return "", 0, nil, fmt.Errorf("download source %s: %w", source, err)
	}
	resp, err := sourceClient.Do(req)
	if err != nil {
		return "", 0, nil, fmt.Errorf("download source %s: %w", source, unwrapURLError(err))
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		return "", 0, nil, fmt.Errorf("download source %s: the server answered %s", source, resp.Status)
	}
	body := io.ReadCloser(resp.Body)
	length := resp.ContentLength
	if length < 0 {
		if body, length, err = spool(resp.Body, source); err != nil {
			return "", 0, nil, err
		}
	}
	if length == 0 {
		body.Close()
		return "", 0, nil, fmt.Errorf("download source %s: the server sent no bytes", source)
	}
	br := bufio.NewReader(body)
	format = formatRaw
	if magic, _ := br.Peek(4); string(magic) == "QFI\xfb" {
		format = formatQcow2
	}
	return format, uint64(length), &readCloser{Reader: &exactReader{r: br, left: length, source: source}, Closer: body}, nil
}

// probeSource tells a source's format and length without keeping its
// bytes (preflight): a URL is requested and its answer's first bytes read.
func probeSource(ctx context.Context, source string) (string, uint64, error) {
	if !isSourceURL(source) {
		return probeFile(source)
	}
	format, size, r, err := openSource(ctx, source)
	if err != nil {
		return "", 0, err
	}
	r.Close()
	return format, size, nil
}

func unwrapURLError(err error) error {
	if ue, ok := err.(*url.Error); ok {
		return ue.Err
	}
	return err
}

// spool copies a body of unknown length into a temporary file, removed
// when the returned reader is closed.
func spool(body io.ReadCloser, source string) (io.ReadCloser, int64, error) {
	defer body.Close()
	f, err := os.CreateTemp("", "fiat-source-*")
	if err != nil {
		return nil, 0, fmt.Errorf("download source %s: %w", source, err)
	}
	n, err := io.Copy(f, body)
	if err == nil {
		_, err = f.Seek(0, io.SeekStart)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, 0, fmt.Errorf("download source %s: %w", source, err)
	}
	return &removeOnClose{f}, n, nil
}

type removeOnClose struct{ *os.File }

func (r *removeOnClose) Close() error {
	err := r.File.Close()
	os.Remove(r.File.Name())
	return err
}

type readCloser struct {
	io.Reader
	io.Closer
}

// exactReader fails a body that ends before its announced length, naming
// the URL, instead of letting libvirt see a short stream.
type exactReader struct {
	r      io.Reader
	left   int64
	source string
}

func (e *exactReader) Read(b []byte) (int, error) {
	if e.left <= 0 {
		return 0, io.EOF
	}
	if int64(len(b)) > e.left {
		b = b[:e.left]
	}
	n, err := e.r.Read(b)
	e.left -= int64(n)
	if err == io.EOF && e.left > 0 {
		return n, fmt.Errorf("download source %s: the body ended %d bytes short", e.source, e.left)
	}
	if err != nil && err != io.EOF {
		return n, fmt.Errorf("download source %s: %w", e.source, err)
	}
	return n, nil
}
