package awslocal

import (
	"context"
	"net/http"
	"testing"
)

func TestStart(t *testing.T) {
	endpoint, stop, err := Start(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer stop()
	resp, err := http.Get(endpoint + "/moto-api/")
	if err != nil {
		t.Fatalf("GET %s: %v", endpoint, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET /moto-api/: status %d, want 200", resp.StatusCode)
	}
}
