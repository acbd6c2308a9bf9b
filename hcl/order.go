package hcl

import "sort"

func withoutSelf(ds []int, self int) []int {
	for j, d := range ds {
		if d == self {
			out := append([]int(nil), ds[:j]...)
			return append(out, ds[j+1:]...)
		}
	}
	return ds
}

// tarjan returns the strongly connected components with more than one
// member, or one member with a self-loop, iteratively.
func tarjan(edges [][]int) [][]int {
	n := len(edges)
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var stack []int
	var out [][]int
	next := 0
	type frame struct{ node, i int }
	for root := 0; root < n; root++ {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{node: root}}
		index[root], low[root] = next, next
		next++
		stack = append(stack, root)
		onStack[root] = true
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.i < len(edges[f.node]) {
				d := edges[f.node][f.i]
				f.i++
				if index[d] < 0 {
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
			v := f.node
			call = call[:len(call)-1]
			if len(call) > 0 {
				if p := call[len(call)-1].node; low[v] < low[p] {
					low[p] = low[v]
				}
			}
			if low[v] != index[v] {
				continue
			}
			var comp []int
			for {
				top := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[top] = false
				comp = append(comp, top)
				if top == v {
					break
				}
			}
			if len(comp) > 1 || selfLoop(edges, v) {
				sort.Ints(comp)
				out = append(out, comp)
			}
		}
	}
	return out
}

func selfLoop(edges [][]int, v int) bool {
	for _, d := range edges[v] {
		if d == v {
			return true
		}
	}
	return false
}

// topoOrder lists nodes with dependencies first, ties broken by name (nodes
// are given sorted); iterative, so a 50,000-long chain is fine.
func topoOrder(nodes []string, deps [][]int) []string {
	const (
		unseen = iota
		visiting
		done
	)
	state := make([]uint8, len(nodes))
	order := make([]string, 0, len(nodes))
	type frame struct{ node, next int }
	var stack []frame
	for root := range nodes {
		if state[root] != unseen {
			continue
		}
		stack = append(stack[:0], frame{node: root})
		state[root] = visiting
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.next < len(deps[top.node]) {
				d := deps[top.node][top.next]
				top.next++
				if state[d] == unseen {
					state[d] = visiting
					stack = append(stack, frame{node: d})
				}
				continue
			}
			state[top.node] = done
			order = append(order, nodes[top.node])
			stack = stack[:len(stack)-1]
		}
	}
	return order
}
