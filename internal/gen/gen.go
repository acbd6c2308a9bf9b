// Package gen generates configurations of N fiat_data resources in three
// shapes, and the store contents that match them, for benchmarks.
package gen

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"fiat/state"
	"fiat/value"

	"github.com/zclconf/go-cty/cty"
)

// Shape is how the resources depend on each other.
type Shape string

const (
	Independent Shape = "independent" // no dependencies
	FanOut      Shape = "fanout"      // one root; the other N-1 depend on it
	Chain       Shape = "chain"       // each depends on the previous one
)

// Shapes lists every shape.
var Shapes = []Shape{Independent, FanOut, Chain}

// Config is the HCL of n resources of the shape.
func Config(shape Shape, n int) []byte {
	var b bytes.Buffer
	b.Grow(n * 80)
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "resource \"fiat_data\" \"r%d\" {\n  input = %s\n}\n", i, input(shape, i))
	}
	return b.Bytes()
}

func input(shape Shape, i int) string {
	switch {
	case shape == FanOut && i > 0:
		return "fiat_data.r0.output"
	case shape == Chain && i > 0:
		return fmt.Sprintf("fiat_data.r%d.output", i-1)
	}
	return fmt.Sprintf("%q", fmt.Sprintf("v%d", i))
}

// Write puts the configuration in dir/main.hcl.
func Write(dir string, shape Shape, n int) error {
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), Config(shape, n), 0o644); err != nil {
		return fmt.Errorf("write config: %w", err)
	}
	return nil
}

// Entities are what the store holds once the configuration is applied: a
// plan of Config against them has no changes.
func Entities(stack string, shape Shape, n int) ([]state.Entity, error) {
	out := make([]state.Entity, n)
	for i := 0; i < n; i++ {
		in := fmt.Sprintf("v%d", i)
		var deps []string
		switch {
		case shape == FanOut && i > 0:
			in, deps = "v0", []string{stack + "/fiat_data.r0"}
		case shape == Chain && i > 0:
			in, deps = "v0", []string{fmt.Sprintf("%s/fiat_data.r%d", stack, i-1)}
		}
		id := fmt.Sprintf("%032x", i)
		v := cty.ObjectVal(map[string]cty.Value{
			"input": cty.StringVal(in), "output": cty.StringVal(in),
			"triggers_replace": cty.NullVal(cty.DynamicPseudoType), "id": cty.StringVal(id),
		})
		attrs, err := value.Encode(v)
		if err != nil {
			return nil, err
		}
		name := fmt.Sprintf("r%d", i)
		out[i] = state.Entity{
			Address: stack + "/fiat_data." + name, Stack: stack, Type: "fiat_data", Name: name, Provider: "fiat",
			ID: id, Attributes: attrs, Dependencies: deps, Revision: 1, Status: state.StatusOK, Source: fmt.Sprintf("main.hcl:%d", 3*i+1),
		}
	}
	return out, nil
}
