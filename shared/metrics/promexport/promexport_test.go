package promexport

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"forgelink/shared/metrics"
)

// TestHandler scrapes the handler as Prometheus does and parses the text
// format: every family under its name with its type and help, every
// declared series from zero, the counts that moved, and the Go runtime's
// collectors beside them.
func TestHandler(t *testing.T) {
	reg := metrics.New()
	reg.Delivery("github", metrics.Accepted)
	reg.Delivery("github", metrics.Duplicate)
	reg.Delivery("github", metrics.Rejected)
	reg.Delivery("bitbucket", metrics.Ignored)
	reg.Pipeline("github", metrics.Created)
	reg.StatusPost("bitbucket", metrics.Refused)
	reg.AccessCheck("github", "restricted")
	reg.SetAccessOrgs("github", "restricted", 2)
	srv := httptest.NewServer(Handler(reg))
	defer srv.Close()

	res, err := http.Get(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("GET /metrics = %d", res.StatusCode)
	}
	if ct := res.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain; version=0.0.4") {
		t.Errorf("Content-Type = %q, want the text format 0.0.4", ct)
	}
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("not the Prometheus text format: %v\n%s", err, body)
	}
	types := map[string]dto.MetricType{
		"forgelink_deliveries_total":    dto.MetricType_COUNTER,
		"forgelink_pipelines_total":     dto.MetricType_COUNTER,
		"forgelink_status_posts_total":  dto.MetricType_COUNTER,
		"forgelink_access_checks_total": dto.MetricType_COUNTER,
		"forgelink_access_orgs":         dto.MetricType_GAUGE,
		"go_goroutines":                 dto.MetricType_GAUGE,
	}
	for name, typ := range types {
		f := fams[name]
		if f == nil {
			t.Errorf("no %s in:\n%s", name, body)
			continue
		}
		if f.GetType() != typ || f.GetHelp() == "" {
			t.Errorf("%s: type %v help %q, want %v with help", name, f.GetType(), f.GetHelp(), typ)
		}
	}
	value := func(name string, labels map[string]string) (float64, bool) {
		for _, m := range fams[name].GetMetric() {
			match := len(m.GetLabel()) == len(labels)
			for _, l := range m.GetLabel() {
				if labels[l.GetName()] != l.GetValue() {
					match = false
				}
			}
			if match {
				if m.GetCounter() != nil {
					return m.GetCounter().GetValue(), true
				}
				return m.GetGauge().GetValue(), true
			}
		}
		return 0, false
	}
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"forgelink_deliveries_total", map[string]string{"vcs": "github", "outcome": "accepted"}, 1},
		{"forgelink_deliveries_total", map[string]string{"vcs": "github", "outcome": "duplicate"}, 1},
		{"forgelink_deliveries_total", map[string]string{"vcs": "github", "outcome": "rejected"}, 1},
		{"forgelink_deliveries_total", map[string]string{"vcs": "bitbucket", "outcome": "ignored"}, 1},
		{"forgelink_deliveries_total", map[string]string{"vcs": "bitbucket", "outcome": "accepted"}, 0},
		{"forgelink_pipelines_total", map[string]string{"vcs": "github", "outcome": "created"}, 1},
		{"forgelink_pipelines_total", map[string]string{"vcs": "github", "outcome": "skipped"}, 0},
		{"forgelink_status_posts_total", map[string]string{"vcs": "bitbucket", "outcome": "refused"}, 1},
		{"forgelink_access_checks_total", map[string]string{"vcs": "github", "state": "restricted"}, 1},
		{"forgelink_access_orgs", map[string]string{"vcs": "github", "state": "restricted"}, 2},
		{"forgelink_access_orgs", map[string]string{"vcs": "bitbucket", "state": "ok"}, 0},
	} {
		got, ok := value(tc.name, tc.labels)
		if !ok || got != tc.want {
			t.Errorf("%s%v = %v (found %v), want %v", tc.name, tc.labels, got, ok, tc.want)
		}
	}
}

// TestCollectorDescribesEveryFamily: the collector registers cleanly with
// a pedantic registry (descriptions and metrics agree).
func TestCollectorDescribesEveryFamily(t *testing.T) {
	reg := metrics.New()
	reg.Delivery("nope", "nope") // counted as other/other, still described
	pr := prometheus.NewPedanticRegistry()
	if err := pr.Register(NewCollector(reg)); err != nil {
		t.Fatal(err)
	}
	if _, err := pr.Gather(); err != nil {
		t.Fatalf("pedantic gather: %v", err)
	}
}
