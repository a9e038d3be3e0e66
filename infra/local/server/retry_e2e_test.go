package server_test

import (
	"net/http"
	"testing"
	"time"
)

// TestDeadDeliveryRetry: a delivery whose evaluation fails every try
// (GitHub answers 500 to the config read) is listed dead with its last
// error; POST .../deliveries/:id/retry queues it again and it is built; a
// decided delivery cannot be retried.
func TestDeadDeliveryRetry(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL, secret := body["hook_url"].(string), s.gh.Hooks(repo)[0].Secret
	s.gh.SetFile(repo, "366701fde727cb7a9e7f21eb88264f59f6f9b89c", ".circleci/config.yml", []byte(ciConfig))
	s.gh.FailNext(http.MethodGet, "/contents/.circleci/config.yml", http.StatusInternalServerError, 5)

	if status, body := do(t, providers[0].deliver(hookURL, secret, "push", "d-dead", corpus(t, "github/push.json"))); status != http.StatusAccepted {
		t.Fatalf("delivery: %d %v, want 202", status, body)
	}
	d := s.waitDelivery(t, slug, "d-dead")
	if d["state"] != "dead" || d["attempts"] != float64(5) || d["error"] == "" || d["error"] == nil {
		t.Fatalf("delivery after five failures = %v, want state dead, attempts 5 and the last error", d)
	}
	if n := len(s.pipelines(t, slug)); n != 0 {
		t.Fatalf("pipelines = %d, want none yet", n)
	}

	retry := "/api/v2/project/" + slug + "/deliveries/"
	req, _ := http.NewRequest(http.MethodPost, s.url+retry+"d-dead/retry", nil)
	if status, _ := do(t, req); status != http.StatusUnauthorized {
		t.Errorf("retry without a token: %d, want 401", status)
	}
	if status, body := s.call(t, http.MethodPost, retry+"no-such-delivery/retry"); status != http.StatusNotFound {
		t.Errorf("retry of an unknown delivery: %d %v, want 404", status, body)
	}
	if status, body := s.call(t, http.MethodPost, retry+"d-dead/retry"); status != http.StatusAccepted || body["state"] != "received" {
		t.Fatalf("retry: %d %v, want 202 {state: received}", status, body)
	}
	deadline := time.Now().Add(10 * time.Second)
	for s.deliveries(t, slug)["d-dead"]["state"] != "decided" {
		if time.Now().After(deadline) {
			t.Fatalf("retried delivery = %v, want decided", s.deliveries(t, slug)["d-dead"])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := len(s.pipelines(t, slug)); n != 1 {
		t.Errorf("pipelines after the retry = %d, want 1", n)
	}
	if status, body := s.call(t, http.MethodPost, retry+"d-dead/retry"); status != http.StatusConflict {
		t.Errorf("retry of a decided delivery: %d %v, want 409", status, body)
	}
}
