package value

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

func TestRoundTrip(t *testing.T) {
	vals := []cty.Value{
		cty.ObjectVal(map[string]cty.Value{
			"s": cty.StringVal("a\"b\\c\u00e9\n"), "n": cty.NumberFloatVal(1.5), "i": cty.NumberIntVal(-42), "big": cty.MustParseNumberVal("123456789012345678901234567890"),
			"b": cty.True, "null": cty.NullVal(cty.String), "dyn": cty.NullVal(cty.DynamicPseudoType),
			"l": cty.ListVal([]cty.Value{cty.StringVal("x")}), "le": cty.ListValEmpty(cty.Number),
			"set": cty.SetVal([]cty.Value{cty.StringVal("x"), cty.StringVal("y")}), "m": cty.MapVal(map[string]cty.Value{"k": cty.True}),
			"t": cty.TupleVal([]cty.Value{cty.StringVal("x"), cty.NumberIntVal(1)}), "et": cty.EmptyTupleVal, "eo": cty.EmptyObjectVal,
			"o": cty.ObjectVal(map[string]cty.Value{"nested": cty.ListVal([]cty.Value{cty.MapValEmpty(cty.String)})}),
		}),
		cty.StringVal("plain"),
	}
	for _, v := range vals {
		b, err := Encode(v)
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(b)
		if err != nil {
			t.Fatalf("%s: %v", b, err)
		}
		if !got.Equals(v).True() || !got.Type().Equals(v.Type()) {
			t.Fatalf("round trip of %s:\n%#v\nwant\n%#v", b, got, v)
		}
		var indented bytes.Buffer
		json.Indent(&indented, b, "", "  ")
		if got, err := Decode(indented.Bytes()); err != nil || !got.Equals(v).True() {
			t.Fatalf("indented: %v", err)
		}
	}
	// The older untyped encoding still reads.
	if v, err := Decode([]byte(`{"name":"a","size":2}`)); err != nil || v.GetAttr("name").AsString() != "a" {
		t.Fatalf("%#v %v", v, err)
	}
}
