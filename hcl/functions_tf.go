package hcl

import (
	"bytes"
	"compress/gzip"
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"hash"
	"math/big"
	"os"
	"path/filepath"
	"strings"
	"time"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	"github.com/mitchellh/go-homedir"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
	"github.com/zclconf/go-cty/cty/function"
)

// terraformFuncs are Terraform functions that neither cty's standard
// library nor go-cty-funcs provide; each is as small as its definition in
// Terraform's documentation.
var terraformFuncs = map[string]function.Function{
	"alltrue":      boolFold(true),
	"anytrue":      boolFold(false),
	"sum":          sumFunc,
	"one":          oneFunc,
	"startswith":   stringTest(strings.HasPrefix),
	"endswith":     stringTest(strings.HasSuffix),
	"strcontains":  stringTest(strings.Contains),
	"base64gzip":   base64GzipFunc,
	"base64sha256": stringDigest(sha256.New, base64.StdEncoding.EncodeToString),
	"base64sha512": stringDigest(sha512.New, base64.StdEncoding.EncodeToString),
	"timestamp":    timestampFunc,
	"lookup":       lookupFunc,
}

// fileHashes are Terraform's filemd5, filesha256, filebase64sha256, ...
var fileHashes = map[string]struct {
	hash func() hash.Hash
	enc  func([]byte) string
}{
	"filemd5":          {md5.New, hex.EncodeToString},
	"filesha1":         {sha1.New, hex.EncodeToString},
	"filesha256":       {sha256.New, hex.EncodeToString},
	"filesha512":       {sha512.New, hex.EncodeToString},
	"filebase64sha256": {sha256.New, base64.StdEncoding.EncodeToString},
	"filebase64sha512": {sha512.New, base64.StdEncoding.EncodeToString},
}

func boolFold(all bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "list", Type: cty.List(cty.Bool)}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			for it := args[0].ElementIterator(); it.Next(); {
				_, v := it.Element()
				if !v.IsKnown() {
					return cty.UnknownVal(cty.Bool), nil
				}
				if b := !v.IsNull() && v.True(); b != all {
					return cty.BoolVal(!all), nil
				}
			}
			return cty.BoolVal(all), nil
		},
	})
}

var sumFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v := args[0]
		if !v.CanIterateElements() || v.LengthInt() == 0 {
			return cty.NilVal, fmt.Errorf("sum wants a non-empty list or set of numbers")
		}
		total := new(big.Float)
		for it := v.ElementIterator(); it.Next(); {
			_, e := it.Element()
			n, err := convert.Convert(e, cty.Number)
			if err != nil || n.IsNull() {
				return cty.NilVal, fmt.Errorf("sum wants numbers: %v", err)
			}
			total.Add(total, n.AsBigFloat())
		}
		return cty.NumberVal(total), nil
	},
})

var oneFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "list", Type: cty.DynamicPseudoType}},
	Type: func(args []cty.Value) (cty.Type, error) {
		t := args[0].Type()
		switch {
		case t.IsListType() || t.IsSetType():
			return t.ElementType(), nil
		case t.IsTupleType() && len(t.TupleElementTypes()) <= 1:
			if len(t.TupleElementTypes()) == 0 {
				return cty.DynamicPseudoType, nil
			}
			return t.TupleElementTypes()[0], nil
		}
		return cty.NilType, fmt.Errorf("one wants a list, set or tuple of at most one element")
	},
	Impl: func(args []cty.Value, ret cty.Type) (cty.Value, error) {
		v := args[0]
		switch n := v.LengthInt(); n {
		case 0:
			return cty.NullVal(ret), nil
		case 1:
			it := v.ElementIterator()
			it.Next()
			_, e := it.Element()
			return e, nil
		default:
			return cty.NilVal, fmt.Errorf("one wants at most one element, this has %d", n)
		}
	},
})

func stringTest(test func(s, part string) bool) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}, {Name: "part", Type: cty.String}},
		Type:   function.StaticReturnType(cty.Bool),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			return cty.BoolVal(test(args[0].AsString(), args[1].AsString())), nil
		},
	})
}

func stringDigest(h func() hash.Hash, enc func([]byte) string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "str", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			d := h()
			d.Write([]byte(args[0].AsString()))
			return cty.StringVal(enc(d.Sum(nil))), nil
		},
	})
}

var base64GzipFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "str", Type: cty.String}},
	Type:   function.StaticReturnType(cty.String),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		var buf bytes.Buffer
		w := gzip.NewWriter(&buf)
		if _, err := w.Write([]byte(args[0].AsString())); err != nil {
			return cty.NilVal, err
		}
		if err := w.Close(); err != nil {
			return cty.NilVal, err
		}
		return cty.StringVal(base64.StdEncoding.EncodeToString(buf.Bytes())), nil
	},
})

// timestampFunc is the time of evaluation. A resource that uses it
// changes at every plan, as in Terraform.
var timestampFunc = function.New(&function.Spec{
	Type: function.StaticReturnType(cty.String),
	Impl: func([]cty.Value, cty.Type) (cty.Value, error) {
		return cty.StringVal(time.Now().UTC().Format(time.RFC3339)), nil
	},
})

