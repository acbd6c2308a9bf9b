package utility

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"math/big"

	"fiat/providers"

	"github.com/google/uuid"
	"github.com/zclconf/go-cty/cty"
)

var keepers = providers.Attribute{Type: cty.Map(cty.String), Optional: true, ForceNew: true,
	Description: "Arbitrary values; a change makes a new random value."}

var randomResources = map[string]resource{
	"random_id": {schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
		"byte_length": {Type: cty.Number, Required: true, ForceNew: true},
		"prefix":      {Type: cty.String, Optional: true, ForceNew: true},
		"keepers":     keepers,
		"id":          {Type: cty.String, Computed: true},
		"b64_url":     {Type: cty.String, Computed: true},
		"b64_std":     {Type: cty.String, Computed: true},
		"hex":         {Type: cty.String, Computed: true},
		"dec":         {Type: cty.String, Computed: true},
	}}, make: makeRandomID},
	"random_string":   {schema: stringSchema(false), make: makeRandomString(false)},
	"random_password": {schema: stringSchema(true), make: makeRandomString(true)},
	"random_uuid": {schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
		"keepers": keepers,
		"id":      {Type: cty.String, Computed: true},
		"result":  {Type: cty.String, Computed: true},
	}}, make: func(_ context.Context, c cty.Value) (cty.Value, error) {
		u := uuid.NewString()
		return withComputed(c, map[string]cty.Value{"id": cty.StringVal(u), "result": cty.StringVal(u)}), nil
	}},
	"random_integer": {schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
		"min":     {Type: cty.Number, Required: true, ForceNew: true},
		"max":     {Type: cty.Number, Required: true, ForceNew: true},
		"keepers": keepers,
		"id":      {Type: cty.String, Computed: true},
		"result":  {Type: cty.Number, Computed: true},
	}}, make: makeRandomInteger},
}

func intAttr(v cty.Value, name string, def int64) (int64, error) {
	a := v.GetAttr(name)
	if a.IsNull() {
		return def, nil
	}
	bf := a.AsBigFloat()
	n, acc := bf.Int64()
	if acc != big.Exact {
		return 0, fmt.Errorf("%s must be a whole number", name)
	}
	return n, nil
}

func boolAttr(v cty.Value, name string, def bool) bool {
	if !v.Type().HasAttribute(name) || v.GetAttr(name).IsNull() {
		return def
	}
	return v.GetAttr(name).True()
}

func makeRandomID(_ context.Context, c cty.Value) (cty.Value, error) {
	n, err := intAttr(c, "byte_length", 0)
	if err != nil || n < 1 || n > 1024 {
		return cty.NilVal, fmt.Errorf("byte_length must be from 1 to 1024")
	}
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		return cty.NilVal, err
	}
	prefix := ""
	if p := c.GetAttr("prefix"); !p.IsNull() {
		prefix = p.AsString()
	}
	url := base64.RawURLEncoding.EncodeToString(b)
	return withComputed(c, map[string]cty.Value{
		"id":      cty.StringVal(url),
		"b64_url": cty.StringVal(prefix + url),
		"b64_std": cty.StringVal(prefix + base64.StdEncoding.EncodeToString(b)),
		"hex":     cty.StringVal(prefix + hex.EncodeToString(b)),
		"dec":     cty.StringVal(prefix + new(big.Int).SetBytes(b).String()),
	}), nil
}

func stringSchema(sensitive bool) providers.ResourceSchema {
	num := func() providers.Attribute {
		return providers.Attribute{Type: cty.Number, Optional: true, ForceNew: true, Default: cty.NumberIntVal(0)}
	}
	flag := func() providers.Attribute {
		return providers.Attribute{Type: cty.Bool, Optional: true, ForceNew: true, Default: cty.True}
	}
	return providers.ResourceSchema{Attributes: map[string]providers.Attribute{
		"length":           {Type: cty.Number, Required: true, ForceNew: true},
		"special":          flag(),
		"upper":            flag(),
		"lower":            flag(),
		"numeric":          flag(),
		"number":           {Type: cty.Bool, Optional: true, ForceNew: true, Description: "older spelling of numeric"},
		"min_upper":        num(),
		"min_lower":        num(),
		"min_numeric":      num(),
		"min_special":      num(),
		"override_special": {Type: cty.String, Optional: true, ForceNew: true},
		"keepers":          keepers,
		"id":               {Type: cty.String, Computed: true},
		"result":           {Type: cty.String, Computed: true, Sensitive: sensitive},
	}}
}

// makeRandomString draws each character from the allowed classes, the
// minimum of each class first, then shuffles (as the random provider does).
func makeRandomString(password bool) func(context.Context, cty.Value) (cty.Value, error) {
	return func(_ context.Context, c cty.Value) (cty.Value, error) {
		length, err := intAttr(c, "length", 0)
		if err != nil || length < 1 || length > 4096 {
			return cty.NilVal, fmt.Errorf("length must be from 1 to 4096")
		}
		special := "!@#$%&*()-_=+[]{}<>:?"
		if o := c.GetAttr("override_special"); !o.IsNull() {
			special = o.AsString()
		}
		numeric := boolAttr(c, "numeric", true) && boolAttr(c, "number", true)
		classes := []struct {
			on    bool
			chars string
			min   string
		}{
			{boolAttr(c, "upper", true), "ABCDEFGHIJKLMNOPQRSTUVWXYZ", "min_upper"},
			{boolAttr(c, "lower", true), "abcdefghijklmnopqrstuvwxyz", "min_lower"},
			{numeric, "0123456789", "min_numeric"},
			{boolAttr(c, "special", true) && special != "", special, "min_special"},
		}
		var all string
		var out []byte
		for _, cl := range classes {
			if !cl.on {
				continue
			}
			all += cl.chars
			m, err := intAttr(c, cl.min, 0)
			if err != nil {
				return cty.NilVal, err
			}
			for i := int64(0); i < m; i++ {
				out = append(out, pick(cl.chars))
			}
		}
		if all == "" {
			return cty.NilVal, fmt.Errorf("every character class is turned off")
		}
		if int64(len(out)) > length {
			return cty.NilVal, fmt.Errorf("the min_* values add up to more than length")
		}
		for int64(len(out)) < length {
			out = append(out, pick(all))
		}
		for i := len(out) - 1; i > 0; i-- { // Fisher–Yates
			j := randInt(int64(i + 1))
			out[i], out[j] = out[j], out[i]
		}
		id := cty.StringVal(string(out))
		if password {
			id = cty.StringVal("none")
		}
		return withComputed(c, map[string]cty.Value{"id": id, "result": cty.StringVal(string(out))}), nil
	}
}

func makeRandomInteger(_ context.Context, c cty.Value) (cty.Value, error) {
	lo, err := intAttr(c, "min", 0)
	if err != nil {
		return cty.NilVal, err
	}
	hi, err := intAttr(c, "max", 0)
	if err != nil {
		return cty.NilVal, err
	}
	if hi < lo {
		return cty.NilVal, fmt.Errorf("max (%d) is less than min (%d)", hi, lo)
	}
	n := lo + int64(randInt(hi-lo+1))
	return withComputed(c, map[string]cty.Value{"id": cty.StringVal(fmt.Sprint(n)), "result": cty.NumberIntVal(n)}), nil
}

func randInt(n int64) int {
	v, err := rand.Int(rand.Reader, big.NewInt(n))
	if err != nil {
		panic(err) // the system's random source failed: nothing sensible can follow
	}
	return int(v.Int64())
}

func pick(chars string) byte { return chars[randInt(int64(len(chars)))] }
