package libvirt

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	golibvirt "github.com/digitalocean/go-libvirt"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// The directories a pool's create builds, and their removal.
//
// libvirt's build makes the pool's directory and every missing parent
// (mkdir -p) and does not say which it made. fiat removes exactly what its
// create built and never a directory that existed before, so it must know:
//
//   - On a local host fiat makes the missing directories itself, top down
//     (0755, the pool's own 0711, as libvirt's build does), and records and
//     marks each one it made (see mark.go: a settle after a crash reads the
//     marks). If fiat may not make them (it runs as another user than
//     libvirtd), libvirt's build makes them; fiat saw which were missing
//     just before and records those.
//   - On a remote host fiat cannot see the host's directories: it records
//     only the pool's own directory (starting the pool said it was
//     missing), and parents libvirt's build makes stay after a rollback.
//     The README says to create the parent beforehand on a remote host.
//
// Removal goes through libvirt on every host (see removeEmptyDir), deepest
// first, and leaves a directory that holds anything or that a pool uses.

// builtDirs are the directories a pool's create built (see undoRecord.Dirs).
func (u undoRecord) builtDirs() []string {
	if len(u.Dirs) == 0 && u.Built && u.Path != "" { // a record from before Dirs
		return []string{u.Path}
	}
	return u.Dirs
}

// missingDirs lists, deepest first, path and those of its parents that do
// not exist on this machine.
func missingDirs(path string) ([]string, error) {
	var missing []string
	for d := path; ; d = filepath.Dir(d) {
		_, err := os.Lstat(d)
		if err == nil {
			return missing, nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("look at %s: %w", d, err)
		}
		missing = append(missing, d)
		if d == filepath.Dir(d) {
			return missing, nil
		}
	}
}

// makeDirs makes missing (deepest first, as missingDirs lists them) top
// down on this machine and marks each; the last is the pool's own
// directory. It returns, deepest first, those it made, also when it fails
// part of the way. One another process made meanwhile is not fiat's.
func makeDirs(missing []string, mark string) ([]string, error) {
	var made []string
	for i := len(missing) - 1; i >= 0; i-- {
		d, mode := missing[i], os.FileMode(0o755)
		if i == 0 {
			mode = 0o711
		}
		if err := os.Mkdir(d, mode); err != nil {
			if errors.Is(err, os.ErrExist) {
				continue
			}
			return made, err
		}
		made = append([]string{d}, made...)
		_ = setMark(d, mark) // without extended attributes only a settle misses it
		if err := os.Chmod(d, mode); err != nil {
			return made, err
		}
	}
	return made, nil
}

// removeLocalDirs removes what makeDirs made when libvirt turned out not to
// see it (the provider sees another file system than libvirtd, e.g. in a
// container): fiat's own view is the only place they are.
func removeLocalDirs(dirs []string) error {
	for _, d := range dirs {
		if err := os.Remove(d); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("remove %s again: %w", d, err)
		}
	}
	return nil
}

