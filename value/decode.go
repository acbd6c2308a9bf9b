package value

import (
	"encoding/json"
	"fmt"
	"strconv"
	"unicode/utf8"

	"github.com/zclconf/go-cty/cty"
	ctyjson "github.com/zclconf/go-cty/cty/json"
)

// decodeTyped reads the JSON of a value of type t as EncodeValue wrote it
// (go-cty's typed JSON). It does what ctyjson.Unmarshal does without a
// json.Decoder per value: a plan of 50,000 stored entities decodes each.
// Anything unusual (a dynamic value's type wrapper) goes to ctyjson.
func decodeTyped(b []byte, t cty.Type) (cty.Value, error) {
	d := &jdec{b: b}
	v, err := d.value(t)
	if err != nil {
		return cty.NilVal, err
	}
	d.space()
	if d.i != len(d.b) {
		return cty.NilVal, fmt.Errorf("extra data after value at offset %d", d.i)
	}
	return v, nil
}

type jdec struct {
	b []byte
	i int
}

func (d *jdec) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}

func (d *jdec) errf(format string, args ...any) error {
	return fmt.Errorf("offset %d: %s", d.i, fmt.Sprintf(format, args...))
}

func (d *jdec) peek() byte {
	d.space()
	if d.i >= len(d.b) {
		return 0
	}
	return d.b[d.i]
}

func (d *jdec) expect(c byte) error {
	if d.peek() != c {
		return d.errf("want %q", c)
	}
	d.i++
	return nil
}

func (d *jdec) literal(s string) bool {
	if len(d.b)-d.i >= len(s) && string(d.b[d.i:d.i+len(s)]) == s {
		d.i += len(s)
		return true
	}
	return false
}

func (d *jdec) value(t cty.Type) (cty.Value, error) {
	if d.peek() == 'n' {
		if !d.literal("null") {
			return cty.NilVal, d.errf("bad literal")
		}
		return cty.NullVal(t), nil
	}
	switch {
	case t == cty.String:
		s, err := d.str()
		if err != nil {
			return cty.NilVal, err
		}
		return cty.StringVal(s), nil
	case t == cty.Number:
		return d.number()
	case t == cty.Bool:
		switch {
		case d.literal("true"):
			return cty.True, nil
		case d.literal("false"):
			return cty.False, nil
		}
		return cty.NilVal, d.errf("want a bool")
	case t.IsListType() || t.IsSetType():
		els, err := d.array(func(int) (cty.Type, bool) { return t.ElementType(), true })
		if err != nil {
			return cty.NilVal, err
		}
		switch {
		case len(els) == 0 && t.IsListType():
			return cty.ListValEmpty(t.ElementType()), nil
		case len(els) == 0:
			return cty.SetValEmpty(t.ElementType()), nil
		case t.IsListType():
			return cty.ListVal(els), nil
		}
		return cty.SetVal(els), nil
	case t.IsTupleType():
		ets := t.TupleElementTypes()
		els, err := d.array(func(i int) (cty.Type, bool) {
			if i >= len(ets) {
				return cty.NilType, false
			}
			return ets[i], true
		})
		if err != nil {
			return cty.NilVal, err
		}
		if len(els) != len(ets) {
			return cty.NilVal, d.errf("tuple has %d elements, want %d", len(els), len(ets))
		}
		if len(els) == 0 {
			return cty.EmptyTupleVal, nil
		}
		return cty.TupleVal(els), nil
	case t.IsMapType():
		m, err := d.object(func(string) (cty.Type, bool) { return t.ElementType(), true })
		if err != nil {
			return cty.NilVal, err
		}
		if len(m) == 0 {
			return cty.MapValEmpty(t.ElementType()), nil
		}
		return cty.MapVal(m), nil
	case t.IsObjectType():
		ats := t.AttributeTypes()
		m, err := d.object(func(k string) (cty.Type, bool) {
			at, ok := ats[k]
			return at, ok
		})
		if err != nil {
			return cty.NilVal, err
		}
		for k, at := range ats {
			if _, ok := m[k]; !ok {
				m[k] = cty.NullVal(at)
			}
		}
		if len(m) == 0 {
			return cty.EmptyObjectVal, nil
		}
		return cty.ObjectVal(m), nil
	case t == cty.DynamicPseudoType:
		start := d.i
		if err := d.skip(); err != nil {
			return cty.NilVal, err
		}
		return ctyjson.Unmarshal(d.b[start:d.i], t)
	}
	return cty.NilVal, d.errf("cannot decode %s", t.FriendlyName())
}

