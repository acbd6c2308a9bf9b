package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"fiat/planner"
	"fiat/providers"
	"fiat/state"
	"fiat/value"
)

// refreshWorkers is how many objects are read at once while planning.
const refreshWorkers = 8

// refresh reads every stored entity from its provider, a few at a time.
// Objects of local providers (fiat_data) live only in the store: there is
// nothing else to read, so they are not read. Nor are objects of a provider
// fiat no longer has: nothing can read them.
func (e *Engine) refresh(ctx context.Context, pr *lazyProviders, stack string, all []state.Entity) (map[string]planner.Refresh, error) {
	out := make(map[string]planner.Refresh, len(all))
	sch := e.providers.Schemas()
	var ents []state.Entity
	for _, en := range all {
		if s, ok := sch[providers.NameOf(en.Provider)]; ok && !s.Local {
			ents = append(ents, en)
		}
	}
	// Providers are configured first, here, so workers only read.
	for _, en := range ents {
		if _, err := pr.get(en.Provider); err != nil {
			return nil, fmt.Errorf("refresh %s: %w (plan with -refresh=false to skip reading objects)", en.Address, err)
		}
	}
	type result struct {
		addr string
		rf   planner.Refresh
		err  error
	}
	jobs := make(chan state.Entity)
	results := make(chan result)
	var wg sync.WaitGroup
	for w := 0; w < refreshWorkers; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for en := range jobs {
				r := result{addr: strings.TrimPrefix(en.Address, stack+"/")}
				r.rf, r.err = readOne(ctx, pr, r.addr, en)
				if r.err != nil {
					r.err = fmt.Errorf("refresh %s: %w (plan with -refresh=false to skip reading objects)", r.addr, r.err)
				}
				select {
				case results <- r:
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	go func() {
		defer close(jobs)
		for _, en := range ents {
			select {
			case jobs <- en:
			case <-ctx.Done():
				return
			}
		}
	}()
	go func() { wg.Wait(); close(results) }()
	var firstErr error
	for r := range results {
		if r.err != nil {
			if firstErr == nil {
				firstErr = r.err
			}
			continue
		}
		out[r.addr] = r.rf
	}
	if firstErr == nil && ctx.Err() != nil {
		firstErr = ctx.Err()
	}
	return out, firstErr
}

// readOne reads one stored object as its provider finds it now.
func readOne(ctx context.Context, pr *lazyProviders, addr string, en state.Entity) (planner.Refresh, error) {
	p, err := pr.get(en.Provider)
	if err != nil {
		return planner.Refresh{}, err
	}
	prior, err := value.Decode(en.Attributes)
	if err != nil {
		return planner.Refresh{}, err
	}
	var resp providers.ReadResponse
	err = providers.Call(en.Provider, "read", false, func() (err error) {
		resp, err = p.Read(ctx, providers.ReadRequest{Address: addr, Type: en.Type, ID: en.ID, State: prior})
		return err
	})
	return planner.Refresh{Exists: resp.Exists, State: resp.State}, err
}
