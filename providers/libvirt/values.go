package libvirt

import (
	"fmt"
	"math/big"

	"github.com/zclconf/go-cty/cty"
)

// attr returns obj's attribute name, or a null string when obj is
// cty.NilVal, null or unknown as a whole, or has no such attribute.
func attr(obj cty.Value, name string) cty.Value {
	switch {
	case obj == cty.NilVal || obj.IsNull():
		return cty.NullVal(cty.DynamicPseudoType)
	case !obj.IsKnown():
		return cty.UnknownVal(cty.DynamicPseudoType)
	case !obj.Type().IsObjectType() || !obj.Type().HasAttribute(name):
		return cty.NullVal(cty.DynamicPseudoType)
	}
	return obj.GetAttr(name)
}

// strAttr returns a string attribute: known=false when it is unknown, ""
// when it is null.
func strAttr(obj cty.Value, name string) (s string, known bool, err error) {
	v := attr(obj, name)
	if !v.IsKnown() {
		return "", false, nil
	}
	if v.IsNull() {
		return "", true, nil
	}
	if v.Type() != cty.String {
		return "", true, fmt.Errorf("attribute %q: want a string, got %s", name, v.Type().FriendlyName())
	}
	return v.AsString(), true, nil
}

// sizeAttr returns a whole, non-negative number attribute as uint64:
// known=false when it is unknown, set=false when it is null.
func sizeAttr(obj cty.Value, name string) (n uint64, known, set bool, err error) {
	v := attr(obj, name)
	if !v.IsKnown() {
		return 0, false, false, nil
	}
	if v.IsNull() {
		return 0, true, false, nil
	}
	if v.Type() != cty.Number {
		return 0, true, true, fmt.Errorf("attribute %q: want a number, got %s", name, v.Type().FriendlyName())
	}
	bf := v.AsBigFloat()
	if !bf.IsInt() || bf.Sign() < 0 {
		return 0, true, true, fmt.Errorf("attribute %q: want a whole number of bytes >= 0, got %s", name, bf.Text('g', -1))
	}
	u, acc := bf.Uint64()
	if acc != big.Exact {
		return 0, true, true, fmt.Errorf("attribute %q: %s bytes is too large", name, bf.Text('g', -1))
	}
	return u, true, true, nil
}

// knownStrings reads string attributes that must be known (Create, Update):
// a null one gets its default from defaults, or "".
func knownStrings(obj cty.Value, defaults map[string]string, names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		s, known, err := strAttr(obj, n)
		if err != nil {
			return nil, err
		}
		if !known {
			return nil, fmt.Errorf("attribute %q is not known yet", n)
		}
		if s == "" {
			s = defaults[n]
		}
		out[n] = s
	}
	return out, nil
}

// boolAttr returns a bool attribute: known=false when unknown; def when null.
func boolAttr(obj cty.Value, name string, def bool) (b, known bool, err error) {
	v := attr(obj, name)
	if !v.IsKnown() {
		return false, false, nil
	}
	if v.IsNull() {
		return def, true, nil
	}
	if v.Type() != cty.Bool {
		return false, true, fmt.Errorf("attribute %q: want a bool, got %s", name, v.Type().FriendlyName())
	}
	return v.True(), true, nil
}

// listAttr returns the elements of a list, set or tuple attribute:
// known=false when it (or any part of it) is unknown; nil when null.
func listAttr(obj cty.Value, name string) (elems []cty.Value, known bool, err error) {
	v := attr(obj, name)
	if !v.IsWhollyKnown() {
		return nil, false, nil
	}
	if v.IsNull() {
		return nil, true, nil
	}
	t := v.Type()
	if !t.IsListType() && !t.IsSetType() && !t.IsTupleType() {
		return nil, true, fmt.Errorf("attribute %q: want a list, got %s", name, t.FriendlyName())
	}
	return v.AsValueSlice(), true, nil
}

// stringList returns a list-of-strings attribute (see listAttr).
func stringList(obj cty.Value, name string) ([]string, bool, error) {
	elems, known, err := listAttr(obj, name)
	if err != nil || !known {
		return nil, known, err
	}
	out := make([]string, len(elems))
	for i, e := range elems {
		if e.IsNull() || e.Type() != cty.String {
			return nil, true, fmt.Errorf("attribute %q: element %d is not a string", name, i)
		}
		out[i] = e.AsString()
	}
	return out, true, nil
}

// knownAll reports whether every named attribute of obj is wholly known.
func knownAll(obj cty.Value, names ...string) bool {
	for _, n := range names {
		if !attr(obj, n).IsWhollyKnown() {
			return false
		}
	}
	return true
}

// strOrNull is a string value, null for "" (an optional field libvirt
// leaves out).
func strOrNull(s string) cty.Value {
	if s == "" {
		return cty.NullVal(cty.String)
	}
	return cty.StringVal(s)
}

// listOf returns a list of elemType from vals, or a null list when vals is
// empty and keepNull (config left it out).
func listOf(elemType cty.Type, vals []cty.Value, keepNull bool) cty.Value {
	if len(vals) == 0 {
		if keepNull {
			return cty.NullVal(cty.List(elemType))
		}
		return cty.ListValEmpty(elemType)
	}
	return cty.ListVal(vals)
}

// isNullAttr reports whether obj's attribute is null (a missing obj counts).
func isNullAttr(obj cty.Value, name string) bool {
	v := attr(obj, name)
	return v.IsKnown() && v.IsNull()
}

// uintAttr is sizeAttr for counts (vcpus, MiB) with a default when null.
func uintAttr(obj cty.Value, name string, def uint64) (n uint64, known bool, err error) {
	n, known, set, err := sizeAttr(obj, name)
	if err != nil || !known {
		return 0, known, err
	}
	if !set {
		return def, true, nil
	}
	return n, true, nil
}
