// Package hcl turns a directory of *.hcl (or Terraform's *.tf) files into a typed Config:
// providers, variables, locals, resources, data sources, outputs, local
// modules, moved and import blocks, with every problem reported as an HCL
// diagnostic carrying file:line:col. It evaluates expressions (cty) with an
// Evaluator that puts into scope only what an expression references, and
// never touches the store or providers.
package hcl

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
)

// Config is one directory of specs (one stack) and the local modules it
// calls, flattened: every resource of every module is in Resources under its
// full address (module.net.libvirt_volume.disk).
type Config struct {
	Dir string
	// Files is the snapshot a saved plan carries: path relative to Dir
	// ("main.hcl", "modules/net/main.hcl") → source.
	Files     map[string][]byte
	Providers map[string]*Provider // root provider blocks by address ("libvirt", "libvirt.host2")
	Variables map[string]*Variable // the root module's variables
	Locals    map[string]*Local    // the root module's locals
	Outputs   map[string]*Output   // the root module's outputs
	Resources map[string]*Resource // every module's resources and data blocks, by full address
	Modules   map[string]*Module   // every module by path; "" is the root
	Moved     []*Moved
	Imports   []*Import
	// Terraform is what terraform blocks declared (Terraform configs).
	Terraform Terraform

	inputs    map[string]cty.Value // resolved root variable values (marked when sensitive)
	inputsObj cty.Value            // the same as one object, for var.NAME
	sources   map[string]string    // where each root variable's value came from
	graph     *refGraph
	funcs     map[string]function.Function // file functions read relative to Dir
	root      string                       // Dir, absolute
}

// Module is one module of the configuration.
type Module struct {
	Path      string // "" for the root, else "module.a" or "module.a.module.b"
	Dir       string // directory relative to Config.Dir ("." for the root)
	Call      *ModuleCall
	Variables map[string]*Variable
	Locals    map[string]*Local
	Outputs   map[string]*Output
	Calls     map[string]*ModuleCall // child module blocks by name

	types     map[string]bool   // managed resource types declared here
	dataTypes map[string]bool   // data source types declared here
	providers map[string]string // provider address as written here → root provider address
}

// ModuleCall is a module block: module "net" { source = "./net" ... }.
type ModuleCall struct {
	Name      string
	Parent    string // path of the calling module
	Path      string // path of the called module
	Source    string
	Args      map[string]*hcl2.Attribute // input variables
	Providers map[string]string          // child provider address → parent provider address
	DependsOn []hcl2.Traversal
	DeclRange hcl2.Range

	argRefs map[string][]Ref // references of each argument, parsed in the caller's module
}

// Provider is a provider block: `provider "libvirt" { uri = "..." }`.
type Provider struct {
	Name      string // "libvirt"
	Alias     string // "" or the alias
	Config    hcl2.Body
	DeclRange hcl2.Range
}

// Addr is "libvirt" or "libvirt.alias".
func (p *Provider) Addr() string {
	if p.Alias == "" {
		return p.Name
	}
	return p.Name + "." + p.Alias
}

// Variable is a variable block.
type Variable struct {
	Name        string
	Module      string
	Type        cty.Type // cty.DynamicPseudoType when not constrained
	Default     cty.Value
	Description string
	Sensitive   bool
	Validations []*Validation
	DeclRange   hcl2.Range

	defaults typeDefaults
}

// Validation is a validation block of a variable.
type Validation struct {
	Condition    hcl2.Expression
	ErrorMessage hcl2.Expression
	DeclRange    hcl2.Range

	refs []Ref // of Condition
}

// Local is one entry of a locals block.
type Local struct {
	Name      string
	Module    string
	Expr      hcl2.Expression
	DeclRange hcl2.Range

	refs []Ref
}

// Output is an output block.
type Output struct {
	Name      string
	Module    string
	Expr      hcl2.Expression
	Sensitive bool
	DependsOn []hcl2.Traversal
	DeclRange hcl2.Range

	refs []Ref
}

