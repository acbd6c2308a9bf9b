package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// A saved plan is applied exactly as approved, to the store and stack it was
// made against, from any working directory — or refused, saying why.
func TestSavedPlanTrust(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "web")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "main.hcl"), `
variable "size" {
  default = 1
}
resource "fiat_data" "a" {
  input = var.size
}
`)
	planFile := filepath.Join(t.TempDir(), "web.plan")
	code, out, errs := runRaw(t, "plan", "-out", planFile, "-var", "size=2", dir)
	if code != 0 {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	shown := regexp.MustCompile(`sha256:([0-9a-f]{64})`).FindStringSubmatch(out)
	if shown == nil {
		t.Fatalf("plan -out shows no digest:\n%s", out)
	}
	orig := readFile(t, planFile)

	refused := func(name, want string, args ...string) {
		t.Helper()
		code, out, errs := runRaw(t, args...)
		if code != exitError || !strings.Contains(errs, want) {
			t.Fatalf("%s: exit %d, want 1 and %q\n%s%s", name, code, want, out, errs)
		}
		if strings.Contains(out, "Apply complete") {
			t.Fatalf("%s: applied anyway:\n%s", name, out)
		}
	}
	// Any edited byte: a variable value, the base revision, the reads.
	for _, edit := range []struct{ from, to string }{
		{`"base_revision":`, `"base_revision":1`},
		{`"reads":{`, `"reads":{"web/fiat_data.a":1,`},
		{`"source":"-var size"`, `"source":"-var sizE"`},
	} {
		if !strings.Contains(orig, edit.from) {
			t.Fatalf("plan file has no %s:\n%s", edit.from, orig)
		}
		writeFile(t, planFile, strings.Replace(orig, edit.from, edit.to, 1))
		refused("edited "+edit.from, "changed after it was saved", "apply", planFile)
	}
	writeFile(t, planFile, orig)
	// Another stack, another store.
	refused("-stack", `the plan is for stack "web", not "other"`, "apply", "-stack", "other", planFile)
	otherDir := filepath.Join(t.TempDir(), "other")
	if code, out, errs := runRaw(t, "plan", "-data-dir", otherDir, dir); code != 0 {
		t.Fatalf("plan into another store: %d\n%s%s", code, out, errs)
	}
	refused("-data-dir", "the plan was made against another store", "apply", "-data-dir", otherDir, planFile)
	refused("-data-dir nowhere", "holds no fiat store", "apply", "-data-dir", filepath.Join(t.TempDir(), "none"), planFile)

	// From another working directory it goes to the store it names, and
	// the digest apply verifies is the one plan -out showed.
	elsewhere := t.TempDir()
	t.Chdir(elsewhere)
	code, out, errs = runRaw(t, "apply", planFile)
	if code != 0 || !strings.Contains(out, "sha256:"+shown[1]) || !strings.Contains(out, "Apply complete") {
		t.Fatalf("apply from elsewhere: exit %d (want the digest %s)\n%s%s", code, shown[1], out, errs)
	}
	if _, err := os.Stat(filepath.Join(elsewhere, ".fiat")); !os.IsNotExist(err) {
		t.Fatalf("apply from elsewhere made a store there (%v)", err)
	}
	code, out, errs = runRaw(t, "state", "show", "fiat_data.a", dir)
	if code != 0 || !strings.Contains(out, "input = 2") {
		t.Fatalf("the plan's store does not hold the applied value: exit %d\n%s%s", code, out, errs)
	}
}

// Read-only commands on a mistyped directory say so and create nothing.
func TestReadOnlyCommandsCreateNoStore(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "typo")
	for _, args := range [][]string{
		{"state", "list", missing},
		{"state", "show", "fiat_data.a", missing},
		{"state", "forget", "fiat_data.a", missing},
		{"history", missing},
		{"recover", "-data-dir", filepath.Join(missing, ".fiat"), "."},
		{"unlock", "-data-dir", filepath.Join(missing, ".fiat"), "lock-1"},
	} {
		code, out, errs := runRaw(t, args...)
		if code != exitError || !strings.Contains(errs, "holds no fiat store") {
			t.Fatalf("%v: exit %d\n%s%s", args, code, out, errs)
		}
		if _, err := os.Stat(missing); !os.IsNotExist(err) {
			t.Fatalf("%v created %s", args, missing)
		}
	}
	// A store that exists but never held the stack.
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.hcl"), `resource "fiat_data" "a" {}`+"\n")
	if code, out, errs := runRaw(t, "plan", dir); code != 0 {
		t.Fatalf("plan: %d\n%s%s", code, out, errs)
	}
	code, out, errs := runRaw(t, "state", "list", "-stack", "nosuch", dir)
	if code != exitError || !strings.Contains(errs, `stack "nosuch" does not exist`) {
		t.Fatalf("state list of a stack never applied: exit %d\n%s%s", code, out, errs)
	}
}

func writeFile(t *testing.T, path, src string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}
