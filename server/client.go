package server

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"sync"
	"time"
)

// Client talks to a cluster through any of its nodes: it tries the
// endpoints in turn when one cannot be reached or has no leader, and
// follows a node's redirect to the leader, credentials included.
type Client struct {
	Endpoints []string // base URLs: http(s)://host:port
	Token     string
	HTTP      *http.Client
	// noRedirect asks one node about itself (status probes).
	noRedirect bool

	mu  sync.Mutex
	cur int // the endpoint that answered last
}

// NewClient makes a client for a comma-separated list of addresses
// (-server or FIAT_ADDR). TLS comes from FIAT_CACERT, and a client
// certificate from FIAT_CLIENT_CERT and FIAT_CLIENT_KEY.
func NewClient(addrs, token string) (*Client, error) {
	c := &Client{Token: token}
	for _, a := range strings.Split(addrs, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		if !strings.Contains(a, "://") {
			a = "http://" + a
		}
		u, err := url.Parse(a)
		if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
			return nil, fmt.Errorf("server address %q: want http(s)://host:port", a)
		}
		c.Endpoints = append(c.Endpoints, strings.TrimSuffix(a, "/"))
	}
	if len(c.Endpoints) == 0 {
		return nil, errors.New("no server address given (-server or FIAT_ADDR)")
	}
	conf, err := TLSFiles{Cert: os.Getenv("FIAT_CLIENT_CERT"), Key: os.Getenv("FIAT_CLIENT_KEY"), CA: os.Getenv("FIAT_CACERT")}.clientConfig()
	if err != nil {
		return nil, err
	}
	c.HTTP = peerClient(conf)
	return c, nil
}

func (f TLSFiles) clientConfig() (*tls.Config, error) {
	if f.CA == "" && f.Cert == "" {
		return nil, nil
	}
	if f.Cert == "" {
		return f.caOnly()
	}
	return f.config()
}

func (f TLSFiles) caOnly() (*tls.Config, error) {
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("read FIAT_CACERT: %w", err)
	}
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	conf.RootCAs = newPool(pem)
	if conf.RootCAs == nil {
		return nil, fmt.Errorf("read FIAT_CACERT %s: no PEM certificate in it", f.CA)
	}
	return conf, nil
}

// ServerError is an error the server answered with.
type ServerError struct {
	Code    int
	Message string
}

func (e *ServerError) Error() string { return e.Message }

// errUnavailable marks an answer worth trying elsewhere or again.
var errUnavailable = errors.New("unavailable")

// do sends one request, to the endpoints in turn, following redirects to
// the leader, until one answers other than "unavailable"; while elections
// run (no node has a leader) it retries for up to 20s.
func (c *Client) do(ctx context.Context, method, path string, body []byte) (*http.Response, error) {
	deadline := time.Now().Add(20 * time.Second)
	var last error
	for attempt := 0; ; attempt++ {
		c.mu.Lock()
		start := c.cur
		c.mu.Unlock()
		for i := range c.Endpoints {
			n := (start + i) % len(c.Endpoints)
			resp, err := c.send(ctx, method, c.Endpoints[n]+path, body)
			if err == nil {
				c.mu.Lock()
				c.cur = n
				c.mu.Unlock()
				return resp, nil
			}
			last = err
			if ctx.Err() != nil || !errors.Is(err, errUnavailable) {
				return nil, err
			}
		}
		if c.noRedirect || time.Now().After(deadline) {
			return nil, last
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(min(time.Duration(attempt+1)*100*time.Millisecond, time.Second)):
		}
	}
}

