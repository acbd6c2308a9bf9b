package hcl

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zclconf/go-cty/cty"
)

// The functions real Terraform configurations use, read relative to the
// configuration's directory whatever the working directory.
func TestTerraformFunctions(t *testing.T) {
	dir := t.TempDir()
	for name, src := range map[string]string{
		"cloud_init.cfg": "#cloud-config\nhostname: ${host}\n%{ for k in keys ~}\n- ${k}\n%{ endfor ~}\n",
		"key.pub":        "ssh-ed25519 AAAA user@host\n",
		"main.hcl": `
locals {
  user_data = templatefile("cloud_init.cfg", { host = "web", keys = ["a", "b"] })
  key       = file("key.pub")
  key64     = filebase64("key.pub")
  host      = cidrhost("10.17.3.0/24", 5)
  subnet    = cidrsubnet("10.0.0.0/16", 8, 2)
  mask      = cidrnetmask("10.0.0.0/16")
  b64       = base64encode("hi")
  json      = jsonencode({ a = 1 })
  yaml      = yamlencode({ a = 1 })
  missing   = lookup({ a = "x" }, "b", null)
  home      = pathexpand("~/x")
  digest    = sha256("x")
  all       = alltrue([true, true])
  total     = sum([1, 2, 3])
  only      = one(["x"])
  starts    = startswith("libvirt_pool", "libvirt_")
}
output "all" {
  value = [local.user_data, local.key, local.key64, local.host, local.subnet, local.mask, local.b64, local.json,
  local.yaml, local.missing, local.home, local.digest, local.all, local.total, local.only, local.starts]
}
`,
	} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Chdir(t.TempDir()) // relative paths are the config's, not the working directory's
	cfg, diags := Load(dir, Options{Env: []string{}})
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	outs, diags := cfg.EvalOutputs(nil)
	if diags.HasErrors() {
		t.Fatal(diags)
	}
	got := outs["all"].AsValueSlice()
	home, _ := os.UserHomeDir()
	want := []cty.Value{
		cty.StringVal("#cloud-config\nhostname: web\n- a\n- b\n"), cty.StringVal("ssh-ed25519 AAAA user@host\n"),
		cty.StringVal("c3NoLWVkMjU1MTkgQUFBQSB1c2VyQGhvc3QK"), cty.StringVal("10.17.3.5"), cty.StringVal("10.0.2.0/24"),
		cty.StringVal("255.255.0.0"), cty.StringVal("aGk="), cty.StringVal(`{"a":1}`), cty.StringVal("\"a\": 1\n"),
		cty.NullVal(cty.String), cty.StringVal(filepath.Join(home, "x")),
		cty.StringVal("2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"), cty.True, cty.NumberIntVal(6),
		cty.StringVal("x"), cty.True,
	}
	for i := range want {
		if !got[i].RawEquals(want[i]) && !(got[i].IsNull() && want[i].IsNull()) {
			t.Errorf("value %d = %#v, want %#v", i, got[i], want[i])
		}
	}
}

// An unknown function is reported where it is written, even where nothing
// evaluates it, with the closest name fiat has.
func TestUnknownFunctionInUnreferencedLocal(t *testing.T) {
	_, errs := load(t, "locals {\n  unused = base64encod(\"x\")\n}\nvariable \"v\" {\n  type = list(string)\n  default = []\n}\n", Options{})
	if !strings.Contains(errs, `main.hcl:2,12-23: Call to unknown function; There is no function named "base64encod". Did you mean "base64encode"?`) {
		t.Fatalf("got %q", errs)
	}
	if strings.Contains(errs, `"list"`) {
		t.Fatalf("a type constraint was taken for a call: %q", errs)
	}
}
