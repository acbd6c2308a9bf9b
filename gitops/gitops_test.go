package gitops

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"testing"
)

func TestWebhookSignatures(t *testing.T) {
	payload := []byte(`{"ref":"refs/heads/main"}`)
	mac := hmac.New(sha256.New, []byte("s3cret"))
	mac.Write(payload)
	sig := hex.EncodeToString(mac.Sum(nil))
	for _, tc := range []struct {
		kind, header, value string
		want                bool
	}{
		{"github", "X-Hub-Signature-256", "sha256=" + sig, true},
		{"github", "X-Hub-Signature-256", sig, false}, // no "sha256=" prefix
		{"github", "X-Hub-Signature-256", "sha256=" + sig[:62] + "00", false},
		{"gitea", "X-Gitea-Signature", sig, true},
		{"gitea", "X-Gitea-Signature", "zz", false},
		{"gitlab", "X-Gitlab-Token", "s3cret", true},
		{"gitlab", "X-Gitlab-Token", "", false},
		{"gitlab", "X-Gitlab-Token", "s3cre", false},
		{"bitbucket", "X-Hub-Signature-256", "sha256=" + sig, false}, // unknown sender
	} {
		h := http.Header{}
		h.Set(tc.header, tc.value)
		if got := verify(tc.kind, h, payload, "s3cret"); got != tc.want {
			t.Errorf("%s %s=%q: %v, want %v", tc.kind, tc.header, tc.value, got, tc.want)
		}
	}
}

func TestNamesStayInside(t *testing.T) {
	for _, bad := range []string{"", ".", "..", "../x", "a/b", `a\b`, ".hidden", "x\x00"} {
		if validName("repo", bad) == nil {
			t.Errorf("repo name %q accepted", bad)
		}
	}
	for _, bad := range []string{"..", "../etc", "a/../../etc", "/etc"} {
		if _, err := validDir(bad); err == nil {
			t.Errorf("directory %q accepted", bad)
		}
	}
	for in, want := range map[string]string{"": "", ".": "", "stacks/prod": "stacks/prod", "stacks//prod/": "stacks/prod", "a/../b": "b"} {
		if got, err := validDir(in); err != nil || got != want {
			t.Errorf("validDir(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}
