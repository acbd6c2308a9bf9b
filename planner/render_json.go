package planner

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// JSONFormatVersion is the version of the JSON plan document
// (docs/plan-json.md). A new minor version only adds fields; a new major
// version may change or remove them.
const JSONFormatVersion = "1.0"

// SensitiveJSON stands in for a sensitive value in the JSON document.
const SensitiveJSON = "(sensitive)"

type planDoc struct {
	FormatVersion string            `json:"format_version"`
	Stack         string            `json:"stack"`
	BaseRevision  uint64            `json:"base_revision"`
	Digest        string            `json:"digest,omitempty"`
	Refreshed     bool              `json:"refreshed"`
	AdoptDrift    bool              `json:"adopt_drift"`
	Targets       []string          `json:"targets"`
	Excludes      []string          `json:"excludes"`
	Summary       summaryDoc        `json:"summary"`
	Changes       []changeDoc       `json:"changes"`
	Drift         []driftDoc        `json:"drift"`
	Outputs       map[string]outDoc `json:"outputs"`
	Reads         map[string]uint64 `json:"reads"`
	Warnings      []string          `json:"warnings"`
}

type summaryDoc struct {
	HasChanges      bool `json:"has_changes"`
	FullyReversible bool `json:"fully_reversible"`
	Create          int  `json:"create"`
	Update          int  `json:"update"`
	Replace         int  `json:"replace"`
	Delete          int  `json:"delete"`
	Import          int  `json:"import"`
	Move            int  `json:"move"`
	Adopt           int  `json:"adopt"`
	Forget          int  `json:"forget"`
	Read            int  `json:"read"`
	NoOp            int  `json:"no_op"`
	Drifted         int  `json:"drifted"`
}

type changeDoc struct {
	Address             string          `json:"address"`
	Resource            string          `json:"resource"`
	Type                string          `json:"type"`
	Name                string          `json:"name"`
	Provider            string          `json:"provider"`
	Action              Action          `json:"action"`
	Reversibility       string          `json:"reversibility"`
	ID                  string          `json:"id,omitempty"`
	Source              string          `json:"source,omitempty"`
	Reason              string          `json:"reason,omitempty"`
	MovedFrom           string          `json:"moved_from,omitempty"`
	Imported            bool            `json:"imported,omitempty"`
	CreateBeforeDestroy bool            `json:"create_before_destroy,omitempty"`
	Changed             []string        `json:"changed"`
	ForceNew            []string        `json:"force_new"`
	RestartNeeded       []string        `json:"restart_needed"`
	Provisioners        []provJSON      `json:"provisioners,omitempty"`
	ReadAtApply         bool            `json:"read_at_apply,omitempty"`
	Sensitive           []string        `json:"sensitive"`
	AfterUnknown        []string        `json:"after_unknown"`
	DependsOn           []string        `json:"depends_on"`
	Before              json.RawMessage `json:"before"`
	After               json.RawMessage `json:"after"`
}

type driftDoc struct {
	Address   string          `json:"address"`
	Type      string          `json:"type"`
	Name      string          `json:"name"`
	Revision  uint64          `json:"revision"`
	Deleted   bool            `json:"deleted"`
	Changed   []string        `json:"changed"`
	Sensitive []string        `json:"sensitive"`
	Before    json.RawMessage `json:"before"`
	After     json.RawMessage `json:"after"`
}

type outDoc struct {
	Sensitive bool            `json:"sensitive"`
	Known     bool            `json:"known"`
	Value     json.RawMessage `json:"value"`
}

// JSONOptions controls RenderJSON.
type JSONOptions struct {
	Digest string // the saved plan's sha256, if any
	Indent bool
}

