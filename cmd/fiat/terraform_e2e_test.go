package main

import (
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
