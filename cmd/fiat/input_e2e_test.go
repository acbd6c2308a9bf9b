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

// An apply on a disk with too little free space is refused before it
// writes anything, with the numbers.
func TestApplyRefusedOnAFullDisk(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.hcl"), "resource \"fiat_data\" \"a\" {\n  input = 1\n}\n")
	t.Setenv("FIAT_MIN_FREE_BYTES", "1000000000000000000") // an exabyte: no disk has it
	code, out, errs := runRaw(t, "apply", "-auto-approve", dir)
	if code != exitError || !strings.Contains(errs, "not enough free disk space") || !strings.Contains(errs, "MB free, an apply needs at least 1000000000000.0 MB") {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	t.Setenv("FIAT_MIN_FREE_BYTES", "")
	if code, out, errs := runRaw(t, "state", "list", dir); code != exitError || !strings.Contains(errs, "does not exist") {
		t.Fatalf("the refused apply left something: exit %d\n%s%s", code, out, errs)
	}
}
