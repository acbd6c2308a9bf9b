package hcl

import (
	"fmt"
	"math/big"
	"sort"
	"strconv"
	"strings"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/zclconf/go-cty/cty"
)

// Mode says whether a block manages an object (resource) or reads one (data).
type Mode int

const (
	Managed Mode = iota
	Data
)

// Address names a module, a resource or one instance of a resource:
//
//	module.net
//	libvirt_pool.images
//	data.fiat_data.cfg
//	module.net.libvirt_volume.disk[0]
//	libvirt_volume.disk["db"]
type Address struct {
	Module string // "" for the root, else "module.a" or "module.a.module.b"
	Mode   Mode
	Type   string // "" when the address names a whole module
	Name   string
	Key    cty.Value // cty.NilVal: no instance key; a whole number or a string otherwise
}

// HasKey says whether the address names one instance by key.
func (a Address) HasKey() bool { return a.Key != cty.NilVal }

// IsModule says whether the address names a whole module.
func (a Address) IsModule() bool { return a.Type == "" }

// Resource is the configuration address of the resource, without any key.
func (a Address) Resource() string {
	if a.IsModule() {
		return a.Module
	}
	s := modulePrefix(a.Module)
	if a.Mode == Data {
		s += "data."
	}
	return s + a.Type + "." + a.Name
}

// String is the instance address: Resource plus the key, if any.
func (a Address) String() string { return a.Resource() + KeyString(a.Key) }

// InstanceAddr is the address of one instance of a resource.
func InstanceAddr(resource string, key cty.Value) string { return resource + KeyString(key) }

// KeyString renders an instance key as it is written in an address: [0] or
// ["name"]; "" for no key.
func KeyString(key cty.Value) string {
	if key == cty.NilVal {
		return ""
	}
	if key.Type() == cty.Number {
		return "[" + key.AsBigFloat().Text('f', -1) + "]"
	}
	return "[" + Quote(key.AsString()) + "]"
}

// Quote renders s as an HCL quoted string.
func Quote(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c == '\n':
			b.WriteString(`\n`)
		case c == '\r':
			b.WriteString(`\r`)
		case c == '\t':
			b.WriteString(`\t`)
		case (c == '$' || c == '%') && i+1 < len(s) && s[i+1] == '{':
			b.WriteByte(c)
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f:
			fmt.Fprintf(&b, `\u%04x`, c)
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}

func modulePrefix(path string) string {
	if path == "" {
		return ""
	}
	return path + "."
}

// ParseAddress parses an address as a user types it (-target, state show).
func ParseAddress(s string) (Address, hcl2.Diagnostics) {
	trav, diags := hclsyntax.ParseTraversalAbs([]byte(s), "address", hcl2.InitialPos)
	if diags.HasErrors() {
		return Address{}, hcl2.Diagnostics{{Severity: hcl2.DiagError, Summary: "Invalid address",
			Detail: fmt.Sprintf("%q is not an address like type.name, type.name[0], data.type.name or module.name.", s)}}
	}
	return addressFromTraversal(trav)
}

