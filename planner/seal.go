package planner

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// A saved plan on disk is an envelope around the plan body:
//
//	{"format_version":3,"digest":"sha256:…","signature":"hmac-sha256:…","plan":{…}}
//
// digest is the sha256 of the body's bytes exactly as written; signature an
// HMAC-SHA256 of the digest, keyed by the plan key of the store the plan was
// made against. The envelope itself must be byte for byte what Seal writes,
// so no byte of the file can change unnoticed.
type envelope struct {
	Version   int             `json:"format_version"`
	Digest    string          `json:"digest"`
	Signature string          `json:"signature"`
	Plan      json.RawMessage `json:"plan"`
}

// ErrTampered marks a plan file whose content is not what was sealed.
var ErrTampered = errors.New("the plan file was changed after it was saved")

// Sealed is a plan file read back: its plan, its digest (checked against
// the body) and its signature (checked by Verify, against the store).
type Sealed struct {
	File      *File
	Digest    string // hex sha256 of the body: the plan's identity
	signature []byte
}

// Seal renders the plan with its digest and signature.
func (f *File) Seal(key []byte) (data []byte, digest string, err error) {
	body, err := f.Body()
	if err != nil {
		return nil, "", err
	}
	digest = Digest(body)
	env := envelope{Version: FileVersion, Digest: "sha256:" + digest, Signature: "hmac-sha256:" + hex.EncodeToString(sign(key, digest)),
		Plan: body}
	data, err = encodeEnvelope(env)
	return data, digest, err
}

func encodeEnvelope(env envelope) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(env); err != nil {
		return nil, fmt.Errorf("encode plan: %w", err)
	}
	return buf.Bytes(), nil
}

func sign(key []byte, digest string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(digest))
	return m.Sum(nil)
}

// Digest is the sha256 of a plan body, shown to the user as its identity.
func Digest(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Unseal reads a sealed plan and checks that its body matches its digest
// and that the file is exactly as sealed. It does not check the signature:
// that needs the store (Verify).
func Unseal(data []byte) (*Sealed, error) {
	var probe struct {
		Version int `json:"format_version"`
	}
	if err := json.Unmarshal(data, &probe); err != nil {
		return nil, fmt.Errorf("not a fiat plan file: %w", err)
	}
	if probe.Version != FileVersion {
		return nil, fmt.Errorf("plan format version %d, this fiat reads %d (make the plan again)", probe.Version, FileVersion)
	}
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&env); err != nil {
		return nil, fmt.Errorf("not a fiat plan file: %w", err)
	}
	digest, ok := strings.CutPrefix(env.Digest, "sha256:")
	if !ok {
		return nil, fmt.Errorf("%w: its digest %q is not sha256:HEX", ErrTampered, env.Digest)
	}
	if got := Digest(env.Plan); got != digest {
		return nil, fmt.Errorf("%w: its plan has sha256:%s, the file says sha256:%s", ErrTampered, got, digest)
	}
	sig, err := hex.DecodeString(strings.TrimPrefix(env.Signature, "hmac-sha256:"))
	if err != nil || !strings.HasPrefix(env.Signature, "hmac-sha256:") {
		return nil, fmt.Errorf("%w: its signature is malformed", ErrTampered)
	}
	if canon, err := encodeEnvelope(env); err != nil || !bytes.Equal(canon, data) {
		return nil, fmt.Errorf("%w: bytes outside the plan were edited", ErrTampered)
	}
	f, err := decodeBody(env.Plan)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrTampered, err)
	}
	return &Sealed{File: f, Digest: digest, signature: sig}, nil
}

// Verify checks the signature with the plan key of the store the plan is
// applied to. A plan signed by another store, or by no store, fails.
func (s *Sealed) Verify(key []byte) error {
	if !hmac.Equal(s.signature, sign(key, s.Digest)) {
		return fmt.Errorf("%w: its signature is not this store's (a plan file can only be made by `fiat plan -out` with access to the store)", ErrTampered)
	}
	return nil
}

// Save seals the plan and writes it atomically (temp file, fsync, rename),
// readable only by its owner. It returns the digest.
func (f *File) Save(path string, key []byte) (string, error) {
	b, digest, err := f.Seal(key)
	if err != nil {
		return "", err
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), ".fiat-plan-*")
	if err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	// Plans may hold the store's view of sensitive attributes.
	if err := tmp.Chmod(0o600); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("save plan %s: %w", path, err)
	}
	return digest, nil
}

// Load reads and unseals a saved plan file.
func Load(path string) (*Sealed, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	s, err := Unseal(b)
	if err != nil {
		return nil, fmt.Errorf("read plan %s: %w", path, err)
	}
	return s, nil
}