func (d *jdec) array(elem func(int) (cty.Type, bool)) ([]cty.Value, error) {
	if err := d.expect('['); err != nil {
		return nil, err
	}
	var out []cty.Value
	if d.peek() == ']' {
		d.i++
		return out, nil
	}
	for {
		et, ok := elem(len(out))
		if !ok {
			return nil, d.errf("too many elements")
		}
		v, err := d.value(et)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
		switch d.peek() {
		case ',':
			d.i++
		case ']':
			d.i++
			return out, nil
		default:
			return nil, d.errf("want , or ]")
		}
	}
}

func (d *jdec) object(attr func(string) (cty.Type, bool)) (map[string]cty.Value, error) {
	if err := d.expect('{'); err != nil {
		return nil, err
	}
	out := map[string]cty.Value{}
	if d.peek() == '}' {
		d.i++
		return out, nil
	}
	for {
		d.space()
		k, err := d.str()
		if err != nil {
			return nil, err
		}
		if err := d.expect(':'); err != nil {
			return nil, err
		}
		at, ok := attr(k)
		if !ok {
			return nil, d.errf("unexpected attribute %q", k)
		}
		v, err := d.value(at)
		if err != nil {
			return nil, err
		}
		out[k] = v
		switch d.peek() {
		case ',':
			d.i++
		case '}':
			d.i++
			return out, nil
		default:
			return nil, d.errf("want , or }")
		}
	}
}

// str reads a JSON string; escapes go through encoding/json.
func (d *jdec) str() (string, error) {
	d.space()
	if d.i >= len(d.b) || d.b[d.i] != '"' {
		return "", d.errf("want a string")
	}
	start := d.i
	d.i++
	escaped := false
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '\\':
			escaped = true
			d.i += 2
			continue
		case c == '"':
			d.i++
			if !escaped {
				s := d.b[start+1 : d.i-1]
				if !utf8.Valid(s) {
					return "", d.errf("invalid UTF-8")
				}
				return string(s), nil
			}
			var s string
			if err := json.Unmarshal(d.b[start:d.i], &s); err != nil {
				return "", d.errf("%v", err)
			}
			return s, nil
		}
		d.i++
	}
	return "", d.errf("unterminated string")
}

func (d *jdec) number() (cty.Value, error) {
	d.space()
	start := d.i
	for d.i < len(d.b) {
		c := d.b[d.i]
		if (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' || c == 'e' || c == 'E' {
			d.i++
			continue
		}
		break
	}
	tok := string(d.b[start:d.i])
	if tok == "" {
		return cty.NilVal, d.errf("want a number")
	}
	if i, err := strconv.ParseInt(tok, 10, 64); err == nil {
		return cty.NumberIntVal(i), nil
	}
	v, err := cty.ParseNumberVal(tok)
	if err != nil {
		return cty.NilVal, d.errf("bad number %q", tok)
	}
	return v, nil
}

// skip passes over one JSON value.
func (d *jdec) skip() error {
	d.space()
	start := d.i
	depth := 0
	for d.i < len(d.b) {
		switch c := d.b[d.i]; c {
		case '"':
			if _, err := d.str(); err != nil {
				return err
			}
			if depth == 0 {
				return nil
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
			if depth == 0 {
				d.i++
				return nil
			}
		case ',', ' ', '\t', '\n', '\r', ':':
			if depth == 0 && d.i > start {
				return nil
			}
		}
		d.i++
	}
	if depth != 0 {
		return d.errf("unterminated value")
	}
	return nil
}
