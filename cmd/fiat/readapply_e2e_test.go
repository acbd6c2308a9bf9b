package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A data source whose arguments come from a resource the plan creates is
// read during the apply, after that resource, and what it read reaches
// the resources that use it (Terraform's "read during apply"). A read
// that fails there is a failed step like any other: the apply rolls back.
func TestDataReadDuringApply(t *testing.T) {
	dir, data := t.TempDir(), filepath.Join(t.TempDir(), "state")
	out := filepath.Join(dir, "out")
	write := func(template string) {
		t.Helper()
		src := `
resource "random_string" "token" {
  length  = 12
  special = false
}
resource "local_file" "seed" {
  filename = "${path.module}/out/seed"
  content  = "seed"
}
data "template_file" "conf" {
  template = "` + template + `"
  vars = {
    token = random_string.token.result
    seed  = local_file.seed.id
  }
}
resource "local_file" "conf" {
  filename = "${path.module}/out/conf"
  content  = data.template_file.conf.rendered
}
`
		if err := os.WriteFile(filepath.Join(dir, "main.tf"), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("token=$${token}")
	code, stdout, stderr := runRaw(t, "plan", "-data-dir", data, dir)
	if code != 0 || !strings.Contains(stdout, "data.template_file.conf will be read during apply") {
		t.Fatalf("plan: exit %d\n%s%s", code, stdout, stderr)
	}
	code, stdout, stderr = runRaw(t, "apply", "-auto-approve", "-data-dir", data, dir)
	if code != 0 || !strings.Contains(stdout, "data.template_file.conf: Read in") {
		t.Fatalf("apply: exit %d\n%s%s", code, stdout, stderr)
	}
	conf, err := os.ReadFile(filepath.Join(out, "conf"))
	if err != nil || !strings.HasPrefix(string(conf), "token=") || len(conf) != len("token=")+12 {
		t.Fatalf("conf = %q (%v), want the token the apply made", conf, err)
	}
	if code, stdout, stderr := runRaw(t, "plan", "-detailed-exitcode", "-data-dir", data, dir); code != 0 {
		t.Errorf("re-plan: exit %d, want no changes\n%s%s", code, stdout, stderr)
	}
	if code, stdout, stderr := runRaw(t, "destroy", "-auto-approve", "-data-dir", data, dir); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, stdout, stderr)
	}

	// The template refers to a variable vars lacks: the read fails in the
	// apply, after the seed file was written; the rollback removes it.
	write("$${nosuch}")
	code, stdout, stderr = runRaw(t, "apply", "-auto-approve", "-data-dir", data, dir)
	all := stdout + stderr
	if code == 0 || !strings.Contains(all, "data.template_file.conf") || !strings.Contains(all, `"nosuch"`) || !strings.Contains(all, "local_file.seed: create undone") {
		t.Fatalf("apply with a failing read: exit %d, want a rollback naming the read\n%s", code, all)
	}
	if _, err := os.Stat(filepath.Join(out, "seed")); !os.IsNotExist(err) {
		t.Errorf("the rolled-back apply left out/seed (%v)", err)
	}
}
