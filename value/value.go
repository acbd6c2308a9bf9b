// Package value is the stored form of a cty value: JSON with its exact type,
// so lists stay lists and sets stay sets in the store, the journal and plan
// files. The store, the planner and the executor all read and write values
// through it.
package value

import (
	"bytes"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// Values are stored (in the store and in plan files) with their exact type,
// so lists stay lists and sets stay sets:
//
//	{"$type":["object",{"name":"string"}],"$value":{"name":"a"}}
//
// "$" cannot start an attribute name, so the older untyped encoding (a
// go-cty SimpleJSONValue) is told apart and still decoded.
var typedPrefix = []byte(`{"$type":`)

// Encode stores a cty value with its type, for the store and plan files.
// The value must be wholly known and unmarked.
func Encode(v cty.Value) (json.RawMessage, error) {
	if v == cty.NilVal {
		return nil, nil
	}
	t := v.Type()
	tb, err := ctyjson.MarshalType(t)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	vb, err := ctyjson.Marshal(v, t)
	if err != nil {
		return nil, fmt.Errorf("encode value: %w", err)
	}
	var buf bytes.Buffer
	buf.Grow(len(tb) + len(vb) + 22)
	buf.Write(typedPrefix)
	buf.Write(tb)
	buf.WriteString(`,"$value":`)
	buf.Write(vb)
	buf.WriteByte('}')
	return buf.Bytes(), nil
}

// isTyped says whether b is the typed encoding (perhaps re-indented, as
// inside a plan file).
func isTyped(b []byte) bool {
	b = bytes.TrimLeft(b, " \t\r\n")
	if len(b) == 0 || b[0] != '{' {
		return false
	}
	return bytes.HasPrefix(bytes.TrimLeft(b[1:], " \t\r\n"), []byte(`"$type"`))
}

// types caches decoded type descriptions: 50,000 entities of one resource
// type share one.
var types sync.Map // string → cty.Type

// DecodeValue reverses Encode (and reads the older untyped encoding).
func Decode(b json.RawMessage) (cty.Value, error) {
	if len(b) == 0 {
		return cty.NilVal, nil
	}
	if !isTyped(b) {
		var v ctyjson.SimpleJSONValue
		if err := json.Unmarshal(b, &v); err != nil {
			return cty.NilVal, fmt.Errorf("decode value: %w", err)
		}
		return v.Value, nil
	}
	d := &jdec{b: b}
	if err := d.expect('{'); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	if k, err := d.str(); err != nil || k != "$type" {
		return cty.NilVal, fmt.Errorf("decode value: want $type")
	}
	if err := d.expect(':'); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	d.space()
	ts := d.i
	if err := d.skip(); err != nil {
		return cty.NilVal, fmt.Errorf("decode value type: %w", err)
	}
	tb := b[ts:d.i]
	var t cty.Type
	if cached, ok := types.Load(string(tb)); ok {
		t = cached.(cty.Type)
	} else {
		var err error
		if t, err = ctyjson.UnmarshalType(tb); err != nil {
			return cty.NilVal, fmt.Errorf("decode value type: %w", err)
		}
		types.Store(string(tb), t)
	}
	if err := d.expect(','); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	if k, err := d.str(); err != nil || k != "$value" {
		return cty.NilVal, fmt.Errorf("decode value: want $value")
	}
	if err := d.expect(':'); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	v, err := d.value(t)
	if err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	if err := d.expect('}'); err != nil {
		return cty.NilVal, fmt.Errorf("decode value: %w", err)
	}
	return v, nil
}

// SizeAtLeast is a quick lower bound of v's encoded size: its strings,
// keys and primitives, without the type description and JSON escaping.
// Unknown values count nothing.
func SizeAtLeast(v cty.Value) int {
	if v == cty.NilVal {
		return 0
	}
	v, _ = v.UnmarkDeep()
	n := 0
	cty.Walk(v, func(_ cty.Path, x cty.Value) (bool, error) {
		switch {
		case !x.IsKnown() || x.IsNull():
			n += 4
			return false, nil
		case x.Type() == cty.String:
			n += len(x.AsString()) + 2
		case x.Type().IsPrimitiveType():
			n += 4
		case x.Type().IsObjectType() || x.Type().IsMapType():
			for it := x.ElementIterator(); it.Next(); {
				k, _ := it.Element()
				n += len(k.AsString()) + 4
			}
		}
		return true, nil
	})
	return n
}

// EncodedSize is the size of v as Encode stores it, unknown parts taken
// as null (what a planned value will at least take once applied).
func EncodedSize(v cty.Value) (int, error) {
	if v == cty.NilVal {
		return 0, nil
	}
	v, _ = v.UnmarkDeep()
	known, err := cty.Transform(v, func(_ cty.Path, x cty.Value) (cty.Value, error) {
		if !x.IsKnown() {
			return cty.NullVal(x.Type()), nil
		}
		return x, nil
	})
	if err != nil {
		return 0, err
	}
	b, err := Encode(known)
	return len(b), err
}
