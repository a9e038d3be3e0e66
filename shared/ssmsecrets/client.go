package ssmsecrets

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Client reads one SSM parameter at a time with SSM's GetParameter action
// (the awsJson1.1 protocol: a signed POST of a JSON body), signing with the
// SDK's SigV4 signer and the credentials of an aws.Config.
//
// It stands in for the SDK's SSM client on purpose: that client's package
// initialises about 1.4 MB of operation schemas at every cold start (1.2 ms
// of init, 4 ms of a 128 MB function's first start with the page faults)
// and adds 1.2 MB to each bootstrap, for one call per cold start.
type Client struct {
	// Config gives the region, credentials, HTTP client and, when set, the
	// endpoint (BaseEndpoint, from AWS_ENDPOINT_URL).
	Config aws.Config
	// Attempts bounds the tries of a call that fails with a 5xx, a
	// throttling error or a broken connection; 0 means 3.
	Attempts int
}

// APIError is an error SSM answered: its type (ParameterNotFound,
// AccessDeniedException, ...), its message and the HTTP status.
type APIError struct {
	Type    string
	Message string
	Status  int
}

func (e *APIError) Error() string {
	return fmt.Sprintf("SSM %s (HTTP %d): %s", e.Type, e.Status, e.Message)
}

// maxAnswer bounds an answer's size: a parameter's value is at most 8 KB
// (advanced tier), the rest of the answer is metadata.
const maxAnswer = 1 << 20

// GetParameter returns the value of the named parameter, decrypted when
// decrypt is set (SecureString).
func (c *Client) GetParameter(ctx context.Context, name string, decrypt bool) (string, error) {
	body, err := json.Marshal(struct {
		Name           string
		WithDecryption bool
	}{name, decrypt})
	if err != nil {
		return "", err
	}
	var out struct {
		Parameter struct {
			Value string
		}
	}
	if err := c.call(ctx, "GetParameter", body, &out); err != nil {
		return "", err
	}
	return out.Parameter.Value, nil
}

func (c *Client) endpoint() string {
	if ep := aws.ToString(c.Config.BaseEndpoint); ep != "" {
		return strings.TrimSuffix(ep, "/") + "/"
	}
	domain := "amazonaws.com"
	if strings.HasPrefix(c.Config.Region, "cn-") {
		domain = "amazonaws.com.cn"
	}
	return "https://ssm." + c.Config.Region + "." + domain + "/"
}

func (c *Client) httpClient() aws.HTTPClient {
	if c.Config.HTTPClient != nil {
		return c.Config.HTTPClient
	}
	return &http.Client{Timeout: 10 * time.Second}
}

// call posts one action, retrying what SSM asks to be retried with backoff
// and jitter, and decodes the answer into out.
func (c *Client) call(ctx context.Context, action string, body []byte, out any) error {
	attempts := c.Attempts
	if attempts <= 0 {
		attempts = 3
	}
	var err error
	for attempt := 1; ; attempt++ {
		var retry bool
		retry, err = c.once(ctx, action, body, out)
		if err == nil || !retry || attempt >= attempts {
			return err
		}
		wait := time.Duration(50<<attempt)*time.Millisecond + rand.N(50*time.Millisecond)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(wait):
		}
	}
}

func (c *Client) once(ctx context.Context, action string, body []byte, out any) (retry bool, err error) {
	if c.Config.Credentials == nil {
		return false, errors.New("ssm: no credentials")
	}
	creds, err := c.Config.Credentials.Retrieve(ctx)
	if err != nil {
		return false, fmt.Errorf("ssm: credentials: %w", err)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint(), bytes.NewReader(body))
	if err != nil {
		return false, fmt.Errorf("ssm: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-amz-json-1.1")
	req.Header.Set("X-Amz-Target", "AmazonSSM."+action)
	sum := sha256.Sum256(body)
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "ssm", c.Config.Region, time.Now()); err != nil {
		return false, fmt.Errorf("ssm: sign: %w", err)
	}
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return ctx.Err() == nil, fmt.Errorf("ssm: %s: %w", action, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxAnswer+1))
	if err != nil {
		return true, fmt.Errorf("ssm: %s: read answer: %w", action, err)
	}
	if len(data) > maxAnswer {
		return false, fmt.Errorf("ssm: %s: answer over %d bytes", action, maxAnswer)
	}
	if resp.StatusCode != http.StatusOK {
		e := apiError(resp, data)
		return resp.StatusCode >= 500 || strings.Contains(e.Type, "Throttl") || resp.StatusCode == http.StatusTooManyRequests, e
	}
	if err := json.Unmarshal(data, out); err != nil {
		return false, fmt.Errorf("ssm: %s: answer: %w", action, err)
	}
	return false, nil
}

// apiError reads an awsJson1.1 error: {"__type": "...#Type", "message": "..."}
// (some services spell it Message), the type also in X-Amzn-ErrorType.
func apiError(resp *http.Response, data []byte) *APIError {
	var body struct {
		Type     string `json:"__type"`
		Message  string `json:"message"`
		MessageU string `json:"Message"`
	}
	_ = json.Unmarshal(data, &body)
	e := &APIError{Type: body.Type, Message: body.Message, Status: resp.StatusCode}
	if e.Type == "" {
		e.Type = resp.Header.Get("X-Amzn-ErrorType")
	}
	if i := strings.LastIndexByte(e.Type, '#'); i >= 0 {
		e.Type = e.Type[i+1:]
	}
	if i := strings.IndexByte(e.Type, ':'); i >= 0 {
		e.Type = e.Type[:i]
	}
	if e.Type == "" {
		e.Type = http.StatusText(resp.StatusCode)
	}
	if e.Message == "" {
		e.Message = body.MessageU
	}
	if e.Message == "" {
		e.Message = strings.TrimSpace(string(data[:min(len(data), 200)]))
	}
	return e
}
