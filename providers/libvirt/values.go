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
