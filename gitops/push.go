package gitops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"net/http"
	"slices"
	"strings"

	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/format/packfile"
	"github.com/go-git/go-git/v5/plumbing/format/pktline"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/capability"
	"github.com/go-git/go-git/v5/plumbing/protocol/packp/sideband"
)

// maxPush bounds one push's body (commands and pack).
const maxPush = 512 << 20

// receivePack is a push. The pack is stored first (objects only: nothing
// points at them yet); then each ref update is checked as git would
// (fast-forward, the old value it expects), and an update of the repo's
// branch plans and applies the pushed commit for every stack it changes —
// one run per stack, its output streamed back as "remote:" lines — before
// the ref moves. The ref moves only if every run committed; otherwise the
// push is rejected with the reason, and the branch still names the commit
// that matches the infrastructure.
func (g *Gitops) receivePack(w http.ResponseWriter, r *http.Request) {
	rp := g.repoOf(w, r)
	if rp == nil {
		return
	}
	rp.mu.Lock()
	defer rp.mu.Unlock()

	r.Body = http.MaxBytesReader(w, r.Body, maxPush)
	in, err := body(r)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := packp.NewReferenceUpdateRequest()
	if err := req.Decode(in); err != nil {
		http.Error(w, "read receive-pack request: "+err.Error(), http.StatusBadRequest)
		return
	}
	w.Header().Set("Content-Type", "application/x-git-receive-pack-result")
	w.Header().Set("Cache-Control", "no-cache")
	var out io.Writer = w
	var prog *progress
	if req.Capabilities.Supports(capability.Sideband64k) || req.Capabilities.Supports(capability.Sideband) {
		t := sideband.Sideband64k
		if !req.Capabilities.Supports(capability.Sideband64k) {
			t = sideband.Sideband
		}
		mux := sideband.NewMuxer(t, w)
		fl, _ := w.(http.Flusher)
		prog = &progress{mux: mux, fl: fl}
		out = mux
	}
	rs := packp.NewReportStatus()
	rs.UnpackStatus = "ok"
	if req.Packfile != nil {
		if err := packfile.UpdateObjectStorage(rp.st, req.Packfile); err != nil {
			rs.UnpackStatus = "unpack failed: " + err.Error()
		}
		req.Packfile.Close()
	}
	for _, cmd := range req.Commands {
		status := "ok"
		if rs.UnpackStatus != "ok" {
			status = "unpacker error"
		} else if err := g.update(r.Context(), rp, cmd, prog); err != nil {
			status = err.Error()
		}
		rs.CommandStatuses = append(rs.CommandStatuses, &packp.CommandStatus{ReferenceName: cmd.Name, Status: status})
	}
	if req.Capabilities.Supports(capability.ReportStatus) {
		if err := rs.Encode(out); err != nil {
			g.log.Warn("report push status", "repo", rp.cfg.Name, "error", err)
		}
	}
	if prog != nil {
		pktline.NewEncoder(w).Flush()
	}
}

// update checks and applies one ref update; its error is the reason git
// shows the pusher: "! [remote rejected] main -> main (REASON)".
func (g *Gitops) update(ctx context.Context, rp *repo, cmd *packp.Command, prog *progress) error {
	cur, err := rp.st.Reference(cmd.Name)
	have := plumbing.ZeroHash
	if err == nil {
		have = cur.Hash()
	} else if !errors.Is(err, plumbing.ErrReferenceNotFound) {
		return fmt.Errorf("read %s: %v", cmd.Name, err)
	}
	if have != cmd.Old {
		return errors.New("fetch first: the ref moved since you fetched")
	}
	branch := cmd.Name == plumbing.NewBranchReferenceName(rp.cfg.Branch)
	if cmd.New == plumbing.ZeroHash {
		if branch {
			return fmt.Errorf("the branch %s is what the infrastructure is applied from; it cannot be deleted", rp.cfg.Branch)
		}
		return rp.st.RemoveReference(cmd.Name)
	}
	newCommit, err := object.GetCommit(rp.st, cmd.New)
	if err != nil {
		return fmt.Errorf("%s is not a commit this push sent", cmd.New)
	}
	if cmd.Old != plumbing.ZeroHash {
		ok, err := isAncestor(rp.st, cmd.Old, cmd.New)
		if err != nil {
			return fmt.Errorf("check fast-forward: %v", err)
		}
		if !ok {
			return errors.New("non-fast-forward")
		}
	}
	if branch {
		var oldCommit *object.Commit
		if cmd.Old != plumbing.ZeroHash {
			oldCommit, _ = object.GetCommit(rp.st, cmd.Old)
		}
		if err := g.applyPush(ctx, rp, oldCommit, newCommit, prog); err != nil {
			return err
		}
	}
	return rp.st.CheckAndSetReference(plumbing.NewHashReference(cmd.Name, cmd.New), cur)
}

// applyPush runs an apply of the new commit for every stack whose
// directory it changes, in stack order, stopping at the first that does
// not commit.
func (g *Gitops) applyPush(ctx context.Context, rp *repo, old, new *object.Commit, prog *progress) error {
	if !g.run.IsLeader() {
		return errors.New("this node lost leadership during the push; push again")
	}
	short := new.Hash.String()[:12]
	var applied []string
	for _, stack := range slices.Sorted(maps.Keys(rp.stacks)) {
		dir := rp.stacks[stack]
		if subtree(old, dir) == subtree(new, dir) {
			continue // nothing of this stack changed: no run
		}
		files, err := configFiles(new, dir)
		if err != nil {
			return fmt.Errorf("stack %s: %v", stack, err)
		}
		fmt.Fprintf(prog, "fiat: applying %s (%s) to stack %s\n", short, firstLine(new.Message), stack)
		res, err := g.run.Execute(ctx, RunRequest{Command: "apply", Stack: stack, Files: files, Repo: rp.cfg.Name, Actor: actorOf(ctx) + " (git push)",
			Commit: new.Hash.String(), Author: new.Author.String(), Message: new.Message, Dir: dir}, prog)
		if err != nil {
			return fmt.Errorf("stack %s: %v", stack, err)
		}
		if res.Status != "applied" {
			// The run's output above ends with its precise error.
			note := ""
			if len(applied) > 0 {
				note = fmt.Sprintf("; stacks %s were applied", strings.Join(applied, ", "))
			}
			fmt.Fprintf(prog, "fiat: stack %s: %s (run %s); the branch stays at %s%s\n", stack, res.Status, res.ID, shortOf(old), note)
			return fmt.Errorf("apply %s", res.Status)
		}
		fmt.Fprintf(prog, "fiat: stack %s applied (run %s)\n", stack, res.ID)
		applied = append(applied, stack)
	}
	return nil
}

func shortOf(c *object.Commit) string {
	if c == nil {
		return "nothing (no commit yet)"
	}
	return c.Hash.String()[:12]
}
