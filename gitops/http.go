package gitops

import (
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"

	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
	"github.com/go-git/go-git/v5/plumbing/storer"
	"github.com/go-git/go-git/v5/plumbing/transport"
	"github.com/go-git/go-git/v5/plumbing/transport/server"
)

// Git's smart HTTP protocol at /git/NAME.git: clone and fetch through
// go-git's upload-pack; push through fiat's own receive-pack (push.go),
// which applies before it moves a ref. The caller (the server) checks
// credentials and sends non-leaders' requests to the leader.

// IsPush says whether a request is part of a push (it needs the apply
// scope): a POST to .../git-receive-pack, or the GET of its advertisement.
// It reads the path Handler routes by, and the query only on the GET that
// Handler routes by query.
func IsPush(r *http.Request) bool {
	if strings.HasSuffix(r.URL.Path, "/info/refs") && r.Method == http.MethodGet {
		return r.URL.Query().Get("service") == "git-receive-pack"
	}
	return !strings.HasSuffix(r.URL.Path, "/git-upload-pack") || r.Method != http.MethodPost
}

// Handler serves /git/.
func (g *Gitops) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /git/{repo}/info/refs", g.infoRefs)
	mux.HandleFunc("POST /git/{repo}/git-upload-pack", g.uploadPack)
	mux.HandleFunc("POST /git/{repo}/git-receive-pack", g.receivePack)
	return mux
}

func (g *Gitops) repoOf(w http.ResponseWriter, r *http.Request) *repo {
	name, ok := strings.CutSuffix(r.PathValue("repo"), ".git")
	if !ok || validName("repo", name) != nil {
		http.Error(w, "not a repository path: use /git/NAME.git", http.StatusNotFound)
		return nil
	}
	rp := g.repos[name]
	if rp == nil {
		http.Error(w, fmt.Sprintf("no repository %q on this server (declare it with a repo block)", name), http.StatusNotFound)
		return nil
	}
	return rp
}

type loader struct{ st storer.Storer }

func (l loader) Load(*transport.Endpoint) (storer.Storer, error) { return l.st, nil }

func endpoint(rp *repo) *transport.Endpoint {
	ep, _ := transport.NewEndpoint("/" + rp.cfg.Name + ".git")
	return ep
}

func (g *Gitops) infoRefs(w http.ResponseWriter, r *http.Request) {
	rp := g.repoOf(w, r)
	if rp == nil {
		return
	}
	service := r.URL.Query().Get("service")
	srv := server.NewServer(loader{rp.st})
	var ar *packp.AdvRefs
	var err error
	switch service {
	case "git-upload-pack":
		var sess transport.UploadPackSession
		if sess, err = srv.NewUploadPackSession(endpoint(rp), nil); err == nil {
			ar, err = sess.AdvertisedReferencesContext(r.Context())
		}
	case "git-receive-pack":
		var sess transport.ReceivePackSession
		if sess, err = srv.NewReceivePackSession(endpoint(rp), nil); err == nil {
			ar, err = sess.AdvertisedReferencesContext(r.Context())
		}
		if err == nil {
			// Progress of the apply goes back on side band 2.
			ar.Capabilities.Set(capability.Sideband64k)
		}
	default:
		http.Error(w, "only smart HTTP is served: git-upload-pack or git-receive-pack", http.StatusForbidden)
		return
	}
	if err != nil && err != transport.ErrEmptyRemoteRepository {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	if ar == nil {
		ar = packp.NewAdvRefs()
	}
	ar.Prefix = [][]byte{[]byte("# service=" + service), pktline.Flush}
	w.Header().Set("Content-Type", "application/x-"+service+"-advertisement")
	w.Header().Set("Cache-Control", "no-cache")
	if err := ar.Encode(w); err != nil {
		g.log.Warn("advertise refs", "repo", rp.cfg.Name, "error", err)
	}
}

func body(r *http.Request) (io.ReadCloser, error) {
	if r.Header.Get("Content-Encoding") == "gzip" {
		return gzip.NewReader(r.Body)
	}
	return r.Body, nil
}

func (g *Gitops) uploadPack(w http.ResponseWriter, r *http.Request) {
	rp := g.repoOf(w, r)
	if rp == nil {
		return
	}
	in, err := body(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := packp.NewUploadPackRequest()
	if err := req.Decode(in); err != nil {
		http.Error(w, "read upload-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	sess, err := server.NewServer(loader{rp.st}).NewUploadPackSession(endpoint(rp), nil)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	resp, err := sess.UploadPack(r.Context(), req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	defer resp.Close()
	w.Header().Set("Content-Type", "application/x-git-upload-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	if err := resp.Encode(w); err != nil {
		g.log.Warn("send pack", "repo", rp.cfg.Name, "error", err)
	}
}

// progress writes lines to the pusher on side band 2 ("remote: ..."),
// flushing each so they arrive as the apply goes.
type progress struct {
	mu  sync.Mutex
	mux *sideband.Muxer
	fl  http.Flusher
}

func (p *progress) Write(b []byte) (int, error) {
	if p == nil || p.mux == nil {
		return len(b), nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	total := len(b)
	for len(b) > 0 {
		n := min(len(b), 60000)
		if _, err := p.mux.WriteChannel(sideband.ProgressMessage, b[:n]); err != nil {
			return 0, err
		}
		b = b[n:]
	}
	if p.fl != nil {
		p.fl.Flush()
	}
	return total, nil
}