// Lifecycle is a resource's lifecycle block.
type Lifecycle struct {
	PreventDestroy      bool
	CreateBeforeDestroy bool
	IgnoreChanges       []string // top-level attribute names
	IgnoreAll           bool     // ignore_changes = all
	PreventRange        hcl2.Range
}

// Resource is a resource or data block.
type Resource struct {
	Mode      Mode
	Type      string
	Name      string
	Module    string // path of the declaring module, "" for the root
	Provider  string // root provider address: "libvirt" or "libvirt.alias"
	Body      hcl2.Body
	Count     hcl2.Expression // nil unless count is set
	ForEach   hcl2.Expression // nil unless for_each is set
	DependsOn []string        // explicit depends_on, as full resource addresses
	Lifecycle Lifecycle
	// Provisioners run, in order, once the object is created; Connection
	// is the resource's connection block (nil if none).
	Provisioners []*Provisioner
	Connection   hcl2.Body
	DeclRange    hcl2.Range
	TypeRange    hcl2.Range

	dependsOn []hcl2.Traversal
	bodyTravs []hcl2.Traversal // references of the body as loaded, until parsed into refs
	refs      []Ref            // references of the body (not meta-arguments)
	metaRefs  []Ref            // references of count / for_each
	dynamic   bool             // the body has dynamic blocks
}

// Addr is the resource's full configuration address: [module.m.][data.]type.name.
func (r *Resource) Addr() string {
	return Address{Module: r.Module, Mode: r.Mode, Type: r.Type, Name: r.Name}.Resource()
}

// Expanded says whether the resource has count or for_each.
func (r *Resource) Expanded() bool { return r.Count != nil || r.ForEach != nil }

// Source is "file:line" of the block, for error messages.
func (r *Resource) Source() string {
	return fmt.Sprintf("%s:%d", r.DeclRange.Filename, r.DeclRange.Start.Line)
}

// Moved is a moved block: the stored object at From is now at To.
type Moved struct {
	From, To  Address
	DeclRange hcl2.Range
}

// Import is an import block: adopt the existing object ID as To.
type Import struct {
	To        Address
	ID        hcl2.Expression
	Provider  string // root provider address; "" means the default for To's type
	DeclRange hcl2.Range

	refs []Ref // of ID
}

// Options controls Load.
type Options struct {
	// Args are -var and -var-file arguments in command-line order; a later
	// one wins over an earlier one, and all win over FIAT_VAR_name
	// environment variables, which win over defaults.
	Args []VarArg
	// Vars are -var values given as a map; they win over Args.
	Vars map[string]string
	// Env is the environment to read FIAT_VAR_* from; nil means os.Environ.
	Env []string
	// Unset makes a required variable with no value unknown instead of an
	// error (fiat validate checks a configuration without its inputs).
	Unset bool
	// Values, when not nil, are the exact values of the root variables (as
	// a saved plan carries them); Args, Vars and Env are then ignored and a
	// variable missing from Values takes its default.
	Values map[string]cty.Value
}

// VarArg is one -var name=value or -var-file FILE argument.
type VarArg struct {
	Name, Value string // -var
	File        string // -var-file
}

var rootSchema = &hcl2.BodySchema{
	Blocks: []hcl2.BlockHeaderSchema{
		{Type: "provider", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "resource", LabelNames: []string{"type", "name"}},
		{Type: "data", LabelNames: []string{"type", "name"}},
		{Type: "output", LabelNames: []string{"name"}},
		{Type: "module", LabelNames: []string{"name"}},
		{Type: "moved"},
		{Type: "import"},
		{Type: "terraform"},
	},
}

