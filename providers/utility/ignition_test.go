package utility

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"github.com/coreos/ignition/v2/config/v3_3"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"

	"fiat/providers"
)

// readData reads a data source of p with attrs set and the rest null (or
// defaulted), converting each to its schema type as HCL would.
func readData(t *testing.T, p *Provider, typ string, attrs map[string]cty.Value) (cty.Value, error) {
	t.Helper()
	cfg := map[string]cty.Value{}
	for name, a := range p.Schema().DataSources[typ].Attributes {
		cfg[name] = cty.NullVal(a.Type.WithoutOptionalAttributesDeep())
		if a.Default != cty.NilVal {
			cfg[name] = a.Default
		}
		if v, ok := attrs[name]; ok {
			cv, err := convert.Convert(v, a.Type)
			if err != nil {
				t.Fatalf("%s.%s: %v", typ, name, err)
			}
			cfg[name] = cv
		}
	}
	for k := range attrs {
		if _, ok := cfg[k]; !ok {
			t.Fatalf("%s has no attribute %s", typ, k)
		}
	}
	resp, err := p.ReadData(context.Background(), providers.ReadDataRequest{Address: "data." + typ + ".x", Type: typ, Config: cty.ObjectVal(cfg)})
	return resp.State, err
}

func rendered(t *testing.T, p *Provider, typ string, attrs map[string]cty.Value) string {
	t.Helper()
	st, err := readData(t, p, typ, attrs)
	if err != nil {
		t.Fatalf("%s: %v", typ, err)
	}
	r := st.GetAttr("rendered").AsString()
	sum := sha256.Sum256([]byte(r))
	if st.GetAttr("id").AsString() != hex.EncodeToString(sum[:]) {
		t.Errorf("%s: id is not the SHA-256 of rendered", typ)
	}
	return r
}

func strs(ss ...string) cty.Value {
	var vs []cty.Value
	for _, s := range ss {
		vs = append(vs, cty.StringVal(s))
	}
	return cty.ListVal(vs)
}

// The pieces of upstream's fcos and flatcar examples join into one config
// that Ignition's own parser accepts as spec 3.3.0, with spec 2's
// spellings (filesystem "root", a networkd unit) carried over.
func TestIgnitionExamplesRender(t *testing.T) {
	p := New("ignition")
	file := rendered(t, p, "ignition_file", map[string]cty.Value{"filesystem": cty.StringVal("root"), "path": cty.StringVal("/etc/hostname"),
		"mode": cty.NumberIntVal(420), "content": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"content": cty.StringVal("node-01")})})})
	user := rendered(t, p, "ignition_user", map[string]cty.Value{"name": cty.StringVal("core"),
		"password_hash": cty.StringVal("$5$XMoeOXG6$8WZoUCLhh8L/KYhsJN2pIRb3asZ2Xos3rJla.FA1TI7"), "ssh_authorized_keys": strs("ssh-ed25519 AAAA test")})
	netd := rendered(t, p, "ignition_networkd_unit", map[string]cty.Value{"name": cty.StringVal("00-wired.network"), "content": cty.StringVal("[Match]\nName=eth0\n[Network]\nDHCP=yes\n")})
	unit := rendered(t, p, "ignition_systemd_unit", map[string]cty.Value{"name": cty.StringVal("etcd-member.service"),
		"dropin": cty.ListVal([]cty.Value{cty.ObjectVal(map[string]cty.Value{"name": cty.StringVal("20-etcd-member.conf"), "content": cty.StringVal("[Service]\nEnvironment=X=1\n")})})})
	cfg := rendered(t, p, "ignition_config", map[string]cty.Value{"users": strs(user), "files": strs(file), "networkd": strs(netd), "systemd": strs(unit)})

	c, r, err := v3_3.Parse([]byte(cfg))
	if err != nil {
		t.Fatalf("Ignition refuses the config: %v %s\n%s", err, r.String(), cfg)
	}
	if c.Ignition.Version != "3.3.0" || len(c.Passwd.Users) != 1 || c.Passwd.Users[0].Name != "core" || len(c.Passwd.Users[0].SSHAuthorizedKeys) != 1 {
		t.Errorf("users: %+v", c.Passwd)
	}
	paths := map[string]string{}
	for _, f := range c.Storage.Files {
		paths[f.Path] = *f.Contents.Source
	}
	if src := paths["/etc/hostname"]; src != "data:text/plain;charset=utf-8;base64,bm9kZS0wMQ==" {
		t.Errorf("/etc/hostname: %q", src)
	}
	if _, ok := paths["/etc/systemd/network/00-wired.network"]; !ok {
		t.Errorf("the networkd unit is not a file in /etc/systemd/network: %v", paths)
	}
	if len(c.Systemd.Units) != 1 || !*c.Systemd.Units[0].Enabled || len(c.Systemd.Units[0].Dropins) != 1 {
		t.Errorf("units: %+v", c.Systemd.Units)
	}

	// Mistakes get errors that say what to do.
	for name, tc := range map[string]struct {
		typ   string
		attrs map[string]cty.Value
		want  string
	}{
		"id for rendered":  {"ignition_config", map[string]cty.Value{"files": strs("0123abcd")}, "using .rendered and not .id"},
		"other filesystem": {"ignition_file", map[string]cty.Value{"filesystem": cty.StringVal("data"), "path": cty.StringVal("/x")}, "root filesystem"},
		"relative path":    {"ignition_file", map[string]cty.Value{"path": cty.StringVal("etc/x")}, "not valid Ignition"},
		"bad unit name":    {"ignition_systemd_unit", map[string]cty.Value{"name": cty.StringVal("noext")}, "not valid Ignition"},
		"networkd path":    {"ignition_networkd_unit", map[string]cty.Value{"name": cty.StringVal("../x.network")}, "not a path"},
		"null path":        {"ignition_file", map[string]cty.Value{"path": cty.NullVal(cty.String)}, "path is required"},
		"null name":        {"ignition_user", map[string]cty.Value{"name": cty.NullVal(cty.String)}, "name is required"},
		"null block": {"ignition_file", map[string]cty.Value{"path": cty.StringVal("/x"),
			"content": cty.ListVal([]cty.Value{cty.NullVal(cty.Object(map[string]cty.Type{"mime": cty.String, "content": cty.String}))})}, ""},
	} {
		_, err := readData(t, p, tc.typ, tc.attrs)
		if tc.want == "" {
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", name, err, tc.want)
		}
	}
}
