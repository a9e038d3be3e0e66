// Package awslocal starts a local AWS API server (moto's moto_server) for
// tests and for make invoke, so DynamoDB, SQS and KMS code runs against a
// real server instead of a mock.
//
//	endpoint, stop, err := awslocal.Start(ctx)
//	if err != nil { ... }
//	defer stop()
//
// When DYNAMODB_ENDPOINT (or AWS_ENDPOINT_URL) is set, Start uses that
// server and starts nothing.
package awslocal

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"sync"
	"syscall"
	"time"
)

// Endpoint returns the endpoint named by DYNAMODB_ENDPOINT or
// AWS_ENDPOINT_URL, or "" when neither is set.
func Endpoint() string {
	for _, k := range []string{"DYNAMODB_ENDPOINT", "AWS_ENDPOINT_URL"} {
		if v := os.Getenv(k); v != "" {
			return v
		}
	}
	return ""
}

// Start returns the endpoint of a running local AWS server: the one named in
// the environment, or a moto_server started on a free loopback port. stop
// ends a server Start started and does nothing otherwise.
func Start(ctx context.Context) (endpoint string, stop func(), err error) {
	if e := Endpoint(); e != "" {
		return e, func() {}, nil
	}
	bin, err := exec.LookPath("moto_server")
	if err != nil {
		return "", nil, fmt.Errorf("awslocal: moto_server not found on PATH (pip install 'moto[server]', or set DYNAMODB_ENDPOINT): %w", err)
	}
	port, err := freePort()
	if err != nil {
		return "", nil, fmt.Errorf("awslocal: %w", err)
	}
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Stdout, cmd.Stderr = nil, nil
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("awslocal: start moto_server: %w", err)
	}
	var once sync.Once
	stop = func() {
		once.Do(func() {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
			_ = cmd.Wait()
		})
	}
	endpoint = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := waitReady(ctx, endpoint, 30*time.Second); err != nil {
		stop()
		return "", nil, err
	}
	return endpoint, stop, nil
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func waitReady(ctx context.Context, endpoint string, limit time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, limit)
	defer cancel()
	for {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/moto-api/", nil)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case <-ctx.Done():
			return errors.Join(fmt.Errorf("awslocal: moto_server at %s not ready after %s", endpoint, limit), err)
		case <-time.After(100 * time.Millisecond):
		}
	}
}
