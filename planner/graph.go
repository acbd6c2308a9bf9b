package planner

import (
	"sort"
)

// Graph is a dependency graph over addresses: an edge a→b means a depends
// on b, so b comes first.
type Graph struct {
	nodes []string
	deps  map[string][]string
}

// NewGraph builds a graph; deps naming nodes outside the graph are ignored.
func NewGraph(nodes []string, deps func(string) []string) *Graph {
	g := &Graph{nodes: append([]string(nil), nodes...), deps: make(map[string][]string, len(nodes))}
	sort.Strings(g.nodes)
	in := make(map[string]bool, len(nodes))
	for _, n := range nodes {
		in[n] = true
	}
	for _, n := range g.nodes {
		for _, d := range deps(n) {
			if in[d] && d != n {
				g.deps[n] = append(g.deps[n], d)
			}
		}
	}
	return g
}

// Order returns the nodes with every dependency before its dependents, ties
// broken by name so output is stable. If the graph has cycles it returns each
// cycle's members instead (sorted), and a nil order.
func (g *Graph) Order() (order []string, cycles [][]string) {
	if cycles = g.cycles(); len(cycles) > 0 {
		return nil, cycles
	}
	const (
		unseen = iota
		visiting
		done
	)
	state := make(map[string]int, len(g.nodes))
	order = make([]string, 0, len(g.nodes))
	// Iterative DFS: a 50,000-long chain must not blow the stack.
	type frame struct {
		node string
		next int
	}
	for _, root := range g.nodes {
		if state[root] != unseen {
			continue
		}
		stack := []frame{{node: root}}
		state[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			deps := g.deps[top.node]
			if top.next < len(deps) {
				d := deps[top.next]
				top.next++
				if state[d] == unseen {
					state[d] = visiting
					stack = append(stack, frame{node: d})
				}
				continue
			}
			state[top.node] = done
			order = append(order, top.node)
			stack = stack[:len(stack)-1]
		}
	}
	return order, nil
}

// cycles finds strongly connected components with more than one member (or a
// self-loop) using Tarjan's algorithm, iteratively.
func (g *Graph) cycles() [][]string {
	index := map[string]int{}
	low := map[string]int{}
	onStack := map[string]bool{}
	var stack []string
	var out [][]string
	next := 0
	type frame struct {
		node string
		i    int
	}
	for _, root := range g.nodes {
		if _, seen := index[root]; seen {
			continue
		}
		call := []frame{{node: root}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			deps := g.deps[f.node]
			if f.i < len(deps) {
				d := deps[f.i]
				f.i++
				if _, seen := index[d]; !seen {
					index[d], low[d] = next, next
					next++
					stack = append(stack, d)
					onStack[d] = true
					call = append(call, frame{node: d})
				} else if onStack[d] && index[d] < low[f.node] {
					low[f.node] = index[d]
				}
				continue
			}
			n := f.node
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := call[len(call)-1].node
				if low[n] < low[p] {
					low[p] = low[n]
				}
			}
			if low[n] != index[n] {
				continue
			}
			var comp []string
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				comp = append(comp, top)
				if top == n {
					break
				}
			}
			if len(comp) > 1 {
				sort.Strings(comp)
				out = append(out, comp)
			}
		}
	}
	return out
}
