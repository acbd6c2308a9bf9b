package utility

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

func create(t *testing.T, p *Provider, typ string, attrs map[string]cty.Value) cty.Value {
	t.Helper()
	cfg := map[string]cty.Value{}
	for name, a := range p.Schema().Resources[typ].Attributes {
		cfg[name] = cty.NullVal(a.Type.WithoutOptionalAttributesDeep())
		if a.Default != cty.NilVal {
			cfg[name] = a.Default
		}
	}
	for k, v := range attrs {
		cfg[k] = v
	}
	resp, err := p.Create(context.Background(), providers.CreateRequest{Address: typ + ".x", Type: typ, OpID: "op", Config: cty.ObjectVal(cfg)})
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	return resp.State
}

func TestRandomStringHonoursItsRules(t *testing.T) {
	st := create(t, New("random"), "random_password", map[string]cty.Value{
		"length": cty.NumberIntVal(40), "special": cty.False, "min_numeric": cty.NumberIntVal(10), "upper": cty.False})
	s := st.GetAttr("result").AsString()
	digits := 0
	for _, r := range s {
		switch {
		case r >= '0' && r <= '9':
			digits++
		case r < 'a' || r > 'z':
			t.Fatalf("%q holds %q, not allowed", s, r)
		}
	}
	if len(s) != 40 || digits < 10 || st.GetAttr("id").AsString() != "none" {
		t.Fatalf("result %q (%d digits), id %s", s, digits, st.GetAttr("id").AsString())
	}
	if _, err := New("random").Create(context.Background(), providers.CreateRequest{Type: "random_string", Config: cty.ObjectVal(map[string]cty.Value{
		"length": cty.NumberIntVal(3), "min_upper": cty.NumberIntVal(5), "special": cty.True, "upper": cty.True, "lower": cty.True, "numeric": cty.True, "number": cty.NullVal(cty.Bool),
		"min_lower": cty.NumberIntVal(0), "min_numeric": cty.NumberIntVal(0), "min_special": cty.NumberIntVal(0), "override_special": cty.NullVal(cty.String), "keepers": cty.NullVal(cty.Map(cty.String)),
		"id": cty.NullVal(cty.String), "result": cty.NullVal(cty.String)})}); err == nil {
		t.Fatal("min_* above length was accepted")
	}
}

func TestPrivateKeyIsUsable(t *testing.T) {
	for _, alg := range []string{"RSA", "ECDSA", "ED25519"} {
		st := create(t, New("tls"), "tls_private_key", map[string]cty.Value{"algorithm": cty.StringVal(alg), "ecdsa_curve": cty.StringVal("P256")})
		key, err := ssh.ParsePrivateKey([]byte(st.GetAttr("private_key_pem").AsString()))
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		pub, _, _, _, err := ssh.ParseAuthorizedKey([]byte(st.GetAttr("public_key_openssh").AsString()))
		if err != nil || string(pub.Marshal()) != string(key.PublicKey().Marshal()) {
			t.Fatalf("%s: public key does not match: %v", alg, err)
		}
	}
}

func TestTemplateFile(t *testing.T) {
	p := New("template")
	resp, err := p.ReadData(context.Background(), providers.ReadDataRequest{Type: "template_file", Config: cty.ObjectVal(map[string]cty.Value{
		"template": cty.StringVal("host ${name}%{ if on } on%{ endif }"), "vars": cty.MapVal(map[string]cty.Value{"name": cty.StringVal("web"), "on": cty.StringVal("true")}),
		"rendered": cty.NullVal(cty.String), "id": cty.NullVal(cty.String)})})
	if err != nil || resp.State.GetAttr("rendered").AsString() != "host web on" {
		t.Fatalf("%#v %v", resp.State, err)
	}
}

// A local file's create is undone, its retire brought back, its purge final.
func TestLocalFileLifecycle(t *testing.T) {
	p := New("local")
	dir := t.TempDir()
	name := filepath.Join(dir, "a", "b", "f.txt")
	ctx := context.Background()
	cfg := func(content string) cty.Value {
		return cty.ObjectVal(map[string]cty.Value{"filename": cty.StringVal(name), "content": cty.StringVal(content),
			"sensitive_content": cty.NullVal(cty.String), "content_base64": cty.NullVal(cty.String), "source": cty.NullVal(cty.String),
			"file_permission": cty.StringVal("0644"), "directory_permission": cty.StringVal("0755")})
	}
	c1, err := p.Create(ctx, providers.CreateRequest{Address: "local_file.f", Type: "local_file", Config: cfg("one")})
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(name); string(b) != "one" {
		t.Fatalf("content %q", b)
	}
	// The undo removes the file and the directories the create made.
	if _, err := p.Undo(ctx, providers.UndoRequest{Type: "local_file", Undo: c1.Undo}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dir, "a")); !os.IsNotExist(err) {
		t.Fatalf("undo left %s (%v)", filepath.Join(dir, "a"), err)
	}
	// Replacement: retire the old file, create the new; undo both.
	c1, _ = p.Create(ctx, providers.CreateRequest{Address: "local_file.f", Type: "local_file", Config: cfg("one")})
	r, err := p.Retire(ctx, providers.RetireRequest{Address: "local_file.f", Type: "local_file", ID: c1.ID, State: c1.State})
	if err != nil {
		t.Fatal(err)
	}
	pre := p.files.preflight(providers.PreflightStep{Address: "local_file.g", Type: "local_file", Action: providers.ActionCreate, Config: cfg("x")}, nil)
	if len(pre) != 0 {
		t.Fatalf("the retired file's name is free: %v", pre)
	}
	c2, err := p.Create(ctx, providers.CreateRequest{Address: "local_file.f", Type: "local_file", Config: cfg("two")})
	if err != nil {
		t.Fatal(err)
	}
	if pre := p.files.preflight(providers.PreflightStep{Address: "local_file.g", Type: "local_file", Action: providers.ActionCreate, Config: cfg("x")}, nil); len(pre) != 1 || !strings.Contains(pre[0].Message, "does not manage") {
		t.Fatalf("want a refusal to overwrite an unmanaged file, got %v", pre)
	}
	p.Undo(ctx, providers.UndoRequest{Type: "local_file", Undo: c2.Undo})
	p.Undo(ctx, providers.UndoRequest{Type: "local_file", Undo: r.Undo})
	if b, _ := os.ReadFile(name); string(b) != "one" {
		t.Fatalf("after rollback the content is %q, want the previous one", b)
	}
	// Retire then purge: gone for good.
	r, _ = p.Retire(ctx, providers.RetireRequest{Address: "local_file.f", Type: "local_file", ID: c1.ID, State: c1.State})
	if _, err := p.Purge(ctx, providers.PurgeRequest{Type: "local_file", ID: c1.ID, State: c1.State}); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Dir(name)); len(left) != 0 {
		t.Fatalf("purge left %v", left)
	}
}
