package planner

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/providers"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

// FileVersion is the version of the saved plan format.
const FileVersion = 3

// File is a saved plan: the plan plus everything needed to apply it without
// re-planning: the config snapshot and the variable values it was made with.
//
// Sensitive variables are not stored: the file keeps a salted SHA-256 of each
// value, and apply needs the value again from the environment (FIAT_VAR_name)
// and refuses one that differs. Attributes derived from sensitive values are
// left out of the planned state too (apply evaluates them from the config).
//
// On disk a plan is sealed (Seal): the file carries the sha256 of its body
// and an HMAC of that digest keyed by the store's plan key, and names the
// store (its ID and data directory) and the stack it was made against.
// Apply refuses a file whose body does not match its digest (any edited
// byte), whose signature the store does not recognise, or that names
// another store or stack.
type File struct {
	Plan *Plan
	// ConfigDir is the absolute directory the config was read from: it is
	// what path.module means, and where messages point; the config itself
	// comes from the snapshot in Files.
	ConfigDir string
	// StoreID and DataDir name the store the plan was made against.
	StoreID   string
	DataDir   string
	Files     map[string][]byte
	Variables map[string]SavedVariable
}

// SavedVariable is one root variable's value as a saved plan keeps it.
type SavedVariable struct {
	Value     json.RawMessage `json:"value,omitempty"` // EncodeValue; absent when sensitive
	Sensitive bool            `json:"sensitive,omitempty"`
	Salt      string          `json:"salt,omitempty"`   // hex, sensitive only
	SHA256    string          `json:"sha256,omitempty"` // hex sha256(salt ‖ value.Encode(value)), sensitive only
	Source    string          `json:"source"`           // "default", "-var x", "FIAT_VAR_x", "-var-file f"
}

// SaveVariables captures a config's root variable values for a saved plan.
func SaveVariables(cfg *hcl.Config) (map[string]SavedVariable, error) {
	out := map[string]SavedVariable{}
	for name, v := range cfg.VariableValues() {
		val, _ := v.UnmarkDeep()
		enc, err := value.Encode(val)
		if err != nil {
			return nil, fmt.Errorf("save variable %s: %w", name, err)
		}
		sv := SavedVariable{Source: cfg.VariableSource(name)}
		if d := cfg.Variables[name]; d != nil && d.Sensitive {
			salt := make([]byte, 16)
			if _, err := rand.Read(salt); err != nil {
				return nil, fmt.Errorf("save variable %s: %w", name, err)
			}
			sv.Sensitive, sv.Salt, sv.SHA256 = true, hex.EncodeToString(salt), saltedHash(salt, enc)
		} else {
			sv.Value = enc
		}
		out[name] = sv
	}
	return out, nil
}

func saltedHash(salt, enc []byte) string {
	h := sha256.New()
	h.Write(salt)
	h.Write(enc)
	return hex.EncodeToString(h.Sum(nil))
}

