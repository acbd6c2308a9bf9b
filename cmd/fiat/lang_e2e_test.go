package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// These end-to-end tests use fiat's builtin fiat_data resource, so they need
// no hypervisor: the language, the planner and the CLI, with a real store.

// runRaw runs fiat with exactly these arguments.
func runRaw(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	m := &Main{Stdin: strings.NewReader(""), Stdout: &out, Stderr: &errb, Interactive: func() bool { return false }}
	code := m.Run(context.Background(), args)
	return code, out.String(), errb.String()
}

const langConfig = `
variable "envs" {
  type    = set(string)
  default = ["dev", "prod"]
}
variable "prefix" {
  type = string
  validation {
    condition     = length(var.prefix) <= 8
    error_message = "prefix is at most 8 characters."
  }
}
locals {
  base = "${var.prefix}-base"
}
data "fiat_data" "settings" {
  input = { replicas = 2 }
}
resource "fiat_data" "root" {
  input = local.base
}
resource "fiat_data" "env" {
  for_each = var.envs
  input    = "${fiat_data.root.output}/${each.key}"
}
resource "fiat_data" "replica" {
  count = data.fiat_data.settings.output.replicas
  input = "${fiat_data.env["prod"].output}#${count.index}"
}
module "app" {
  source = "./modules/app"
  name   = fiat_data.replica[1].output
}
output "app" {
  value = module.app.id
}
`

const appModule = `
variable "name" {
  type = string
}
resource "fiat_data" "app" {
  input = upper(var.name)
}
output "id" {
  value = fiat_data.app.output
}
`