func (c *Client) send(ctx context.Context, method, u string, body []byte) (*http.Response, error) {
	for hop := 0; hop < 5; hop++ {
		req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		if c.Token != "" {
			req.Header.Set("Authorization", "Bearer "+c.Token)
		}
		if body != nil || method == http.MethodPost {
			req.Header.Set("Content-Type", "application/json")
		}
		resp, err := c.HTTP.Do(req)
		var cv *tls.CertificateVerificationError
		if errors.As(err, &cv) {
			return nil, fmt.Errorf("%s: the server's certificate is not trusted (set FIAT_CACERT to the CA that signed it): %w", u, err)
		}
		if err != nil {
			// A node that could not be dialled never saw the request: try
			// the next. Other failures may come after the server took it; a
			// run submitted twice would apply twice, so only reads retry.
			var op *net.OpError
			if method == http.MethodGet || errors.As(err, &op) && op.Op == "dial" {
				return nil, fmt.Errorf("%w: %v", errUnavailable, err)
			}
			return nil, fmt.Errorf("%s %s: %v (the server may have taken the request: check `fiat runs` before sending it again)", method, u, err)
		}
		switch {
		case resp.StatusCode == http.StatusTemporaryRedirect && !c.noRedirect:
			u = resp.Header.Get("Location")
			resp.Body.Close()
			continue
		case resp.StatusCode == http.StatusServiceUnavailable:
			err := readErr(resp)
			return nil, fmt.Errorf("%w: %v", errUnavailable, err)
		case resp.StatusCode >= 300:
			return nil, readErr(resp)
		}
		return resp, nil
	}
	return nil, fmt.Errorf("%w: too many redirects (leadership is changing)", errUnavailable)
}

func readErr(resp *http.Response) error {
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	var ae APIError
	if json.Unmarshal(b, &ae) == nil && ae.Error != "" {
		return &ServerError{Code: resp.StatusCode, Message: ae.Error}
	}
	return &ServerError{Code: resp.StatusCode, Message: fmt.Sprintf("server answered %s: %s", resp.Status, strings.TrimSpace(string(b)))}
}

// call sends in as JSON (nil: no body) and decodes the answer into out.
func (c *Client) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if out == nil {
		return nil
	}
	if w, ok := out.(io.Writer); ok {
		_, err = io.Copy(w, resp.Body)
		return err
	}
	return json.NewDecoder(resp.Body).Decode(out)
}

// Call is call for the CLI's operator and read commands.
func (c *Client) Call(ctx context.Context, method, path string, in, out any) error {
	return c.call(ctx, method, path, in, out)
}

// Upload sends a raw body (snapshot restore).
func (c *Client) Upload(ctx context.Context, method, path string, body []byte) error {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return err
	}
	resp.Body.Close()
	return nil
}

// ErrLost says the connection to the node running a run was lost before
// the run ended; Follow finds out how it ended.
var ErrLost = errors.New("lost the connection to the leader running the run")

// Submit starts a run and calls fn with each frame of its output as it
// comes. It returns the run as it ended, or ErrLost (with the run's id, if
// the server had sent it) when the stream broke first.
func (c *Client) Submit(ctx context.Context, up *Upload, fn func(Frame)) (*Run, string, error) {
	body, err := json.Marshal(up)
	if err != nil {
		return nil, "", err
	}
	return c.Stream(ctx, http.MethodPost, "/v1/runs", body, fn)
}

// Stream sends a request whose answer is a run's frames (a submitted run,
// a retry), calling fn with each, as Submit does.
func (c *Client) Stream(ctx context.Context, method, path string, body []byte, fn func(Frame)) (*Run, string, error) {
	resp, err := c.do(ctx, method, path, body)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	id := ""
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	for sc.Scan() {
		var f Frame
		if err := json.Unmarshal(sc.Bytes(), &f); err != nil {
			return nil, id, fmt.Errorf("read run output: %w", err)
		}
		if f.Run != nil && f.Run.ID != "" {
			id = f.Run.ID
		}
		if f.End {
			if f.Run == nil {
				return nil, id, ErrLost // the node could not record the end
			}
			return f.Run, id, nil
		}
		fn(f)
	}
	if ctx.Err() != nil {
		return nil, id, ctx.Err()
	}
	return nil, id, ErrLost
}

// Follow waits, through whichever node leads now, until run id has ended
// (a new leader settles a run its lost leader left), and returns it.
func (c *Client) Follow(ctx context.Context, id string, timeout time.Duration) (*RunDetail, error) {
	deadline := time.Now().Add(timeout)
	for {
		var d RunDetail
		err := c.call(ctx, http.MethodGet, "/v1/runs/"+id, nil, &d)
		if err == nil && Terminal(d.Status) {
			return &d, nil
		}
		if time.Now().After(deadline) {
			if err == nil {
				err = fmt.Errorf("run %s is still %s", id, d.Status)
			}
			return nil, fmt.Errorf("follow run %s: %w", id, err)
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}
