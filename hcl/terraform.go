package hcl

import (
	"fmt"
	"sort"
	"strings"

	"github.com/hashicorp/go-version"
	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// Terraform is what a configuration written for Terraform or OpenTofu says
// in its terraform blocks. fiat runs such configurations unchanged: it
// notes Terraform's own version requirement without checking it (it is
// Terraform's, not fiat's), maps the providers it knows by their registry
// source, and names the ones it lacks.
type Terraform struct {
	RequiredVersion string
	// Providers are required_providers entries by local name.
	Providers map[string]RequiredProvider
}

// RequiredProvider is one entry of required_providers.
type RequiredProvider struct {
	Source  string // "dmacvicar/libvirt", registry host stripped
	Version string // the constraint as written
	Range   hcl2.Range
}

// terraformSources are the Terraform providers fiat implements: registry
// source → fiat provider name and the provider version whose schema fiat's
// follows.
var terraformSources = map[string]struct{ name, version string }{
	"dmacvicar/libvirt":                      {"libvirt", "0.8.3"},
	"hashicorp/random":                       {"random", ""},
	"hashicorp/tls":                          {"tls", ""},
	"hashicorp/null":                         {"null", ""},
	"hashicorp/time":                         {"time", ""},
	"hashicorp/template":                     {"template", ""},
	"hashicorp/local":                        {"local", ""},
	"hashicorp/ignition":                     {"ignition", ""},
	"community-terraform-providers/ignition": {"ignition", ""},
	"builtin/terraform":                      {"terraform", ""},
}

// TerraformProvider is fiat's name for a Terraform registry provider
// source ("dmacvicar/libvirt" → "libvirt"); "" when fiat has none.
func TerraformProvider(source string) string {
	return terraformSources[normaliseSource(source)].name
}

// TerraformSource is the registry source the configuration names for a
// provider ("" when it names none).
func (c *Config) TerraformSource(provider string) string {
	return c.Terraform.Providers[provider].Source
}

var terraformBlockSchema = &hcl2.BodySchema{
	Attributes: []hcl2.AttributeSchema{{Name: "required_version"}, {Name: "experiments"}},
	Blocks: []hcl2.BlockHeaderSchema{
		{Type: "required_providers"}, {Type: "backend", LabelNames: []string{"type"}}, {Type: "cloud"},
		{Type: "provider_meta", LabelNames: []string{"provider"}},
	},
}

func (c *Config) addTerraform(m *Module, b *hcl2.Block) hcl2.Diagnostics {
	content, diags := b.Body.Content(terraformBlockSchema)
	if a, ok := content.Attributes["required_version"]; ok && m.Path == "" {
		if v, d := a.Expr.Value(nil); !d.HasErrors() && v.Type() == cty.String && v.IsKnown() && !v.IsNull() {
			c.Terraform.RequiredVersion = v.AsString()
		}
	}
	for _, blk := range content.Blocks {
		switch blk.Type {
		case "required_providers":
			diags = append(diags, c.addRequiredProviders(blk)...)
		case "backend", "cloud":
			if m.Path == "" {
				diags = append(diags, warnDiag("Terraform state backend ignored",
					"fiat keeps state in its own store, not in a Terraform backend; this block is ignored. Objects a Terraform state manages are not known to fiat until they are imported (import blocks).",
					blk.DefRange.Ptr())...)
			}
		}
	}
	return diags
}

func (c *Config) addRequiredProviders(b *hcl2.Block) hcl2.Diagnostics {
	attrs, diags := b.Body.JustAttributes()
	if c.Terraform.Providers == nil {
		c.Terraform.Providers = map[string]RequiredProvider{}
	}
	for _, name := range sortedKeys(attrs) {
		a := attrs[name]
		v, d := a.Expr.Value(nil)
		if d.HasErrors() {
			diags = append(diags, d...)
			continue
		}
		rp := RequiredProvider{Range: a.Range}
		switch {
		case v.Type() == cty.String && v.IsKnown() && !v.IsNull(): // Terraform 0.12's version-only form
			rp.Version = v.AsString()
		case v.Type().IsObjectType() && v.IsKnown() && !v.IsNull():
			if v.Type().HasAttribute("source") && v.GetAttr("source").Type() == cty.String && !v.GetAttr("source").IsNull() {
				rp.Source = normaliseSource(v.GetAttr("source").AsString())
			}
			if v.Type().HasAttribute("version") && v.GetAttr("version").Type() == cty.String && !v.GetAttr("version").IsNull() {
				rp.Version = v.GetAttr("version").AsString()
			}
		default:
			diags = append(diags, errorDiag("Invalid required_providers entry",
				fmt.Sprintf("%s wants { source = \"NAMESPACE/NAME\", version = \"CONSTRAINT\" }.", name), a.Range.Ptr())...)
			continue
		}
		c.Terraform.Providers[name] = rp
		diags = append(diags, checkProviderVersion(name, rp)...)
	}
	return diags
}

// normaliseSource drops the registry host: registry.terraform.io and
// registry.opentofu.org name the same providers.
func normaliseSource(s string) string {
	parts := strings.Split(strings.ToLower(s), "/")
	if len(parts) == 3 {
		parts = parts[1:]
	}
	return strings.Join(parts, "/")
}

// checkProviderVersion warns when a provider's version constraint excludes
// the version whose schema fiat follows: the configuration may use
// arguments fiat's provider spells differently.
func checkProviderVersion(name string, rp RequiredProvider) hcl2.Diagnostics {
	known, ok := terraformSources[rp.Source]
	if !ok || rp.Version == "" || known.version == "" {
		return nil
	}
	cons, err := version.NewConstraint(rp.Version)
	if err != nil {
		return warnDiag("Unreadable provider version constraint",
			fmt.Sprintf("%s: %q is not a version constraint (%v); fiat's %s provider follows %s %s.", name, rp.Version, err, known.name, rp.Source, known.version), rp.Range.Ptr())
	}
	if !cons.Check(version.Must(version.NewVersion(known.version))) {
		return warnDiag("Provider version constraint excludes fiat's",
			fmt.Sprintf("%s requires %s %s; fiat's %s provider follows the schema of %s %s. Arguments that version lacks or spells differently are reported where they are used.",
				name, rp.Source, rp.Version, known.name, rp.Source, known.version), rp.Range.Ptr())
	}
	return nil
}

// MissingProviders names, in one message, the providers the
// configuration's resources need and fiat does not have (have lists the
// ones it has), with the resources that need each.
func (c *Config) MissingProviders(have func(name string) bool) (string, *hcl2.Range) {
	need := map[string][]string{}
	var first *hcl2.Range
	for _, addr := range c.ResourceAddrs() {
		r := c.Resources[addr]
		name, _, _ := strings.Cut(r.Provider, ".")
		if have(name) {
			continue
		}
		need[name] = append(need[name], addr)
		if first == nil {
			first = r.TypeRange.Ptr()
		}
	}
	if len(need) == 0 {
		return "", nil
	}
	names := make([]string, 0, len(need))
	for n := range need {
		names = append(names, n)
	}
	sort.Strings(names)
	var parts []string
	for _, n := range names {
		what := fmt.Sprintf("%q", n)
		if src := c.TerraformSource(n); src != "" {
			what += " (" + src + ")"
		}
		res := need[n]
		if len(res) > 3 {
			res = append(res[:3:3], fmt.Sprintf("and %d more", len(need[n])-3))
		}
		parts = append(parts, fmt.Sprintf("%s, needed by %s", what, strings.Join(res, ", ")))
	}
	return "fiat has no provider " + strings.Join(parts, "; no provider ") + ".", first
}
