package ssmsecrets

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"forgelink/shared/awslocal"
	"forgelink/shared/config"
)

func awsConfig(endpoint string) aws.Config {
	return aws.Config{
		Region:       "eu-west-1",
		Credentials:  credentials.NewStaticCredentialsProvider("AKIDTEST", "secret", "session-token"),
		BaseEndpoint: aws.String(endpoint),
	}
}

// TestLoadFromLocalSSM reads SecureString parameters from a real SSM API
// (moto_server): the values land in the configuration; a missing parameter
// stops start-up with an error naming the variable, the parameter and
// SSM's error type.
func TestLoadFromLocalSSM(t *testing.T) {
	endpoint, stop, err := awslocal.Start(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(stop)
	c := &Client{Config: awsConfig(endpoint)}
	gh, bb := "forgelink/test/"+t.Name()+"/github", "forgelink/test/"+t.Name()+"/bitbucket"
	for name, value := range map[string]string{gh: "gh-secret-value", bb: "bb-secret-value"} {
		body, _ := json.Marshal(map[string]any{"Name": name, "Value": value, "Type": "SecureString", "Overwrite": true})
		if err := c.call(t.Context(), "PutParameter", body, &struct{}{}); err != nil {
			t.Fatalf("PutParameter %s: %v", name, err)
		}
	}

	cfg := &config.Config{GitHubSecretParam: gh, BitbucketSecretParam: bb}
	if err := Load(t.Context(), c, cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.OAuthSecret != "gh-secret-value" || cfg.BitbucketSecret != "bb-secret-value" {
		t.Errorf("secrets = %q, %q; want the parameters' values", cfg.OAuthSecret, cfg.BitbucketSecret)
	}

	missing := &config.Config{GitHubSecretParam: "forgelink/test/no-such-parameter"}
	err = Load(t.Context(), c, missing)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Type != "ParameterNotFound" {
		t.Fatalf("Load of a missing parameter: %v; want SSM's ParameterNotFound", err)
	}
	for _, want := range []string{"FORGELINK_GITHUB_OAUTH_SECRET_PARAM", "forgelink/test/no-such-parameter"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %s", err, want)
		}
	}
	if missing.OAuthSecret != "" {
		t.Errorf("OAuthSecret = %q after a failed read", missing.OAuthSecret)
	}
}

// TestClientAnswers drives the client against a server that answers as SSM
// does: signed requests, its error bodies, throttling and 5xx retried, the
// rest not.
func TestClientAnswers(t *testing.T) {
	type answer struct {
		status int
		body   string
	}
	ok := answer{200, `{"Parameter":{"Name":"p","Type":"SecureString","Value":"s3cret","Version":1}}`}
	tests := []struct {
		name      string
		answers   []answer
		want      string
		wantErr   string
		wantCalls int32
	}{
		{name: "ok", answers: []answer{ok}, want: "s3cret", wantCalls: 1},
		{name: "throttled then ok", answers: []answer{{400, `{"__type":"ThrottlingException","message":"Rate exceeded"}`}, ok}, want: "s3cret", wantCalls: 2},
		{name: "5xx then ok", answers: []answer{{500, `{"__type":"InternalServerError","message":"oops"}`}, ok}, want: "s3cret", wantCalls: 2},
		{name: "5xx every time", answers: []answer{{503, ``}, {503, ``}, {503, ``}, ok}, wantErr: "SSM Service Unavailable (HTTP 503)", wantCalls: 3},
		{name: "not found", answers: []answer{{400, `{"__type":"ParameterNotFound","message":""}`}}, wantErr: "SSM ParameterNotFound (HTTP 400)", wantCalls: 1},
		{name: "access denied", answers: []answer{{400, `{"__type":"com.amazon.coral.service#AccessDeniedException","Message":"User: arn:aws:sts::1:assumed-role/x is not authorized to perform: ssm:GetParameter"}`}}, wantErr: "SSM AccessDeniedException (HTTP 400): User: arn:aws:sts::1:assumed-role/x is not authorized", wantCalls: 1},
		{name: "kms denied", answers: []answer{{400, `{"__type":"AccessDeniedException","message":"The ciphertext refers to a customer master key that does not exist"}`}}, wantErr: "customer master key", wantCalls: 1},
		{name: "truncated answer", answers: []answer{{200, `{"Parameter":{"Value":"s3`}}, wantErr: "answer", wantCalls: 1},
		{name: "huge answer", answers: []answer{{200, `{"Parameter":{"Value":"` + strings.Repeat("x", maxAnswer) + `"}}`}}, wantErr: "answer over", wantCalls: 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				n := calls.Add(1)
				body, _ := io.ReadAll(r.Body)
				auth := r.Header.Get("Authorization")
				if r.Method != http.MethodPost || r.URL.Path != "/" ||
					r.Header.Get("X-Amz-Target") != "AmazonSSM.GetParameter" ||
					r.Header.Get("Content-Type") != "application/x-amz-json-1.1" ||
					!strings.HasPrefix(auth, "AWS4-HMAC-SHA256 Credential=AKIDTEST/") ||
					!strings.Contains(auth, "/eu-west-1/ssm/aws4_request") ||
					r.Header.Get("X-Amz-Security-Token") != "session-token" ||
					string(body) != `{"Name":"p","WithDecryption":true}` {
					t.Errorf("request %s %s %v %s: not a signed GetParameter", r.Method, r.URL, r.Header, body)
				}
				a := tc.answers[min(int(n), len(tc.answers))-1]
				w.Header().Set("Content-Type", "application/x-amz-json-1.1")
				w.WriteHeader(a.status)
				io.WriteString(w, a.body)
			}))
			defer srv.Close()
			c := &Client{Config: awsConfig(srv.URL)}
			got, err := c.GetParameter(t.Context(), "p", true)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Errorf("GetParameter = %q, %v; want an error containing %q", got, err, tc.wantErr)
				}
			} else if err != nil || got != tc.want {
				t.Errorf("GetParameter = %q, %v; want %q", got, err, tc.want)
			}
			if calls.Load() != tc.wantCalls {
				t.Errorf("%d calls, want %d", calls.Load(), tc.wantCalls)
			}
		})
	}
}

func TestEndpoint(t *testing.T) {
	for region, want := range map[string]string{
		"eu-west-1":     "https://ssm.eu-west-1.amazonaws.com/",
		"us-gov-west-1": "https://ssm.us-gov-west-1.amazonaws.com/",
		"cn-north-1":    "https://ssm.cn-north-1.amazonaws.com.cn/",
	} {
		if got := (&Client{Config: aws.Config{Region: region}}).endpoint(); got != want {
			t.Errorf("endpoint in %s = %s, want %s", region, got, want)
		}
	}
	if got := (&Client{Config: awsConfig("http://127.0.0.1:5000/")}).endpoint(); got != "http://127.0.0.1:5000/" {
		t.Errorf("endpoint with AWS_ENDPOINT_URL = %s", got)
	}
}

func TestCanceled(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if _, err := (&Client{Config: awsConfig(srv.URL)}).GetParameter(ctx, "p", true); !errors.Is(err, context.Canceled) {
		t.Errorf("GetParameter with a canceled context = %v, want context.Canceled", err)
	}
}
