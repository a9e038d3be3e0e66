package server_test

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape reads GET /metrics as Prometheus does - without the API token -
// and returns forgelink_deliveries_total by "vcs outcome", checking that
// every forgelink family is there.
func (s *stack) scrape(t *testing.T) map[string]float64 {
	t.Helper()
	res, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	body, _ := io.ReadAll(res.Body)
	if res.StatusCode != http.StatusOK || !strings.HasPrefix(res.Header.Get("Content-Type"), "text/plain") {
		t.Fatalf("GET /metrics without a token: %d %s\n%s", res.StatusCode, res.Header.Get("Content-Type"), body)
	}
	p := expfmt.NewTextParser(model.LegacyValidation)
	fams, err := p.TextToMetricFamilies(strings.NewReader(string(body)))
	if err != nil {
		t.Fatalf("GET /metrics is not the Prometheus text format: %v", err)
	}
	for _, name := range []string{"forgelink_deliveries_total", "forgelink_pipelines_total", "forgelink_status_posts_total", "forgelink_access_checks_total", "forgelink_access_orgs"} {
		if fams[name] == nil {
			t.Errorf("GET /metrics has no %s", name)
		}
	}
	out := map[string]float64{}
	for _, m := range fams["forgelink_deliveries_total"].GetMetric() {
		var vcs, outcome string
		for _, l := range m.GetLabel() {
			switch l.GetName() {
			case "vcs":
				vcs = l.GetValue()
			case "outcome":
				outcome = l.GetValue()
			}
		}
		out[vcs+" "+outcome] = m.GetCounter().GetValue()
	}
	if strings.Contains(string(body), apiToken) || strings.Contains(string(body), "octo-org") {
		t.Errorf("GET /metrics names the API token or an org:\n%s", body)
	}
	return out
}

// TestMetricsEndpoint: make run's GET /metrics counts an accepted, a
// duplicate, a badly signed and an ignored delivery, each once.
func TestMetricsEndpoint(t *testing.T) {
	s := newStack(t)
	p := providers[0] // github
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+p.slugPath+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL := body["hook_url"].(string)
	secret := s.gh.Hooks("octo-org/hello-world")[0].Secret
	before := s.scrape(t)

	push := corpus(t, p.pushCorpus)
	for _, d := range []struct {
		secret, event, id string
		want              int
	}{
		{secret, "push", "m-1", http.StatusAccepted},
		{secret, "push", "m-1", http.StatusOK},
		{"not-the-secret", "push", "m-2", http.StatusUnauthorized},
		{secret, "star", "m-3", http.StatusOK},
	} {
		if status, body := do(t, p.deliver(hookURL, d.secret, d.event, d.id, push)); status != d.want {
			t.Fatalf("delivery %s %s: %d %v, want %d", d.event, d.id, status, body, d.want)
		}
	}
	s.waitConsumed(t, 1)
	after := s.scrape(t)
	for _, k := range []string{"github accepted", "github duplicate", "github rejected", "github ignored"} {
		if got := after[k] - before[k]; got != 1 {
			t.Errorf("forgelink_deliveries_total{%s} moved by %v, want 1", k, got)
		}
	}
	for _, k := range []string{"github failed", "bitbucket accepted", "bitbucket rejected"} {
		if got := after[k] - before[k]; got != 0 {
			t.Errorf("forgelink_deliveries_total{%s} moved by %v, want 0", k, got)
		}
	}
}
