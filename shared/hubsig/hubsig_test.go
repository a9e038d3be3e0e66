package hubsig

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"testing"

	"forgelink/shared/forgelink"
)

func sign(secret, body string) string {
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(body))
	return Prefix + hex.EncodeToString(m.Sum(nil))
}

func TestVerify(t *testing.T) {
	body := `{"zen":"Keep it logically awesome."}`
	tests := []struct {
		name      string
		signature string
		secrets   []string
		wantErr   string // "" means valid
	}{
		{"valid", sign("s3cret", body), []string{"s3cret"}, ""},
		{"second secret during rotation", sign("old", body), []string{"new", "old"}, ""},
		{"upper-case hex", Prefix + strings.ToUpper(sign("s3cret", body)[len(Prefix):]), []string{"s3cret"}, ""},
		{"wrong secret", sign("other", body), []string{"s3cret"}, "does not match"},
		{"missing", "", []string{"s3cret"}, "missing X-Sig"},
		{"sha1", "sha1=" + strings.Repeat("0", 40), []string{"s3cret"}, "must start with"},
		{"short", Prefix + "abcd", []string{"s3cret"}, "hex digits"},
		{"not hex", Prefix + strings.Repeat("z", 64), []string{"s3cret"}, "not hex"},
		{"only empty secrets", sign("", body), []string{""}, "no webhook secret"},
		{"no secrets", sign("s3cret", body), nil, "no webhook secret"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var secrets [][]byte
			for _, s := range tc.secrets {
				secrets = append(secrets, []byte(s))
			}
			err := Verify("test", "X-Sig", []byte(body), tc.signature, secrets...)
			if tc.wantErr == "" {
				if err != nil {
					t.Fatalf("Verify = %v, want nil", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || forgelink.KindOf(err) != forgelink.Unauthorized {
				t.Errorf("Verify = %v, want an Unauthorized error containing %q", err, tc.wantErr)
			}
		})
	}
}