// addressFromTraversal interprets a traversal (from an expression such as
// moved { from = ... }) as an Address.
func addressFromTraversal(t hcl2.Traversal) (Address, hcl2.Diagnostics) {
	var a Address
	rng := t.SourceRange().Ptr()
	bad := func(why string) (Address, hcl2.Diagnostics) {
		return Address{}, errorDiag("Invalid address", why, rng)
	}
	names := make([]string, 0, len(t))
	var key cty.Value
	for i, step := range t {
		switch s := step.(type) {
		case hcl2.TraverseRoot:
			names = append(names, s.Name)
		case hcl2.TraverseAttr:
			names = append(names, s.Name)
		case hcl2.TraverseIndex:
			if i != len(t)-1 {
				// An index after module.NAME: module instances are not supported.
				return bad("An instance key may only follow a resource name; modules have no count or for_each.")
			}
			k, err := normalizeKey(s.Key)
			if err != nil {
				return bad(err.Error())
			}
			key = k
		default:
			return bad("An address is made of names and at most one [key].")
		}
	}
	for len(names) >= 2 && names[0] == "module" {
		a.Module = modulePrefix(a.Module) + "module." + names[1]
		names = names[2:]
	}
	switch {
	case len(names) == 0:
		if key != cty.NilVal {
			return bad("Modules have no instance keys.")
		}
		if a.Module == "" {
			return bad("The address is empty.")
		}
		return a, nil
	case names[0] == "data" && len(names) == 3:
		a.Mode, a.Type, a.Name = Data, names[1], names[2]
	case len(names) == 2 && names[0] != "data":
		a.Type, a.Name = names[0], names[1]
	default:
		return bad(fmt.Sprintf("%q is not an address like type.name, type.name[0], data.type.name or module.name.", traversalText(t)))
	}
	a.Key = key
	return a, nil
}

// normalizeKey accepts whole numbers and strings as instance keys.
func normalizeKey(k cty.Value) (cty.Value, error) {
	if k.IsNull() || !k.IsKnown() {
		return cty.NilVal, fmt.Errorf("an instance key must be a number or a string")
	}
	switch k.Type() {
	case cty.String:
		return k, nil
	case cty.Number:
		bf := k.AsBigFloat()
		if !bf.IsInt() || bf.Sign() < 0 {
			return cty.NilVal, fmt.Errorf("an index must be a whole number, not %s", bf.Text('f', -1))
		}
		i, _ := bf.Int64()
		return cty.NumberIntVal(i), nil
	}
	return cty.NilVal, fmt.Errorf("an instance key must be a number or a string")
}

// TraversalText writes a traversal as it would be written in a config.
func TraversalText(t hcl2.Traversal) string { return traversalText(t) }

func traversalText(t hcl2.Traversal) string {
	var b strings.Builder
	for _, step := range t {
		switch s := step.(type) {
		case hcl2.TraverseRoot:
			b.WriteString(s.Name)
		case hcl2.TraverseAttr:
			b.WriteString("." + s.Name)
		case hcl2.TraverseIndex:
			if k, err := normalizeKey(s.Key); err == nil {
				b.WriteString(KeyString(k))
			} else {
				b.WriteString("[?]")
			}
		}
	}
	return b.String()
}

// SplitInstance splits an instance address into its resource address and key.
func SplitInstance(addr string) (resource string, key cty.Value, err error) {
	i := strings.IndexByte(addr, '[')
	if i < 0 {
		return addr, cty.NilVal, nil
	}
	a, diags := ParseAddress(addr)
	if diags.HasErrors() {
		return "", cty.NilVal, fmt.Errorf("%s", diags[0].Detail)
	}
	return a.Resource(), a.Key, nil
}

// keyLess orders instance keys: numbers numerically, strings lexically.
func keyLess(a, b cty.Value) bool {
	if a.Type() == cty.Number && b.Type() == cty.Number {
		return a.AsBigFloat().Cmp(b.AsBigFloat()) < 0
	}
	return a.AsString() < b.AsString()
}

// SortKeys orders instance keys: numbers numerically, strings lexically.
func SortKeys(keys []cty.Value) {
	sort.Slice(keys, func(i, j int) bool { return keyLess(keys[i], keys[j]) })
}

func intKey(i int) cty.Value { return cty.NumberIntVal(int64(i)) }

// keyIndex is the map key of an instance key, for lookups.
func keyIndex(k cty.Value) string {
	if k == cty.NilVal {
		return ""
	}
	if k.Type() == cty.Number {
		return strconv.FormatInt(bigInt(k.AsBigFloat()), 10)
	}
	return "s:" + k.AsString()
}

func bigInt(f *big.Float) int64 {
	i, _ := f.Int64()
	return i
}
