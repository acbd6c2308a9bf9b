package utility

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path"

	"github.com/coreos/ignition/v2/config/v3_3"
	"github.com/coreos/ignition/v2/config/v3_3/types"
	"github.com/zclconf/go-cty/cty"

	"fiat/providers"
)

// The ignition provider's data sources (community-terraform-providers/
// ignition, and hashicorp/ignition before it): each renders a piece of an
// Ignition config as JSON, and ignition_config joins the pieces into one
// that a libvirt_ignition volume hands to a Fedora CoreOS or Flatcar guest.
//
// Every config renders Ignition spec 3.3.0, which Fedora CoreOS and Flatcar
// (from release 3185) read, built with Ignition's own types and validated
// by its parser. The provider's 1.x spellings, written for spec 2, still
// work: filesystem = "root" on a file is the root filesystem spec 3 implies,
// and an ignition_networkd_unit becomes the file
// /etc/systemd/network/NAME, where spec 3 puts networkd units.
const ignitionVersion = "3.3.0"

var ignitionData = map[string]dataSource{
	"ignition_config":        {schema: ignitionConfigSchema, read: readIgnitionConfig},
	"ignition_file":          {schema: ignitionFileSchema, read: readIgnitionFile},
	"ignition_directory":     {schema: ignitionDirectorySchema, read: readIgnitionDirectory},
	"ignition_link":          {schema: ignitionLinkSchema, read: readIgnitionLink},
	"ignition_user":          {schema: ignitionUserSchema, read: readIgnitionUser},
	"ignition_group":         {schema: ignitionGroupSchema, read: readIgnitionGroup},
	"ignition_systemd_unit":  {schema: ignitionUnitSchema, read: readIgnitionUnit},
	"ignition_networkd_unit": {schema: ignitionNetworkdSchema, read: readIgnitionNetworkd},
}

// rendered is every data source's output: its JSON, and an id that is
// the JSON's SHA-256, as upstream computes it.
var renderedAttrs = map[string]providers.Attribute{
	"rendered": {Type: cty.String, Computed: true, Description: "The JSON of this piece of Ignition config."},
	"id":       {Type: cty.String, Computed: true, Description: "SHA-256 of rendered."},
}

func withRendered(attrs map[string]providers.Attribute) providers.ResourceSchema {
	for k, v := range renderedAttrs {
		attrs[k] = v
	}
	return providers.ResourceSchema{Attributes: attrs}
}

func renderJSON(c cty.Value, v any) (cty.Value, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return cty.NilVal, err
	}
	return renderedText(c, string(b)), nil
}

// Helpers for optional attributes, as the pointers Ignition's types use.
func optStr(c cty.Value, name string) *string {
	if s, ok := str(c, name); ok {
		return &s
	}
	return nil
}

func optBool(c cty.Value, name string) *bool {
	if !c.Type().HasAttribute(name) || c.GetAttr(name).IsNull() {
		return nil
	}
	b := c.GetAttr(name).True()
	return &b
}

func optInt(c cty.Value, name string) (*int, error) {
	if !c.Type().HasAttribute(name) || c.GetAttr(name).IsNull() {
		return nil, nil
	}
	n, err := intAttr(c, name, 0)
	if err != nil {
		return nil, err
	}
	i := int(n)
	return &i, nil
}

// required is a required string argument: a null (say, from a variable)
// is an error, not a panic.
func required(c cty.Value, name string) (string, error) {
	if v, ok := str(c, name); ok {
		return v, nil
	}
	return "", fmt.Errorf("%s is required, and is null", name)
}

func strList(c cty.Value, name string) []string {
	if !c.Type().HasAttribute(name) || c.GetAttr(name).IsNull() {
		return nil
	}
	var out []string
	for _, v := range c.GetAttr(name).AsValueSlice() {
		if !v.IsNull() {
			out = append(out, v.AsString())
		}
	}
	return out
}

func blocks(c cty.Value, name string) []cty.Value {
	if !c.Type().HasAttribute(name) || c.GetAttr(name).IsNull() {
		return nil
	}
	var out []cty.Value
	for _, b := range c.GetAttr(name).AsValueSlice() {
		if !b.IsNull() {
			out = append(out, b)
		}
	}
	return out
}

