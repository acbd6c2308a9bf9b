// Package hcl turns a directory of *.hcl files into a typed Config:
// providers, variables, locals, resources and outputs, with every problem
// reported as an HCL diagnostic carrying file:line:col. It evaluates
// expressions (cty) against a Scope the caller supplies, and never touches the
// store or providers.
package hcl

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclparse"
	"github.com/zclconf/go-cty/cty"
)

// Config is one directory of specs: one stack.
type Config struct {
	Dir       string
	Files     map[string][]byte // file name → source, the snapshot a saved plan carries
	Providers map[string]*Provider
	Variables map[string]*Variable
	Locals    map[string]*Local
	Resources map[string]*Resource // keyed by address "type.name"
	Outputs   map[string]*Output

	vars  cty.Value       // object of variable values, set by Load
	types map[string]bool // resource types in use, for reference lookup
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
	Type        cty.Type // cty.DynamicPseudoType when not constrained
	Default     cty.Value
	Description string
	Sensitive   bool
	DeclRange   hcl2.Range
}

// Local is one entry of a locals block.
type Local struct {
	Name string
	Expr hcl2.Expression
}

// Output is an output block.
type Output struct {
	Name      string
	Expr      hcl2.Expression
	Sensitive bool
	DeclRange hcl2.Range
}

// Resource is a resource block.
type Resource struct {
	Type      string
	Name      string
	Provider  string // provider address: "libvirt" or "libvirt.alias"
	Body      hcl2.Body
	DependsOn []string // explicit depends_on addresses
	DeclRange hcl2.Range
	TypeRange hcl2.Range
}

// Addr is "type.name".
func (r *Resource) Addr() string { return r.Type + "." + r.Name }

// Source is "file:line" of the block, for error messages.
func (r *Resource) Source() string {
	return fmt.Sprintf("%s:%d", r.DeclRange.Filename, r.DeclRange.Start.Line)
}

// Options controls Load.
type Options struct {
	// Vars are values given on the command line (-var name=value); they
	// win over FIAT_VAR_name environment variables, which win over defaults.
	Vars map[string]string
	// Env is the environment to read FIAT_VAR_* from; nil means os.Environ.
	Env []string
}

var rootSchema = &hcl2.BodySchema{
	Blocks: []hcl2.BlockHeaderSchema{
		{Type: "provider", LabelNames: []string{"name"}},
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "locals"},
		{Type: "resource", LabelNames: []string{"type", "name"}},
		{Type: "output", LabelNames: []string{"name"}},
	},
}

// Load reads every *.hcl file of dir.
func Load(dir string, opts Options) (*Config, hcl2.Diagnostics) {
	names, err := filepath.Glob(filepath.Join(dir, "*.hcl"))
	if err != nil {
		return nil, errorDiag("Cannot read configuration", err.Error(), nil)
	}
	if len(names) == 0 {
		return nil, errorDiag("No configuration files",
			fmt.Sprintf("The directory %s contains no *.hcl files.", dir), nil)
	}
	files := make(map[string][]byte, len(names))
	for _, name := range names {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, errorDiag("Cannot read configuration", err.Error(), nil)
		}
		files[filepath.Base(name)] = src
	}
	return LoadFiles(dir, files, opts)
}

// LoadFiles parses a snapshot of files (name → source), as a saved plan holds.
func LoadFiles(dir string, files map[string][]byte, opts Options) (*Config, hcl2.Diagnostics) {
	cfg := &Config{
		Dir:       dir,
		Files:     files,
		Providers: map[string]*Provider{},
		Variables: map[string]*Variable{},
		Locals:    map[string]*Local{},
		Resources: map[string]*Resource{},
		Outputs:   map[string]*Output{},
		types:     map[string]bool{},
	}
	parser := hclparse.NewParser()
	var diags hcl2.Diagnostics
	names := make([]string, 0, len(files))
	for name := range files {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		// Diagnostics name the file as the user would open it.
		f, d := parser.ParseHCL(files[name], displayName(dir, name))
		diags = append(diags, d...)
		if f == nil {
			continue
		}
		content, d := f.Body.Content(rootSchema)
		diags = append(diags, d...)
		for _, b := range content.Blocks {
			diags = append(diags, cfg.addBlock(b)...)
		}
	}
	if diags.HasErrors() {
		return nil, diags
	}
	vars, d := resolveVariables(cfg.Variables, opts)
	diags = append(diags, d...)
	cfg.vars = vars
	diags = append(diags, cfg.checkReferences()...)
	if diags.HasErrors() {
		return nil, diags
	}
	return cfg, diags
}

func displayName(dir, name string) string {
	if dir == "" || dir == "." {
		return name
	}
	return filepath.Join(dir, name)
}

func (c *Config) addBlock(b *hcl2.Block) hcl2.Diagnostics {
	switch b.Type {
	case "provider":
		return c.addProvider(b)
	case "variable":
		return c.addVariable(b)
	case "locals":
		return c.addLocals(b)
	case "resource":
		return c.addResource(b)
	case "output":
		return c.addOutput(b)
	}
	return nil
}

// ResourceAddrs lists resource addresses in sorted order.
func (c *Config) ResourceAddrs() []string {
	addrs := make([]string, 0, len(c.Resources))
	for a := range c.Resources {
		addrs = append(addrs, a)
	}
	sort.Strings(addrs)
	return addrs
}

// ProviderFor says which provider block serves a resource; a resource with no
// provider argument uses the unaliased provider named by its type's prefix.
func providerName(resourceType string) string {
	if i := strings.IndexByte(resourceType, '_'); i > 0 {
		return resourceType[:i]
	}
	return resourceType
}

func errorDiag(summary, detail string, rng *hcl2.Range) hcl2.Diagnostics {
	return hcl2.Diagnostics{{Severity: hcl2.DiagError, Summary: summary, Detail: detail, Subject: rng}}
}

// WithoutResources is the config with no resources: planning it deletes
// everything the stack holds (fiat destroy).
func (c *Config) WithoutResources() *Config {
	cp := *c
	cp.Resources = map[string]*Resource{}
	cp.Outputs = map[string]*Output{}
	return &cp
}
