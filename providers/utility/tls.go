package utility

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/md5"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"strings"

	"fiat/providers"

	"github.com/zclconf/go-cty/cty"
	"golang.org/x/crypto/ssh"
)

var tlsPrivateKey = resource{schema: providers.ResourceSchema{Attributes: map[string]providers.Attribute{
	"algorithm":                     {Type: cty.String, Required: true, ForceNew: true, Description: `"RSA", "ECDSA" or "ED25519"`},
	"rsa_bits":                      {Type: cty.Number, Optional: true, ForceNew: true, Default: cty.NumberIntVal(2048)},
	"ecdsa_curve":                   {Type: cty.String, Optional: true, ForceNew: true, Default: cty.StringVal("P224")},
	"id":                            {Type: cty.String, Computed: true},
	"private_key_pem":               {Type: cty.String, Computed: true, Sensitive: true},
	"private_key_pem_pkcs8":         {Type: cty.String, Computed: true, Sensitive: true},
	"private_key_openssh":           {Type: cty.String, Computed: true, Sensitive: true},
	"public_key_pem":                {Type: cty.String, Computed: true},
	"public_key_openssh":            {Type: cty.String, Computed: true},
	"public_key_fingerprint_md5":    {Type: cty.String, Computed: true},
	"public_key_fingerprint_sha256": {Type: cty.String, Computed: true},
}}, make: makePrivateKey}

func makePrivateKey(_ context.Context, c cty.Value) (cty.Value, error) {
	var key crypto.Signer
	var pemBlock *pem.Block
	var err error
	switch alg := strings.ToUpper(c.GetAttr("algorithm").AsString()); alg {
	case "RSA":
		bits, berr := intAttr(c, "rsa_bits", 2048)
		if berr != nil || bits < 1024 || bits > 16384 {
			return cty.NilVal, fmt.Errorf("rsa_bits must be from 1024 to 16384")
		}
		var k *rsa.PrivateKey
		if k, err = rsa.GenerateKey(rand.Reader, int(bits)); err == nil {
			key, pemBlock = k, &pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)}
		}
	case "ECDSA":
		curves := map[string]elliptic.Curve{"P224": elliptic.P224(), "P256": elliptic.P256(), "P384": elliptic.P384(), "P521": elliptic.P521()}
		curve, ok := curves[strings.ToUpper(c.GetAttr("ecdsa_curve").AsString())]
		if !ok {
			return cty.NilVal, fmt.Errorf("ecdsa_curve must be P224, P256, P384 or P521")
		}
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.GenerateKey(curve, rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalECPrivateKey(k); err == nil {
				key, pemBlock = k, &pem.Block{Type: "EC PRIVATE KEY", Bytes: der}
			}
		}
	case "ED25519":
		var k ed25519.PrivateKey
		if _, k, err = ed25519.GenerateKey(rand.Reader); err == nil {
			var der []byte
			if der, err = x509.MarshalPKCS8PrivateKey(k); err == nil {
				key, pemBlock = k, &pem.Block{Type: "PRIVATE KEY", Bytes: der}
			}
		}
	default:
		return cty.NilVal, fmt.Errorf("algorithm %q: want RSA, ECDSA or ED25519", alg)
	}
	if err != nil {
		return cty.NilVal, fmt.Errorf("generate key: %w", err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return cty.NilVal, err
	}
	pubDER, err := x509.MarshalPKIXPublicKey(key.Public())
	if err != nil {
		return cty.NilVal, err
	}
	computed := map[string]cty.Value{
		"private_key_pem":       cty.StringVal(string(pem.EncodeToMemory(pemBlock))),
		"private_key_pem_pkcs8": cty.StringVal(string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8}))),
		"public_key_pem":        cty.StringVal(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))),
		"id":                    cty.StringVal(hex.EncodeToString(sha1Sum(pubDER))),
		// OpenSSH has no P224: those keys have no OpenSSH form (as upstream).
		"private_key_openssh":           cty.StringVal(""),
		"public_key_openssh":            cty.StringVal(""),
		"public_key_fingerprint_md5":    cty.StringVal(""),
		"public_key_fingerprint_sha256": cty.StringVal(""),
	}
	if pub, err := ssh.NewPublicKey(key.Public()); err == nil {
		computed["public_key_openssh"] = cty.StringVal(string(ssh.MarshalAuthorizedKey(pub)))
		computed["public_key_fingerprint_sha256"] = cty.StringVal(ssh.FingerprintSHA256(pub))
		sum := md5.Sum(pub.Marshal())
		parts := make([]string, len(sum))
		for i, b := range sum {
			parts[i] = fmt.Sprintf("%02x", b)
		}
		computed["public_key_fingerprint_md5"] = cty.StringVal(strings.Join(parts, ":"))
		if blk, err := ssh.MarshalPrivateKey(key, ""); err == nil {
			computed["private_key_openssh"] = cty.StringVal(string(pem.EncodeToMemory(blk)))
		}
	}
	return withComputed(c, computed), nil
}

func sha1Sum(b []byte) []byte {
	s := sha1.Sum(b)
	return s[:]
}
