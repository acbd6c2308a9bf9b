package main

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
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
    google = { source = "hashicorp/google" }
  }
}
data "google_compute_image" "a" {}
resource "google_compute_instance" "b" {}
resource "aws_instance" "x" {}
resource "fiat_data" "ok" {}
`)
	code, out, errs := runRaw(t, "validate", dir)
	if code != exitError || strings.Count(errs, "Error:") != 1 ||
		!strings.Contains(strings.Join(strings.Fields(errs), " "), `fiat has no provider "aws", needed by aws_instance.x; no provider "google" (hashicorp/google), needed by data.google_compute_image.a, google_compute_instance.b.`) {
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

// A state file as OpenTofu 1.x writes it (version 4), holding a pool,
// volumes, a network, a domain and a random_id, is adopted into a fiat
// stack without changing an object; the configuration then plans no
// change, and destroy removes everything.
func TestImportTFState(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupNamed(t, l, name)
	subnet := fmt.Sprintf("10.%d.%d", 200+rand.IntN(50), rand.IntN(250))
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "main.tf"), fmt.Sprintf(`terraform {
  required_providers {
    libvirt = { source = "dmacvicar/libvirt", version = "0.8.3" }
  }
}
resource "random_id" "tag" {
  byte_length = 2
}
resource "libvirt_pool" "p" {
  name = %[1]q
  type = "dir"
  path = "/var/lib/libvirt/images/%[1]s"
}
resource "libvirt_volume" "root" {
  name = "root.qcow2"
  pool = libvirt_pool.p.name
  size = 1048576
}
resource "libvirt_volume" "data" {
  name   = "data.raw"
  pool   = libvirt_pool.p.name
  size   = 1048576
  format = "raw"
}
resource "libvirt_network" "lan" {
  name      = %[1]q
  mode      = "isolated"
  addresses = ["%[2]s.0/24"]
}
resource "libvirt_domain" "vm" {
  name              = %[1]q
  memory            = 64
  disk              = [{ volume_id = libvirt_volume.root.id }, { volume_id = libvirt_volume.data.id }]
  network_interface = [{ network_name = libvirt_network.lan.name }]
}
`, name, subnet))
	// The objects exist, made by another tool (here: fiat, with a store
	// the import does not see).
	other := filepath.Join(t.TempDir(), "other")
	if code, out, errs := runRaw(t, "apply", "-auto-approve", "-data-dir", other, dir); code != 0 {
		t.Fatalf("make the objects: exit %d\n%s%s", code, out, errs)
	}
	show := func(addr string) map[string]string {
		code, out, errs := runRaw(t, "state", "show", "-data-dir", other, addr, dir)
		if code != 0 {
			t.Fatalf("state show %s: %d %s", addr, code, errs)
		}
		attrs := map[string]string{}
		for _, line := range strings.Split(out, "\n") {
			if k, v, ok := strings.Cut(strings.TrimSpace(line), " = "); ok {
				attrs[strings.TrimSpace(k)] = strings.Trim(v, `"`)
			}
		}
		return attrs
	}
	instance := func(typ, rname string, attrs map[string]any) map[string]any {
		return map[string]any{"mode": "managed", "type": typ, "name": rname,
			"provider":  `provider["registry.opentofu.org/dmacvicar/libvirt"]`,
			"instances": []any{map[string]any{"schema_version": 0, "attributes": attrs, "sensitive_attributes": []any{}}}}
	}
	tag := show("random_id.tag")
	state := map[string]any{"version": 4, "terraform_version": "1.8.0", "serial": 7, "lineage": "3d8c4f1e-0000-4000-8000-000000000000", "outputs": map[string]any{},
		"resources": []any{
			map[string]any{"mode": "managed", "type": "random_id", "name": "tag", "provider": `provider["registry.opentofu.org/hashicorp/random"]`,
				"instances": []any{map[string]any{"schema_version": 0, "attributes": map[string]any{
					"id": tag["id"], "b64_url": tag["b64_url"], "b64_std": tag["b64_std"], "hex": tag["hex"], "dec": tag["dec"],
					"byte_length": 2, "keepers": nil, "prefix": nil}}}},
			instance("libvirt_pool", "p", map[string]any{"id": show("libvirt_pool.p")["id"], "name": name, "type": "dir"}),
			instance("libvirt_volume", "root", map[string]any{"id": show("libvirt_volume.root")["id"], "name": "root.qcow2"}),
			instance("libvirt_volume", "data", map[string]any{"id": show("libvirt_volume.data")["id"], "name": "data.raw"}),
			instance("libvirt_network", "lan", map[string]any{"id": show("libvirt_network.lan")["id"], "name": name}),
			instance("libvirt_domain", "vm", map[string]any{"id": show("libvirt_domain.vm")["id"], "name": name}),
		}}
	b, _ := json.MarshalIndent(state, "", "  ")
	stateFile := filepath.Join(t.TempDir(), "terraform.tfstate")
	writeFile(t, stateFile, string(b))

	data := filepath.Join(t.TempDir(), "fiat")
	code, out, errs := runRaw(t, "import-tfstate", "-data-dir", data, stateFile, dir)
	if code != 0 || !strings.Contains(out, "Imported 6 object(s)") || strings.Contains(out, "Creat") {
		t.Fatalf("import-tfstate: exit %d\n%s%s", code, out, errs)
	}
	if code, out, errs := runRaw(t, "plan", "-detailed-exitcode", "-data-dir", data, dir); code != 0 {
		t.Fatalf("plan after import: exit %d (want 0, no changes)\n%s%s", code, out, errs)
	}
	if code, out, errs := runRaw(t, "state", "show", "-data-dir", data, "random_id.tag", dir); code != 0 || !strings.Contains(out, tag["hex"]) {
		t.Fatalf("the random value was not kept: %s%s", out, errs)
	}
	if code, out, errs := runRaw(t, "destroy", "-auto-approve", "-data-dir", data, dir); code != 0 {
		t.Fatalf("destroy: exit %d\n%s%s", code, out, errs)
	}
	if poolExists(l, name) {
		t.Fatalf("pool %s is left after destroy", name)
	}
	if _, err := l.DomainLookupByName(name); err == nil {
		t.Fatalf("domain %s is left after destroy", name)
	}
	if _, err := l.NetworkLookupByName(name); err == nil {
		t.Fatalf("network %s is left after destroy", name)
	}
}
