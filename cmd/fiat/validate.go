package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"

	"fiat/hcl"

	hcl2 "github.com/hashicorp/hcl/v2"
)

// validate type-checks the configuration against the provider schemas,
// without the store or any provider. With -json it prints the diagnostics
// as one JSON document (and exits 1 if there are errors).
func (m *Main) validate(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("validate", flag.ContinueOnError)
	fs.SetOutput(m.Stderr)
	var c common
	c.register(fs, m)
	asJSON := fs.Bool("json", false, "print the result and every diagnostic as JSON")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir := dirArg(fs)
	diags, files, err := m.validateDir(dir, &c)
	if *asJSON {
		if err != nil {
			diags = append(diags, &hcl2.Diagnostic{Severity: hcl2.DiagError, Summary: "Cannot validate", Detail: err.Error()})
		}
		if werr := writeDiagJSON(m.Stdout, diags, files); werr != nil {
			return werr
		}
		if diags.HasErrors() {
			return errSilent
		}
		return nil
	}
	if err != nil {
		return err
	}
	if diags.HasErrors() {
		return hcl.NewDiagError(diags, files)
	}
	if len(diags) > 0 {
		m.printError(hcl.NewDiagError(diags, files)) // warnings
	}
	fmt.Fprintf(m.Stdout, "The configuration in %s is valid.\n", dir)
	return nil
}

// errSilent is an error whose report has already been printed.
var errSilent = errors.New("")

func (m *Main) validateDir(dir string, c *common) (hcl2.Diagnostics, map[string][]byte, error) {
	// Variables without a value are unknown: validate needs no inputs.
	cfg, diags := hcl.Load(dir, hcl.Options{Args: c.args, Unset: true})
	var err error
	if diags.HasErrors() {
		err = hcl.NewDiagError(diags, nil)
	}
	if err != nil {
		var de *hcl.DiagError
		if errors.As(err, &de) {
			return de.Diags, de.Sources(), nil
		}
		return nil, nil, err
	}
	// Planning against an empty stack type-checks every resource
	// without touching the store or any provider.
	return append(diags, m.engine().Validate(cfg)...), cfg.Files, nil
}

// The JSON document of fiat validate -json (format_version 1.0).
type validateDoc struct {
	FormatVersion string     `json:"format_version"`
	Valid         bool       `json:"valid"`
	ErrorCount    int        `json:"error_count"`
	WarningCount  int        `json:"warning_count"`
	Diagnostics   []diagJSON `json:"diagnostics"`
}

type diagJSON struct {
	Severity string       `json:"severity"` // "error" or "warning"
	Summary  string       `json:"summary"`
	Detail   string       `json:"detail,omitempty"`
	Range    *rangeJSON   `json:"range,omitempty"`
	Snippet  *snippetJSON `json:"snippet,omitempty"`
}

type rangeJSON struct {
	Filename string  `json:"filename"`
	Start    posJSON `json:"start"`
	End      posJSON `json:"end"`
}

type posJSON struct {
	Line   int `json:"line"`
	Column int `json:"column"`
	Byte   int `json:"byte"`
}

type snippetJSON struct {
	Code                 string `json:"code"`       // the source lines of the range
	StartLine            int    `json:"start_line"` // line number of the first line of code
	HighlightStartOffset int    `json:"highlight_start_offset"`
	HighlightEndOffset   int    `json:"highlight_end_offset"`
}

func writeDiagJSON(w interface{ Write([]byte) (int, error) }, diags hcl2.Diagnostics, files map[string][]byte) error {
	doc := validateDoc{FormatVersion: "1.0", Diagnostics: []diagJSON{}}
	for _, d := range diags {
		dj := diagJSON{Severity: "error", Summary: d.Summary, Detail: d.Detail}
		if d.Severity == hcl2.DiagWarning {
			dj.Severity = "warning"
			doc.WarningCount++
		} else {
			doc.ErrorCount++
		}
		if r := d.Subject; r != nil {
			dj.Range = &rangeJSON{Filename: r.Filename,
				Start: posJSON{r.Start.Line, r.Start.Column, r.Start.Byte}, End: posJSON{r.End.Line, r.End.Column, r.End.Byte}}
			src, ok := files[r.Filename]
			if !ok {
				src, ok = hcl.SnapshotFile(files, r.Filename)
			}
			if ok {
				dj.Snippet = snippet(src, *r)
			}
		}
		doc.Diagnostics = append(doc.Diagnostics, dj)
	}
	doc.Valid = doc.ErrorCount == 0
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(doc)
}

// snippet quotes the lines a range covers.
func snippet(src []byte, r hcl2.Range) *snippetJSON {
	if r.Start.Byte > len(src) || r.End.Byte > len(src) || r.Start.Byte > r.End.Byte {
		return nil
	}
	start := bytes.LastIndexByte(src[:r.Start.Byte], '\n') + 1
	end := len(src)
	if i := bytes.IndexByte(src[r.End.Byte:], '\n'); i >= 0 {
		end = r.End.Byte + i
	}
	return &snippetJSON{
		Code: string(src[start:end]), StartLine: r.Start.Line,
		HighlightStartOffset: r.Start.Byte - start, HighlightEndOffset: r.End.Byte - start,
	}
}