// markedDirs lists, deepest first, path and its parents as long as each
// carries mark: what a pool's create with that mark made on this machine.
func markedDirs(path, mark string) []string {
	var dirs []string
	for d := path; hasMark(d, mark); d = filepath.Dir(d) {
		dirs = append(dirs, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	return dirs
}

// removeBuiltDirs removes dirs (deepest first), each when it is empty and
// no pool uses it. held is the directory whose lock the caller holds (the
// pool's own); the others' locks are taken for the moment a scratch pool
// is defined on them. It goes through all of them and returns the first
// failure.
func (p *Provider) removeBuiltDirs(ctx context.Context, l *golibvirt.Libvirt, dirs []string, held, op string) error {
	var first error
	for _, d := range dirs {
		err := p.withDirLock(ctx, d, held, func() error { return removeEmptyDir(l, d, op) })
		if first == nil {
			first = err
		}
	}
	return first
}

// withDirLock runs fn holding the job lock of dir, unless dir is held
// already.
func (p *Provider) withDirLock(ctx context.Context, dir, held string, fn func() error) error {
	if filepath.Clean(dir) == filepath.Clean(held) {
		return fn()
	}
	unlock, err := p.lockPool(ctx, dir)
	if err != nil {
		return err
	}
	defer unlock()
	return fn()
}

// removeEmptyDir removes dir through libvirt (so it works on a remote host
// too) when it is empty and no pool uses it: it defines a scratch pool on
// it, deletes that pool's directory (rmdir: a directory with files stays)
// and undefines the scratch pool. A directory that is not there is fine,
// however libvirt words it: a read-only file system answers "Read-only
// file system" for a directory that was never made, so any other refusal
// is checked by starting the scratch pool.
func removeEmptyDir(l *golibvirt.Libvirt, dir, op string) error {
	if hp, err := poolWithPath(l, dir); err != nil || hp != nil {
		return err // in use by another pool (e.g. the replacement): keep it
	}
	scratch, err := defineScratchPool(l, dir, op)
	if err != nil || scratch == nil {
		return err
	}
	err = l.StoragePoolDelete(*scratch, golibvirt.StoragePoolDeleteNormal)
	if err != nil && (hasMessage(err, "Directory not empty") || hasMessage(err, "No such file or directory")) {
		err = nil
	}
	if err != nil {
		if gone, gerr := dirGone(l, *scratch); gerr == nil && gone {
			err = nil
		}
	}
	if uerr := l.StoragePoolUndefine(*scratch); uerr != nil && !notFound(uerr) && err == nil {
		err = uerr
	}
	return mutErr(op, err)
}

// dirGone reports whether the directory of a stopped pool is missing:
// starting the pool fails so when it is.
func dirGone(l *golibvirt.Libvirt, pool golibvirt.StoragePool) (bool, error) {
	err := l.StoragePoolCreate(pool, 0)
	if hasMessage(err, "No such file or directory") {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	return false, l.StoragePoolDestroy(pool)
}

// builtDirsValue is the built_dirs attribute of a pool's state.
func builtDirsValue(dirs []string) cty.Value {
	vals := make([]cty.Value, len(dirs))
	for i, d := range dirs {
		vals[i] = cty.StringVal(d)
	}
	return listOf(cty.String, vals, false)
}

// withBuiltDirs is a pool's state (as poolState reads it: libvirt cannot
// tell what fiat built) with its built_dirs.
func withBuiltDirs(state, dirs cty.Value) cty.Value {
	if state == cty.NilVal || state.IsNull() || !state.IsKnown() {
		return state
	}
	m := state.AsValueMap()
	m["built_dirs"] = dirs
	return cty.ObjectVal(m)
}

// priorBuiltDirs is the built_dirs of a stored state: null when the state
// comes from a fiat that did not record them (nothing is removed then).
func priorBuiltDirs(prior cty.Value) cty.Value {
	v := attr(prior, "built_dirs")
	if !v.IsKnown() || v.IsNull() || !v.Type().Equals(cty.List(cty.String)) {
		if prior == cty.NilVal || prior.IsNull() {
			return cty.ListValEmpty(cty.String)
		}
		return cty.NullVal(cty.List(cty.String))
	}
	return v
}

// readPoolKeepingDirs is readPool with the built_dirs of the last known
// state: libvirt cannot tell what fiat built.
func (p *Provider) readPoolKeepingDirs(ctx context.Context, req providers.ReadRequest) (providers.ReadResponse, error) {
	resp, err := p.readPool(ctx, req)
	if err == nil && resp.Exists {
		resp.State = withBuiltDirs(resp.State, priorBuiltDirs(req.State))
	}
	return resp, err
}

// updatePoolKeepingDirs is updatePool with the built_dirs of the prior
// state.
func (p *Provider) updatePoolKeepingDirs(ctx context.Context, req providers.UpdateRequest) (providers.UpdateResponse, error) {
	resp, err := p.updatePool(ctx, req)
	resp.State = withBuiltDirs(resp.State, priorBuiltDirs(req.Prior))
	return resp, err
}
