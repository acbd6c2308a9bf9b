package hcl

import (
	"fmt"
	"sort"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Where an expression is, for what it may reference.
type refContext struct {
	count, each bool // count.index / each.key and each.value are in scope
}

// checkReferences reports every reference to something the configuration
// does not declare, with a suggestion where one is close.
func (c *Config) checkReferences() hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	for _, addr := range sortedKeys(c.Resources) {
		r := c.Resources[addr]
		rc := refContext{count: r.Count != nil, each: r.ForEach != nil}
		diags = append(diags, c.checkTraversals(r.Module, r.bodyRefs, rc)...)
		diags = append(diags, c.checkTraversals(r.Module, r.metaRefs, refContext{})...)
		for _, t := range r.dependsOn {
			a, d := c.dependsOnTarget(r.Module, t)
			diags = append(diags, d...)
			if !d.HasErrors() {
				r.DependsOn = append(r.DependsOn, a)
			}
		}
	}
	for _, mp := range sortedKeys(c.Modules) {
		m := c.Modules[mp]
		for _, name := range sortedKeys(m.Locals) {
			diags = append(diags, c.checkTraversals(mp, m.Locals[name].Expr.Variables(), refContext{})...)
		}
		for _, name := range sortedKeys(m.Outputs) {
			o := m.Outputs[name]
			if o.Expr != nil {
				diags = append(diags, c.checkTraversals(mp, o.Expr.Variables(), refContext{})...)
			}
			for _, t := range o.DependsOn {
				_, d := c.dependsOnTarget(mp, t)
				diags = append(diags, d...)
			}
		}
		for _, cn := range sortedKeys(m.Calls) {
			call := m.Calls[cn]
			child := c.Modules[call.Path]
			for _, an := range sortedKeys(call.Args) {
				a := call.Args[an]
				diags = append(diags, c.checkTraversals(mp, a.Expr.Variables(), refContext{})...)
				if child != nil {
					if _, ok := child.Variables[an]; !ok {
						diags = append(diags, errorDiag("Unsupported argument",
							fmt.Sprintf("Module %q has no variable %q.%s", cn, an, DidYouMean(an, keys(child.Variables))), a.NameRange.Ptr())...)
					}
				}
			}
			for _, t := range call.DependsOn {
				_, d := c.dependsOnTarget(mp, t)
				diags = append(diags, d...)
			}
			if child == nil {
				continue
			}
			for _, vn := range sortedKeys(child.Variables) {
				if _, ok := call.Args[vn]; !ok && child.Variables[vn].Default == cty.NilVal {
					diags = append(diags, errorDiag("Missing required argument",
						fmt.Sprintf("Module %q needs a value for its variable %q, which has no default.", cn, vn), call.DeclRange.Ptr())...)
				}
			}
		}
		if mp != "" {
			for _, name := range sortedKeys(m.Variables) {
				for _, vd := range m.Variables[name].Validations {
					diags = append(diags, c.checkTraversals(mp, vd.Condition.Variables(), refContext{})...)
				}
			}
		}
	}
	for _, name := range sortedKeys(c.Providers) {
		travs, _ := bodyTraversals(c.Providers[name].Config, map[string]bool{"alias": true})
		diags = append(diags, c.checkTraversals("", travs, refContext{})...)
		for _, t := range travs {
			if r := t.RootName(); r != "var" && r != "local" && r != "path" {
				diags = append(diags, errorDiag("Invalid provider reference",
					"A provider block may reference variables and local values, not resources or modules.", t.SourceRange().Ptr())...)
			}
		}
	}
	for _, im := range c.Imports {
		diags = append(diags, c.checkTraversals("", im.ID.Variables(), refContext{})...)
		if _, ok := c.Resources[im.To.Resource()]; !ok {
			diags = append(diags, errorDiag("Import to undeclared resource",
				fmt.Sprintf("import names %s, which is not declared; add its resource block.%s", im.To.Resource(), DidYouMean(im.To.Resource(), c.managedAddrs())),
				im.DeclRange.Ptr())...)
		}
	}
	return diags
}

