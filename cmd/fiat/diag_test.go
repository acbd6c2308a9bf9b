package main

import (
	"bytes"
	"fmt"
	"strings"
	"testing"

	"fiat/hcl"

	hcl2 "github.com/hashicorp/hcl/v2"
)

func diagsOf(t testing.TB, src string) *hcl.DiagError {
	t.Helper()
	_, diags := hcl.LoadFiles("", map[string][]byte{"main.hcl": []byte(src)}, hcl.Options{Env: []string{}})
	if !diags.HasErrors() {
		t.Fatal("the config loaded without errors")
	}
	return hcl.NewDiagError(diags, map[string][]byte{"main.hcl": []byte(src)})
}

// cycles is a config of n two-resource dependency cycles.
func cycles(n int) string {
	var b strings.Builder
	for i := 0; i < n; i++ {
		fmt.Fprintf(&b, "resource \"fiat_data\" \"a%d\" {\n  input = fiat_data.b%d.output\n}\n", i, i)
		fmt.Fprintf(&b, "resource \"fiat_data\" \"b%d\" {\n  input = fiat_data.a%d.output\n}\n", i, i)
	}
	return b.String()
}

// fiat's writer prints what HCL's writer prints, for diagnostics that are
// not repeated.
func TestDiagnosticsMatchHCLWriter(t *testing.T) {
	for _, src := range []string{
		cycles(3),
		"variable \"v\" {\n  type = number\n  default = \"x\"\n}\nresource \"fiat_data\" \"a\" {\n  input = var.nope\n}\nunknown {}\n",
		"resource \"fiat_data\" \"a\" {\n  input = upper(1, 2)\n}\nlocals {\n  x = local.y\n  y = local.x\n}\n",
	} {
		de := diagsOf(t, src)
		var ours, theirs bytes.Buffer
		writeDiagnostics(&ours, de.Diags, de.Files)
		if err := hcl2.NewDiagnosticTextWriter(&theirs, de.Files, 100, false).WriteDiagnostics(de.Diags); err != nil {
			t.Fatal(err)
		}
		if ours.String() != theirs.String() {
			t.Fatalf("ours:\n%s\nHCL's:\n%s", ours.String(), theirs.String())
		}
	}
}

func TestRepeatedDiagnosticPrintedOnce(t *testing.T) {
	d := &hcl2.Diagnostic{Severity: hcl2.DiagError, Summary: "Invalid value", Detail: "Bad.",
		Subject: &hcl2.Range{Filename: "main.hcl", Start: hcl2.Pos{Line: 1, Column: 1}, End: hcl2.Pos{Line: 1, Column: 5, Byte: 4}}}
	other := *d
	other.Summary = "Another"
	diags := hcl2.Diagnostics{d, d, &other, d}
	var out bytes.Buffer
	writeDiagnostics(&out, diags, map[string]*hcl2.File{"main.hcl": {Bytes: []byte("abcd\n")}})
	if n := strings.Count(out.String(), "Error: Invalid value"); n != 1 || !strings.Contains(out.String(), "found 3 times") || !strings.Contains(out.String(), "Error: Another") {
		t.Fatalf("want the repeated error once with its count, and the other:\n%s", out.String())
	}
}

// Rendering cost grows linearly: compare 1,000 and 2,000 cycles.
func BenchmarkDiagnostics(b *testing.B) {
	for _, n := range []int{1000, 2000} {
		de := diagsOf(b, cycles(n))
		b.Run(fmt.Sprintf("cycles-%d", n), func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				var out bytes.Buffer
				writeDiagnostics(&out, de.Diags, de.Files)
			}
		})
	}
}
