package main

import (
	"bytes"
	"fmt"
	"io"
	"sort"
	"strings"

	"fiat/hcl"
	"fiat/planner"

	hcl2 "github.com/hashicorp/hcl/v2"
	"github.com/mitchellh/go-wordwrap"
)

// diagWriter prints diagnostics the way HCL's text writer does (severity
// and summary, "on FILE line N:", the source lines, the values involved,
// the detail), with two differences that matter on large configurations:
// each file's lines are indexed once, so a thousand diagnostics print in
// time linear in the output (HCL's writer rescans the whole file for each),
// and a diagnostic repeated word for word (the same error of every
// instance of a counted resource) is printed once, with its count.
type diagWriter struct {
	w     io.Writer
	files map[string]*hcl2.File
	width uint
	lines map[string][]int // file name → byte offset of each line's start
}

func writeDiagnostics(w io.Writer, diags hcl2.Diagnostics, files map[string]*hcl2.File) {
	dw := &diagWriter{w: w, files: files, width: 100, lines: map[string][]int{}}
	type group struct {
		d *hcl2.Diagnostic
		n int
	}
	var order []*group
	seen := map[string]*group{}
	for _, d := range diags {
		if d == nil {
			continue
		}
		k := diagKey(d)
		if g, ok := seen[k]; ok {
			g.n++
			continue
		}
		g := &group{d: d, n: 1}
		seen[k] = g
		order = append(order, g)
	}
	for _, g := range order {
		dw.write(g.d, g.n)
	}
}

func diagKey(d *hcl2.Diagnostic) string {
	subj := ""
	if d.Subject != nil {
		subj = d.Subject.String()
	}
	return fmt.Sprintf("%d\x00%s\x00%s\x00%s", d.Severity, d.Summary, d.Detail, subj)
}

func (dw *diagWriter) write(d *hcl2.Diagnostic, copies int) {
	sev := "Error"
	if d.Severity == hcl2.DiagWarning {
		sev = "Warning"
	}
	fmt.Fprintf(dw.w, "%s: %s\n\n", sev, d.Summary)
	if d.Subject != nil {
		snip := *d.Subject
		if d.Context != nil {
			snip = hcl2.RangeOver(snip, *d.Context)
		}
		src, starts := dw.index(d.Subject.Filename)
		if src == nil {
			fmt.Fprintf(dw.w, "  on %s line %d:\n  (source code not available)\n\n", d.Subject.Filename, d.Subject.Start.Line)
		} else {
			fmt.Fprintf(dw.w, "  on %s line %d:\n", d.Subject.Filename, d.Subject.Start.Line)
			last := snip.End.Line
			if last > snip.Start.Line && snip.End.Column == 1 {
				last-- // the range ends where that line starts
			}
			for ln := max(snip.Start.Line, 1); ln <= last && ln <= len(starts); ln++ {
				end := len(src)
				if ln < len(starts) {
					end = starts[ln]
				}
				line := bytes.TrimRight(src[starts[ln-1]:end], "\r\n")
				fmt.Fprintf(dw.w, "%4d: %s\n", ln, line)
			}
			fmt.Fprintln(dw.w)
		}
		dw.values(d)
	}
	if d.Detail != "" {
		fmt.Fprintf(dw.w, "%s\n\n", wordwrap.WrapString(d.Detail, dw.width))
	}
	if copies > 1 {
		fmt.Fprintf(dw.w, "(The same error was found %d times: once for each instance.)\n\n", copies)
	}
}

// index returns a file's bytes and the offset of each line's start,
// computed once per file.
func (dw *diagWriter) index(name string) ([]byte, []int) {
	f := dw.files[name]
	if f == nil || f.Bytes == nil {
		return nil, nil
	}
	starts, ok := dw.lines[name]
	if !ok {
		starts = []int{0}
		for i, b := range f.Bytes {
			if b == '\n' && i+1 < len(f.Bytes) {
				starts = append(starts, i+1)
			}
		}
		dw.lines[name] = starts
	}
	return f.Bytes, starts
}

// values says what the variables of the failing expression held ("with
// var.size as 3"), as HCL's writer does; sensitive and unknown values are
// left out.
func (dw *diagWriter) values(d *hcl2.Diagnostic) {
	if d.Expression == nil || d.EvalContext == nil {
		return
	}
	seen := map[string]bool{}
	var stmts []string
	for _, t := range d.Expression.Variables() {
		v, diags := t.TraverseAbs(d.EvalContext)
		name := hcl.TraversalText(t)
		if diags.HasErrors() || seen[name] || !v.IsKnown() || v.IsMarked() {
			continue
		}
		seen[name] = true
		if v.IsNull() {
			stmts = append(stmts, name+" set to null")
		} else {
			stmts = append(stmts, name+" as "+planner.FormatValue(v))
		}
	}
	if len(stmts) == 0 {
		return
	}
	sort.Strings(stmts)
	fmt.Fprintf(dw.w, "with %s.\n\n", strings.Join(stmts, ",\n     "))
}
