package provision

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

// dial connects as a connection block says, retrying until its timeout
// (default 5m): the object may still be booting.
func dial(ctx context.Context, conn cty.Value) (*ssh.Client, error) {
	if conn == cty.NilVal || conn.IsNull() {
		return nil, errors.New("no connection block: remote-exec and file need one (on the provisioner or the resource)")
	}
	if t := optString(conn, "type"); t != "" && t != "ssh" {
		return nil, fmt.Errorf("connection type %q: fiat connects over ssh only", t)
	}
	host := optString(conn, "host")
	port := 22
	if v := conn.GetAttr("port"); !v.IsNull() {
		n, _ := v.AsBigFloat().Int(new(big.Int))
		port = int(n.Int64())
	}
	user := optString(conn, "user")
	if user == "" {
		user = "root"
	}
	timeout := 5 * time.Minute
	if t := optString(conn, "timeout"); t != "" {
		d, err := time.ParseDuration(t)
		if err != nil {
			return nil, fmt.Errorf("connection timeout %q: %w", t, err)
		}
		timeout = d
	}
	var auth []ssh.AuthMethod
	if pw := optString(conn, "password"); pw != "" {
		auth = append(auth, ssh.Password(pw))
	}
	if key := optString(conn, "private_key"); key != "" {
		signer, err := ssh.ParsePrivateKey([]byte(key))
		if err != nil {
			return nil, fmt.Errorf("connection private_key: %w", err)
		}
		auth = append(auth, ssh.PublicKeys(signer))
	}
	hostKey := ssh.InsecureIgnoreHostKey() // as Terraform, unless host_key pins it
	if hk := optString(conn, "host_key"); hk != "" {
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(hk))
		if err != nil {
			return nil, fmt.Errorf("connection host_key: %w", err)
		}
		hostKey = ssh.FixedHostKey(pub)
	}
	cfg := &ssh.ClientConfig{User: user, Auth: auth, HostKeyCallback: hostKey, Timeout: 10 * time.Second}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	deadline := time.Now().Add(timeout)
	for {
		c, err := ssh.Dial("tcp", addr, cfg)
		if err == nil {
			return c, nil
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("connect to %s@%s: %w (gave up after %s)", user, addr, err, timeout)
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("connect to %s@%s: %w", user, addr, ctx.Err())
		case <-time.After(2 * time.Second):
		}
	}
}

// remoteExec runs inline commands (as one script, stopping at the first
// failure) or script files over ssh.
func remoteExec(ctx context.Context, conn, c cty.Value, out func(string)) error {
	var scripts []string
	if inline := optStrings(c, "inline"); len(inline) > 0 {
		scripts = append(scripts, "set -e\n"+strings.Join(inline, "\n")+"\n")
	}
	files := optStrings(c, "scripts")
	if s := optString(c, "script"); s != "" {
		files = append([]string{s}, files...)
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return fmt.Errorf("read script: %w", err)
		}
		scripts = append(scripts, string(b))
	}
	if len(scripts) == 0 {
		return errors.New("remote-exec needs inline, script or scripts")
	}
	client, err := dial(ctx, conn)
	if err != nil {
		return err
	}
	defer client.Close()
	for _, script := range scripts {
		if err := runRemote(ctx, client, "/bin/sh -s", strings.NewReader(script), out); err != nil {
			return err
		}
	}
	return nil
}

func runRemote(ctx context.Context, client *ssh.Client, cmd string, stdin io.Reader, out func(string)) error {
	sess, err := client.NewSession()
	if err != nil {
		return fmt.Errorf("open ssh session: %w", err)
	}
	defer sess.Close()
	// stdout and stderr are copied by two goroutines: one locked buffer
	// keeps both, in order.
	var buf lockedBuffer
	sess.Stdin = stdin
	sess.Stdout, sess.Stderr = &buf, &buf
	done := make(chan error, 1)
	go func() { done <- sess.Run(cmd) }()
	select {
	case err = <-done:
	case <-ctx.Done():
		sess.Signal(ssh.SIGKILL)
		return fmt.Errorf("remote command: %w", ctx.Err())
	}
	var tail []string
	sc := bufio.NewScanner(bytes.NewReader(buf.Bytes()))
	for sc.Scan() {
		out(sc.Text())
		if tail = append(tail, sc.Text()); len(tail) > 5 {
			tail = tail[1:]
		}
	}
	if err != nil {
		msg := fmt.Sprintf("remote command failed: %v", err)
		if len(tail) > 0 {
			msg += "; its last output: " + strings.Join(tail, " | ")
		}
		return errors.New(msg)
	}
	return nil
}

// copyFile writes source's bytes (or content) to destination over ssh.
func copyFile(ctx context.Context, conn, c cty.Value) error {
	var data []byte
	switch {
	case optString(c, "content") != "":
		data = []byte(optString(c, "content"))
	case optString(c, "source") != "":
		b, err := os.ReadFile(optString(c, "source"))
		if err != nil {
			return fmt.Errorf("read source: %w", err)
		}
		data = b
	default:
		return errors.New("file needs source or content")
	}
	client, err := dial(ctx, conn)
	if err != nil {
		return err
	}
	defer client.Close()
	dest := optString(c, "destination")
	return runRemote(ctx, client, "cat > "+shellQuote(dest), bytes.NewReader(data), func(string) {})
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) Bytes() []byte {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]byte(nil), b.buf.Bytes()...)
}
