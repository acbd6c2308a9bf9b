package libvirt

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zclconf/go-cty/cty"
	"libvirt.org/go/libvirtxml"

	"fiat/providers"
)

func ignitionConfig(name, pool, content string) cty.Value {
	return cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal(name), "pool": cty.StringVal(pool),
		"content": cty.StringVal(content), "id": cty.NullVal(cty.String)})
}

// libvirt_ignition through the whole contract (content_volume.go, shared
// with the cloud-init disk): the volume holds the config's bytes at every
// stage, and a replacement keeps the id.
func TestIgnitionConformance(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	name := testName("ign")
	runConformance(t, p, conformanceCase{
		typ:      TypeIgnition,
		config:   ignitionConfig(name, pool, `{"ignition":{"version":"3.3.0"}}`),
		replace:  ignitionConfig(name, pool, `{"ignition":{"version":"3.3.0"},"passwd":{}}`),
		importID: func(cty.Value) string { return pool + "/" + name },
		host: func(t *testing.T, stage string, state cty.Value) {
			t.Helper()
			path := ignitionKey(state.GetAttr("id").AsString())
			b, err := os.ReadFile(path)
			switch stage {
			case "purged", "undone", "retired":
				if err == nil {
					t.Errorf("%s: %s is still there", stage, path)
				}
				return
			}
			if err != nil || string(b) != state.GetAttr("content").AsString() {
				t.Errorf("%s: the volume holds %q (%v), want the content %q", stage, b, err, state.GetAttr("content").AsString())
			}
		},
	})
}

// content is JSON or a file holding it; upstream's "key;uuid" ids read as
// the key; bad content is a preflight problem.
func TestIgnitionContent(t *testing.T) {
	p := newTestProvider(t)
	pool, _ := newTestPool(t, p)
	file := filepath.Join(t.TempDir(), "config.ign")
	const cfg = `{"ignition":{"version":"3.3.0"}}`
	os.WriteFile(file, []byte(cfg), 0o600)
	c, err := p.Create(testCtx(t), providers.CreateRequest{Address: "libvirt_ignition.f", Type: TypeIgnition, OpID: newOpID(t),
		Config: ignitionConfig(testName("ign"), pool, file)})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(c.ID); string(b) != cfg || c.State.GetAttr("content").AsString() != file {
		t.Errorf("volume %q, state content %#v: want the file's bytes, the path kept", b, c.State.GetAttr("content"))
	}
	r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeIgnition, ID: c.ID + ";6c0fd4c2-0000-4000-8000-000000000000", State: c.State})
	if err != nil || !r.Exists {
		t.Errorf("read by upstream's key;uuid id: %v %+v", err, r)
	}
	// Read where the file is not (another machine, a server's run): the
	// path stays, rather than a change that would replace the volume.
	os.Remove(file)
	if r, err := p.Read(testCtx(t), providers.ReadRequest{Type: TypeIgnition, ID: c.ID, State: c.State}); err != nil || r.State.GetAttr("content").AsString() != file {
		t.Errorf("read without the content file: %v, content %#v", err, r.State.GetAttr("content"))
	}
	for content, want := range map[string]string{"{not json": "not valid JSON", "/no/such/file": "neither a JSON object nor the path of a file"} {
		step := providers.PreflightStep{Address: "libvirt_ignition.b", Type: TypeIgnition, Action: providers.ActionCreate, Config: ignitionConfig(testName("ign"), pool, content)}
		wantProblem(t, mustPreflight(t, p, step), "libvirt_ignition.b", want)
	}
}

// The fw_cfg argument round-trips through QEMU's option syntax (a comma in
// a value is doubled), and other command-line arguments stay.
func TestFwCfgArgument(t *testing.T) {
	doc := libvirtxml.Domain{QEMUCommandline: &libvirtxml.DomainQEMUCommandline{Args: []libvirtxml.DomainQEMUCommandlineArg{{Value: "-smp"}, {Value: "2"}}}}
	setIgnition(&doc, domainSpec{Ignition: "/p/a,b;uuid", IgnitionPath: "/p/a,b", FwCfgName: "opt/x"})
	args := doc.QEMUCommandline.Args
	if len(args) != 4 || args[0].Value != "-smp" || args[2].Value != "-fw_cfg" || args[3].Value != "name=opt/x,file=/p/a,,b" {
		t.Fatalf("args %+v", args)
	}
	if name, file, ok := parseFwCfg(args[3].Value); !ok || name != "opt/x" || file != "/p/a,b" {
		t.Errorf("parsed %q %q %v", name, file, ok)
	}
	setIgnition(&doc, domainSpec{})
	if len(doc.QEMUCommandline.Args) != 2 {
		t.Errorf("without coreos_ignition the fw_cfg arguments stay: %+v", doc.QEMUCommandline.Args)
	}
	if _, _, ok := parseFwCfg("name=opt/x,string=hello"); ok {
		t.Error("a fw_cfg with string= is not fiat's")
	}
	// Read back past another -fw_cfg before fiat's.
	doc.QEMUCommandline.Args = append([]libvirtxml.DomainQEMUCommandlineArg{{Value: "-fw_cfg"}, {Value: "name=opt/other,string=x"}}, doc.QEMUCommandline.Args...)
	setIgnition(&doc, domainSpec{Ignition: "/p/ign", IgnitionPath: "/p/ign"})
	out := map[string]cty.Value{}
	ignitionDomainState(doc, domainFacts{keyOf: func(p string) string { return p }}, cty.NilVal, out)
	if out["coreos_ignition"].IsNull() || out["coreos_ignition"].AsString() != "/p/ign" {
		t.Errorf("coreos_ignition read back as %#v, want /p/ign", out["coreos_ignition"])
	}
}
