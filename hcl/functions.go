package hcl

import (
	"bytes"
	"fmt"
	"sort"

	"github.com/hashicorp/go-cty-funcs/cidr"
	"github.com/hashicorp/go-cty-funcs/crypto"
	"github.com/hashicorp/go-cty-funcs/encoding"
	"github.com/hashicorp/go-cty-funcs/filesystem"
	"github.com/hashicorp/go-cty-funcs/uuid"
	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/tryfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	yaml "github.com/zclconf/go-cty-yaml"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/function"
	"github.com/zclconf/go-cty/cty/function/stdlib"
)

// staticFunctions are the functions that touch no file: cty's standard
// library and hashicorp/go-cty-funcs under the names operators know from
// Terraform, plus the few neither library has (terraformFuncs).
var staticFunctions = map[string]function.Function{
	"abspath":         filesystem.AbsPathFunc,
	"basename":        filesystem.BasenameFunc,
	"dirname":         filesystem.DirnameFunc,
	"pathexpand":      filesystem.PathExpandFunc,
	"base64decode":    encoding.Base64DecodeFunc,
	"base64encode":    encoding.Base64EncodeFunc,
	"urlencode":       encoding.URLEncodeFunc,
	"md5":             crypto.Md5Func,
	"sha1":            crypto.Sha1Func,
	"sha256":          crypto.Sha256Func,
	"sha512":          crypto.Sha512Func,
	"bcrypt":          crypto.BcryptFunc,
	"rsadecrypt":      crypto.RsaDecryptFunc,
	"uuid":            uuid.V4Func,
	"uuidv5":          uuid.V5Func,
	"cidrhost":        cidr.HostFunc,
	"cidrnetmask":     cidr.NetmaskFunc,
	"cidrsubnet":      cidr.SubnetFunc,
	"cidrsubnets":     cidr.SubnetsFunc,
	"yamldecode":      yaml.YAMLDecodeFunc,
	"yamlencode":      yaml.YAMLEncodeFunc,
	"abs":             stdlib.AbsoluteFunc,
	"can":             tryfunc.CanFunc,
	"ceil":            stdlib.CeilFunc,
	"chomp":           stdlib.ChompFunc,
	"chunklist":       stdlib.ChunklistFunc,
	"coalesce":        stdlib.CoalesceFunc,
	"coalescelist":    stdlib.CoalesceListFunc,
	"compact":         stdlib.CompactFunc,
	"concat":          stdlib.ConcatFunc,
	"contains":        stdlib.ContainsFunc,
	"csvdecode":       stdlib.CSVDecodeFunc,
	"distinct":        stdlib.DistinctFunc,
	"element":         stdlib.ElementFunc,
	"flatten":         stdlib.FlattenFunc,
	"floor":           stdlib.FloorFunc,
	"format":          stdlib.FormatFunc,
	"formatdate":      stdlib.FormatDateFunc,
	"formatlist":      stdlib.FormatListFunc,
	"indent":          stdlib.IndentFunc,
	"index":           stdlib.IndexFunc,
	"join":            stdlib.JoinFunc,
	"jsondecode":      stdlib.JSONDecodeFunc,
	"jsonencode":      stdlib.JSONEncodeFunc,
	"keys":            stdlib.KeysFunc,
	"length":          lengthFunc,
	"log":             stdlib.LogFunc,
	"lower":           stdlib.LowerFunc,
	"max":             stdlib.MaxFunc,
	"merge":           stdlib.MergeFunc,
	"min":             stdlib.MinFunc,
	"parseint":        stdlib.ParseIntFunc,
	"pow":             stdlib.PowFunc,
	"range":           stdlib.RangeFunc,
	"regex":           stdlib.RegexFunc,
	"regexall":        stdlib.RegexAllFunc,
	"replace":         stdlib.ReplaceFunc,
	"reverse":         stdlib.ReverseListFunc,
	"setintersection": stdlib.SetIntersectionFunc,
	"setproduct":      stdlib.SetProductFunc,
	"setsubtract":     stdlib.SetSubtractFunc,
	"setunion":        stdlib.SetUnionFunc,
	"signum":          stdlib.SignumFunc,
	"slice":           stdlib.SliceFunc,
	"sort":            stdlib.SortFunc,
	"split":           stdlib.SplitFunc,
	"strrev":          stdlib.ReverseFunc,
	"substr":          stdlib.SubstrFunc,
	"timeadd":         stdlib.TimeAddFunc,
	"title":           stdlib.TitleFunc,
	"trim":            stdlib.TrimFunc,
	"trimprefix":      stdlib.TrimPrefixFunc,
	"trimspace":       stdlib.TrimSpaceFunc,
	"trimsuffix":      stdlib.TrimSuffixFunc,
	"try":             tryfunc.TryFunc,
	"upper":           stdlib.UpperFunc,
	"values":          stdlib.ValuesFunc,
	"zipmap":          stdlib.ZipmapFunc,
	"tostring":        stdlib.MakeToFunc(cty.String),
	"tonumber":        stdlib.MakeToFunc(cty.Number),
	"tobool":          stdlib.MakeToFunc(cty.Bool),
	"toset":           stdlib.MakeToFunc(cty.Set(cty.DynamicPseudoType)),
	"tolist":          stdlib.MakeToFunc(cty.List(cty.DynamicPseudoType)),
	"tomap":           stdlib.MakeToFunc(cty.Map(cty.DynamicPseudoType)),
	"sensitive":       sensitiveFunc,
	"nonsensitive":    nonsensitiveFunc,
}

