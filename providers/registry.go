package providers

import (
	"fmt"
	"sort"
	"strings"
	"sync"
)

// Factory makes a new, unconfigured provider.
type Factory func() Provider

// Registry is the set of providers an engine can use, by name ("libvirt").
// Provider addresses name a provider and optionally an alias
// ("libvirt.remote"); the registry resolves them by the name part. Safe for
// concurrent use.
type Registry struct {
	factories map[string]Factory

	once       sync.Once
	schemas    map[string]Schema
	modifiers  map[string]PlanModifier
	validators map[string]ConfigValidator
}

// NewRegistry returns a registry of the given providers.
func NewRegistry(factories map[string]Factory) *Registry {
	fs := make(map[string]Factory, len(factories))
	for name, f := range factories {
		fs[name] = f
	}
	return &Registry{factories: fs}
}

// NameOf is the provider name of a provider address: "libvirt" of
// "libvirt.remote".
func NameOf(addr string) string {
	name, _, _ := strings.Cut(addr, ".")
	return name
}

// Has reports whether the registry holds the provider of addr.
func (r *Registry) Has(addr string) bool {
	_, ok := r.factories[NameOf(addr)]
	return ok
}

// Names lists the registered provider names, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.factories))
	for n := range r.factories {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// New makes an unconfigured provider for addr.
func (r *Registry) New(addr string) (Provider, error) {
	f, ok := r.factories[NameOf(addr)]
	if !ok {
		return nil, fmt.Errorf("fiat has no provider %q (it has: %s)", NameOf(addr), strings.Join(r.Names(), ", "))
	}
	return f(), nil
}

// Schemas returns every provider's schema, by provider name. The map is
// shared: callers must not change it.
func (r *Registry) Schemas() map[string]Schema {
	r.load()
	return r.schemas
}

// Modifiers returns the plan modifiers of the providers that have one, by
// provider name. The map is shared: callers must not change it.
func (r *Registry) Modifiers() map[string]PlanModifier {
	r.load()
	return r.modifiers
}

// Validators returns the config validators of the providers that have one,
// by provider name. The map is shared: callers must not change it.
func (r *Registry) Validators() map[string]ConfigValidator {
	r.load()
	return r.validators
}

func (r *Registry) load() {
	r.once.Do(func() {
		r.schemas = make(map[string]Schema, len(r.factories))
		r.modifiers = map[string]PlanModifier{}
		r.validators = map[string]ConfigValidator{}
		for name, f := range r.factories {
			p := f()
			r.schemas[name] = p.Schema()
			if m, ok := p.(PlanModifier); ok {
				r.modifiers[name] = m
			}
			if v, ok := p.(ConfigValidator); ok {
				r.validators[name] = v
			}
		}
	})
}