func TestLanguageEndToEnd(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": langConfig})
	os.MkdirAll(filepath.Join(c.dir, "modules/app"), 0o755)
	c.write("modules/app/main.hcl", appModule)
	varFile := filepath.Join(t.TempDir(), "vars.fiatvars")
	os.WriteFile(varFile, []byte("prefix = \"acme\"\n"), 0o644)

	// A missing variable is an error, not a prompt.
	if code, _, errs := c.run("plan", c.dir); code != exitError || !strings.Contains(errs, "No value for required variable") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	// Validation blocks run on the value given.
	if code, _, errs := c.run("plan", "-var", "prefix=much-too-long", c.dir); code != exitError || !strings.Contains(errs, "prefix is at most 8 characters.") {
		t.Fatalf("exit %d: %s", code, errs)
	}
	code, out, errs := c.run("plan", "-detailed-exitcode", "-var-file", varFile, c.dir)
	if code != exitChanges {
		t.Fatalf("plan: exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{`fiat_data.env["prod"] will be created`, "fiat_data.replica[1] will be created",
		"module.app.fiat_data.app will be created", `+ output = "ACME-BASE/PROD#1"`, "Plan: 6 to create"} {
		if !strings.Contains(out, w) {
			t.Fatalf("plan lacks %q:\n%s", w, out)
		}
	}
	out = c.must("apply", "-auto-approve", "-var-file", varFile, c.dir)
	if !strings.Contains(out, `app = "ACME-BASE/PROD#1"`) {
		t.Fatalf("apply:\n%s", out)
	}
	if got := c.must("state", "list", c.dir); !strings.Contains(got, "module.app.fiat_data.app\n") || !strings.Contains(got, `fiat_data.env["dev"]`) || strings.Contains("\n"+got, "\ndata.") {
		t.Fatalf("state list:\n%s", got)
	}
	// Re-plan: no changes (a provider read of every object finds no drift).
	if code, out, errs := c.run("plan", "-detailed-exitcode", "-var", "prefix=acme", c.dir); code != exitOK || !strings.Contains(out, "No changes") {
		t.Fatalf("re-plan: exit %d\n%s%s", code, out, errs)
	}
	// -target plans a subset and what it depends on.
	out = c.must("plan", "-var", "prefix=acme2", "-target", `fiat_data.env["dev"]`, c.dir)
	if !strings.Contains(out, `fiat_data.env["dev"] will be updated`) || !strings.Contains(out, "fiat_data.root will be updated") ||
		strings.Contains(out, "replica") || !strings.Contains(out, "Warning:") {
		t.Fatalf("-target:\n%s", out)
	}
	// Renaming with a moved block moves, it does not recreate.
	c.write("main.hcl", strings.Replace(langConfig, `"fiat_data" "root"`, `"fiat_data" "base"`, 1)+
		"moved {\n  from = fiat_data.root\n  to   = fiat_data.base\n}\n")
	c.write("main.hcl", strings.ReplaceAll(readFile(t, filepath.Join(c.dir, "main.hcl")), "fiat_data.root.output", "fiat_data.base.output"))
	out = c.must("plan", "-var", "prefix=acme", c.dir)
	if !strings.Contains(out, "fiat_data.base will be moved") || !strings.Contains(out, "(moved from fiat_data.root)") || !strings.Contains(out, "1 to move") {
		t.Fatalf("moved:\n%s", out)
	}
}

func readFile(t *testing.T, p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestSavedPlanShowAndSensitive(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": `
variable "token" {
  type      = string
  sensitive = true
}
variable "size" {
  default = 1
}
resource "fiat_data" "t" {
  input = { token = var.token, size = var.size }
}
output "token" {
  value     = var.token
  sensitive = true
}
`})
	t.Setenv("FIAT_VAR_token", "s3cr3t-value")
	planFile := filepath.Join(t.TempDir(), "p.plan")
	out := c.must("plan", "-out", planFile, "-var", "size=2", c.dir)
	if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "(sensitive)") {
		t.Fatalf("plan shows the secret:\n%s", out)
	}
	raw := readFile(t, planFile)
	if strings.Contains(raw, "s3cr3t") {
		t.Fatal("the saved plan holds the sensitive value in clear")
	}
	for _, format := range []string{"", "-json", "-markdown"} {
		args := []string{"show"}
		if format != "" {
			args = append(args, format)
		}
		code, out, errs := runRaw(t, append(args, planFile)...)
		if code != 0 || strings.Contains(out, "s3cr3t") || !strings.Contains(out, "fiat_data.t") {
			t.Fatalf("show %s: exit %d\n%s%s", format, code, out, errs)
		}
		if format == "-json" {
			var doc map[string]any
			if err := json.Unmarshal([]byte(out), &doc); err != nil || doc["format_version"] != "1.0" {
				t.Fatalf("show -json: %v\n%s", err, out)
			}
		}
	}
	// Apply needs the sensitive value again, and the same one; -var cannot change a saved plan.
	t.Setenv("FIAT_VAR_token", "other")
	if code, _, errs := c.run("apply", planFile); code == 0 || !strings.Contains(errs, "sensitive variable(s) token differ") {
		t.Fatalf("changed secret: exit %d %s", code, errs)
	}
	if code, _, errs := c.run("apply", "-var", "size=3", planFile); code == 0 || !strings.Contains(errs, "cannot change them") {
		t.Fatalf("-var on a saved plan: exit %d %s", code, errs)
	}
	os.Unsetenv("FIAT_VAR_token")
	if code, _, errs := c.run("apply", planFile); code == 0 || !strings.Contains(errs, "FIAT_VAR_token") {
		t.Fatalf("missing secret: exit %d %s", code, errs)
	}
	t.Setenv("FIAT_VAR_token", "s3cr3t-value")
	t.Setenv("FIAT_VAR_size", "99") // ignored: the plan has size = 2
	out = c.must("apply", planFile)
	if strings.Contains(out, "s3cr3t") || !strings.Contains(out, "token = (sensitive)") {
		t.Fatalf("apply:\n%s", out)
	}
	// The stored input holds the secret, so state show hides it whole; the
	// plan's size = 2 is what was applied: planning it again changes nothing.
	if got := c.must("state", "show", "fiat_data.t", c.dir); strings.Contains(got, "s3cr3t") || !strings.Contains(got, "input = (sensitive)") {
		t.Fatalf("state:\n%s", got)
	}
	if code, out, errs := c.run("plan", "-detailed-exitcode", "-var", "size=2", c.dir); code != exitOK {
		t.Fatalf("re-plan with size=2: exit %d\n%s%s", code, out, errs)
	}
}

func TestValidateJSON(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": `
resource "fiat_data" "a" {
  input = fiat_data.b.output
}
resource "fiat_data" "c" {
  inptu = 1
}
`})
	code, out, _ := c.run("validate", "-json", c.dir)
	var doc struct {
		Valid       bool `json:"valid"`
		ErrorCount  int  `json:"error_count"`
		Diagnostics []struct {
			Severity, Summary, Detail string
			Range                     struct {
				Filename string
				Start    struct{ Line, Column int }
			}
			Snippet struct {
				Code      string
				StartLine int `json:"start_line"`
			}
		}
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if code != exitError || doc.Valid || doc.ErrorCount != 1 {
		t.Fatalf("exit %d: %s", code, out)
	}
	d := doc.Diagnostics[0]
	if d.Summary != "Reference to undeclared resource" || d.Range.Start.Line != 3 || d.Range.Start.Column != 11 ||
		!strings.Contains(d.Snippet.Code, "input = fiat_data.b.output") || !strings.HasSuffix(d.Range.Filename, "main.hcl") {
		t.Fatalf("diagnostic %+v", d)
	}
	// Fixed reference: now the schema check finds the misspelt argument.
	c.write("main.hcl", "resource \"fiat_data\" \"c\" {\n  inptu = 1\n}\n")
	code, out, _ = c.run("validate", "-json", c.dir)
	if code != exitError || !strings.Contains(out, `"summary": "Unsupported argument"`) || !strings.Contains(out, `Did you mean \"input\"?`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
	c.write("main.hcl", "resource \"fiat_data\" \"c\" {\n  input = 1\n}\n")
	if code, out, _ := c.run("validate", "-json", c.dir); code != exitOK || !strings.Contains(out, `"valid": true`) {
		t.Fatalf("exit %d\n%s", code, out)
	}
}

func TestPlanFormats(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": "resource \"fiat_data\" \"a\" {\n  input = 1\n}\n"})
	code, out, _ := c.run("plan", "-json", "-detailed-exitcode", c.dir)
	var doc struct {
		Summary struct{ Create int } `json:"summary"`
		Changes []struct{ Address, Action string }
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil || code != exitChanges || doc.Summary.Create != 1 || doc.Changes[0].Address != "fiat_data.a" {
		t.Fatalf("exit %d %v\n%s", code, err, out)
	}
	code, out, _ = c.run("plan", "-markdown", c.dir)
	if code != exitOK || !strings.Contains(out, "| create | `fiat_data.a` | reversible |") || !strings.Contains(out, "<details>") {
		t.Fatalf("markdown: %s", out)
	}
	// Not a terminal: no colour codes.
	if _, out, _ := c.run("plan", c.dir); strings.Contains(out, "\x1b[") {
		t.Fatal("colour codes in plain output")
	}
}

// A volume resized outside fiat: plan shows the drift on its own, plans to
// change it back, or with -adopt-drift to record it; -refresh=false trusts
// the store.
func TestDriftOfLibvirtVolume(t *testing.T) {
	l := requireLibvirt(t)
	name := uniq()
	cleanupPool(t, l, name)
	c := newCLI(t, map[string]string{"main.hcl": poolConfig(name, "1048576")})
	c.must("apply", "-auto-approve", c.dir)
	if out, err := exec.Command("virsh", "-c", "qemu:///system", "vol-resize", "--pool", name, "disk.qcow2", "2097152").CombinedOutput(); err != nil {
		t.Fatalf("virsh vol-resize: %v\n%s", err, out)
	}
	code, out, errs := c.run("plan", "-detailed-exitcode", c.dir)
	if code != exitChanges {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
	for _, w := range []string{"Objects changed outside fiat", "# libvirt_volume.disk changed outside fiat (stored at revision 1)",
		"~ size", "1048576 -> 2097152", "libvirt_volume.disk will be updated in place", "plan with -adopt-drift"} {
		if !strings.Contains(out, w) {
			t.Fatalf("plan lacks %q:\n%s", w, out)
		}
	}
	out = c.must("plan", "-adopt-drift", c.dir)
	if !strings.Contains(out, "libvirt_volume.disk will be recorded in the store as found") || strings.Contains(out, "updated in place") {
		t.Fatalf("-adopt-drift:\n%s", out)
	}
	if code, out, _ := c.run("plan", "-refresh=false", "-detailed-exitcode", c.dir); code != exitOK || strings.Contains(out, "outside fiat") {
		t.Fatalf("-refresh=false: exit %d\n%s", code, out)
	}
	c.must("destroy", "-auto-approve", c.dir)
}

func TestValidateNeedsNoVariables(t *testing.T) {
	c := newCLI(t, map[string]string{"main.hcl": "variable \"n\" {\n  type = number\n}\nresource \"fiat_data\" \"a\" {\n  count = var.n\n  input = count.index\n}\n"})
	if code, out, errs := c.run("validate", c.dir); code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errs)
	}
}
