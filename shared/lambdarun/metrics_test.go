package lambdarun

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"forgelink/shared/metrics"
)

// TestFlushingWritesEMF: an invocation that counts ends with one EMF line
// of its counts on the function's output; one that counts nothing writes
// nothing.
func TestFlushingWritesEMF(t *testing.T) {
	var out bytes.Buffer
	saved := emf
	emf = &metrics.EMF{Registry: metrics.New(), Function: "webhook", Out: &out}
	defer func() { emf = saved }()
	h := flushing(func(ctx context.Context, n int) (string, error) {
		for range n {
			emf.Registry.Delivery("github", metrics.Accepted)
		}
		return "ok", nil
	})
	if _, err := h(context.Background(), 2); err != nil {
		t.Fatal(err)
	}
	var line struct {
		AWS struct {
			Timestamp         int64
			CloudWatchMetrics []struct {
				Namespace  string
				Dimensions [][]string
				Metrics    []struct{ Name, Unit string }
			}
		} `json:"_aws"`
		Function string `json:"function"`
		VCS      string `json:"vcs"`
		Accepted int    `json:"deliveries_accepted"`
	}
	if err := json.Unmarshal(out.Bytes(), &line); err != nil || strings.Count(out.String(), "\n") != 1 {
		t.Fatalf("output %q is not one EMF line: %v", out.String(), err)
	}
	if line.Function != "webhook" || line.VCS != "github" || line.Accepted != 2 || line.AWS.Timestamp == 0 ||
		len(line.AWS.CloudWatchMetrics) != 1 || line.AWS.CloudWatchMetrics[0].Namespace != "forgelink" {
		t.Errorf("EMF line = %+v", line)
	}
	out.Reset()
	if _, err := h(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	if out.Len() != 0 {
		t.Errorf("an invocation that counted nothing wrote %q", out.String())
	}
}

// TestWithMetrics: outside Lambda, GET /metrics is the Prometheus scrape
// (no token) and every other request reaches the function's handler as it
// came, including paths a mux would clean.
func TestWithMetrics(t *testing.T) {
	var got []string
	h := withMetrics(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = append(got, r.Method+" "+r.URL.Path)
		w.WriteHeader(http.StatusTeapot)
	}))
	srv := httptest.NewServer(h)
	defer srv.Close()
	res, err := http.Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), "# TYPE forgelink_deliveries_total counter") {
		t.Errorf("GET /metrics = %d:\n%s", res.StatusCode, body)
	}
	for _, tc := range []struct{ method, path string }{
		{http.MethodPost, "/metrics"},
		{http.MethodGet, "/metrics/x"},
		{http.MethodPost, "/hooks/github//x/../y"},
	} {
		got = nil
		req, _ := http.NewRequest(tc.method, srv.URL+tc.path, nil)
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusTeapot || len(got) != 1 || got[0] != tc.method+" "+tc.path {
			t.Errorf("%s %s: status %d, handler saw %v", tc.method, tc.path, res.StatusCode, got)
		}
	}
}