// dataURL is inline content as upstream encodes it.
func dataURL(mime, content string) string {
	return fmt.Sprintf("data:%s;charset=utf-8;base64,%s", mime, base64.StdEncoding.EncodeToString([]byte(content)))
}

// validate checks a piece the way a guest will: as part of a config, by
// Ignition's own parser.
func validate(what string, cfg types.Config) error {
	cfg.Ignition.Version = ignitionVersion
	b, err := json.Marshal(cfg)
	if err != nil {
		return err
	}
	if _, r, err := v3_3.Parse(b); err != nil {
		return fmt.Errorf("%s is not valid Ignition %s: %v: %s", what, ignitionVersion, err, r.String())
	}
	return nil
}

var nodeAttrs = map[string]providers.Attribute{
	"path":       {Type: cty.String, Required: true, Description: "Absolute path in the guest."},
	"filesystem": {Type: cty.String, Optional: true, Description: `Spec 2's filesystem name: only "root" (the default), which spec 3 implies.`},
	"uid":        {Type: cty.Number, Optional: true},
	"gid":        {Type: cty.Number, Optional: true},
	"overwrite":  {Type: cty.Bool, Optional: true},
}

func nodeSchema(extra map[string]providers.Attribute) map[string]providers.Attribute {
	out := map[string]providers.Attribute{}
	for k, v := range nodeAttrs {
		out[k] = v
	}
	for k, v := range extra {
		out[k] = v
	}
	return out
}

func nodeOf(c cty.Value) (types.Node, error) {
	path, err := required(c, "path")
	n := types.Node{Path: path, Overwrite: optBool(c, "overwrite")}
	if err != nil {
		return n, err
	}
	if fs, ok := str(c, "filesystem"); ok && fs != "root" {
		return n, fmt.Errorf("filesystem %q: fiat renders Ignition spec 3, where every path is on the root filesystem: give the full path where that filesystem is mounted", fs)
	}
	if n.User.ID, err = optInt(c, "uid"); err != nil {
		return n, err
	}
	n.Group.ID, err = optInt(c, "gid")
	return n, err
}

var ignitionFileSchema = withRendered(nodeSchema(map[string]providers.Attribute{
	"mode": {Type: cty.Number, Optional: true, Description: "Permission bits, decimal as JSON has them (420 = 0644)."},
	"content": {Type: cty.List(cty.ObjectWithOptionalAttrs(map[string]cty.Type{"mime": cty.String, "content": cty.String}, []string{"mime"})), Optional: true,
		Description: `content { content = "...", mime = "text/plain" }: inline content.`},
	"source": {Type: cty.List(cty.ObjectWithOptionalAttrs(map[string]cty.Type{"source": cty.String, "compression": cty.String, "verification": cty.String},
		[]string{"compression", "verification"})), Optional: true,
		Description: `source { source = "https://...", compression = "gzip", verification = "sha512-..." }: content the guest fetches.`},
}))

func ignitionFileOf(c cty.Value) (types.File, error) {
	n, err := nodeOf(c)
	f := types.File{Node: n}
	if err != nil {
		return f, err
	}
	if f.Mode, err = optInt(c, "mode"); err != nil {
		return f, err
	}
	contents, sources := blocks(c, "content"), blocks(c, "source")
	switch {
	case len(contents) > 0 && len(sources) > 0:
		return f, fmt.Errorf("content and source are exclusive: give one")
	case len(contents) > 1 || len(sources) > 1:
		return f, fmt.Errorf("at most one content or source block")
	case len(contents) == 1:
		mime, ok := str(contents[0], "mime")
		if !ok {
			mime = "text/plain"
		}
		text, _ := str(contents[0], "content")
		src := dataURL(mime, text)
		f.Contents.Source = &src
	case len(sources) == 1:
		f.Contents.Source = optStr(sources[0], "source")
		f.Contents.Compression = optStr(sources[0], "compression")
		f.Contents.Verification.Hash = optStr(sources[0], "verification")
	}
	return f, nil
}

func readIgnitionFile(c cty.Value) (cty.Value, error) {
	f, err := ignitionFileOf(c)
	if err != nil {
		return cty.NilVal, err
	}
	if err := validate("the file", types.Config{Storage: types.Storage{Files: []types.File{f}}}); err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, f)
}