// RenderJSON writes the plan as the documented JSON document
// (docs/plan-json.md). No-op steps are counted, not listed; sensitive values
// are replaced by "(sensitive)".
func RenderJSON(w io.Writer, p *Plan, opts JSONOptions) error {
	doc := planDoc{
		FormatVersion: JSONFormatVersion, Stack: p.Stack, BaseRevision: p.BaseRevision, Digest: opts.Digest,
		Refreshed: p.Refreshed, AdoptDrift: p.AdoptDrift,
		Targets: nonNil(p.Targets), Excludes: nonNil(p.Excludes), Warnings: nonNil(p.Warnings),
		Changes: []changeDoc{}, Drift: []driftDoc{}, Outputs: map[string]outDoc{}, Reads: p.Reads,
	}
	if doc.Reads == nil {
		doc.Reads = map[string]uint64{}
	}
	c := p.Counts()
	doc.Summary = summaryDoc{
		HasChanges: p.HasChanges(), FullyReversible: len(p.lossy()) == 0,
		Create: c[Create], Update: c[Update], Replace: c[Replace], Delete: c[Delete], Import: c[Import],
		Move: c[Move], Adopt: c[Adopt], Forget: c[Forget], Read: c[Read], NoOp: c[NoOp], Drifted: len(p.Drift),
	}
	for _, s := range p.Steps {
		if s.Action == NoOp {
			continue
		}
		sens := nameSet(s.Sensitive)
		after, unknown := splitUnknown(s.After)
		cd := changeDoc{
			Address: s.Address, Resource: s.Resource, Type: s.Type, Name: s.Name, Provider: s.Provider, Action: s.Action,
			Reversibility: s.Reversibility.String(), ID: s.ID, Source: s.Source, Reason: s.Reason, MovedFrom: s.MovedFrom,
			Imported: s.Imported, CreateBeforeDestroy: s.CreateBeforeDestroy,
			Changed: nonNil(changedNames(s)), ForceNew: nonNil(s.ForceNew), RestartNeeded: nonNil(s.RestartNeeded), Sensitive: nonNil(s.Sensitive),
			Provisioners: provisionersJSON(s.Provisioners), ReadAtApply: s.ReadAtApply,
			AfterUnknown: nonNil(unknown), DependsOn: nonNil(s.DependsOn),
			Before: jsonValue(s.Before, sens), After: jsonValue(after, sens),
		}
		doc.Changes = append(doc.Changes, cd)
	}
	for _, d := range p.Drift {
		sens := nameSet(d.Sensitive)
		doc.Drift = append(doc.Drift, driftDoc{
			Address: d.Address, Type: d.Type, Name: d.Name, Revision: d.Revision, Deleted: d.Deleted(),
			Changed: nonNil(d.Changed), Sensitive: nonNil(d.Sensitive), Before: jsonValue(d.Before, sens), After: jsonValue(d.After, sens),
		})
	}
	for name, o := range p.Outputs {
		od := outDoc{Sensitive: o.Sensitive, Known: o.Value.IsWhollyKnown(), Value: json.RawMessage("null")}
		switch {
		case o.Sensitive:
			od.Value, _ = json.Marshal(SensitiveJSON)
		case od.Known:
			od.Value = jsonValue(o.Value, nil)
		}
		doc.Outputs[name] = od
	}
	enc := json.NewEncoder(w)
	if opts.Indent {
		enc.SetIndent("", "  ")
	}
	if err := enc.Encode(doc); err != nil {
		return fmt.Errorf("render plan as JSON: %w", err)
	}
	return nil
}

// changedNames lists the attributes an update or replace changes.
func changedNames(s *Step) []string {
	if s.Action != Update && s.Action != Replace && s.Action != Adopt {
		return nil
	}
	var out []string
	for _, n := range attrNames(s.Before, s.After) {
		if a := attr(s.After, n); !a.IsWhollyKnown() || !equal(a, attr(s.Before, n)) {
			out = append(out, n)
		}
	}
	sort.Strings(out)
	return out
}

// jsonValue renders a known value as plain JSON, with the named top-level
// attributes replaced by "(sensitive)"; cty.NilVal is null.
func jsonValue(v cty.Value, sensitive map[string]bool) json.RawMessage {
	if v == cty.NilVal || v.IsNull() {
		return json.RawMessage("null")
	}
	if len(sensitive) > 0 && v.Type().IsObjectType() {
		attrs := v.AsValueMap()
		for n := range sensitive {
			if a, ok := attrs[n]; ok && !a.IsNull() {
				attrs[n] = cty.StringVal(SensitiveJSON)
			}
		}
		v = cty.ObjectVal(attrs)
	}
	b, err := ctyjson.Marshal(v, v.Type())
	if err != nil {
		b, _ = json.Marshal(fmt.Sprintf("(cannot render: %v)", err))
	}
	return b
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

func provisionersJSON(ps []ProvisionerStep) []provJSON {
	var out []provJSON
	for _, p := range ps {
		out = append(out, provJSON{Type: p.Type, Reversibility: p.Reversibility.String()})
	}
	return out
}
