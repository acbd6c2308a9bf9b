package server_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// certs makes a CA and, signed by it, a certificate for the nodes (IP SANs
// 127.0.0.1-5, server and client use) and one for a client; it returns
// the paths.
func certs(t *testing.T) (ca, cert, key, clientCert, clientKey string) {
	t.Helper()
	dir := t.TempDir()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "fiat test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true,
		KeyUsage: x509.KeyUsageCertSign, BasicConstraintsValid: true}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	leaf := func(name string, serial int64, ips []net.IP) (string, string) {
		k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(serial), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IPAddresses: ips,
			KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, caCert, &k.PublicKey, caKey)
		if err != nil {
			t.Fatal(err)
		}
		kb, _ := x509.MarshalECPrivateKey(k)
		return write(name+".pem", "CERTIFICATE", der), write(name+"-key.pem", "EC PRIVATE KEY", kb)
	}
	var ips []net.IP
	for i := 1; i <= 5; i++ {
		ips = append(ips, net.IPv4(127, 0, 0, byte(i)))
	}
	cert, key = leaf("node", 2, ips)
	clientCert, clientKey = leaf("operator", 3, nil)
	return write("ca.pem", "CERTIFICATE", caDER), cert, key, clientCert, clientKey
}

const (
	adminToken = "admin-secret-0123456789"
	readToken  = "read-secret-0123456789"
	planToken  = "plan-secret-0123456789"
)

// A TLS cluster with scoped tokens: the right token works, a wrong one or
// one without the scope is refused, a client certificate signed by the CA
// is accepted, plaintext and an unknown CA fail; raft refuses a
// connection without a certificate; a plaintext listener on a non-loopback
// address refuses to start.
func TestTLSAndTokens(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: starts server processes")
	}
	ca, cert, key, ccert, ckey := certs(t)
	conf := filepath.Join(t.TempDir(), "server.hcl")
	os.WriteFile(conf, []byte(fmt.Sprintf(`
tls {
  cert = %q
  key  = %q
  ca   = %q
}
token "ops" {
  secret = %q
  scope  = "admin"
}
token "dash" {
  secret = %q
  scope  = "read"
}
token "ci" {
  secret = %q
  scope  = "plan"
}
`, cert, key, ca, adminToken, readToken, planToken)), 0o600)
	c := startTLSCluster(t, conf)
	c.env = []string{"FIAT_CACERT=" + ca}
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"main.tf": randomConfig + `variable "unused" { default = "" }`})

	ok := c.fiatEnv(dir, []string{"FIAT_TOKEN=" + adminToken}, "apply", "-auto-approve", "-var", "unused=secret-value", "-stack", "tls", ".")
	if ok.code != 0 || !strings.Contains(ok.stdout, "Apply complete") {
		t.Fatalf("apply with the admin token over TLS:\n%s", ok)
	}
	runs := c.fiatEnv(dir, []string{"FIAT_TOKEN=" + readToken}, "runs", "-json", "tls")
	if runs.code != 0 || !strings.Contains(runs.stdout, `"token:ops"`) {
		t.Fatalf("runs with the read token:\n%s", runs)
	}
	if strings.Contains(runs.stdout, "secret-value") {
		t.Errorf("a -var value appears in the API's run records:\n%s", runs.stdout)
	}
	if r := c.fiatEnv(dir, []string{"FIAT_TOKEN=" + planToken}, "plan", "-stack", "tls", "."); r.code != 0 {
		t.Errorf("plan with the plan token:\n%s", r)
	}
	for _, tc := range []struct {
		token, want string
		args        []string
	}{
		{"wrong-token-0123456789", "not valid", []string{"runs"}},
		{"", "needs a token", []string{"runs"}},
		{readToken, "has scope read; this needs apply", []string{"apply", "-auto-approve", "-stack", "tls", "."}},
		{planToken, "has scope plan; this needs apply", []string{"destroy", "-auto-approve", "-stack", "tls", "."}},
		{readToken, "has scope read; this needs admin", []string{"operator", "snapshot", "save", filepath.Join(t.TempDir(), "s")}},
	} {
		r := c.fiatEnv(dir, []string{"FIAT_TOKEN=" + tc.token}, tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("%v with token %q: want a refusal %q:\n%s", tc.args, tc.token, tc.want, r)
		}
	}
	// A client certificate signed by the CA needs no token.
	r := c.fiatEnv(dir, []string{"FIAT_CLIENT_CERT=" + ccert, "FIAT_CLIENT_KEY=" + ckey}, "operator", "members")
	if r.code != 0 || strings.Count(r.stdout, "127.0.0.") != 6 {
		t.Errorf("members with a client certificate:\n%s", r)
	}
	// Without the CA the server's certificate is not trusted.
	r = c.fiatEnv(dir, []string{"FIAT_CACERT=", "FIAT_TOKEN=" + adminToken}, "operator", "members")
	if r.code == 0 || !strings.Contains(r.stderr, "certificate") {
		t.Errorf("members without the CA should fail on the certificate:\n%s", r)
	}
	// Raft takes no TLS connection without a client certificate.
	pool := x509.NewCertPool()
	b, _ := os.ReadFile(ca)
	pool.AppendCertsFromPEM(b)
	conn, err := tls.Dial("tcp", c.nodes[0].raft, &tls.Config{RootCAs: pool})
	if err == nil {
		conn.SetDeadline(time.Now().Add(2 * time.Second))
		_, err = conn.Read(make([]byte, 1))
		conn.Close()
	}
	if err == nil {
		t.Error("raft accepted a TLS connection without a client certificate")
	}
	// Plaintext on a non-loopback address refuses to start.
	out, err := exec.Command(fiatBin, "server", "-name", "x", "-data-dir", t.TempDir(), "-api", "0.0.0.0:0", "-raft", "127.0.0.1:0").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not a loopback address and no TLS is configured") {
		t.Errorf("plaintext on 0.0.0.0 was not refused: %v\n%s", err, out)
	}
}

func startTLSCluster(t *testing.T, conf string) *cluster {
	t.Helper()
	c := newCluster(t, 3, func(nd *node) {
		nd.scheme, nd.tokenAdmin = "https", adminToken
		nd.env = []string{"FIAT_TOKEN=" + adminToken}
		nd.args = append(nd.args, "-config", conf)
	})
	c.launch()
	return c
}
