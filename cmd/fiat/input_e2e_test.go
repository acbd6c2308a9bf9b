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

// What libvirt would refuse fails at validate and plan, pointing at the
// attribute; a relative source is the module directory's file.
func TestProviderRefusalsFailAtValidate(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.hcl"), `resource "libvirt_pool" "p" {
  name = "p"
  path = "/var/lib/fiat-validate-test"
}
resource "libvirt_volume" "odd" {
  name = "odd.qcow2"
  pool = libvirt_pool.p.name
  size = 0
}
resource "libvirt_volume" "nosize" {
  name = "nosize.qcow2"
  pool = libvirt_pool.p.name
}
resource "libvirt_network" "n" {
  name      = "a/b"
  mode      = "isolated"
  addresses = ["10.254.1.0/24"]
}
`)
	for _, cmd := range []string{"validate", "plan"} {
		code, out, errs := runRaw(t, cmd, dir)
		for _, want := range []string{"Invalid size of libvirt_volume", "main.hcl line 8", "more than 0 bytes",
			"size is not set", "main.hcl line 10", `contains "/"`, "main.hcl line 15"} {
			if !strings.Contains(errs, want) {
				t.Fatalf("%s: exit %d, want %q in:\n%s%s", cmd, code, want, out, errs)
			}
		}
		if code != exitError {
			t.Fatalf("%s: exit %d", cmd, code)
		}
	}
	writeFile(t, filepath.Join(dir, "main.hcl"), `resource "libvirt_volume" "img" {
  name   = "img.qcow2"
  pool   = "default"
  source = "images/base.qcow2"
}
`)
	code, out, errs := runRaw(t, "plan", "-json", dir)
	abs := filepath.Join(dir, "images", "base.qcow2")
	if code != 0 || !strings.Contains(out, `"source": "`+abs+`"`) && !strings.Contains(out, `"source":"`+abs+`"`) {
		t.Fatalf("want source resolved to %s: exit %d\n%s%s", abs, code, out, errs)
	}
}
