package config

import (
	"strings"
	"testing"
)

func env(m map[string]string) LookupEnv {
	return func(k string) (string, bool) { v, ok := m[k]; return v, ok }
}

func TestFromEnvDefaults(t *testing.T) {
	c, err := FromEnv(env(nil))
	if err != nil {
		t.Fatal(err)
	}
	c.LocalDefaults()
	if c.Addr != ":8080" || c.PublicURL != "http://localhost:8080" || c.GitHubAPIURL != "https://api.github.com/" || c.BitbucketURL != "https://api.bitbucket.org/2.0/" || c.DataDir != ".forgelink" {
		t.Errorf("defaults = %+v", c)
	}
}

func TestFromEnvGHE(t *testing.T) {
	c, err := FromEnv(env(map[string]string{"GITHUB_API_URL": "https://ghe.example.com/api/v3", "FORGELINK_PUBLIC_URL": "https://ci.example.com/"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.GitHubAPIURL, "https://ghe.example.com/api/v3/"; got != want {
		t.Errorf("GitHubAPIURL = %q, want %q", got, want)
	}
	if got, want := c.PublicURL, "https://ci.example.com"; got != want {
		t.Errorf("PublicURL = %q, want %q", got, want)
	}
}

func TestFromEnvRejects(t *testing.T) {
	tests := []struct {
		name    string
		env     map[string]string
		wantVar string
	}{
		{"public url without scheme", map[string]string{"FORGELINK_PUBLIC_URL": "ci.example.com"}, "FORGELINK_PUBLIC_URL"},
		{"github url ftp", map[string]string{"GITHUB_API_URL": "ftp://x/"}, "GITHUB_API_URL"},
		{"dynamodb endpoint no host", map[string]string{"DYNAMODB_ENDPOINT": "http://"}, "DYNAMODB_ENDPOINT"},
		{"log level", map[string]string{"FORGELINK_LOG_LEVEL": "loud"}, "FORGELINK_LOG_LEVEL"},
		{"short token", map[string]string{"FORGELINK_API_TOKEN": "abc"}, "FORGELINK_API_TOKEN"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromEnv(env(tc.env))
			if err == nil {
				t.Fatal("FromEnv succeeded, want an error")
			}
			if !strings.Contains(err.Error(), tc.wantVar) || strings.Contains(err.Error(), "\n") {
				t.Errorf("error %q: want one line naming %s", err, tc.wantVar)
			}
		})
	}
}

func TestRequireAWS(t *testing.T) {
	c, _ := FromEnv(env(map[string]string{"FORGELINK_PROJECTS_TABLE": "p"}))
	if err := c.RequireAWS("FORGELINK_PROJECTS_TABLE"); err != nil {
		t.Errorf("RequireAWS(set) = %v", err)
	}
	if err := c.RequireAWS("FORGELINK_DELIVERIES_TABLE"); err == nil || !strings.Contains(err.Error(), "FORGELINK_DELIVERIES_TABLE") {
		t.Errorf("RequireAWS(unset) = %v, want error naming the variable", err)
	}
}
