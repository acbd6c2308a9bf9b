package engine

import (
	"fmt"

	"fiat/hcl"
	"fiat/planner"
)

// Saved is a plan read back from a file written by planner.File.Save.
type Saved struct {
	File   *planner.File
	Digest string // sha256 of the file's content
	Config *hcl.Config
}

// OpenSaved reads a saved plan and its config snapshot with exactly the
// variable values it was made with. Sensitive values are not in the file:
// environ must give them again (FIAT_VAR_name) and they must match.
func OpenSaved(path string, environ []string) (*Saved, error) {
	f, digest, err := planner.Load(path)
	if err != nil {
		return nil, err
	}
	opts, err := f.LoadOptions(environ)
	if err != nil {
		return nil, fmt.Errorf("apply %s: %w", path, err)
	}
	cfg, diags := hcl.LoadFiles(f.ConfigDir, f.Files, opts)
	if diags.HasErrors() {
		return nil, hcl.NewDiagError(diags, f.Files)
	}
	if err := f.CheckVariables(cfg); err != nil {
		return nil, fmt.Errorf("apply %s: %w", path, err)
	}
	return &Saved{File: f, Digest: digest, Config: cfg}, nil
}

// NewPlanFile captures a plan with its config snapshot and variable values,
// ready to Save.
func NewPlanFile(plan *planner.Plan, dir string, cfg *hcl.Config) (*planner.File, error) {
	vars, err := planner.SaveVariables(cfg)
	if err != nil {
		return nil, err
	}
	return &planner.File{Plan: plan, ConfigDir: dir, Files: cfg.Files, Variables: vars}, nil
}