// dependsOnTarget checks a depends_on entry: a resource, a data source or a
// module of this module.
func (c *Config) dependsOnTarget(mod string, t hcl2.Traversal) (string, hcl2.Diagnostics) {
	a, diags := addressFromTraversal(t)
	if diags.HasErrors() {
		return "", diags
	}
	if a.Key != cty.NilVal {
		return "", errorDiag("Invalid depends_on", "depends_on names whole resources, without an instance key.", t.SourceRange().Ptr())
	}
	if a.Module != "" {
		a.Module = modulePrefix(mod) + a.Module
	} else {
		a.Module = mod
	}
	if a.IsModule() {
		if _, ok := c.Modules[a.Module]; !ok {
			return "", errorDiag("Reference to undeclared module", fmt.Sprintf("depends_on names %s, which is not declared.", traversalText(t)), t.SourceRange().Ptr())
		}
		return a.Module, nil
	}
	if _, ok := c.Resources[a.Resource()]; !ok {
		return "", errorDiag("Reference to undeclared resource",
			fmt.Sprintf("depends_on names %s, which is not declared.%s", traversalText(t), DidYouMean(traversalText(t), c.moduleResourceNames(mod))),
			t.SourceRange().Ptr())
	}
	return a.Resource(), nil
}

func (c *Config) managedAddrs() []string {
	var out []string
	for a, r := range c.Resources {
		if r.Mode == Managed {
			out = append(out, a)
		}
	}
	return out
}

// moduleResourceNames lists the resources of a module as written inside it.
func (c *Config) moduleResourceNames(mod string) []string {
	var out []string
	for _, r := range c.Resources {
		if r.Module != mod {
			continue
		}
		out = append(out, Address{Mode: r.Mode, Type: r.Type, Name: r.Name}.Resource())
	}
	return out
}

func (c *Config) checkTraversals(mod string, travs []hcl2.Traversal, rc refContext) hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	m := c.Modules[mod]
	for _, t := range travs {
		root := t.RootName()
		rng := t.SourceRange().Ptr()
		name, hasName := attrStep(t, 1)
		switch {
		case root == "var":
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference", "A variable is referenced as var.NAME.", rng)...)
			} else if _, ok := m.Variables[name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared input variable",
					fmt.Sprintf("No variable %q is declared.%s", name, DidYouMean(name, keys(m.Variables))), rng)...)
			}
		case root == "local":
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference", "A local value is referenced as local.NAME.", rng)...)
			} else if _, ok := m.Locals[name]; !ok {
				diags = append(diags, errorDiag("Reference to undeclared local value",
					fmt.Sprintf("No local value %q is declared.%s", name, DidYouMean(name, keys(m.Locals))), rng)...)
			}
		case root == "module":
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference", "A module is referenced as module.NAME or module.NAME.OUTPUT.", rng)...)
				continue
			}
			call, ok := m.Calls[name]
			if !ok {
				diags = append(diags, errorDiag("Reference to undeclared module",
					fmt.Sprintf("No module %q is declared.%s", name, DidYouMean(name, keys(m.Calls))), rng)...)
				continue
			}
			if out, ok := attrStep(t, 2); ok {
				if child := c.Modules[call.Path]; child != nil {
					if _, ok := child.Outputs[out]; !ok {
						diags = append(diags, errorDiag("Unsupported attribute",
							fmt.Sprintf("Module %q has no output %q.%s", name, out, DidYouMean(out, keys(child.Outputs))), rng)...)
					}
				}
			}
		case root == "data":
			typ, ok1 := attrStep(t, 1)
			n, ok2 := attrStep(t, 2)
			if !ok1 || !ok2 {
				diags = append(diags, errorDiag("Invalid reference", "A data source is referenced as data.TYPE.NAME.", rng)...)
				continue
			}
			addr := modulePrefix(mod) + "data." + typ + "." + n
			if _, ok := c.Resources[addr]; !ok {
				local := "data." + typ + "." + n
				diags = append(diags, errorDiag("Reference to undeclared data source",
					fmt.Sprintf("No data source %s is declared.%s", local, DidYouMean(local, c.moduleResourceNames(mod))), rng)...)
			}
		case root == "count":
			switch {
			case !rc.count:
				diags = append(diags, errorDiag("Reference to \"count\" outside a counted resource",
					"count.index is only available in a resource or data block that sets count.", rng)...)
			case name != "index":
				diags = append(diags, errorDiag("Invalid reference", "The only attribute of count is count.index.", rng)...)
			}
		case root == "each":
			switch {
			case !rc.each:
				diags = append(diags, errorDiag("Reference to \"each\" outside a for_each resource",
					"each.key and each.value are only available in a resource or data block that sets for_each.", rng)...)
			case name != "key" && name != "value":
				diags = append(diags, errorDiag("Invalid reference", "each has two attributes: each.key and each.value.", rng)...)
			}
		case root == "path":
			if name != "module" && name != "root" && name != "cwd" {
				diags = append(diags, errorDiag("Invalid reference", "path has three attributes: path.module, path.root and path.cwd.", rng)...)
			}
		case m.types[root]:
			if !hasName {
				diags = append(diags, errorDiag("Invalid reference",
					fmt.Sprintf("A resource is referenced as %s.NAME.", root), rng)...)
			} else if _, ok := c.Resources[modulePrefix(mod)+root+"."+name]; !ok {
				addr := root + "." + name
				diags = append(diags, errorDiag("Reference to undeclared resource",
					fmt.Sprintf("No resource %s is declared.%s", addr, DidYouMean(addr, c.moduleResourceNames(mod))), rng)...)
			}
		default:
			cands := append([]string{"var", "local", "module", "data", "path"}, keys(m.types)...)
			what := "a variable, local value, module, data source or resource type"
			if c.typeElsewhere(root) {
				diags = append(diags, errorDiag("Unknown reference",
					fmt.Sprintf("%q is not %s of this module (resources of other modules are reached through their outputs).", root, what), rng)...)
				continue
			}
			diags = append(diags, errorDiag("Unknown reference",
				fmt.Sprintf("%q is not %s of this configuration.%s", root, what, DidYouMean(root, cands)), rng)...)
		}
	}
	return diags
}

