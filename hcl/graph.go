package hcl

import (
	"fmt"
	"sort"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// nodeKind is what a node of the reference graph stands for.
type nodeKind uint8

const (
	nodeResource nodeKind = iota // a resource or data source; name is its address
	nodeLocal                    // a local value of module mod
	nodeVar                      // an input variable of (child) module mod
	nodeOutput                   // an output of module mod
	nodeExpand                   // the expansion (count, for_each) of resource name, while evaluated
)

// node is one vertex of the reference graph: a resource, or a value that
// references pass through between resources.
type node struct {
	kind      nodeKind
	mod, name string
}

func resourceNode(addr string) node { return node{kind: nodeResource, name: addr} }

// refNodes appends the graph nodes a reference in module mod depends on.
func (c *Config) refNodes(mod string, r Ref, out []node) []node {
	if r.Malformed != "" {
		return out
	}
	switch r.Kind {
	case RefVar:
		if mod != "" && r.Name != "" {
			out = append(out, node{kind: nodeVar, mod: mod, name: r.Name})
		}
	case RefLocal:
		out = append(out, node{kind: nodeLocal, mod: mod, name: r.Name})
	case RefModule:
		call := c.Modules[mod].Calls[r.Name]
		if call == nil {
			return out
		}
		if r.Output != "" {
			return append(out, node{kind: nodeOutput, mod: call.Path, name: r.Output})
		}
		if child := c.Modules[call.Path]; child != nil {
			for _, o := range sortedKeys(child.Outputs) {
				out = append(out, node{kind: nodeOutput, mod: call.Path, name: o})
			}
		}
	case RefData, RefResource:
		out = append(out, resourceNode(r.Resource(mod)))
	}
	return out
}

// refGraph is the reference graph of resources and the values between them
// (locals, module inputs and outputs), with resources indexed by address.
type refGraph struct {
	sortedResources []string
	order           []string
	resDeps         map[string][]string
	rdeps           map[string][]string // computed on first use
}

func (g *refGraph) dependents(addr string) []string {
	if g.rdeps == nil {
		g.rdeps = map[string][]string{}
		for _, a := range g.sortedResources {
			for _, d := range g.resDeps[a] {
				g.rdeps[d] = append(g.rdeps[d], a)
			}
		}
	}
	return g.rdeps[addr]
}

// buildGraph finds cycles among resources and values (naming every member)
// and each resource's resource dependencies.
func (c *Config) buildGraph() (*refGraph, hcl2.Diagnostics) {
	resources := sortedKeys(c.Resources)
	ids := make(map[node]int, len(resources))
	nodes := make([]node, 0, len(resources))
	add := func(n node) int {
		if id, ok := ids[n]; ok {
			return id
		}
		ids[n] = len(nodes)
		nodes = append(nodes, n)
		return len(nodes) - 1
	}
	for _, a := range resources {
		add(resourceNode(a))
	}
	nres := len(resources)
	var edges [][]int
	var buf []node
	setEdges := func(from int, targets []node) {
		for len(edges) <= from {
			edges = append(edges, nil)
		}
		for _, t := range targets {
			if t.kind == nodeResource {
				if _, ok := c.Resources[t.name]; !ok {
					continue
				}
			}
			to := add(t)
			if to != from {
				edges[from] = append(edges[from], to)
			}
		}
	}
	refsIn := func(mod string, refs []Ref) []node {
		buf = buf[:0]
		for _, r := range refs {
			buf = c.refNodes(mod, r, buf)
		}
		return buf
	}
	resourceNodes := func(addrs []string) []node {
		out := make([]node, len(addrs))
		for i, a := range addrs {
			out[i] = resourceNode(a)
		}
		return out
	}
	moduleDeps := map[string][]node{} // module path → resources its depends_on names
	for _, mp := range sortedKeys(c.Modules) {
		if call := c.Modules[mp].Call; call != nil {
			for _, t := range call.DependsOn {
				if a, d := c.dependsOnTarget(call.Parent, t); !d.HasErrors() {
					moduleDeps[mp] = append(moduleDeps[mp], resourceNodes(c.expandTarget(a))...)
				}
			}
		}
	}
	for i, a := range resources {
		r := c.Resources[a]
		setEdges(i, refsIn(r.Module, r.refs))
		setEdges(i, refsIn(r.Module, r.metaRefs))
		for _, d := range r.DependsOn {
			setEdges(i, resourceNodes(c.expandTarget(d)))
		}
		for mp := r.Module; mp != ""; mp = c.Modules[mp].Call.Parent {
			setEdges(i, moduleDeps[mp])
		}
	}
	for _, mp := range sortedKeys(c.Modules) {
		m := c.Modules[mp]
		for _, n := range sortedKeys(m.Locals) {
			setEdges(add(node{kind: nodeLocal, mod: mp, name: n}), refsIn(mp, m.Locals[n].refs))
		}
		if m.Call != nil {
			for _, n := range sortedKeys(m.Variables) {
				id := add(node{kind: nodeVar, mod: mp, name: n})
				setEdges(id, refsIn(m.Call.Parent, m.Call.argRefs[n]))
			}
			for _, n := range sortedKeys(m.Outputs) {
				o := m.Outputs[n]
				id := add(node{kind: nodeOutput, mod: mp, name: n})
				setEdges(id, refsIn(mp, o.refs))
				for _, t := range o.DependsOn {
					if a, d := c.dependsOnTarget(mp, t); !d.HasErrors() {
						setEdges(id, resourceNodes(c.expandTarget(a)))
					}
				}
			}
		}
	}
	for len(edges) < len(nodes) {
		edges = append(edges, nil)
	}
	var diags hcl2.Diagnostics
	for _, comp := range tarjan(edges) {
		members := make([]string, len(comp))
		for i, id := range comp {
			members[i] = c.describeNode(nodes[id])
		}
		sort.Strings(members)
		subject := c.nodeRange(nodes[comp[0]])
		diags = append(diags, &hcl2.Diagnostic{
			Severity: hcl2.DiagError,
			Summary:  "Dependency cycle",
			Detail:   fmt.Sprintf("These depend on each other in a cycle: %s.", strings.Join(members, ", ")),
			Subject:  subject,
		})
	}
	if diags.HasErrors() {
		return nil, diags
	}
	// Resource dependencies, through values, memoised per value node.
	memo := make([][]int, len(nodes))
	done := make([]bool, len(nodes))
	var through func(id int) []int
	through = func(id int) []int {
		if done[id] {
			return memo[id]
		}
		set := map[int]bool{}
		for _, to := range edges[id] {
			if to < nres {
				set[to] = true
				continue
			}
			for _, r := range through(to) {
				set[r] = true
			}
		}
		out := make([]int, 0, len(set))
		for r := range set {
			out = append(out, r)
		}
		sort.Ints(out)
		memo[id], done[id] = out, true
		return out
	}
	g := &refGraph{sortedResources: resources, resDeps: make(map[string][]string, nres)}
	depIDs := make([][]int, nres)
	for i := 0; i < nres; i++ {
		var ds []int
		if len(edges[i]) == 1 && edges[i][0] < nres {
			ds = edges[i] // the common case: one direct reference
		} else {
			ds = through(i)
		}
		ds = withoutSelf(ds, i)
		depIDs[i] = ds
		if len(ds) == 0 {
			continue
		}
		out := make([]string, len(ds))
		for j, d := range ds {
			out[j] = nodes[d].name
		}
		g.resDeps[resources[i]] = out
	}
	g.order = topoOrder(resources, depIDs)
	return g, nil
}

// expandTarget turns a depends_on target into resource addresses: a module
// stands for every resource in it and its children.
func (c *Config) expandTarget(a string) []string {
	if _, ok := c.Resources[a]; ok {
		return []string{a}
	}
	var out []string
	for _, addr := range c.ResourceAddrs() {
		r := c.Resources[addr]
		if r.Module == a || strings.HasPrefix(r.Module, a+".") {
			out = append(out, addr)
		}
	}
	return out
}

// describeNode names a node for a cycle report, with where it is declared.
func (c *Config) describeNode(n node) string {
	switch n.kind {
	case nodeLocal:
		return fmt.Sprintf("%slocal.%s (%s)", modulePrefix(n.mod), n.name, rangeLine(c.Modules[n.mod].Locals[n.name].DeclRange))
	case nodeVar:
		return fmt.Sprintf("%svar.%s (%s)", modulePrefix(n.mod), n.name, rangeLine(c.Modules[n.mod].Variables[n.name].DeclRange))
	case nodeOutput:
		return fmt.Sprintf("%soutput.%s (%s)", modulePrefix(n.mod), n.name, rangeLine(c.Modules[n.mod].Outputs[n.name].DeclRange))
	}
	return fmt.Sprintf("%s (%s)", n.name, c.Resources[n.name].Source())
}

// nodeRange is where a graph node is declared.
func (c *Config) nodeRange(n node) *hcl2.Range {
	switch n.kind {
	case nodeLocal:
		return c.Modules[n.mod].Locals[n.name].DeclRange.Ptr()
	case nodeVar:
		return c.Modules[n.mod].Variables[n.name].DeclRange.Ptr()
	case nodeOutput:
		return c.Modules[n.mod].Outputs[n.name].DeclRange.Ptr()
	}
	if r := c.Resources[n.name]; r != nil {
		return r.DeclRange.Ptr()
	}
	return nil
}

func rangeLine(r hcl2.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }
