package gitops

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/go-git/go-billy/v5/osfs"
	"github.com/go-git/go-git/v5"
	"github.com/go-git/go-git/v5/plumbing"
	"github.com/go-git/go-git/v5/plumbing/cache"
	"github.com/go-git/go-git/v5/plumbing/object"
	"github.com/go-git/go-git/v5/storage/filesystem"
)

// repo is a hosted repository: a bare repository on this node's disk.
type repo struct {
	mu     sync.Mutex // one push, or one mirror fetch, at a time
	cfg    RepoConfig
	dir    string
	stacks map[string]string // stack → directory ("" = root)
	st     *filesystem.Storage
}

func newRepo(base string, rc RepoConfig) (*repo, error) {
	if err := validName("repo", rc.Name); err != nil {
		return nil, err
	}
	if rc.Branch == "" {
		rc.Branch = "main"
	}
	r := &repo{cfg: rc, dir: filepath.Join(base, "repos", rc.Name+".git"), stacks: map[string]string{}}
	if len(rc.Stacks) == 0 {
		r.stacks[rc.Name] = ""
	}
	for stack, dir := range rc.Stacks {
		if err := validName("stack", stack); err != nil {
			return nil, fmt.Errorf("repo %q: %w", rc.Name, err)
		}
		d, err := validDir(dir)
		if err != nil {
			return nil, fmt.Errorf("repo %q, stack %q: %w", rc.Name, stack, err)
		}
		r.stacks[stack] = d
	}
	if _, err := os.Stat(filepath.Join(r.dir, "HEAD")); errors.Is(err, os.ErrNotExist) {
		if _, err := git.PlainInit(r.dir, true); err != nil {
			return nil, fmt.Errorf("create repository %s: %w", rc.Name, err)
		}
		// HEAD names the branch pushes apply, so a clone checks it out.
		head := plumbing.NewSymbolicReference(plumbing.HEAD, plumbing.NewBranchReferenceName(rc.Branch))
		st := filesystem.NewStorage(osfs.New(r.dir), cache.NewObjectLRUDefault())
		if err := st.SetReference(head); err != nil {
			return nil, fmt.Errorf("create repository %s: %w", rc.Name, err)
		}
	}
	r.st = filesystem.NewStorage(osfs.New(r.dir), cache.NewObjectLRUDefault())
	return r, nil
}

// maxConfigBytes bounds what one stack's directory may hold in a commit.
const maxConfigBytes = 8 << 20

// configFiles returns the files under dir in commit (by slash path
// relative to dir), or an error if dir is not in it.
func configFiles(commit *object.Commit, dir string) (map[string][]byte, error) {
	tree, err := commit.Tree()
	if err != nil {
		return nil, err
	}
	if dir != "" {
		if tree, err = tree.Tree(dir); err != nil {
			return nil, fmt.Errorf("directory %q is not in commit %s", dir, commit.Hash.String()[:12])
		}
	}
	files := map[string][]byte{}
	total := 0
	err = tree.Files().ForEach(func(f *object.File) error {
		if !f.Mode.IsFile() {
			return nil
		}
		r, err := f.Reader()
		if err != nil {
			return err
		}
		defer r.Close()
		b, err := io.ReadAll(io.LimitReader(r, maxConfigBytes+1))
		if err != nil {
			return err
		}
		if total += len(b); total > maxConfigBytes {
			return fmt.Errorf("directory %q holds more than 8 MiB", dir)
		}
		files[f.Name] = b
		return nil
	})
	return files, err
}

// subtree is the hash of dir's tree in commit (zero if absent), to tell
// whether a commit changed a stack.
func subtree(commit *object.Commit, dir string) plumbing.Hash {
	if commit == nil {
		return plumbing.ZeroHash
	}
	tree, err := commit.Tree()
	if err != nil {
		return plumbing.ZeroHash
	}
	if dir == "" {
		return tree.Hash
	}
	t, err := tree.Tree(dir)
	if err != nil {
		return plumbing.ZeroHash
	}
	return t.Hash
}

// isAncestor reports whether old is new or one of its ancestors.
func isAncestor(st *filesystem.Storage, old, new plumbing.Hash) (bool, error) {
	if old == new {
		return true, nil
	}
	oc, err := object.GetCommit(st, old)
	if err != nil {
		return false, nil // we do not have it: not an ancestor we know
	}
	nc, err := object.GetCommit(st, new)
	if err != nil {
		return false, err
	}
	return oc.IsAncestor(nc)
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}
