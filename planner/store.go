package planner

import (
	"errors"
	"fmt"

	"github.com/zclconf/go-cty/cty"

	"fiat/state"
	"fiat/value"
)

// StoreChanges is what an apply's commit must write besides the results of
// provider calls: the entities of store-only steps (Import, Move and Adopt
// put Address with After and ID; Forget deletes Address), and for every step
// with MovedFrom, whatever its action, the deletion of the old address.
// Addresses are full store addresses ("<stack>/<address>").
func (p *Plan) StoreChanges() (put []state.Entity, del []string, err error) {
	prefix := p.Stack + "/"
	for _, s := range p.Steps {
		if s.MovedFrom != "" {
			del = append(del, prefix+s.MovedFrom)
		}
		switch s.Action {
		case Import, Move, Adopt:
			attrs, err := value.Encode(s.After)
			if err != nil {
				return nil, nil, fmt.Errorf("encode state of %s: %w", s.Address, err)
			}
			deps := make([]string, len(s.DependsOn))
			for i, d := range s.DependsOn {
				deps[i] = prefix + d
			}
			put = append(put, state.Entity{
				Address: prefix + s.Address, Stack: p.Stack, Type: s.Type, Name: s.Name, Provider: s.Provider,
				ID: s.ID, Attributes: attrs, Dependencies: deps, Status: state.StatusOK, Source: s.Source, Sensitive: s.Sensitive,
			})
		case Forget:
			del = append(del, prefix+s.Address)
		}
	}
	return put, del, nil
}

// Rehydrate puts back, from the store, the stored values a saved plan file
// leaves out because they may be sensitive: every step's Before, and the
// After of steps that keep the stored value (no-op, move). get reads an
// entity by its full address. An entity that is gone is left alone: the
// plan's staleness check refuses the plan.
func (p *Plan) Rehydrate(get func(addr string) (state.Entity, error)) error {
	for _, s := range p.Steps {
		from := s.Address
		if s.MovedFrom != "" {
			from = s.MovedFrom
		}
		if s.Before == cty.NilVal && s.Action != NoOp && s.Action != Move {
			continue
		}
		e, err := get(p.Stack + "/" + from)
		if errors.Is(err, state.ErrNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("read stored state of %s: %w", from, err)
		}
		v, err := value.Decode(e.Attributes)
		if err != nil {
			return fmt.Errorf("read stored state of %s: %w", from, err)
		}
		if s.Before != cty.NilVal {
			s.Before = v
		}
		if s.Action == NoOp || s.Action == Move {
			s.After = v
		}
	}
	return nil
}