var ignitionDirectorySchema = withRendered(nodeSchema(map[string]providers.Attribute{
	"mode": {Type: cty.Number, Optional: true},
}))

func readIgnitionDirectory(c cty.Value) (cty.Value, error) {
	n, err := nodeOf(c)
	d := types.Directory{Node: n}
	if err == nil {
		d.Mode, err = optInt(c, "mode")
	}
	if err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, d)
}

var ignitionLinkSchema = withRendered(nodeSchema(map[string]providers.Attribute{
	"target": {Type: cty.String, Required: true},
	"hard":   {Type: cty.Bool, Optional: true},
}))

func readIgnitionLink(c cty.Value) (cty.Value, error) {
	n, err := nodeOf(c)
	if err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, types.Link{Node: n, LinkEmbedded1: types.LinkEmbedded1{Target: optStr(c, "target"), Hard: optBool(c, "hard")}})
}

var ignitionUserSchema = withRendered(map[string]providers.Attribute{
	"name":                {Type: cty.String, Required: true},
	"password_hash":       {Type: cty.String, Optional: true, Sensitive: true},
	"ssh_authorized_keys": {Type: cty.List(cty.String), Optional: true},
	"uid":                 {Type: cty.Number, Optional: true},
	"gecos":               {Type: cty.String, Optional: true},
	"home_dir":            {Type: cty.String, Optional: true},
	"no_create_home":      {Type: cty.Bool, Optional: true},
	"primary_group":       {Type: cty.String, Optional: true},
	"groups":              {Type: cty.List(cty.String), Optional: true},
	"no_user_group":       {Type: cty.Bool, Optional: true},
	"no_log_init":         {Type: cty.Bool, Optional: true},
	"shell":               {Type: cty.String, Optional: true},
	"system":              {Type: cty.Bool, Optional: true},
})

func readIgnitionUser(c cty.Value) (cty.Value, error) {
	name, err := required(c, "name")
	if err != nil {
		return cty.NilVal, err
	}
	u := types.PasswdUser{Name: name, PasswordHash: optStr(c, "password_hash"), Gecos: optStr(c, "gecos"),
		HomeDir: optStr(c, "home_dir"), NoCreateHome: optBool(c, "no_create_home"), PrimaryGroup: optStr(c, "primary_group"),
		NoUserGroup: optBool(c, "no_user_group"), NoLogInit: optBool(c, "no_log_init"), Shell: optStr(c, "shell"), System: optBool(c, "system")}
	if u.UID, err = optInt(c, "uid"); err != nil {
		return cty.NilVal, err
	}
	for _, k := range strList(c, "ssh_authorized_keys") {
		u.SSHAuthorizedKeys = append(u.SSHAuthorizedKeys, types.SSHAuthorizedKey(k))
	}
	for _, g := range strList(c, "groups") {
		u.Groups = append(u.Groups, types.Group(g))
	}
	return renderJSON(c, u)
}

var ignitionGroupSchema = withRendered(map[string]providers.Attribute{
	"name":          {Type: cty.String, Required: true},
	"gid":           {Type: cty.Number, Optional: true},
	"password_hash": {Type: cty.String, Optional: true, Sensitive: true},
	"system":        {Type: cty.Bool, Optional: true},
})

func readIgnitionGroup(c cty.Value) (cty.Value, error) {
	name, err := required(c, "name")
	if err != nil {
		return cty.NilVal, err
	}
	g := types.PasswdGroup{Name: name, PasswordHash: optStr(c, "password_hash"), System: optBool(c, "system")}
	if g.Gid, err = optInt(c, "gid"); err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, g)
}

var ignitionUnitSchema = withRendered(map[string]providers.Attribute{
	"name":    {Type: cty.String, Required: true, Description: "Unit name, e.g. etcd-member.service."},
	"enabled": {Type: cty.Bool, Optional: true, Default: cty.True},
	"mask":    {Type: cty.Bool, Optional: true},
	"content": {Type: cty.String, Optional: true},
	"dropin": {Type: cty.List(cty.ObjectWithOptionalAttrs(map[string]cty.Type{"name": cty.String, "content": cty.String}, []string{"content"})), Optional: true,
		Description: `dropin { name = "20-x.conf", content = "[Service]..." }`},
})

