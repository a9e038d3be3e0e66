// Package config reads forgelink's configuration from the environment and
// rejects a bad one at start-up with one line naming the variable.
//
//	cfg, err := config.FromEnv(os.LookupEnv)
//	if err != nil {
//		fmt.Fprintln(os.Stderr, err) // e.g. "config: FORGELINK_PUBLIC_URL: ..."
//		os.Exit(2)
//	}
package config

import (
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"
)

// Config is forgelink's configuration. Every field comes from one variable.
type Config struct {
	Addr          string // FORGELINK_ADDR
	PublicURL     string // FORGELINK_PUBLIC_URL, without trailing slash; "" means derive it (see LocalDefaults)
	DataDir       string // FORGELINK_DATA
	APIToken      string // FORGELINK_API_TOKEN ("" in local mode: generated)
	APIUser       string // FORGELINK_API_USER: the login the API token belongs to
	GitHubAPIURL  string // GITHUB_API_URL, with trailing slash
	GitHubToken   string // GITHUB_TOKEN
	OAuthClientID string // GITHUB_OAUTH_CLIENT_ID
	// OAuthSecret is GITHUB_OAUTH_CLIENT_SECRET; in AWS it is read from the
	// SSM SecureString parameter FORGELINK_GITHUB_OAUTH_SECRET_PARAM names.
	OAuthSecret string
	// BitbucketKey and BitbucketSecret are BITBUCKET_OAUTH_KEY and
	// BITBUCKET_OAUTH_SECRET (in AWS: FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM).
	BitbucketKey    string
	BitbucketSecret string
	// SecretParams name the SSM parameters that hold the OAuth secrets in
	// AWS: FORGELINK_GITHUB_OAUTH_SECRET_PARAM, FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM.
	GitHubSecretParam    string
	BitbucketSecretParam string
	GitHubWebURL         string // GITHUB_WEB_URL: GitHub's web host, without trailing slash (default https://github.com)
	BitbucketWeb         string // BITBUCKET_WEB_URL: Bitbucket's web host (default https://bitbucket.org)
	// SweepInterval is FORGELINK_SWEEP_INTERVAL: how often make run checks
	// org access (default 15m; 0 = off).
	SweepInterval time.Duration
	BitbucketURL  string // BITBUCKET_API_URL, with trailing slash
	BitbucketTok  string // BITBUCKET_TOKEN
	LogLevel      string // FORGELINK_LOG_LEVEL: debug, info, warn, error
	Workers       int    // FORGELINK_WORKERS: deliveries (and status posts) evaluated at once by make run (default 16)
	MaxReceives   int    // FORGELINK_MAX_RECEIVES: tries before a delivery is dead; the intake queue's maxReceiveCount in AWS (default 5)

	// AWS resources, from template.yaml.
	DynamoDBEndpoint string // DYNAMODB_ENDPOINT: a local DynamoDB server
	ProjectsTable    string // FORGELINK_PROJECTS_TABLE
	DeliveriesTable  string // FORGELINK_DELIVERIES_TABLE
	KMSKeyID         string // FORGELINK_KMS_KEY_ID
	IntakeQueueURL   string // FORGELINK_INTAKE_QUEUE_URL
	PipelinesTable   string // FORGELINK_PIPELINES_TABLE
	KeysTable        string // FORGELINK_KEYS_TABLE
	UsersTable       string // FORGELINK_USERS_TABLE
	PipelinesQueue   string // FORGELINK_PIPELINES_QUEUE_URL: created pipelines, for the executor
	StatusQueue      string // FORGELINK_STATUS_QUEUE_URL: commit status requests
}

// LookupEnv is os.LookupEnv's signature, so tests can pass a map.
type LookupEnv func(string) (string, bool)