func (c *Config) typeElsewhere(typ string) bool {
	for _, m := range c.Modules {
		if m.types[typ] {
			return true
		}
	}
	return false
}

func attrStep(t hcl2.Traversal, i int) (string, bool) {
	if len(t) <= i {
		return "", false
	}
	a, ok := t[i].(hcl2.TraverseAttr)
	if !ok {
		return "", false
	}
	return a.Name, true
}

// Node names of values in the reference graph. Resources are named by their
// address; the rest start with '#', which no address contains.
func localNode(mod, name string) string  { return "#local:" + modulePrefix(mod) + name }
func varNode(mod, name string) string    { return "#var:" + modulePrefix(mod) + name }
func outputNode(mod, name string) string { return "#output:" + modulePrefix(mod) + name }

// refNodes lists the graph nodes a traversal in module mod depends on.
func (c *Config) refNodes(mod string, t hcl2.Traversal, out []string) []string {
	m := c.Modules[mod]
	root := t.RootName()
	name, ok := attrStep(t, 1)
	if !ok {
		return out
	}
	switch root {
	case "var":
		if mod != "" {
			out = append(out, varNode(mod, name))
		}
	case "local":
		out = append(out, localNode(mod, name))
	case "module":
		call := m.Calls[name]
		if call == nil {
			return out
		}
		if o, ok := attrStep(t, 2); ok {
			return append(out, outputNode(call.Path, o))
		}
		if child := c.Modules[call.Path]; child != nil {
			for _, o := range sortedKeys(child.Outputs) {
				out = append(out, outputNode(call.Path, o))
			}
		}
	case "data":
		if n, ok := attrStep(t, 2); ok {
			out = append(out, modulePrefix(mod)+"data."+name+"."+n)
		}
	case "count", "each", "path", "self":
	default:
		if m.types[root] {
			out = append(out, modulePrefix(mod)+root+"."+name)
		}
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
	ids := make(map[string]int, len(resources))
	names := make([]string, 0, len(resources))
	add := func(n string) int {
		if id, ok := ids[n]; ok {
			return id
		}
		ids[n] = len(names)
		names = append(names, n)
		return len(names) - 1
	}
	for _, a := range resources {
		add(a)
	}
	nres := len(resources)
	var edges [][]int
	var buf []string
	setEdges := func(from int, targets []string) {
		for len(edges) <= from {
			edges = append(edges, nil)
		}
		for _, t := range targets {
			if !strings.HasPrefix(t, "#") {
				if _, ok := c.Resources[t]; !ok {
					continue
				}
			}
			to := add(t)
			if to != from {
				edges[from] = append(edges[from], to)
			}
		}
	}
	refsIn := func(mod string, travs []hcl2.Traversal) []string {
		buf = buf[:0]
		for _, t := range travs {
			buf = c.refNodes(mod, t, buf)
		}
		return buf
	}
	moduleDeps := map[string][]string{} // module path → resources its depends_on names
	for _, mp := range sortedKeys(c.Modules) {
		if call := c.Modules[mp].Call; call != nil {
			for _, t := range call.DependsOn {
				if a, d := c.dependsOnTarget(call.Parent, t); !d.HasErrors() {
					moduleDeps[mp] = append(moduleDeps[mp], c.expandTarget(a)...)
				}
			}
		}
	}
	for i, a := range resources {
		r := c.Resources[a]
		setEdges(i, refsIn(r.Module, r.bodyRefs))
		setEdges(i, refsIn(r.Module, r.metaRefs))
		for _, d := range r.DependsOn {
			setEdges(i, c.expandTarget(d))
		}
		for mp := r.Module; mp != ""; mp = c.Modules[mp].Call.Parent {
			setEdges(i, moduleDeps[mp])
		}
	}
	for _, mp := range sortedKeys(c.Modules) {
		m := c.Modules[mp]
		for _, n := range sortedKeys(m.Locals) {
			setEdges(add(localNode(mp, n)), refsIn(mp, m.Locals[n].Expr.Variables()))
		}
		if m.Call != nil {
			for _, n := range sortedKeys(m.Variables) {
				id := add(varNode(mp, n))
				if a, ok := m.Call.Args[n]; ok {
					setEdges(id, refsIn(m.Call.Parent, a.Expr.Variables()))
				} else {
					setEdges(id, nil)
				}
			}
			for _, n := range sortedKeys(m.Outputs) {
				o := m.Outputs[n]
				id := add(outputNode(mp, n))
				if o.Expr != nil {
					setEdges(id, refsIn(mp, o.Expr.Variables()))
				}
				for _, t := range o.DependsOn {
					if a, d := c.dependsOnTarget(mp, t); !d.HasErrors() {
						setEdges(id, c.expandTarget(a))
					}
				}
			}
		}
	}
	for len(edges) < len(names) {
		edges = append(edges, nil)
	}
	var diags hcl2.Diagnostics
	for _, comp := range tarjan(edges) {
		members := make([]string, len(comp))
		for i, id := range comp {
			members[i] = c.describeNode(names[id])
		}
		sort.Strings(members)
		subject := c.nodeRange(names[comp[0]])
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
	memo := make([][]int, len(names))
	done := make([]bool, len(names))
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
			out[j] = names[d]
		}
		g.resDeps[resources[i]] = out
	}
	g.order = topoOrder(resources, depIDs)
	return g, nil
}