func readIgnitionUnit(c cty.Value) (cty.Value, error) {
	enabled := boolAttr(c, "enabled", true)
	name, err := required(c, "name")
	if err != nil {
		return cty.NilVal, err
	}
	u := types.Unit{Name: name, Enabled: &enabled, Mask: optBool(c, "mask"), Contents: optStr(c, "content")}
	for _, d := range blocks(c, "dropin") {
		name, _ := str(d, "name")
		u.Dropins = append(u.Dropins, types.Dropin{Name: name, Contents: optStr(d, "content")})
	}
	if err := validate("the unit", types.Config{Systemd: types.Systemd{Units: []types.Unit{u}}}); err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, u)
}

var ignitionNetworkdSchema = withRendered(map[string]providers.Attribute{
	"name":    {Type: cty.String, Required: true, Description: "Unit name, e.g. 00-wired.network."},
	"content": {Type: cty.String, Optional: true},
})

// networkdDir is where spec 3 configs put networkd units: as files.
const networkdDir = "/etc/systemd/network"

func readIgnitionNetworkd(c cty.Value) (cty.Value, error) {
	name, err := required(c, "name")
	if err != nil {
		return cty.NilVal, err
	}
	if path.Base(name) != name || name == "." || name == ".." {
		return cty.NilVal, fmt.Errorf("name %q: a unit's file name, not a path", name)
	}
	text, _ := str(c, "content")
	src, mode := dataURL("text/plain", text), 0o644
	return renderJSON(c, types.File{Node: types.Node{Path: path.Join(networkdDir, name)},
		FileEmbedded1: types.FileEmbedded1{Contents: types.Resource{Source: &src}, Mode: &mode}})
}

var ignitionConfigSchema = withRendered(map[string]providers.Attribute{
	"files":       {Type: cty.List(cty.String), Optional: true, Description: "rendered of ignition_file data sources."},
	"directories": {Type: cty.List(cty.String), Optional: true},
	"links":       {Type: cty.List(cty.String), Optional: true},
	"users":       {Type: cty.List(cty.String), Optional: true},
	"groups":      {Type: cty.List(cty.String), Optional: true},
	"systemd":     {Type: cty.List(cty.String), Optional: true, Description: "rendered of ignition_systemd_unit data sources."},
	"networkd":    {Type: cty.List(cty.String), Optional: true, Description: "rendered of ignition_networkd_unit data sources (files in /etc/systemd/network)."},
})

// readIgnitionConfig joins the pieces; each must be the rendered JSON of
// the matching data source, as upstream requires.
func readIgnitionConfig(c cty.Value) (cty.Value, error) {
	cfg := types.Config{Ignition: types.Ignition{Version: ignitionVersion}}
	pieces := []struct {
		attr string
		add  func([]byte) error
	}{
		{"files", func(b []byte) error { return appendJSON(b, &cfg.Storage.Files) }},
		{"networkd", func(b []byte) error { return appendJSON(b, &cfg.Storage.Files) }},
		{"directories", func(b []byte) error { return appendJSON(b, &cfg.Storage.Directories) }},
		{"links", func(b []byte) error { return appendJSON(b, &cfg.Storage.Links) }},
		{"users", func(b []byte) error { return appendJSON(b, &cfg.Passwd.Users) }},
		{"groups", func(b []byte) error { return appendJSON(b, &cfg.Passwd.Groups) }},
		{"systemd", func(b []byte) error { return appendJSON(b, &cfg.Systemd.Units) }},
	}
	for _, p := range pieces {
		for i, s := range strList(c, p.attr) {
			if err := p.add([]byte(s)); err != nil {
				return cty.NilVal, fmt.Errorf("%s[%d]: no valid JSON found, make sure you are using .rendered and not .id: %w", p.attr, i, err)
			}
		}
	}
	if err := validate("the config", cfg); err != nil {
		return cty.NilVal, err
	}
	return renderJSON(c, cfg)
}

func appendJSON[T any](b []byte, to *[]T) error {
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	*to = append(*to, v)
	return nil
}