// Load reads every *.hcl and *.tf file of dir and of the local modules it
// calls, and, as Terraform does, the variable values of dir's
// terraform.tfvars and *.auto.tfvars (before -var and -var-file, which win).
func Load(dir string, opts Options) (*Config, hcl2.Diagnostics) {
	files := map[string][]byte{}
	read := func(rel string) (map[string][]byte, error) {
		var names []string
		for _, pattern := range configPatterns {
			ns, err := filepath.Glob(filepath.Join(dir, filepath.FromSlash(rel), pattern))
			if err != nil {
				return nil, err
			}
			names = append(names, ns...)
		}
		out := make(map[string][]byte, len(names))
		for _, name := range names {
			src, err := os.ReadFile(name)
			if err != nil {
				return nil, err
			}
			key := path.Join(rel, filepath.Base(name))
			out[key] = src
			files[key] = src
		}
		return out, nil
	}
	if _, err := os.Stat(dir); err != nil {
		return nil, errorDiag("Cannot read configuration", err.Error(), nil)
	}
	if opts.Values == nil {
		opts.Args = append(autoVarFiles(dir), opts.Args...)
	}
	return loadAll(dir, files, read, opts)
}

// configPatterns are the files a configuration directory is read from:
// fiat's own, and Terraform's.
var configPatterns = []string{"*.hcl", "*.tf"}

// autoVarFiles are the variable files Terraform loads by itself, in its
// order: terraform.tfvars, then *.auto.tfvars by name.
func autoVarFiles(dir string) []VarArg {
	var out []VarArg
	if _, err := os.Stat(filepath.Join(dir, "terraform.tfvars")); err == nil {
		out = append(out, VarArg{File: filepath.Join(dir, "terraform.tfvars")})
	}
	auto, _ := filepath.Glob(filepath.Join(dir, "*.auto.tfvars"))
	sort.Strings(auto)
	for _, f := range auto {
		out = append(out, VarArg{File: f})
	}
	return out
}

// LoadFiles parses a snapshot of files (path relative to dir → source), as a
// saved plan holds.
func LoadFiles(dir string, files map[string][]byte, opts Options) (*Config, hcl2.Diagnostics) {
	byDir := map[string]map[string][]byte{}
	for name, src := range files {
		d := path.Dir(path.Clean(name))
		if byDir[d] == nil {
			byDir[d] = map[string][]byte{}
		}
		byDir[d][path.Clean(name)] = src
	}
	read := func(rel string) (map[string][]byte, error) { return byDir[path.Clean(rel)], nil }
	return loadAll(dir, files, read, opts)
}

func loadAll(dir string, files map[string][]byte, read func(rel string) (map[string][]byte, error), opts Options) (*Config, hcl2.Diagnostics) {
	cfg := &Config{
		Dir:       dir,
		Files:     files,
		Providers: map[string]*Provider{},
		Resources: map[string]*Resource{},
		Modules:   map[string]*Module{},
	}
	cfg.root = cfg.absDir()
	cfg.funcs = functionsFor(cfg.root)
	l := &loader{cfg: cfg, dir: dir, read: read}
	root, diags := l.loadModule("", ".", nil, nil)
	if root == nil {
		return nil, diags
	}
	cfg.Variables, cfg.Locals, cfg.Outputs = root.Variables, root.Locals, root.Outputs
	// Go on after errors in blocks (an unknown block, a bad argument), so
	// one run reports every problem; but not after a file that did not
	// parse or a module that did not load: what they declare is missing,
	// and every reference to it would be reported as a false error.
	if l.incomplete {
		return nil, diags
	}
	diags = append(diags, cfg.resolveProviders()...)
	vals, sources, d := resolveVariables(cfg, root.Variables, opts)
	diags = append(diags, d...)
	cfg.inputs, cfg.sources, cfg.inputsObj = vals, sources, cty.ObjectVal(vals)
	cfg.parseAllRefs()
	diags = append(diags, cfg.checkReferences()...)
	if diags.HasErrors() {
		return nil, diags
	}
	g, d := cfg.buildGraph()
	diags = append(diags, d...)
	if diags.HasErrors() {
		return nil, diags
	}
	cfg.graph = g
	return cfg, diags
}

