package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A directory of Terraform files for the dmacvicar/libvirt provider is read
// as it is: *.tf, the terraform block, terraform.tfvars and *.auto.tfvars.
func TestTerraformDirectory(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "versions.tf"), `terraform {
  required_version = ">= 1.0"
  required_providers {
    libvirt = {
      source  = "dmacvicar/libvirt"
      version = "0.6.14"
    }
  }
  backend "local" {}
}
`)
	writeFile(t, filepath.Join(dir, "variables.tf"), "variable \"prefix\" {\n  default = \"default\"\n}\nvariable \"size\" {\n  default = 1\n}\n")
	writeFile(t, filepath.Join(dir, "main.tf"), "resource \"fiat_data\" \"a\" {\n  input = \"${var.prefix}-${var.size}\"\n}\noutput \"a\" {\n  value = fiat_data.a.output\n}\n")
	writeFile(t, filepath.Join(dir, "terraform.tfvars"), "prefix = \"tfvars\"\nsize = 2\n")
	writeFile(t, filepath.Join(dir, "b.auto.tfvars"), "size = 3\n")
	code, out, errs := runRaw(t, "apply", "-auto-approve", dir)
	if code != 0 || !strings.Contains(out, `a = "tfvars-3"`) {
		t.Fatalf("want tfvars then *.auto.tfvars applied: exit %d\n%s%s", code, out, errs)
	}
	flat := strings.Join(strings.Fields(errs), " ")
	for _, want := range []string{"requires dmacvicar/libvirt 0.6.14; fiat's libvirt provider follows the schema of dmacvicar/libvirt 0.8.3", "Terraform state backend ignored"} {
		if !strings.Contains(flat, want) {
			t.Fatalf("want the warning %q:\n%s", want, errs)
		}
	}
	if strings.Contains(errs, "required_version") || strings.Contains(errs, "Error") {
		t.Fatalf("required_version must never fail or warn:\n%s", errs)
	}
	// -var wins over both files.
	code, out, errs = runRaw(t, "plan", "-var", "size=9", dir)
	if code != 0 || !strings.Contains(out, `"tfvars-9"`) {
		t.Fatalf("-var over tfvars: exit %d\n%s%s", code, out, errs)
	}
}

// Every provider fiat lacks is named in one error, with what needs it.
func TestMissingProvidersInOneError(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), `terraform {
  required_providers {
    template = { source = "hashicorp/template" }
  }
}
data "template_file" "a" {}
data "template_file" "b" {}
resource "aws_instance" "x" {}
resource "fiat_data" "ok" {}
`)
	code, out, errs := runRaw(t, "validate", dir)
	if code != exitError || strings.Count(errs, "Error:") != 1 ||
		!strings.Contains(strings.Join(strings.Fields(errs), " "), `fiat has no provider "aws", needed by aws_instance.x; no provider "template" (hashicorp/template), needed by data.template_file.a, data.template_file.b.`) {
		t.Fatalf("want one error naming aws and template: exit %d\n%s%s", code, out, errs)
	}
}

// The utility providers are transaction citizens: applied, planned clean
// again, rolled back with everything else (a replaced local_file gets its
// previous content back), destroyed.
func TestUtilityProviders(t *testing.T) {
	requireLibvirt(t)
	dir := t.TempDir()
	out := filepath.Join(t.TempDir(), "out", "greeting.txt")
	cfg := func(text, pool string) string {
		return `
resource "random_id" "suffix" {
  byte_length = 4
}
resource "random_password" "db" {
  length  = 20
  special = false
}
resource "tls_private_key" "ssh" {
  algorithm = "ED25519"
}
resource "null_resource" "marker" {
  triggers = { id = random_id.suffix.hex }
}
resource "terraform_data" "meta" {
  input = { name = "web-${random_id.suffix.hex}" }
}
resource "time_sleep" "settle" {
  create_duration = "10ms"
}
data "template_file" "motd" {
  template = "hello $${name}"
  vars     = { name = "` + text + `" }
}
resource "local_file" "greeting" {
  filename = "` + out + `"
  content  = "${data.template_file.motd.rendered}\n${tls_private_key.ssh.public_key_openssh}"
}
` + pool + `
output "password" {
  value     = random_password.db.result
  sensitive = true
}
output "name" {
  value = terraform_data.meta.output.name
}
`
	}
	writeFile(t, filepath.Join(dir, "main.tf"), cfg("world", ""))
	code, stdout, errs := runRaw(t, "apply", "-auto-approve", dir)
	if code != 0 || !strings.Contains(stdout, "password = (sensitive)") || !strings.Contains(stdout, `name = "web-`) {
		t.Fatalf("apply: exit %d\n%s%s", code, stdout, errs)
	}
	first := readFile(t, out)
	if !strings.HasPrefix(first, "hello world\nssh-ed25519 ") {
		t.Fatalf("file content: %q", first)
	}
	if code, stdout, errs := runRaw(t, "plan", "-detailed-exitcode", dir); code != 0 {
		t.Fatalf("re-plan after apply: exit %d\n%s%s", code, stdout, errs)
	}
	// A replacement of the file that rolls back (a pool libvirt refuses)
	// puts the previous content back and leaves nothing aside.
	bad := `resource "libvirt_pool" "bad" {
  name       = "fiat-util-bad"
  path       = "/proc/fiat-util-bad"
  depends_on = [local_file.greeting]
}`
	writeFile(t, filepath.Join(dir, "main.tf"), cfg("again", bad))
	code, stdout, errs = runRaw(t, "apply", "-auto-approve", dir)
	if code != exitError || !strings.Contains(stdout+errs, "local_file.greeting: create undone") {
		t.Fatalf("want a rollback that undoes the file: exit %d\n%s%s", code, stdout, errs)
	}
	if got := readFile(t, out); got != first {
		t.Fatalf("after rollback the file is %q, want the previous %q", got, first)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".*")); len(left) != 0 {
		t.Fatalf("rollback left %v", left)
	}
	writeFile(t, filepath.Join(dir, "main.tf"), cfg("world", ""))
	if code, stdout, errs := runRaw(t, "destroy", "-auto-approve", dir); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, stdout, errs)
	}
	if entries, _ := os.ReadDir(filepath.Dir(out)); len(entries) != 0 {
		t.Fatalf("destroy left %v", entries)
	}
}
