package planner

import (
	"fmt"

	"fiat/state"
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
			attrs, err := EncodeValue(s.After)
			if err != nil {
				return nil, nil, fmt.Errorf("encode state of %s: %w", s.Address, err)
			}
			deps := make([]string, len(s.DependsOn))
			for i, d := range s.DependsOn {
				deps[i] = prefix + d
			}
			put = append(put, state.Entity{
				Address: prefix + s.Address, Stack: p.Stack, Type: s.Type, Name: s.Name, Provider: s.Provider,
				ID: s.ID, Attributes: attrs, Dependencies: deps, Status: state.StatusOK, Source: s.Source,
			})
		case Forget:
			del = append(del, prefix+s.Address)
		}
	}
	return put, del, nil
}