func withoutSelf(ds []int, self int) []int {
	for j, d := range ds {
		if d == self {
			out := append([]int(nil), ds[:j]...)
			return append(out, ds[j+1:]...)
		}
	}
	return ds
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

func (c *Config) describeNode(n string) string {
	switch {
	case strings.HasPrefix(n, "#local:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#local:"))
		return fmt.Sprintf("%slocal.%s (%s)", modulePrefix(mod), name, rangeLine(c.Modules[mod].Locals[name].DeclRange))
	case strings.HasPrefix(n, "#var:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#var:"))
		return fmt.Sprintf("%svar.%s (%s)", modulePrefix(mod), name, rangeLine(c.Modules[mod].Variables[name].DeclRange))
	case strings.HasPrefix(n, "#output:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#output:"))
		return fmt.Sprintf("%soutput.%s (%s)", modulePrefix(mod), name, rangeLine(c.Modules[mod].Outputs[name].DeclRange))
	}
	return fmt.Sprintf("%s (%s)", n, c.Resources[n].Source())
}

// nodeRange is where a graph node is declared.
func (c *Config) nodeRange(n string) *hcl2.Range {
	switch {
	case strings.HasPrefix(n, "#local:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#local:"))
		return c.Modules[mod].Locals[name].DeclRange.Ptr()
	case strings.HasPrefix(n, "#var:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#var:"))
		return c.Modules[mod].Variables[name].DeclRange.Ptr()
	case strings.HasPrefix(n, "#output:"):
		mod, name := splitNode(strings.TrimPrefix(n, "#output:"))
		return c.Modules[mod].Outputs[name].DeclRange.Ptr()
	}
	if r := c.Resources[n]; r != nil {
		return r.DeclRange.Ptr()
	}
	return nil
}

// splitNode splits "module.a.name" into ("module.a", "name").
func splitNode(s string) (string, string) {
	i := strings.LastIndexByte(s, '.')
	if i < 0 {
		return "", s
	}
	return s[:i], s[i+1:]
}

func rangeLine(r hcl2.Range) string { return fmt.Sprintf("%s:%d", r.Filename, r.Start.Line) }

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