type loader struct {
	tooMany    bool // maxModuleCount was reached
	incomplete bool // a file did not parse or a module did not load
	cfg        *Config
	dir        string
	read       func(rel string) (map[string][]byte, error)
}

// Limits on the module tree: how deep calls nest, and how many module
// instances a configuration may hold in all (a module called twice by a
// module called twice ... grows exponentially without a cycle).
const (
	maxModuleDepth = 16
	maxModuleCount = 1000
)

// loadModule loads the module in directory rel and, recursively, the
// modules it calls. chain holds the directories of the modules on the way
// down from the root, to refuse a module that calls itself (directly or
// through others) before it expands without end.
func (l *loader) loadModule(modPath, rel string, call *ModuleCall, chain []string) (*Module, hcl2.Diagnostics) {
	if l.tooMany {
		return nil, nil // said once already
	}
	if len(l.cfg.Modules) >= maxModuleCount {
		l.tooMany, l.incomplete = true, true
		return nil, errorDiag("Too many modules",
			fmt.Sprintf("The configuration expands to more than %d module instances (%s would be one more); call fewer modules, or call them fewer times.", maxModuleCount, modPath),
			call.DeclRange.Ptr())
	}
	srcs, err := l.read(rel)
	if err != nil || len(srcs) == 0 {
		l.incomplete = true
	}
	if err != nil {
		return nil, errorDiag("Cannot read configuration", err.Error(), nil)
	}
	if len(srcs) == 0 {
		if call == nil {
			return nil, errorDiag("No configuration files",
				fmt.Sprintf("The directory %s contains no *.hcl or *.tf files.", l.dir), nil)
		}
		return nil, errorDiag("Module has no configuration",
			fmt.Sprintf("Module %q has source %q, but %s holds no *.hcl or *.tf files.", call.Name, call.Source, l.display(rel)),
			call.DeclRange.Ptr())
	}
	m := &Module{
		Path: modPath, Dir: rel, Call: call,
		Variables: map[string]*Variable{}, Locals: map[string]*Local{}, Outputs: map[string]*Output{},
		Calls: map[string]*ModuleCall{}, types: map[string]bool{}, dataTypes: map[string]bool{},
	}
	l.cfg.Modules[modPath] = m
	var diags hcl2.Diagnostics
	for _, name := range sortedKeys(srcs) {
		// Diagnostics name the file as the user would open it.
		bodies, d := parseFile(srcs[name], l.display(name))
		diags = append(diags, d...)
		if d.HasErrors() {
			l.incomplete = true
			continue
		}
		diags = append(diags, l.checkFunctions(bodies, srcs[name])...)
		for _, body := range bodies {
			content, d := body.Content(rootSchema)
			diags = append(diags, d...)
			for _, b := range content.Blocks {
				diags = append(diags, l.addBlock(m, b)...)
			}
		}
	}
	chain = append(chain[:len(chain):len(chain)], path.Clean(rel))
	for _, name := range sortedKeys(m.Calls) {
		c := m.Calls[name]
		childRel := path.Join(rel, c.Source)
		if i := slices.Index(chain, path.Clean(childRel)); i >= 0 {
			loop := append(slices.Clone(chain[i:]), path.Clean(childRel))
			diags = append(diags, errorDiag("Module cycle",
				fmt.Sprintf("Module %q (source %q) is a module that is already being loaded above it: %s. A module cannot call itself, directly or through other modules.",
					c.Name, c.Source, strings.Join(loop, " → ")),
				c.DeclRange.Ptr())...)
			l.incomplete = true
			continue
		}
		if strings.Count(c.Path, "module.") > maxModuleDepth {
			diags = append(diags, errorDiag("Module nesting too deep",
				fmt.Sprintf("Module %s is nested more than %d levels deep; does a module call itself?", c.Path, maxModuleDepth),
				c.DeclRange.Ptr())...)
			l.incomplete = true
			continue
		}
		_, d := l.loadModule(c.Path, childRel, c, chain)
		diags = append(diags, d...)
		if l.tooMany {
			break
		}
	}
	return m, diags
}

