package awsenv_test

import (
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"forgelink/shared/awsenv"
)

func TestFromEnv(t *testing.T) {
	tests := []struct {
		name       string
		env        map[string]string
		wantErr    string
		wantRegion string
		wantEP     string
	}{
		{name: "lambda", env: map[string]string{"AWS_REGION": "eu-west-1", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_SESSION_TOKEN": "tok"}, wantRegion: "eu-west-1"},
		{name: "default region and endpoint", env: map[string]string{"AWS_DEFAULT_REGION": "us-east-2", "AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s", "AWS_ENDPOINT_URL": "http://127.0.0.1:5000"}, wantRegion: "us-east-2", wantEP: "http://127.0.0.1:5000"},
		{name: "no region", env: map[string]string{"AWS_ACCESS_KEY_ID": "AKID", "AWS_SECRET_ACCESS_KEY": "s"}, wantErr: "AWS_REGION"},
		{name: "no credentials", env: map[string]string{"AWS_REGION": "eu-west-1"}, wantErr: "AWS_ACCESS_KEY_ID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg, err := awsenv.FromEnv(func(k string) string { return tc.env[k] })
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromEnv error = %v, want one naming %s", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cfg.Region != tc.wantRegion {
				t.Errorf("Region = %q, want %q", cfg.Region, tc.wantRegion)
			}
			if got := aws.ToString(cfg.BaseEndpoint); got != tc.wantEP {
				t.Errorf("BaseEndpoint = %q, want %q", got, tc.wantEP)
			}
			creds, err := cfg.Credentials.Retrieve(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if creds.AccessKeyID != "AKID" || creds.SessionToken != tc.env["AWS_SESSION_TOKEN"] {
				t.Errorf("credentials = %q/%q, want the environment's", creds.AccessKeyID, creds.SessionToken)
			}
		})
	}
}