// FromEnv reads and validates the configuration.
func FromEnv(lookup LookupEnv) (*Config, error) {
	get := func(k, def string) string {
		if v, ok := lookup(k); ok && strings.TrimSpace(v) != "" {
			return strings.TrimSpace(v)
		}
		return def
	}
	c := &Config{
		Addr:                 get("FORGELINK_ADDR", ":8080"),
		PublicURL:            strings.TrimRight(get("FORGELINK_PUBLIC_URL", ""), "/"),
		DataDir:              get("FORGELINK_DATA", ".forgelink"),
		APIToken:             get("FORGELINK_API_TOKEN", ""),
		APIUser:              get("FORGELINK_API_USER", "local"),
		GitHubAPIURL:         withSlash(get("GITHUB_API_URL", "https://api.github.com/")),
		GitHubToken:          get("GITHUB_TOKEN", ""),
		OAuthClientID:        get("GITHUB_OAUTH_CLIENT_ID", ""),
		OAuthSecret:          get("GITHUB_OAUTH_CLIENT_SECRET", ""),
		BitbucketKey:         get("BITBUCKET_OAUTH_KEY", ""),
		BitbucketSecret:      get("BITBUCKET_OAUTH_SECRET", ""),
		GitHubSecretParam:    get("FORGELINK_GITHUB_OAUTH_SECRET_PARAM", ""),
		BitbucketSecretParam: get("FORGELINK_BITBUCKET_OAUTH_SECRET_PARAM", ""),
		GitHubWebURL:         strings.TrimRight(get("GITHUB_WEB_URL", "https://github.com"), "/"),
		BitbucketWeb:         strings.TrimRight(get("BITBUCKET_WEB_URL", "https://bitbucket.org"), "/"),
		BitbucketURL:         withSlash(get("BITBUCKET_API_URL", "https://api.bitbucket.org/2.0/")),
		BitbucketTok:         get("BITBUCKET_TOKEN", ""),
		LogLevel:             strings.ToLower(get("FORGELINK_LOG_LEVEL", "info")),
		DynamoDBEndpoint:     get("DYNAMODB_ENDPOINT", ""),
		ProjectsTable:        get("FORGELINK_PROJECTS_TABLE", ""),
		DeliveriesTable:      get("FORGELINK_DELIVERIES_TABLE", ""),
		KMSKeyID:             get("FORGELINK_KMS_KEY_ID", ""),
		IntakeQueueURL:       get("FORGELINK_INTAKE_QUEUE_URL", ""),
		PipelinesTable:       get("FORGELINK_PIPELINES_TABLE", ""),
		KeysTable:            get("FORGELINK_KEYS_TABLE", ""),
		UsersTable:           get("FORGELINK_USERS_TABLE", ""),
		PipelinesQueue:       get("FORGELINK_PIPELINES_QUEUE_URL", ""),
		StatusQueue:          get("FORGELINK_STATUS_QUEUE_URL", ""),
	}
	for _, u := range []struct{ name, value string }{
		{"FORGELINK_PUBLIC_URL", c.PublicURL},
		{"GITHUB_API_URL", c.GitHubAPIURL},
		{"BITBUCKET_API_URL", c.BitbucketURL},
		{"DYNAMODB_ENDPOINT", c.DynamoDBEndpoint},
		{"GITHUB_WEB_URL", c.GitHubWebURL},
		{"BITBUCKET_WEB_URL", c.BitbucketWeb},
	} {
		if u.value == "" {
			continue
		}
		if err := checkURL(u.value); err != nil {
			return nil, fmt.Errorf("config: %s: %q %v", u.name, u.value, err)
		}
	}
	switch c.LogLevel {
	case "debug", "info", "warn", "error":
	default:
		return nil, fmt.Errorf("config: FORGELINK_LOG_LEVEL: %q is not one of debug, info, warn, error", c.LogLevel)
	}
	for _, n := range []struct {
		name     string
		def, max int
		dst      *int
	}{{"FORGELINK_WORKERS", 16, 256, &c.Workers}, {"FORGELINK_MAX_RECEIVES", 5, 1000, &c.MaxReceives}} {
		*n.dst = n.def
		if v := get(n.name, ""); v != "" {
			i, err := strconv.Atoi(v)
			if err != nil || i < 1 || i > n.max {
				return nil, fmt.Errorf("config: %s: %q is not a number from 1 to %d", n.name, v, n.max)
			}
			*n.dst = i
		}
	}
	c.SweepInterval = 15 * time.Minute
	if v := get("FORGELINK_SWEEP_INTERVAL", ""); v != "" {
		d, err := time.ParseDuration(v)
		if v == "0" {
			d, err = 0, nil
		}
		if err != nil || d < 0 || (d > 0 && d < time.Minute) {
			return nil, fmt.Errorf("config: FORGELINK_SWEEP_INTERVAL: %q is not a duration of at least 1m (e.g. 15m), or 0 for off", v)
		}
		c.SweepInterval = d
	}
	if c.APIToken != "" && len(c.APIToken) < 16 {
		return nil, fmt.Errorf("config: FORGELINK_API_TOKEN: must be at least 16 characters")
	}
	return c, nil
}

// LocalDefaults fills what the one-process server derives rather than
// requires: the public URL from the listen address.
func (c *Config) LocalDefaults() {
	if c.PublicURL == "" {
		host := c.Addr
		if strings.HasPrefix(host, ":") {
			host = "localhost" + host
		}
		c.PublicURL = "http://" + host
	}
}

// RequireAWS checks the variables a Lambda function needs.
func (c *Config) RequireAWS(names ...string) error {
	vals := map[string]string{
		"FORGELINK_PROJECTS_TABLE":      c.ProjectsTable,
		"FORGELINK_DELIVERIES_TABLE":    c.DeliveriesTable,
		"FORGELINK_KMS_KEY_ID":          c.KMSKeyID,
		"FORGELINK_INTAKE_QUEUE_URL":    c.IntakeQueueURL,
		"FORGELINK_API_TOKEN":           c.APIToken,
		"FORGELINK_PIPELINES_TABLE":     c.PipelinesTable,
		"FORGELINK_KEYS_TABLE":          c.KeysTable,
		"FORGELINK_USERS_TABLE":         c.UsersTable,
		"FORGELINK_PIPELINES_QUEUE_URL": c.PipelinesQueue,
		"FORGELINK_STATUS_QUEUE_URL":    c.StatusQueue,
	}
	for _, n := range names {
		v, known := vals[n]
		if !known {
			return fmt.Errorf("config: unknown variable %s", n)
		}
		if v == "" {
			return fmt.Errorf("config: %s: not set (template.yaml sets it in AWS; see README for local use)", n)
		}
	}
	return nil
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("must start with http:// or https://")
	}
	if u.Host == "" {
		return fmt.Errorf("has no host")
	}
	return nil
}

func withSlash(s string) string {
	if strings.HasSuffix(s, "/") {
		return s
	}
	return s + "/"
}

// Logger returns the JSON logger at FORGELINK_LOG_LEVEL that every
// function and the local server write with.
func (c *Config) Logger() *slog.Logger {
	var l slog.Level
	_ = l.UnmarshalText([]byte(c.LogLevel))
	return slog.New(slog.NewJSONHandler(os.Stderr, &slog.HandlerOptions{Level: l}))
}
