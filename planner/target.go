package planner

import (
	"strings"

	"fiat/hcl"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// scope is the part of the configuration a plan covers: everything, or
// what -target names plus its dependencies, less what -exclude names and
// everything that depends on it.
type scope struct {
	all        bool
	resources  map[string]bool            // included resources (when !all)
	only       map[string]map[string]bool // resource → the only instances targeted
	targets    []hcl.Address
	excluded   map[string]bool // excluded resources
	exclInst   map[string]bool // excluded instances
	excludes   []hcl.Address
	hasExclude bool
}

func newScope(cfg *hcl.Config, targets, excludes []string) (*scope, hcl2.Diagnostics) {
	s := &scope{all: len(targets) == 0, excluded: map[string]bool{}, exclInst: map[string]bool{}}
	var diags hcl2.Diagnostics
	parse := func(list []string) []hcl.Address {
		var out []hcl.Address
		for _, t := range list {
			a, d := hcl.ParseAddress(t)
			diags = append(diags, d...)
			if !d.HasErrors() {
				out = append(out, a)
			}
		}
		return out
	}
	s.targets, s.excludes = parse(targets), parse(excludes)
	if diags.HasErrors() {
		return nil, diags
	}
	if !s.all {
		s.resources, s.only = map[string]bool{}, map[string]map[string]bool{}
		var queue []string
		for _, t := range s.targets {
			for _, r := range matching(cfg, t) {
				if t.HasKey() && !t.IsModule() {
					if s.only[r] == nil {
						s.only[r] = map[string]bool{}
					}
					s.only[r][t.String()] = true
				} else {
					s.only[r] = nil
					delete(s.only, r)
				}
				queue = append(queue, r)
			}
		}
		// A resource targeted whole wins over instance targets of it.
		for _, t := range s.targets {
			if !t.HasKey() || t.IsModule() {
				for _, r := range matching(cfg, t) {
					delete(s.only, r)
				}
			}
		}
		for len(queue) > 0 {
			r := queue[len(queue)-1]
			queue = queue[:len(queue)-1]
			if s.resources[r] {
				continue
			}
			s.resources[r] = true
			queue = append(queue, cfg.Dependencies(r)...)
		}
	}
	var queue []string
	for _, x := range s.excludes {
		s.hasExclude = true
		for _, r := range matching(cfg, x) {
			if x.HasKey() && !x.IsModule() {
				s.exclInst[x.String()] = true
				queue = append(queue, cfg.Dependents(r)...)
				continue
			}
			queue = append(queue, r)
		}
	}
	for len(queue) > 0 {
		r := queue[len(queue)-1]
		queue = queue[:len(queue)-1]
		if s.excluded[r] {
			continue
		}
		s.excluded[r] = true
		queue = append(queue, cfg.Dependents(r)...)
	}
	return s, diags
}

// matching lists the config resources an address names.
func matching(cfg *hcl.Config, a hcl.Address) []string {
	if a.IsModule() {
		var out []string
		for _, addr := range cfg.ResourceAddrs() {
			if r := cfg.Resources[addr]; r.Module == a.Module || strings.HasPrefix(r.Module, a.Module+".") {
				out = append(out, addr)
			}
		}
		return out
	}
	if _, ok := cfg.Resources[a.Resource()]; ok {
		return []string{a.Resource()}
	}
	return nil
}

func (s *scope) partial() bool { return !s.all || s.hasExclude }

func (s *scope) includes(res string) bool {
	if s.excluded[res] {
		return false
	}
	return s.all || s.resources[res]
}

func (s *scope) includesInstance(res, inst string) bool {
	if s.exclInst[inst] {
		return false
	}
	if only := s.only[res]; only != nil {
		return only[inst]
	}
	return true
}

// includesOrphan says whether a stored entity the configuration no longer
// has (res is its resource address) is in scope for deletion.
func (s *scope) includesOrphan(res, inst string) bool {
	named := func(list []hcl.Address) bool {
		for _, a := range list {
			switch {
			case a.IsModule():
				if strings.HasPrefix(inst, a.Module+".") {
					return true
				}
			case a.HasKey():
				if a.String() == inst {
					return true
				}
			case a.Resource() == res:
				return true
			}
		}
		return false
	}
	if s.excluded[res] || s.exclInst[inst] || named(s.excludes) {
		return false
	}
	if s.all {
		return true
	}
	if s.resources[res] && s.only[res] == nil {
		return true
	}
	return named(s.targets)
}