func init() {
	for name, f := range terraformFuncs {
		staticFunctions[name] = f
	}
}

// functionsFor is the whole function table of a configuration whose root
// module is in baseDir: file functions read relative to it, as Terraform
// reads relative to the root module it runs in.
func functionsFor(baseDir string) map[string]function.Function {
	fs := make(map[string]function.Function, len(staticFunctions)+12)
	for name, f := range staticFunctions {
		fs[name] = f
	}
	fs["file"] = filesystem.MakeFileFunc(baseDir, false)
	fs["filebase64"] = filesystem.MakeFileFunc(baseDir, true)
	fs["fileexists"] = filesystem.MakeFileExistsFunc(baseDir)
	fs["fileset"] = filesystem.MakeFileSetFunc(baseDir)
	for name, h := range fileHashes {
		fs[name] = makeFileHashFunc(baseDir, h.hash, h.enc)
	}
	// A template may call every function but templatefile itself.
	inner := make(map[string]function.Function, len(fs))
	for name, f := range fs {
		inner[name] = f
	}
	fs["templatefile"] = makeTemplateFileFunc(baseDir, inner)
	return fs
}

// sensitiveFunc marks a value sensitive: it is shown as (sensitive).
var sensitiveFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		return args[0].Mark(Sensitive), nil
	},
})

// nonsensitiveFunc removes the sensitive mark: the operator says the value
// may be shown.
var nonsensitiveFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowUnknown: true, AllowNull: true, AllowMarked: true, AllowDynamicType: true}},
	Type:   func(args []cty.Value) (cty.Type, error) { return args[0].Type(), nil },
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, _ := args[0].Unmark()
		return v, nil
	},
})

// lengthFunc is the length of a collection, or of a string in characters
// (as operators know it from other HCL tools).
var lengthFunc = function.New(&function.Spec{
	Params: []function.Parameter{{Name: "value", Type: cty.DynamicPseudoType, AllowDynamicType: true, AllowUnknown: true, AllowMarked: true}},
	Type:   function.StaticReturnType(cty.Number),
	Impl: func(args []cty.Value, _ cty.Type) (cty.Value, error) {
		v, marks := args[0].Unmark()
		if v.Type() == cty.String {
			n, err := stdlib.Strlen(v)
			return n.WithMarks(marks), err
		}
		n, err := stdlib.Length(v)
		return n.WithMarks(marks), err
	},
})

// checkFunctions reports every call of a function fiat does not have,
// also where nothing evaluates it (an unreferenced local), with the
// closest name it has. src is the file the bodies were parsed from: an
// expression with no "(" in its source calls nothing and is not walked
// (most are plain values; walking every one would cost every plan).
func (l *loader) checkFunctions(bodies []hcl2.Body, src []byte) hcl2.Diagnostics {
	var diags hcl2.Diagnostics
	visit := func(n hclsyntax.Node) hcl2.Diagnostics {
		call, ok := n.(*hclsyntax.FunctionCallExpr)
		if !ok {
			return nil
		}
		if _, known := l.cfg.funcs[call.Name]; !known {
			rng := call.NameRange
			diags = append(diags, errorDiag("Call to unknown function",
				fmt.Sprintf("There is no function named %q.%s", call.Name, DidYouMean(call.Name, keys(l.cfg.funcs))), &rng)...)
		}
		return nil
	}
	mayCall := func(a *hclsyntax.Attribute) bool {
		r := a.Expr.Range()
		return r.Start.Byte < 0 || r.End.Byte > len(src) || r.Start.Byte > r.End.Byte ||
			bytes.IndexByte(src[r.Start.Byte:r.End.Byte], '(') >= 0
	}
	var walk func(b *hclsyntax.Body, skip string)
	walk = func(b *hclsyntax.Body, skip string) {
		for name, a := range b.Attributes {
			if name != skip && mayCall(a) {
				hclsyntax.VisitAll(a, visit)
			}
		}
		for _, blk := range b.Blocks {
			// A variable's type constraint (list(string)) only looks
			// like calls.
			inner := ""
			if blk.Type == "variable" {
				inner = "type"
			}
			walk(blk.Body, inner)
		}
	}
	for _, b := range bodies {
		if sb, ok := b.(*hclsyntax.Body); ok {
			walk(sb, "")
		}
	}
	sort.SliceStable(diags, func(i, j int) bool { return diags[i].Subject.Start.Byte < diags[j].Subject.Start.Byte })
	return diags
}
