package engine

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"fiat/hcl"
	"fiat/planner"
	"fiat/state"
)

// Identified is a store that can name itself: saved plans record it.
type Identified interface {
	Identity(ctx context.Context) (state.Identity, error)
	Dir() string
}

// PlanFile captures a plan for saving: its config snapshot (read from
// configDir), its variable values, and the store and stack it is made
// against.
func PlanFile(ctx context.Context, store Identified, plan *planner.Plan, configDir string, cfg *hcl.Config) (*planner.File, state.Identity, error) {
	id, err := store.Identity(ctx)
	if err != nil {
		return nil, id, err
	}
	vars, err := planner.SaveVariables(cfg)
	if err != nil {
		return nil, id, err
	}
	abs, err := filepath.Abs(configDir)
	if err != nil {
		return nil, id, fmt.Errorf("resolve config directory %s: %w", configDir, err)
	}
	return &planner.File{Plan: plan, ConfigDir: abs, StoreID: id.ID, DataDir: store.Dir(), Files: cfg.Files, Variables: vars}, id, nil
}

// SavePlan seals a plan with the store's key and writes it to path; it
// returns the digest apply will verify.
func SavePlan(ctx context.Context, store Identified, plan *planner.Plan, configDir string, cfg *hcl.Config, path string) (string, error) {
	f, id, err := PlanFile(ctx, store, plan, configDir, cfg)
	if err != nil {
		return "", err
	}
	return f.Save(path, id.PlanKey)
}

// PlanDigest is the digest a plan would be saved under: the identity apply
// records for a plan it made itself.
func PlanDigest(ctx context.Context, store Identified, plan *planner.Plan, configDir string, cfg *hcl.Config) (string, error) {
	f, _, err := PlanFile(ctx, store, plan, configDir, cfg)
	if err != nil {
		return "", err
	}
	body, err := f.Body()
	if err != nil {
		return "", err
	}
	return planner.Digest(body), nil
}

// Saved is a plan file checked against the store it is applied to, with
// its config snapshot loaded.
type Saved struct {
	File   *planner.File
	Digest string
	Config *hcl.Config
}

// ErrWrongStore marks a saved plan applied to another store than the one
// it was made against.
var ErrWrongStore = errors.New("the plan was made against another store")

// LoadSaved checks a sealed plan against the store it is about to be
// applied to — the store's identity and the plan's signature — and loads
// its config snapshot with exactly the variable values it was made with.
// Sensitive values are not in the file: environ must give them again
// (FIAT_VAR_name) and they must match.
func LoadSaved(ctx context.Context, store Identified, sealed *planner.Sealed, environ []string) (*Saved, error) {
	f := sealed.File
	id, err := store.Identity(ctx)
	if err != nil {
		return nil, err
	}
	if id.ID != f.StoreID {
		return nil, fmt.Errorf("%w: it was made against store %s (in %s), this is store %s (in %s); apply it to the store it was made against, or make a new plan",
			ErrWrongStore, f.StoreID, f.DataDir, id.ID, store.Dir())
	}
	if err := sealed.Verify(id.PlanKey); err != nil {
		return nil, err
	}
	opts, err := f.LoadOptions(environ)
	if err != nil {
		return nil, err
	}
	cfg, diags := hcl.LoadFiles(f.ConfigDir, f.Files, opts)
	if diags.HasErrors() {
		return nil, hcl.NewDiagError(diags, f.Files)
	}
	if err := f.CheckVariables(cfg); err != nil {
		return nil, err
	}
	return &Saved{File: f, Digest: sealed.Digest, Config: cfg}, nil
}
