package server

import (
	"crypto/subtle"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"time"
)

// Scopes, each including the ones before it: read (state, history, runs,
// members), plan (plan runs: they execute the configuration's functions on
// the leader), apply (runs that change things), admin (membership,
// snapshots).
const (
	ScopeRead  = "read"
	ScopePlan  = "plan"
	ScopeApply = "apply"
	ScopeAdmin = "admin"
)

var scopeRank = map[string]int{ScopeRead: 1, ScopePlan: 2, ScopeApply: 3, ScopeAdmin: 4}

// Token is a bearer token (FIAT_TOKEN on the client) and what it may do.
type Token struct {
	Name   string `hcl:"name,label"`
	Secret string `hcl:"secret"`
	Scope  string `hcl:"scope"`
}

func (t Token) check() error {
	if scopeRank[t.Scope] == 0 {
		return fmt.Errorf("token %q: scope %q is not one of read, plan, apply, admin", t.Name, t.Scope)
	}
	if len(t.Secret) < 16 {
		return fmt.Errorf("token %q: the secret is shorter than 16 characters", t.Name)
	}
	return nil
}

// TLSFiles configure TLS for the API and raft. With CA set, peers must
// present a certificate it signed (raft), and a client certificate it
// signed is accepted on the API with the admin scope.
type TLSFiles struct {
	Cert string `hcl:"cert,optional"`
	Key  string `hcl:"key,optional"`
	CA   string `hcl:"ca,optional"`
}

func (f TLSFiles) config() (*tls.Config, error) {
	if f.Cert == "" && f.Key == "" && f.CA == "" {
		return nil, nil
	}
	if f.Cert == "" || f.Key == "" || f.CA == "" {
		return nil, errors.New("TLS needs all of -tls-cert, -tls-key and -tls-ca")
	}
	cert, err := tls.LoadX509KeyPair(f.Cert, f.Key)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate: %w", err)
	}
	pem, err := os.ReadFile(f.CA)
	if err != nil {
		return nil, fmt.Errorf("read TLS CA: %w", err)
	}
	pool := newPool(pem)
	if pool == nil {
		return nil, fmt.Errorf("read TLS CA %s: no PEM certificate in it", f.CA)
	}
	return &tls.Config{
		MinVersion:   tls.VersionTLS12,
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool, // dialing peers
		ClientCAs:    pool,
		// Raft peers always present their certificate; API clients may
		// use a bearer token instead.
		ClientAuth: tls.VerifyClientCertIfGiven,
	}, nil
}

func peerClient(conf *tls.Config) *http.Client {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = conf
	return &http.Client{Transport: tr, Timeout: 0,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// authorize checks the request's credentials for scope and returns who
// made it. With no tokens and no TLS configured the API is open (a
// loopback-only development cluster).
func (s *Server) authorize(w http.ResponseWriter, r *http.Request, scope string) (string, bool) {
	if r.TLS != nil && len(r.TLS.VerifiedChains) > 0 {
		return "cert:" + r.TLS.PeerCertificates[0].Subject.CommonName, true
	}
	if len(s.tokens) == 0 && s.tls == nil {
		return "anonymous", true
	}
	secret, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if _, pw, basic := r.BasicAuth(); basic && basicAllowed(r) {
		secret, ok = pw, true // git and browsers send the token as a password
	}
	if !ok || secret == "" {
		w.Header().Set("WWW-Authenticate", `Basic realm="fiat" charset="UTF-8"`) // a browser asks; the token is the password
		writeErr(w, http.StatusUnauthorized, errors.New("this server needs a token (FIAT_TOKEN) or a client certificate"))
		return "", false
	}
	for s2, t := range s.tokens {
		if subtle.ConstantTimeCompare([]byte(s2), []byte(secret)) == 1 {
			if scopeRank[t.Scope] < scopeRank[scope] {
				writeErr(w, http.StatusForbidden, fmt.Errorf("token %q has scope %s; this needs %s", t.Name, t.Scope, scope))
				return "", false
			}
			return "token:" + t.Name, true
		}
	}
	// A wrong token costs the caller a little time: guessing stays slow.
	time.Sleep(100 * time.Millisecond)
	writeErr(w, http.StatusUnauthorized, errors.New("the token is not valid on this server"))
	return "", false
}

// basicAllowed says where a token may come as a basic-auth password: git
// and reading the page. A browser replays cached basic credentials on any
// request a hostile page makes it send; the API takes only a bearer token.
func basicAllowed(r *http.Request) bool {
	return strings.HasPrefix(r.URL.Path, "/git/") || r.Method == http.MethodGet && strings.HasPrefix(r.URL.Path, "/ui")
}

// jsonOnly refuses a POST to the API without a JSON body type: a form a
// hostile page submits cross-site cannot set one.
func jsonOnly(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasPrefix(r.URL.Path, "/v1/") &&
			!strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
			writeErr(w, http.StatusUnsupportedMediaType, errors.New("the API takes Content-Type: application/json"))
			return
		}
		h.ServeHTTP(w, r)
	})
}

func (s *Server) auth(scope string, h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if _, ok := s.authorize(w, r, scope); ok {
			h(w, r)
		}
	}
}

func newPool(pem []byte) *x509.CertPool {
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return nil
	}
	return pool
}
