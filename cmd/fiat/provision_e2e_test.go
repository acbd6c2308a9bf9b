package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/pem"
	"fiat/internal/testenv"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"
)

// startSSHD runs an sshd on a free loopback port that accepts root with a
// key made for the test; it returns the port and the private key file.
func startSSHD(t *testing.T) (port int, keyFile string) {
	t.Helper()
	bin, err := exec.LookPath("sshd")
	if err != nil {
		bin = "/usr/sbin/sshd"
	}
	if _, err := os.Stat(bin); err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("sshd is not installed (scripts/libvirtd.sh installs openssh-server): %v", err)
		}
		t.Skipf("sshd is not installed: %v", err)
	}
	dir := t.TempDir()
	writeKey := func(name string) ssh.PublicKey {
		pub, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		blk, err := ssh.MarshalPrivateKey(priv, "")
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), pem.EncodeToMemory(blk), 0o600); err != nil {
			t.Fatal(err)
		}
		sp, _ := ssh.NewPublicKey(pub)
		return sp
	}
	writeKey("host_key")
	client := writeKey("client_key")
	if err := os.WriteFile(filepath.Join(dir, "authorized_keys"), ssh.MarshalAuthorizedKey(client), 0o600); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port = l.Addr().(*net.TCPAddr).Port
	l.Close()
	conf := fmt.Sprintf("Port %d\nListenAddress 127.0.0.1\nHostKey %s\nPidFile %s\nAuthorizedKeysFile %s\nPermitRootLogin yes\nPasswordAuthentication no\nKbdInteractiveAuthentication no\nStrictModes no\nUsePAM no\n",
		port, filepath.Join(dir, "host_key"), filepath.Join(dir, "sshd.pid"), filepath.Join(dir, "authorized_keys"))
	if err := os.WriteFile(filepath.Join(dir, "sshd_config"), []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll("/run/sshd", 0o755) // sshd's privilege separation directory
	cmd := exec.Command(bin, "-D", "-e", "-f", filepath.Join(dir, "sshd_config"))
	var log testenv.SyncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port))
		if err == nil {
			c.Close()
			return port, filepath.Join(dir, "client_key")
		}
		if time.Now().After(deadline) {
			t.Fatalf("sshd did not listen: %v\n%s", err, log.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// remote-exec and file run over ssh as steps of the transaction: undone
// with their object, and a failing one rolls the transaction back.
func TestRemoteProvisioners(t *testing.T) {
	port, key := startSSHD(t)
	out := t.TempDir()
	conn := fmt.Sprintf(`connection {
    type        = "ssh"
    host        = "127.0.0.1"
    port        = %d
    user        = "root"
    private_key = file(%q)
    timeout     = "20s"
  }`, port, key)
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`
resource "fiat_data" "host" {
  input = "world"
  %[1]s
  provisioner "file" {
    content     = "hello ${self.input}"
    destination = "%[2]s/uploaded.txt"
  }
  provisioner "remote-exec" {
    inline = ["cat %[2]s/uploaded.txt > %[2]s/remote.txt", "echo remote done"]
  }
}
`, conn, out))
	code, stdout, errs := runRaw(t, "plan", dir)
	if code != 0 || !strings.Contains(stdout, "then runs file (undone with the object), remote-exec (undone with the object)") {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, errs)
	}
	code, stdout, errs = runRaw(t, "apply", "-auto-approve", dir)
	if code != 0 || !strings.Contains(stdout, "fiat_data.host: Provisioned (remote-exec)") || !strings.Contains(stdout, "fiat_data.host (output): remote done") {
		t.Fatalf("apply: exit %d\n%s%s", code, stdout, errs)
	}
	if got := readFile(t, filepath.Join(out, "remote.txt")); got != "hello world" {
		t.Fatalf("remote.txt = %q", got)
	}
	// A failing remote-exec on a new object: the transaction rolls back.
	writeFile(t, filepath.Join(dir, "more.tf"), fmt.Sprintf(`
resource "fiat_data" "broken" {
  input = "x"
  %s
  provisioner "remote-exec" {
    inline = ["echo going wrong", "exit 7"]
  }
}
`, conn))
	code, stdout, errs = runRaw(t, "apply", "-auto-approve", dir)
	flat := strings.Join(strings.Fields(stdout+errs), " ")
	if code != exitError || !strings.Contains(flat, "provision remote-exec fiat_data.broken") && !strings.Contains(flat, "fiat_data.broken") ||
		!strings.Contains(flat, "going wrong") || !strings.Contains(flat, "fiat_data.broken: create undone") {
		t.Fatalf("want the failing remote-exec to roll back fiat_data.broken: exit %d\n%s%s", code, stdout, errs)
	}
	if code, stdout, errs := runRaw(t, "state", "list", dir); code != 0 || strings.Contains(stdout, "broken") {
		t.Fatalf("the rolled-back object is in the store: %s%s", stdout, errs)
	}
}
