package main

import (
	"path/filepath"
	"strings"
	"testing"
)

// Bad input gets a clear error (exit 1) or a warning, never silence.
func TestInputWarningsAndLimits(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.hcl"), "variable \"size\" {\n  default = 1\n}\nresource \"fiat_data\" \"a\" {\n  input = var.size\n}\n")
	varFile := filepath.Join(t.TempDir(), "prod.fiatvars")
	writeFile(t, varFile, "size = 2\nsise = 3\n")
	code, out, errs := runRaw(t, "plan", "-var-file", varFile, dir)
	if code != 0 || !strings.Contains(errs, "Warning: Value for undeclared variable") || !strings.Contains(errs, varFile) || !strings.Contains(errs, `"sise"`) {
		t.Fatalf("want a warning naming sise and %s: exit %d\n%s%s", varFile, code, out, errs)
	}
	for _, p := range []string{"0", "-3", "100000"} {
		code, out, errs := runRaw(t, "apply", "-auto-approve", "-parallelism", p, dir)
		if code != exitError || !strings.Contains(errs, "-parallelism "+p+": give a number of operations from 1 to 256") {
			t.Fatalf("-parallelism %s: exit %d\n%s%s", p, code, out, errs)
		}
	}
}
