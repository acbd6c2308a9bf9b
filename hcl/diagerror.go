package hcl

import (
	"os"
	"path/filepath"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// DiagError is a spec problem: HCL diagnostics with the sources to quote
// them from, so whoever prints it can show each range in context.
type DiagError struct {
	Diags hcl2.Diagnostics
	Files map[string]*hcl2.File // by file name as the diagnostics give it
}

func (e *DiagError) Error() string { return e.Diags.Error() }

// NewDiagError carries diags with their sources: from snapshot (a saved
// plan's files, matched by path relative to the config directory) or, for
// files not in it, the disk.
func NewDiagError(diags hcl2.Diagnostics, snapshot map[string][]byte) *DiagError {
	files := map[string]*hcl2.File{}
	for _, d := range diags {
		if d.Subject == nil {
			continue
		}
		name := d.Subject.Filename
		if _, ok := files[name]; ok {
			continue
		}
		b, ok := SnapshotFile(snapshot, name)
		if !ok {
			b, _ = os.ReadFile(name)
		}
		files[name] = &hcl2.File{Bytes: b}
	}
	return &DiagError{Diags: diags, Files: files}
}

// Sources returns the quoted files' bytes by name.
func (e *DiagError) Sources() map[string][]byte {
	out := make(map[string][]byte, len(e.Files))
	for name, f := range e.Files {
		out[name] = f.Bytes
	}
	return out
}

// SnapshotFile finds a diagnostic's file in a config snapshot, whose keys are
// paths relative to the config directory.
func SnapshotFile(snapshot map[string][]byte, name string) ([]byte, bool) {
	slash := filepath.ToSlash(name)
	best := ""
	for k := range snapshot {
		if (slash == k || strings.HasSuffix(slash, "/"+k)) && len(k) > len(best) {
			best = k
		}
	}
	if best == "" {
		return nil, false
	}
	return snapshot[best], true
}
