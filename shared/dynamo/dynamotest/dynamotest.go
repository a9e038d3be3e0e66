// Package dynamotest gives tests DynamoDB tables on a local moto_server,
// created from template.yaml.
//
//	func TestMain(m *testing.M) { dynamotest.Main(m) }
//
//	func TestSomething(t *testing.T) {
//		client, tables := dynamotest.New(t)
//		store := dynamo.New(client, tables)
//		...
//	}
//
// One server is started per test binary, on first use; DYNAMODB_ENDPOINT
// names an already running one instead (see awslocal.Start).
package dynamotest

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"forgelink/shared/awslocal"
	"forgelink/shared/dynamo"
	"forgelink/shared/dynamo/dynamoschema"
)

// Region is the region of the test client.
const Region = "us-east-1"

// requestTimeout bounds one HTTP exchange with the local server.
const requestTimeout = 30 * time.Second

var (
	mu     sync.Mutex
	client *dynamodb.Client
	stop   func()
	seq    atomic.Int64
)

// server returns a client for the local server, starting it on first use.
// A failed start is tried again by the next caller.
func server() (*dynamodb.Client, error) {
	mu.Lock()
	defer mu.Unlock()
	if client != nil {
		return client, nil
	}
	endpoint, stopServer, err := awslocal.Start(context.Background())
	if err != nil {
		return nil, err
	}
	client = dynamodb.New(dynamodb.Options{
		Region:       Region,
		BaseEndpoint: aws.String(endpoint),
		Credentials:  credentials.NewStaticCredentialsProvider("test", "test", ""),
		Retryer:      loggingRetryer{retry.NewStandard()},
		// A request moto never answers fails the test instead of hanging it.
		HTTPClient: &serialClient{client: awshttp.NewBuildableClient().WithTimeout(requestTimeout)},
	})
	stop = stopServer
	return client, nil
}

// serialClient is the test client's HTTP client. It works around two
// things that make a fast local server unlike DynamoDB:
//
// It sends one write at a time. DynamoDB applies each conditional write
// atomically; moto_server answers requests on several threads without a
// lock, so two conditional puts of the same key can both pass their
// condition (seen about once in 30 runs of storetest's concurrency tests).
// Serialized writes restore that atomicity while keeping what the tests
// are about: reads run concurrently, and the requests of concurrent callers
// still interleave in every order.
//
// It sends a copy of the request body. smithy-go closes the body it gave
// net/http as soon as the response is in, and once closed its WriteTo
// returns io.EOF as an error; net/http reads the body once more after
// sending it (to check for extra bytes), takes that io.EOF for a failed
// write and closes the connection under the response being read. The SDK
// then retries the operation, and a retried CreateTable or conditional put
// fails on its own first attempt. Only a server that answers within
// microseconds, as moto does, wins that race often enough to see it.
type serialClient struct {
	mu     sync.Mutex
	client *awshttp.BuildableClient
}

// writes are the operations serialClient serializes.
var writes = map[string]bool{
	"PutItem": true, "UpdateItem": true, "DeleteItem": true,
	"TransactWriteItems": true, "BatchWriteItem": true,
}

// Do sends r, one at a time if it is a write.
func (c *serialClient) Do(r *http.Request) (*http.Response, error) {
	if r.Body != nil && r.Body != http.NoBody {
		body, err := io.ReadAll(r.Body)
		if err != nil {
			return nil, err
		}
		r = r.Clone(r.Context())
		r.Body = io.NopCloser(bytes.NewReader(body))
		r.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
	}
	_, op, _ := strings.Cut(r.Header.Get("X-Amz-Target"), ".")
	if !writes[op] {
		return c.client.Do(r)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	resp, err := c.client.Do(r)
	if err != nil {
		return nil, err
	}
	// The write is done once the whole response is in.
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(body))
	return resp, nil
}

// loggingRetryer reports each retry on stderr: against a local server a
// retry is unexpected, and a retried write can fail a test in a way that
// makes no sense without it (a retried CreateTable finds its own table).
type loggingRetryer struct{ aws.RetryerV2 }

// IsErrorRetryable reports whether err is retryable, and logs it if so.
func (r loggingRetryer) IsErrorRetryable(err error) bool {
	ok := r.RetryerV2.IsErrorRetryable(err)
	if ok {
		log.Printf("dynamotest: retrying after: %v", err)
	}
	return ok
}

// Stop stops the server if this package started it. Tests that use New
// call it after m.Run, as Main does.
func Stop() {
	mu.Lock()
	defer mu.Unlock()
	if stop != nil {
		stop()
	}
	client, stop = nil, nil
}

// Main runs the tests and stops the server: a TestMain for packages that
// use New.
func Main(m *testing.M) {
	code := m.Run()
	Stop()
	os.Exit(code)
}

// New returns a client for the local server and a fresh set of the
// template's tables under unique names, deleted when the test ends.
func New(t testing.TB) (*dynamodb.Client, dynamo.Tables) {
	t.Helper()
	c, err := server()
	if err != nil {
		t.Fatalf("dynamotest: %v", err)
	}
	// A random part keeps test binaries that share a DYNAMODB_ENDPOINT apart.
	prefix := fmt.Sprintf("forgelink-test-%d-%s", seq.Add(1), strings.ToLower(rand.Text()[:8]))
	tables := dynamo.Tables{Projects: prefix + "-projects", Deliveries: prefix + "-deliveries", Pipelines: prefix + "-pipelines", Keys: prefix + "-keys", Users: prefix + "-users"}
	// Registered first, so tables of a half-done CreateTables go too.
	t.Cleanup(func() {
		for _, name := range []string{tables.Projects, tables.Deliveries, tables.Pipelines, tables.Keys, tables.Users} {
			_, err := c.DeleteTable(context.Background(), &dynamodb.DeleteTableInput{TableName: aws.String(name)})
			var missing *types.ResourceNotFoundException
			if err != nil && !errors.As(err, &missing) {
				t.Errorf("dynamotest: delete table %s: %v", name, err)
			}
		}
	})
	if err := dynamoschema.CreateTables(t.Context(), c, Template(t), tables.Names()); err != nil {
		t.Fatalf("dynamotest: %v", err)
	}
	return c, tables
}

// Template returns the module's template.yaml, found in the nearest
// directory above the working directory that holds go.mod.
func Template(t testing.TB) []byte {
	t.Helper()
	path, err := templatePath()
	if err != nil {
		t.Fatalf("dynamotest: %v", err)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("dynamotest: %v", err)
	}
	return b
}

func templatePath() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return filepath.Join(dir, "template.yaml"), nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod above the working directory")
		}
		dir = parent
	}
}