func (l *loader) display(rel string) string {
	rel = path.Clean(rel)
	if l.dir == "" || l.dir == "." {
		return filepath.FromSlash(rel)
	}
	return filepath.Join(l.dir, filepath.FromSlash(rel))
}

func (l *loader) addBlock(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	c := l.cfg
	switch b.Type {
	case "provider":
		if m.Path != "" {
			return errorDiag("Provider block in a module",
				"Provider blocks belong in the root module; a module uses the root's providers, or those passed with providers = { ... } in its module block.",
				b.DefRange.Ptr())
		}
		return c.addProvider(b)
	case "variable":
		return addVariable(m, b)
	case "locals":
		return addLocals(m, b)
	case "resource":
		return c.addResource(m, b, Managed)
	case "data":
		return c.addResource(m, b, Data)
	case "output":
		return addOutput(m, b)
	case "module":
		return addModuleCall(m, b)
	case "moved":
		return c.addMoved(m, b)
	case "terraform":
		return c.addTerraform(m, b)
	case "import":
		if m.Path != "" {
			return errorDiag("Import block in a module", "Import blocks belong in the root module; give a module address in to = module.NAME....", b.DefRange.Ptr())
		}
		return c.addImport(b)
	}
	return nil
}

// ResourceAddrs lists every resource address (all modules), sorted.
func (c *Config) ResourceAddrs() []string {
	if c.graph != nil {
		return c.graph.sortedResources
	}
	return sortedKeys(c.Resources)
}

// Order lists the resources with each after everything it depends on.
func (c *Config) Order() []string {
	if c.graph == nil {
		return nil
	}
	return c.graph.order
}

// Dependencies lists the resources a resource refers to, directly or through
// locals, module inputs and outputs, plus its depends_on, sorted.
func (c *Config) Dependencies(addr string) []string {
	if c.graph == nil {
		return nil
	}
	return c.graph.resDeps[addr]
}

// Dependents lists the resources that depend on addr, sorted.
func (c *Config) Dependents(addr string) []string {
	if c.graph == nil {
		return nil
	}
	return c.graph.dependents(addr)
}

// VariableSource says where a root variable's value came from: "default",
// "-var", "-var-file FILE", "FIAT_VAR_name" or "saved plan".
func (c *Config) VariableSource(name string) string { return c.sources[name] }

// VariableValues are the root variables' values (sensitive ones marked).
func (c *Config) VariableValues() map[string]cty.Value { return c.inputs }

// providerName is the provider a resource type belongs to: the type's
// prefix up to the first underscore.
func providerName(resourceType string) string {
	if i := strings.IndexByte(resourceType, '_'); i > 0 {
		return resourceType[:i]
	}
	return resourceType
}

func errorDiag(summary, detail string, rng *hcl2.Range) hcl2.Diagnostics {
	return hcl2.Diagnostics{{Severity: hcl2.DiagError, Summary: summary, Detail: detail, Subject: rng}}
}

func warnDiag(summary, detail string, rng *hcl2.Range) hcl2.Diagnostics {
	return hcl2.Diagnostics{{Severity: hcl2.DiagWarning, Summary: summary, Detail: detail, Subject: rng}}
}

// WithoutResources is the config with no resources: planning it deletes
// everything the stack holds (fiat destroy).
func (c *Config) WithoutResources() *Config {
	cp := *c
	cp.Resources = map[string]*Resource{}
	cp.Outputs = map[string]*Output{}
	cp.Imports = nil
	cp.Moved = nil
	cp.Modules = map[string]*Module{}
	for p, m := range c.Modules {
		mc := *m
		mc.Outputs = map[string]*Output{}
		cp.Modules[p] = &mc
	}
	cp.graph = &refGraph{resDeps: map[string][]string{}}
	return &cp
}

func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}
