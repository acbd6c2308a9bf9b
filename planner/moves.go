package planner

import (
	"fmt"
	"strings"

	"fiat/hcl"

	"github.com/zclconf/go-cty/cty"
)

// applyMoves renames stored entities as the moved blocks say, before
// anything is compared, so a renamed resource is not destroyed and created
// again. Chains (a → b, then b → c) work in any declaration order.
func (b *builder) applyMoves() {
	done := make([]bool, len(b.cfg.Moved))
	for progress := true; progress; {
		progress = false
		for i, mv := range b.cfg.Moved {
			if done[i] {
				continue
			}
			if n := b.move(mv); n > 0 {
				done[i], progress = true, true
			}
		}
	}
}

// move applies one moved block and returns how many entities it renamed.
func (b *builder) move(mv *hcl.Moved) int {
	type rename struct{ from, to string }
	var renames []rename
	switch {
	case mv.From.IsModule():
		from, to := mv.From.Module+".", mv.To.Module+"."
		for addr := range b.stored {
			if strings.HasPrefix(addr, from) {
				renames = append(renames, rename{addr, to + strings.TrimPrefix(addr, from)})
			}
		}
	case mv.From.Key == cty.NilVal && mv.To.Key == cty.NilVal:
		from, to := mv.From.Resource(), mv.To.Resource()
		for addr := range b.stored {
			if res, key, err := hcl.SplitInstance(addr); err == nil && res == from {
				renames = append(renames, rename{addr, hcl.InstanceAddr(to, key)})
			}
		}
	default:
		if _, ok := b.stored[mv.From.String()]; ok {
			renames = append(renames, rename{mv.From.String(), mv.To.String()})
		}
	}
	n := 0
	for _, r := range renames {
		if _, taken := b.stored[r.to]; taken {
			b.plan.Warnings = append(b.plan.Warnings, fmt.Sprintf(
				"moved block at %s:%d: %s is already in the store, so %s was not moved onto it.",
				mv.DeclRange.Filename, mv.DeclRange.Start.Line, r.to, r.from))
			continue
		}
		b.renameStored(r.from, r.to)
		n++
	}
	return n
}

func (b *builder) renameStored(from, to string) {
	st := b.stored[from]
	delete(b.stored, from)
	if st.movedFrom == "" {
		st.movedFrom = st.addr
	}
	if st.movedFrom == to {
		st.movedFrom = "" // moved back where it is stored
	}
	b.stored[to] = st
}

// implicitMoves follows a resource gaining or losing count: the object
// stored as type.name becomes type.name[0], and back.
func (b *builder) implicitMoves(addr string, x *hcl.Expansion) {
	zero := hcl.InstanceAddr(addr, cty.NumberIntVal(0))
	switch x.Mode {
	case hcl.Counted:
		if _, ok := b.stored[addr]; ok && len(x.Keys) > 0 {
			if _, taken := b.stored[zero]; !taken {
				b.renameStored(addr, zero)
			}
		}
	case hcl.Single:
		if _, ok := b.stored[zero]; ok {
			if _, taken := b.stored[addr]; !taken {
				b.renameStored(zero, addr)
			}
		}
	}
}
