package utility

import (
	"crypto/md5"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
)

// local_file writes a file where fiat runs. It never overwrites a file it
// does not manage (it could not put it back on a rollback): preflight
// refuses that. A replacement retires the old file by renaming it aside,
// so until the commit a rollback brings the previous content back.
var localFileSchema = providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"filename":             {Type: cty.String, Required: true, ForceNew: true, LocalPath: true},
	"content":              {Type: cty.String, Optional: true, ForceNew: true},
	"sensitive_content":    {Type: cty.String, Optional: true, ForceNew: true, Sensitive: true},
	"content_base64":       {Type: cty.String, Optional: true, ForceNew: true},
	"source":               {Type: cty.String, Optional: true, ForceNew: true, LocalPath: true},
	"file_permission":      {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal("0777")},
	"directory_permission": {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal("0777")},
	"id":                   {Type: cty.String, Computed: true},
	"content_md5":          {Type: cty.String, Computed: true},
	"content_sha1":         {Type: cty.String, Computed: true},
	"content_sha256":       {Type: cty.String, Computed: true},
	"content_sha512":       {Type: cty.String, Computed: true},
	"content_base64sha256": {Type: cty.String, Computed: true},
	"content_base64sha512": {Type: cty.String, Computed: true},
}, Delete: providers.Lossy, Update: providers.Reversible}

var localFileDataSchema = providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"filename":       {Type: cty.String, Required: true, LocalPath: true},
	"content":        {Type: cty.String, Computed: true},
	"content_base64": {Type: cty.String, Computed: true},
	"id":             {Type: cty.String, Computed: true},
}}

type files struct{}

// fileUndo is the undo record of a local_file call.
type fileUndo struct {
	Op      string   `json:"op"` // "create", "retire"
	File    string   `json:"file"`
	Retired string   `json:"retired,omitempty"`
	Dirs    []string `json:"dirs,omitempty"` // directories the create made, deepest first
}

func (u fileUndo) encode() json.RawMessage {
	b, _ := json.Marshal(u)
	return b
}

func str(v cty.Value, name string) (string, bool) {
	if !v.Type().HasAttribute(name) {
		return "", false
	}
	a := v.GetAttr(name)
	if !a.IsKnown() || a.IsNull() {
		return "", false
	}
	return a.AsString(), true
}

// fileContent is the content a config asks for: exactly one of content,
// sensitive_content, content_base64 and source.
func fileContent(c cty.Value) ([]byte, error) {
	var out []byte
	n := 0
	if s, ok := str(c, "content"); ok {
		out, n = []byte(s), n+1
	}
	if s, ok := str(c, "sensitive_content"); ok {
		out, n = []byte(s), n+1
	}
	if s, ok := str(c, "content_base64"); ok {
		b, err := base64.StdEncoding.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("content_base64: %w", err)
		}
		out, n = b, n+1
	}
	if s, ok := str(c, "source"); ok {
		b, err := os.ReadFile(s)
		if err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		out, n = b, n+1
	}
	if n != 1 {
		return nil, errors.New("set exactly one of content, sensitive_content, content_base64 and source")
	}
	return out, nil
}

func hashes(b []byte) map[string]cty.Value {
	m5, s1, s256, s512 := md5.Sum(b), sha1.Sum(b), sha256.Sum256(b), sha512.Sum512(b)
	return map[string]cty.Value{
		"id":                   cty.StringVal(hex.EncodeToString(s1[:])),
		"content_md5":          cty.StringVal(hex.EncodeToString(m5[:])),
		"content_sha1":         cty.StringVal(hex.EncodeToString(s1[:])),
		"content_sha256":       cty.StringVal(hex.EncodeToString(s256[:])),
		"content_sha512":       cty.StringVal(hex.EncodeToString(s512[:])),
		"content_base64sha256": cty.StringVal(base64.StdEncoding.EncodeToString(s256[:])),
		"content_base64sha512": cty.StringVal(base64.StdEncoding.EncodeToString(s512[:])),
	}
}

func perm(c cty.Value, name string) (os.FileMode, error) {
	s, ok := str(c, name)
	if !ok {
		return 0o777, nil
	}
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n > 0o7777 {
		return 0, fmt.Errorf("%s %q: want an octal mode such as \"0644\"", name, s)
	}
	return os.FileMode(n), nil
}

func (f *files) preflight(s providers.PreflightStep, all []providers.PreflightStep) []providers.Problem {
	if s.Action != providers.ActionCreate || !s.Config.IsKnown() {
		return nil
	}
	name, ok := str(s.Config, "filename")
	if !ok {
		return nil
	}
	if _, err := os.Lstat(name); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	for _, o := range all { // the file this plan deletes or replaces
		if o.Action == providers.ActionDelete && o.Type == "local_file" && o.Prior != cty.NilVal {
			if prior, ok := str(o.Prior, "filename"); ok && prior == name {
				return nil
			}
		}
	}
	return []providers.Problem{{Address: s.Address, Message: fmt.Sprintf("%s exists and fiat does not manage it: fiat will not overwrite a file it could not restore on a rollback. Remove it, or choose another filename", name)}}
}