// LoadOptions are the hcl options that reproduce the saved variable values.
// environ supplies sensitive values again (FIAT_VAR_name); only those are
// taken from it, so nothing else can be overridden at apply.
func (f *File) LoadOptions(environ []string) (hcl.Options, error) {
	opts := hcl.Options{Values: map[string]cty.Value{}, Env: []string{}}
	env := map[string]string{}
	for _, kv := range environ {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	var missing []string
	for _, name := range sortedKeys(f.Variables) {
		sv := f.Variables[name]
		if !sv.Sensitive {
			v, err := value.Decode(sv.Value)
			if err != nil {
				return opts, fmt.Errorf("saved variable %s: %w", name, err)
			}
			opts.Values[name] = v
			continue
		}
		if sv.Source == "default" {
			continue // the snapshot's default
		}
		val, ok := env["FIAT_VAR_"+name]
		if !ok {
			missing = append(missing, name)
			continue
		}
		opts.Env = append(opts.Env, "FIAT_VAR_"+name+"="+val)
	}
	if len(missing) > 0 {
		return opts, fmt.Errorf("the saved plan does not keep sensitive variables; give the same values again in the environment: %s",
			strings.Join(prefixed("FIAT_VAR_", missing), ", "))
	}
	return opts, nil
}

// CheckVariables verifies that a config loaded with LoadOptions has exactly
// the values the plan was made with.
func (f *File) CheckVariables(cfg *hcl.Config) error {
	vals := cfg.VariableValues()
	var bad []string
	for _, name := range sortedKeys(f.Variables) {
		sv := f.Variables[name]
		if !sv.Sensitive {
			continue
		}
		v, _ := vals[name].UnmarkDeep()
		enc, err := value.Encode(v)
		if err != nil {
			return fmt.Errorf("check variable %s: %w", name, err)
		}
		salt, err := hex.DecodeString(sv.Salt)
		if err != nil {
			return fmt.Errorf("check variable %s: bad salt in plan file", name)
		}
		if subtle.ConstantTimeCompare([]byte(saltedHash(salt, enc)), []byte(sv.SHA256)) != 1 {
			bad = append(bad, name)
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("sensitive variable(s) %s differ from the values the plan was made with; a saved plan's variables cannot be changed (make a new plan instead)",
			strings.Join(bad, ", "))
	}
	return nil
}

func prefixed(p string, names []string) []string {
	out := make([]string, len(names))
	for i, n := range names {
		out[i] = p + n
	}
	return out
}

type fileJSON struct {
	StoreID      string                   `json:"store_id"`
	DataDir      string                   `json:"data_dir"`
	Stack        string                   `json:"stack"`
	BaseRevision uint64                   `json:"base_revision"`
	Reads        map[string]uint64        `json:"reads"`
	ConfigDir    string                   `json:"config_dir"`
	Files        map[string][]byte        `json:"files"`
	Variables    map[string]SavedVariable `json:"variables,omitempty"`
	Refreshed    bool                     `json:"refreshed,omitempty"`
	AdoptDrift   bool                     `json:"adopt_drift,omitempty"`
	Targets      []string                 `json:"targets,omitempty"`
	Excludes     []string                 `json:"excludes,omitempty"`
	Warnings     []string                 `json:"warnings,omitempty"`
	Steps        []stepJSON               `json:"steps"`
	Drift        []driftJSON              `json:"drift,omitempty"`
	Outputs      map[string]outputJSON    `json:"outputs,omitempty"`
}

type stepJSON struct {
	Address             string          `json:"address"`
	Resource            string          `json:"resource,omitempty"`
	Type                string          `json:"type"`
	Name                string          `json:"name"`
	Provider            string          `json:"provider"`
	Action              Action          `json:"action"`
	Reversibility       string          `json:"reversibility"`
	ID                  string          `json:"id,omitempty"`
	Before              json.RawMessage `json:"before,omitempty"`
	After               json.RawMessage `json:"after,omitempty"`
	AfterUnknown        []string        `json:"after_unknown,omitempty"` // attributes known only after apply (or left out as sensitive)
	ForceNew            []string        `json:"force_new,omitempty"`
	DependsOn           []string        `json:"depends_on,omitempty"`
	Source              string          `json:"source,omitempty"`
	Sensitive           []string        `json:"sensitive,omitempty"`
	CreateBeforeDestroy bool            `json:"create_before_destroy,omitempty"`
	MovedFrom           string          `json:"moved_from,omitempty"`
	Imported            bool            `json:"imported,omitempty"`
	Reason              string          `json:"reason,omitempty"`
	RestartNeeded       []string        `json:"restart_needed,omitempty"`
	Provisioners        []provJSON      `json:"provisioners,omitempty"`
	ReadAtApply         bool            `json:"read_at_apply,omitempty"`
}

type provJSON struct {
	Type          string `json:"type"`
	Reversibility string `json:"reversibility"`
}

type driftJSON struct {
	Address   string          `json:"address"`
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Revision  uint64          `json:"revision"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after,omitempty"`
	Changed   []string        `json:"changed,omitempty"`
	Sensitive []string        `json:"sensitive,omitempty"`
}

type outputJSON struct {
	Value     json.RawMessage `json:"value,omitempty"`
	Sensitive bool            `json:"sensitive,omitempty"`
	Unknown   bool            `json:"unknown,omitempty"`
}

// Body renders the plan canonically; its sha256 is the plan's identity.
func (f *File) Body() ([]byte, error) {
	p := f.Plan
	if len(p.PendingReads) > 0 {
		return nil, fmt.Errorf("encode plan: %d data source(s) not read yet", len(p.PendingReads))
	}
	j := fileJSON{
		StoreID: f.StoreID, DataDir: f.DataDir, Stack: p.Stack, BaseRevision: p.BaseRevision, Reads: p.Reads,
		ConfigDir: f.ConfigDir, Files: f.Files, Variables: f.Variables, Refreshed: p.Refreshed,
		AdoptDrift: p.AdoptDrift, Targets: p.Targets, Excludes: p.Excludes, Warnings: p.Warnings,
		Steps: make([]stepJSON, 0, len(p.Steps)),
	}
	for _, s := range p.Steps {
		sj := stepJSON{
			Address: s.Address, Resource: s.Resource, Type: s.Type, Name: s.Name, Provider: s.Provider, Action: s.Action,
			Reversibility: s.Reversibility.String(), ID: s.ID, ForceNew: s.ForceNew,
			DependsOn: s.DependsOn, Source: s.Source, Sensitive: s.Sensitive,
			CreateBeforeDestroy: s.CreateBeforeDestroy, MovedFrom: s.MovedFrom, Imported: s.Imported, Reason: s.Reason, ReadAtApply: s.ReadAtApply,
			RestartNeeded: s.RestartNeeded,
		}
		for _, p := range s.Provisioners {
			sj.Provisioners = append(sj.Provisioners, provJSON{Type: p.Type, Reversibility: p.Reversibility.String()})
		}
		var err error
		// Sensitive stored values stay out of the file: apply reads them
		// from the store again (Plan.Rehydrate), at the revision the plan
		// read, or refuses the plan as stale.
		before, _ := splitUnknown(redact(s.Before, s.Sensitive))
		if sj.Before, err = value.Encode(before); err != nil {
			return nil, fmt.Errorf("encode plan step %s: %w", s.Address, err)
		}
		after := s.After
		switch s.Action {
		case Create, Update, Replace, NoOp, Move:
			// Apply evaluates these from the config and variables again,
			// or reads them from the store.
			after = redact(after, s.Sensitive)
		}
		after, unknown := splitUnknown(after)
		if sj.After, err = value.Encode(after); err != nil {
			return nil, fmt.Errorf("encode plan step %s: %w", s.Address, err)
		}
		sj.AfterUnknown = unknown
		j.Steps = append(j.Steps, sj)
	}
	for _, d := range p.Drift {
		dj := driftJSON{Address: d.Address, Type: d.Type, Name: d.Name, Revision: d.Revision, Changed: d.Changed, Sensitive: d.Sensitive}
		var err error
		if dj.Before, err = value.Encode(d.Before); err != nil {
			return nil, fmt.Errorf("encode drift of %s: %w", d.Address, err)
		}
		if dj.After, err = value.Encode(d.After); err != nil {
			return nil, fmt.Errorf("encode drift of %s: %w", d.Address, err)
		}
		j.Drift = append(j.Drift, dj)
	}
	if len(p.Outputs) > 0 {
		j.Outputs = map[string]outputJSON{}
		for name, o := range p.Outputs {
			oj := outputJSON{Sensitive: o.Sensitive}
			switch {
			case o.Sensitive:
			case !o.Value.IsWhollyKnown():
				oj.Unknown = true
			default:
				var err error
				if oj.Value, err = value.Encode(o.Value); err != nil {
					return nil, fmt.Errorf("encode output %s: %w", name, err)
				}
			}
			j.Outputs[name] = oj
		}
	}
	// Compact, as it sits inside the sealed envelope byte for byte.
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(j); err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

// redact makes the named attributes unknown.
func redact(v cty.Value, names []string) cty.Value {
	if len(names) == 0 || v == cty.NilVal || v.IsNull() || !v.Type().IsObjectType() {
		return v
	}
	attrs := v.AsValueMap()
	for _, n := range names {
		if a, ok := attrs[n]; ok && !a.IsNull() {
			attrs[n] = cty.UnknownVal(a.Type())
		}
	}
	return cty.ObjectVal(attrs)
}

// decodeBody parses a plan body (inside a sealed file).
func decodeBody(b []byte) (*File, error) {
	var j fileJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, fmt.Errorf("decode plan: %w", err)
	}
	p := &Plan{Stack: j.Stack, BaseRevision: j.BaseRevision, Reads: j.Reads, Refreshed: j.Refreshed, AdoptDrift: j.AdoptDrift,
		Targets: j.Targets, Excludes: j.Excludes, Warnings: j.Warnings, Steps: make([]*Step, 0, len(j.Steps))}
	if p.Reads == nil {
		p.Reads = map[string]uint64{}
	}
	for _, sj := range j.Steps {
		rev, err := parseReversibility(sj.Reversibility)
		if err != nil {
			return nil, fmt.Errorf("step %s: %w", sj.Address, err)
		}
		s := &Step{
			Address: sj.Address, Resource: sj.Resource, Type: sj.Type, Name: sj.Name, Provider: sj.Provider, Action: sj.Action,
			Reversibility: rev, ID: sj.ID, ForceNew: sj.ForceNew, DependsOn: sj.DependsOn,
			Source: sj.Source, Sensitive: sj.Sensitive, CreateBeforeDestroy: sj.CreateBeforeDestroy,
			MovedFrom: sj.MovedFrom, Imported: sj.Imported, Reason: sj.Reason, RestartNeeded: sj.RestartNeeded, ReadAtApply: sj.ReadAtApply,
		}
		for _, pj := range sj.Provisioners {
			r, err := parseReversibility(pj.Reversibility)
			if err != nil {
				return nil, fmt.Errorf("step %s: provisioner %s: %w", sj.Address, pj.Type, err)
			}
			s.Provisioners = append(s.Provisioners, ProvisionerStep{Type: pj.Type, Reversibility: r})
		}
		if s.Before, err = value.Decode(sj.Before); err != nil {
			return nil, fmt.Errorf("step %s: %w", sj.Address, err)
		}
		if s.After, err = value.Decode(sj.After); err != nil {
			return nil, fmt.Errorf("step %s: %w", sj.Address, err)
		}
		s.After = joinUnknown(s.After, sj.AfterUnknown)
		p.Steps = append(p.Steps, s)
	}
	for _, dj := range j.Drift {
		d := &Drift{Address: dj.Address, Type: dj.Type, Name: dj.Name, Revision: dj.Revision, Changed: dj.Changed, Sensitive: dj.Sensitive}
		var err error
		if d.Before, err = value.Decode(dj.Before); err != nil {
			return nil, fmt.Errorf("drift of %s: %w", dj.Address, err)
		}
		if d.After, err = value.Decode(dj.After); err != nil {
			return nil, fmt.Errorf("drift of %s: %w", dj.Address, err)
		}
		p.Drift = append(p.Drift, d)
	}
	if len(j.Outputs) > 0 {
		p.Outputs = map[string]OutputValue{}
		for name, oj := range j.Outputs {
			o := OutputValue{Sensitive: oj.Sensitive, Value: cty.DynamicVal}
			if len(oj.Value) > 0 {
				v, err := value.Decode(oj.Value)
				if err != nil {
					return nil, fmt.Errorf("output %s: %w", name, err)
				}
				o.Value = v
			}
			p.Outputs[name] = o
		}
	}
	p.reindex()
	return &File{Plan: p, ConfigDir: j.ConfigDir, StoreID: j.StoreID, DataDir: j.DataDir, Files: j.Files, Variables: j.Variables}, nil
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
