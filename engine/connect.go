package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"

	"fiat/hcl"
	"fiat/planner"
	"fiat/providers"
	"fiat/providers/provision"
)

// connect configures each named provider address (duplicates ignored) from
// cfg's provider blocks. On error nothing stays connected.
func (e *Engine) connect(ctx context.Context, cfg *hcl.Config, addrs []string) (map[string]providers.Provider, error) {
	used := map[string]bool{}
	for _, a := range addrs {
		used[a] = true
	}
	names := make([]string, 0, len(used))
	for n := range used {
		names = append(names, n)
	}
	sort.Strings(names)
	out := map[string]providers.Provider{}
	for _, addr := range names {
		p, err := e.configure(ctx, cfg, addr)
		if err != nil {
			closeAll(out)
			return nil, err
		}
		out[addr] = p
	}
	return out, nil
}

func (e *Engine) configure(ctx context.Context, cfg *hcl.Config, addr string) (providers.Provider, error) {
	if addr == providers.ProvisionerAddress {
		return provision.New(), nil // provisioners need no provider block
	}
	p, err := e.providers.New(addr)
	if err != nil {
		return nil, fmt.Errorf("configure provider %s: %w", addr, err)
	}
	spec := planner.Spec(providers.ResourceSchema{Attributes: p.Schema().Provider})
	val, diags := cfg.EvalProvider(addr, spec)
	if diags.HasErrors() {
		return nil, hcl.NewDiagError(diags, cfg.Files)
	}
	err = providers.Call(addr, "configure", false, func() error {
		_, err := p.Configure(ctx, providers.ConfigureRequest{Config: val})
		return err
	})
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("configure provider %s: %w", addr, err)
	}
	return p, nil
}

func closeAll(provs map[string]providers.Provider) {
	for _, p := range provs {
		p.Close()
	}
}

// lazyProviders configures providers on first use, for the reads of a plan.
type lazyProviders struct {
	e     *Engine
	ctx   context.Context
	cfg   *hcl.Config
	mu    sync.Mutex
	provs map[string]providers.Provider
}

func (s *lazyProviders) get(addr string) (providers.Provider, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p, ok := s.provs[addr]; ok {
		return p, nil
	}
	if strings.Contains(addr, ".") {
		if _, ok := s.cfg.Providers[addr]; !ok {
			return nil, fmt.Errorf("provider %s has no provider block in the configuration", addr)
		}
	}
	p, err := s.e.configure(s.ctx, s.cfg, addr)
	if err != nil {
		return nil, err
	}
	if s.provs == nil {
		s.provs = map[string]providers.Provider{}
	}
	s.provs[addr] = p
	return p, nil
}

func (s *lazyProviders) close() {
	s.mu.Lock()
	defer s.mu.Unlock()
	closeAll(s.provs)
}
