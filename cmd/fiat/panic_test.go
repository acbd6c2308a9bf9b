package main

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"fiat/engine"
	"fiat/providers"
	"fiat/providers/builtin"
)

// brokenSchema panics where the CLI asks for schemas, outside any
// provider call guard: the CLI's own last line of defence must catch it.
type brokenSchema struct{ *builtin.Provider }

func (brokenSchema) Schema() providers.Schema { panic("schema table corrupted") }

func TestPanicExitsOneWithAShortReport(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.hcl"), []byte(`resource "fiat_data" "a" {}`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	reg := providers.NewRegistry(map[string]providers.Factory{builtin.Name: func() providers.Provider { return brokenSchema{builtin.New()} }})
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Engine: engine.New(reg)}
	code := m.Run(context.Background(), []string{"validate", dir})
	if code != exitError {
		t.Fatalf("exit %d, want %d (never 2, which means \"changes\")", code, exitError)
	}
	report := errb.String()
	m1 := regexp.MustCompile(`trace in (\S+)`).FindStringSubmatch(report)
	if !strings.Contains(report, "fiat crashed: schema table corrupted") || m1 == nil || strings.Count(report, "\n") > 3 {
		t.Fatalf("want a short report naming the trace file, got:\n%s", report)
	}
	trace, err := os.ReadFile(m1[1])
	if err != nil {
		t.Fatalf("trace file: %v", err)
	}
	os.Remove(m1[1])
	if !strings.Contains(string(trace), "brokenSchema") {
		t.Fatalf("trace does not hold the stack:\n%s", trace)
	}
}