func (f *files) create(req providers.CreateRequest) (providers.CreateResponse, error) {
	name, _ := str(req.Config, "filename")
	content, err := fileContent(req.Config)
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	fileMode, err := perm(req.Config, "file_permission")
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	dirMode, err := perm(req.Config, "directory_permission")
	if err != nil {
		return providers.CreateResponse{}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	undo := fileUndo{Op: "create", File: name}
	for d := filepath.Dir(name); ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		undo.Dirs = append(undo.Dirs, d) // deepest first
	}
	if err := os.MkdirAll(filepath.Dir(name), dirMode); err != nil {
		return providers.CreateResponse{Undo: undo.encode()}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	if err := writeAtomic(name, content, fileMode); err != nil {
		return providers.CreateResponse{Undo: undo.encode()}, fmt.Errorf("create %s: %w", req.Address, err)
	}
	st := withComputed(req.Config, hashes(content))
	return providers.CreateResponse{ID: st.GetAttr("id").AsString(), State: st, Undo: undo.encode()}, nil
}

// writeAtomic writes through a temporary file renamed into place, so a
// crash leaves the old state or the new, never half a file.
func writeAtomic(name string, b []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(name), ".fiat-write-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), name)
}

// retiredName is where a retired file waits for its purge: beside it,
// hidden, named by the file's content hash (its ID), so the purge finds it
// from the stored state alone.
func retiredName(name, id string) string {
	if len(id) > 12 {
		id = id[:12]
	}
	return filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".fiat-retired-"+id)
}

func (f *files) retire(req providers.RetireRequest) (providers.RetireResponse, error) {
	name, _ := str(req.State, "filename")
	ret := retiredName(name, req.ID)
	if err := os.Rename(name, ret); errors.Is(err, os.ErrNotExist) {
		return providers.RetireResponse{Undo: noUndo}, nil // gone already: nothing to bring back
	} else if err != nil {
		return providers.RetireResponse{}, fmt.Errorf("retire %s: %w", req.Address, err)
	}
	return providers.RetireResponse{Undo: fileUndo{Op: "retire", File: name, Retired: ret}.encode()}, nil
}

func (f *files) purge(req providers.PurgeRequest) error {
	name, ok := str(req.State, "filename")
	if !ok {
		return nil
	}
	if err := os.Remove(retiredName(name, req.ID)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("purge %s: %w", req.Address, err)
	}
	return nil
}

func (f *files) undo(req providers.UndoRequest) error {
	var u fileUndo
	if err := json.Unmarshal(req.Undo, &u); err != nil {
		return fmt.Errorf("undo %s: %w", req.Address, err)
	}
	switch u.Op {
	case "create":
		if err := os.Remove(u.File); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("undo %s: %w", req.Address, err)
		}
		for _, d := range u.Dirs {
			os.Remove(d) // only if empty; what another wrote there stays
		}
	case "retire":
		if _, err := os.Lstat(u.Retired); errors.Is(err, os.ErrNotExist) {
			return nil // undone already
		}
		if err := os.Rename(u.Retired, u.File); err != nil {
			return fmt.Errorf("undo %s: %w", req.Address, err)
		}
	}
	return nil
}

// read reports the file as it is: gone, or changed (drift).
func (f *files) read(req providers.ReadRequest) (providers.ReadResponse, error) {
	if req.State == cty.NilVal || req.State.IsNull() {
		return providers.ReadResponse{}, nil
	}
	name, _ := str(req.State, "filename")
	b, err := os.ReadFile(name)
	if errors.Is(err, os.ErrNotExist) {
		return providers.ReadResponse{}, nil
	}
	if err != nil {
		return providers.ReadResponse{}, fmt.Errorf("read %s: %w", req.Address, err)
	}
	st := req.State
	if h := hashes(b); !h["id"].RawEquals(st.GetAttr("id")) {
		attrs := st.AsValueMap()
		for k, v := range h {
			attrs[k] = v
		}
		for _, a := range []string{"content", "sensitive_content"} {
			if _, set := str(st, a); set {
				attrs[a] = cty.StringVal(string(b))
			}
		}
		if _, set := str(st, "content_base64"); set {
			attrs["content_base64"] = cty.StringVal(base64.StdEncoding.EncodeToString(b))
		}
		st = cty.ObjectVal(attrs)
	}
	return providers.ReadResponse{Exists: true, State: st}, nil
}

// settle decides a create or retire whose outcome is unknown by looking at
// the files.
func (f *files) settle(req providers.SettleRequest) (providers.SettleResponse, error) {
	switch req.Action {
	case providers.ActionCreate:
		name, _ := str(req.Config, "filename")
		want, err := fileContent(req.Config)
		if err != nil {
			return providers.SettleResponse{}, nil
		}
		got, err := os.ReadFile(name)
		if err != nil || string(got) != string(want) {
			return providers.SettleResponse{}, nil
		}
		st := withComputed(req.Config, hashes(got))
		return providers.SettleResponse{TookEffect: true, ID: st.GetAttr("id").AsString(), State: st,
			Undo: fileUndo{Op: "create", File: name}.encode()}, nil
	case providers.ActionDelete:
		name, _ := str(req.Prior, "filename")
		ret := retiredName(name, req.ID)
		if _, err := os.Lstat(ret); err == nil {
			return providers.SettleResponse{TookEffect: true, ID: req.ID, Undo: fileUndo{Op: "retire", File: name, Retired: ret}.encode()}, nil
		}
	}
	return providers.SettleResponse{}, nil
}

func readLocalFileData(c cty.Value) (cty.Value, error) {
	name, _ := str(c, "filename")
	b, err := os.ReadFile(name)
	if err != nil {
		return cty.NilVal, err
	}
	sum := sha1.Sum(b)
	return withComputed(c, map[string]cty.Value{"content": cty.StringVal(string(b)),
		"content_base64": cty.StringVal(base64.StdEncoding.EncodeToString(b)), "id": cty.StringVal(hex.EncodeToString(sum[:]))}), nil
}