// readRelative reads a file the way Terraform's file functions do: ~
// expanded, relative to baseDir.
func readRelative(baseDir, path string) ([]byte, error) {
	p, err := homedir.Expand(path)
	if err != nil {
		return nil, fmt.Errorf("expand %s: %w", path, err)
	}
	if !filepath.IsAbs(p) {
		p = filepath.Join(baseDir, p)
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return b, nil
}

func makeFileHashFunc(baseDir string, h func() hash.Hash, enc func([]byte) string) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			b, err := readRelative(baseDir, args[0].AsString())
			if err != nil {
				return cty.NilVal, err
			}
			d := h()
			d.Write(b)
			return cty.StringVal(enc(d.Sum(nil))), nil
		},
	})
}

// makeTemplateFileFunc is Terraform's templatefile(path, vars): the file is
// an HCL template evaluated with vars and funcs (which must not hold
// templatefile: a template cannot include templates).
func makeTemplateFileFunc(baseDir string, funcs map[string]function.Function) function.Function {
	return function.New(&function.Spec{
		Params: []function.Parameter{{Name: "path", Type: cty.String}, {Name: "vars", Type: cty.DynamicPseudoType}},
		Type:   function.StaticReturnType(cty.String),
		Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
			path, vars := args[0].AsString(), args[1]
			if !vars.Type().IsObjectType() && !vars.Type().IsMapType() {
				return cty.NilVal, fmt.Errorf("templatefile: vars must be a map or object, not %s", vars.Type().FriendlyName())
			}
			if !vars.IsWhollyKnown() {
				return cty.UnknownVal(cty.String), nil
			}
			src, err := readRelative(baseDir, path)
			if err != nil {
				return cty.NilVal, err
			}
			expr, diags := hclsyntax.ParseTemplate(src, path, hcl2.InitialPos)
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %s", path, diags.Error())
			}
			names := map[string]cty.Value{}
			if !vars.IsNull() {
				names = vars.AsValueMap()
			}
			for _, t := range expr.Variables() {
				if _, ok := names[t.RootName()]; !ok {
					return cty.NilVal, fmt.Errorf("templatefile %s: the template refers to %q, which vars does not hold", path, t.RootName())
				}
			}
			v, diags := expr.Value(&hcl2.EvalContext{Variables: names, Functions: funcs})
			if diags.HasErrors() {
				return cty.NilVal, fmt.Errorf("templatefile %s: %s", path, diags.Error())
			}
			return convert.Convert(v, cty.String)
		},
	})
}

// lookupFunc is Terraform's lookup(map, key, default): unlike cty's, the
// default may be null (real configurations write lookup(m, k, null)).
var lookupFunc = function.New(&function.Spec{
	Params: []function.Parameter{
		{Name: "inputMap", Type: cty.DynamicPseudoType, AllowMarked: true},
		{Name: "key", Type: cty.String, AllowMarked: true},
	},
	VarParam: &function.Parameter{Name: "default", Type: cty.DynamicPseudoType, AllowNull: true, AllowUnknown: true, AllowDynamicType: true, AllowMarked: true},
	Type: func(args []cty.Value) (cty.Type, error) {
		if len(args) > 3 {
			return cty.NilType, fmt.Errorf("lookup takes at most three arguments")
		}
		m := args[0].Type()
		switch {
		case m.IsMapType():
			return m.ElementType(), nil
		case m.IsObjectType():
			key := args[1]
			if key.IsKnown() && !key.IsNull() {
				k, _ := key.Unmark()
				if m.HasAttribute(k.AsString()) {
					return m.AttributeType(k.AsString()), nil
				}
			}
			if len(args) == 3 && !args[2].IsNull() {
				return args[2].Type(), nil
			}
			return cty.DynamicPseudoType, nil
		case m == cty.DynamicPseudoType:
			return cty.DynamicPseudoType, nil
		}
		return cty.NilType, fmt.Errorf("lookup wants a map or an object, not %s", m.FriendlyName())
	},
	Impl: func(args []cty.Value, ret cty.Type) (cty.Value, error) {
		m, mmarks := args[0].Unmark()
		key, kmarks := args[1].Unmark()
		if !m.IsKnown() || !key.IsKnown() {
			return cty.UnknownVal(ret), nil
		}
		k := key.AsString()
		if !m.IsNull() {
			if m.Type().IsObjectType() && m.Type().HasAttribute(k) {
				return m.GetAttr(k).WithMarks(mmarks, kmarks), nil
			}
			if m.Type().IsMapType() {
				if v := m.Index(key); m.HasIndex(key).True() {
					return v.WithMarks(mmarks, kmarks), nil
				}
			}
		}
		if len(args) == 3 {
			d, err := convert.Convert(args[2], ret)
			if err != nil {
				return cty.NilVal, fmt.Errorf("lookup default: %w", err)
			}
			return d, nil
		}
		return cty.NilVal, fmt.Errorf("lookup: the map has no key %q, and no default was given", k)
	},
})
