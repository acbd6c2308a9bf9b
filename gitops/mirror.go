package gitops

import (
	"context"
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/config"
	"github.com/go-git/go-git/v5/plumbing"
	githttp "github.com/go-git/go-git/v5/plumbing/transport/http"
)

// Peer is how a follower reaches the leader's API.
type Peer struct {
	URL                             string // base URL, http(s)://host:port
	Token                           string
	CABundle, ClientCert, ClientKey []byte // PEM, with TLS
}

// mirrorEvery is how often a follower fetches the hosted repositories
// from the leader.
const mirrorEvery = 2 * time.Second

// mirror keeps a follower's copy of every hosted repository level with
// the leader's, so that a new leader serves the branches a lost one
// accepted (up to mirrorEvery behind). The leader is the truth: its refs
// are taken as they are.
func (g *Gitops) mirror(ctx context.Context) {
	t := time.NewTicker(mirrorEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if g.run.IsLeader() {
			continue
		}
		peer, ok := g.run.Leader()
		if !ok {
			continue
		}
		for _, name := range slices.Sorted(maps.Keys(g.repos)) {
			if err := g.repos[name].fetchFrom(ctx, peer); err != nil && ctx.Err() == nil {
				g.log.Debug("mirror repository from the leader", "repo", name, "error", err)
			}
		}
	}
}

// Heads returns, per hosted repository, the commit its branch names on
// this node ("" if none): on a follower, how far its mirror has come.
func (g *Gitops) Heads() map[string]string {
	out := map[string]string{}
	for name, r := range g.repos {
		out[name] = ""
		if ref, err := r.st.Reference(plumbing.NewBranchReferenceName(r.cfg.Branch)); err == nil {
			out[name] = ref.Hash().String()
		}
	}
	return out
}

func (r *repo) fetchFrom(ctx context.Context, peer Peer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	url := peer.URL + "/git/" + r.cfg.Name + ".git"
	remote := git.NewRemote(r.st, &config.RemoteConfig{Name: "leader", URLs: []string{url}}) // not saved in the config
	opts := &git.FetchOptions{RemoteName: "leader", RemoteURL: url, Force: true, Tags: git.NoTags,
		RefSpecs: []config.RefSpec{"+refs/heads/*:refs/heads/*", "+refs/tags/*:refs/tags/*"},
		CABundle: peer.CABundle, ClientCert: peer.ClientCert, ClientKey: peer.ClientKey}
	if peer.Token != "" {
		opts.Auth = &githttp.BasicAuth{Username: "fiat", Password: peer.Token}
	}
	err := remote.FetchContext(ctx, opts)
	if errors.Is(err, git.NoErrAlreadyUpToDate) || errors.Is(err, context.Canceled) {
		return nil
	}
	return err
}
