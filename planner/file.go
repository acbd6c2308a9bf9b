package planner

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// FileVersion is the version of the saved plan format.
const FileVersion = 1

// File is a saved plan: the plan plus everything needed to apply it without
// re-planning: the config snapshot and the variable values it was made with.
type File struct {
	Plan *Plan
	// ConfigDir is where the config was read from (for messages only;
	// apply uses the snapshot in Files).
	ConfigDir string
	Files     map[string][]byte
	Vars      map[string]string // -var values
	Env       []string          // FIAT_VAR_* environment at plan time
}

type fileJSON struct {
	Version      int               `json:"format_version"`
	Stack        string            `json:"stack"`
	BaseRevision uint64            `json:"base_revision"`
	Reads        map[string]uint64 `json:"reads"`
	ConfigDir    string            `json:"config_dir"`
	Files        map[string][]byte `json:"files"`
	Vars         map[string]string `json:"vars,omitempty"`
	Env          []string          `json:"env,omitempty"`
	Steps        []stepJSON        `json:"steps"`
}

type stepJSON struct {
	Address       string          `json:"address"`
	Type          string          `json:"type"`
	Name          string          `json:"name"`
	Provider      string          `json:"provider"`
	Action        Action          `json:"action"`
	Reversibility string          `json:"reversibility"`
	ID            string          `json:"id,omitempty"`
	Before        json.RawMessage `json:"before,omitempty"`
	After         json.RawMessage `json:"after,omitempty"`
	AfterUnknown  []string        `json:"after_unknown,omitempty"` // attributes known only after apply
	ForceNew      []string        `json:"force_new,omitempty"`
	DependsOn     []string        `json:"depends_on,omitempty"`
	Source        string          `json:"source,omitempty"`
	Sensitive     []string        `json:"sensitive,omitempty"`
}

// Encode renders the file canonically; its sha256 is the plan's identity.
func (f *File) Encode() ([]byte, error) {
	j := fileJSON{
		Version: FileVersion, Stack: f.Plan.Stack, BaseRevision: f.Plan.BaseRevision,
		Reads: f.Plan.Reads, ConfigDir: f.ConfigDir, Files: f.Files, Vars: f.Vars, Env: f.Env,
	}
	for _, s := range f.Plan.Steps {
		sj := stepJSON{
			Address: s.Address, Type: s.Type, Name: s.Name, Provider: s.Provider, Action: s.Action,
			Reversibility: s.Reversibility.String(), ID: s.ID, ForceNew: s.ForceNew,
			DependsOn: s.DependsOn, Source: s.Source, Sensitive: s.Sensitive,
		}
		var err error
		if sj.Before, err = EncodeValue(s.Before); err != nil {
			return nil, fmt.Errorf("encode plan step %s: %w", s.Address, err)
		}
		after, unknown := splitUnknown(s.After)
		if sj.After, err = EncodeValue(after); err != nil {
			return nil, fmt.Errorf("encode plan step %s: %w", s.Address, err)
		}
		sj.AfterUnknown = unknown
		j.Steps = append(j.Steps, sj)
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", " ")
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return buf.Bytes(), nil
}

// Digest is the sha256 of an encoded plan, shown to the user as its identity.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Save writes the plan atomically (temp file, fsync, rename) and returns its digest.
func (f *File) Save(path string) (string, error) {
	b, err := f.Encode()
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fiat-plan-*")
	if err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	return Digest(b), nil
}

// Load reads a saved plan and returns it with its digest.
func Load(path string) (*File, string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, "", fmt.Errorf("read plan %s: %w", path, err)
	}
	var j fileJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, "", fmt.Errorf("read plan %s: not a fiat plan file: %w", path, err)
	}
	if j.Version != FileVersion {
		return nil, "", fmt.Errorf("read plan %s: format version %d, this fiat reads %d", path, j.Version, FileVersion)
	}
	p := &Plan{Stack: j.Stack, BaseRevision: j.BaseRevision, Reads: j.Reads}
	for _, sj := range j.Steps {
		s := &Step{
			Address: sj.Address, Type: sj.Type, Name: sj.Name, Provider: sj.Provider, Action: sj.Action,
			ID: sj.ID, ForceNew: sj.ForceNew, DependsOn: sj.DependsOn, Source: sj.Source, Sensitive: sj.Sensitive,
		}
		if s.Reversibility, err = parseReversibility(sj.Reversibility); err != nil {
			return nil, "", fmt.Errorf("read plan %s: step %s: %w", path, sj.Address, err)
		}
		if s.Before, err = DecodeValue(sj.Before); err != nil {
			return nil, "", fmt.Errorf("read plan %s: step %s: %w", path, sj.Address, err)
		}
		if s.After, err = DecodeValue(sj.After); err != nil {
			return nil, "", fmt.Errorf("read plan %s: step %s: %w", path, sj.Address, err)
		}
		s.After = joinUnknown(s.After, sj.AfterUnknown)
		p.Steps = append(p.Steps, s)
	}
	return &File{Plan: p, ConfigDir: j.ConfigDir, Files: j.Files, Vars: j.Vars, Env: j.Env}, Digest(b), nil
}

func parseReversibility(s string) (providers.Reversibility, error) {
	for _, r := range []providers.Reversibility{providers.Reversible, providers.Lossy, providers.Irreversible} {
		if r.String() == s {
			return r, nil
		}
	}
	return 0, fmt.Errorf("unknown reversibility %q", s)
}

// splitUnknown replaces attributes that are not wholly known with null, since
// JSON cannot hold unknowns, and lists them.
func splitUnknown(v cty.Value) (cty.Value, []string) {
	if v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() || v.IsWhollyKnown() {
		return v, nil
	}
	attrs := v.AsValueMap()
	var unknown []string
	for n, a := range attrs {
		if !a.IsWhollyKnown() {
			attrs[n] = cty.NullVal(a.Type())
			unknown = append(unknown, n)
		}
	}
	sort.Strings(unknown)
	return cty.ObjectVal(attrs), unknown
}

func joinUnknown(v cty.Value, unknown []string) cty.Value {
	if len(unknown) == 0 || v == cty.NilVal {
		return v
	}
	attrs := v.AsValueMap()
	for _, n := range unknown {
		attrs[n] = cty.UnknownVal(attrs[n].Type())
	}
	return cty.ObjectVal(attrs)
}
