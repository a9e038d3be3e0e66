package server_test

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
)

// check runs POST /api/v2/org-access/check with body and decodes the
// sweep's result.
func (s *stack) check(t *testing.T, body string) map[string]any {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v2/org-access/check", strings.NewReader(body))
	req.Header.Set("Circle-Token", apiToken)
	status, res := do(t, req)
	if status != http.StatusOK {
		t.Fatalf("org-access check %s: %d %v", body, status, res)
	}
	return res
}

// orgAccess returns GET /api/v2/org-access's orgs by slug.
func (s *stack) orgAccess(t *testing.T) map[string]map[string]any {
	t.Helper()
	status, body := s.call(t, http.MethodGet, "/api/v2/org-access")
	if status != http.StatusOK {
		t.Fatalf("GET org-access: %d %v", status, body)
	}
	out := map[string]map[string]any{}
	for _, o := range body["items"].([]any) {
		org := o.(map[string]any)
		out[org["slug"].(string)] = org
	}
	return out
}

func (s *stack) follow(t *testing.T, slug string) {
	t.Helper()
	if status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow"); status != http.StatusCreated {
		t.Fatalf("follow %s: %d %v", slug, status, body)
	}
}

// TestOrgAccessSweep: three organizations - one fine, one whose OAuth App
// access restrictions refuse the token, one whose webhook was deleted on
// one repository and whose deliveries failed on another. One sweep finds
// each state, reinstalls the hook (exactly one), redelivers the failed
// deliveries (each built once, the one that had arrived not again) and
// names the button to click; later sweeps see the repairs hold, are
// served by 304s, and notice the org's recovery.
func TestOrgAccessSweep(t *testing.T) {
	s := newTriggerStack(t)
	const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c" // github/push.json's head
	const rev2 = "1111111111111111111111111111111111111111"
	for _, repo := range []string{"fine/app", "locked/app", "broken/a", "broken/b"} {
		s.gh.AddRepo(repo, "main", false)
		s.follow(t, "gh/"+repo)
	}
	for _, r := range []string{rev, rev2} {
		s.gh.SetFile("broken/b", r, ".circleci/config.yml", []byte(ciConfig))
	}

	// Breakage, as it happens on GitHub.
	s.gh.SetOrgRestricted("locked", true)
	hookA := s.gh.Hooks("broken/a")[0]
	if !s.gh.DeleteHookDirect("broken/a", hookA.ID) {
		t.Fatal("could not delete broken/a's hook")
	}
	hookB := s.gh.Hooks("broken/b")[0]
	push := corpus(t, "github/push.json")
	// g-lost never reached forgelink (a 502 on the way); g-arrived did,
	// but GitHub recorded a timeout.
	s.gh.FailedDelivery("broken/b", hookB.ID, "g-lost", "push", push, http.StatusBadGateway)
	arrived := []byte(strings.ReplaceAll(string(push), rev, rev2))
	if status, body := do(t, providers[0].deliver(hookB.URL, hookB.Secret, "push", "g-arrived", arrived)); status != http.StatusAccepted {
		t.Fatalf("delivery g-arrived: %d %v", status, body)
	}
	s.waitDelivery(t, "gh/broken/b", "g-arrived")
	s.gh.FailedDelivery("broken/b", hookB.ID, "g-arrived", "push", arrived, 0)

	first := s.gh.RateLimitedRequests()
	res := s.check(t, "")
	firstCost := s.gh.RateLimitedRequests() - first
	if res["checked"] != float64(4) || res["deferred"] != float64(0) {
		t.Errorf("first sweep checked %v, deferred %v; want 4 and 0", res["checked"], res["deferred"])
	}
	orgs := s.orgAccess(t)
	want := map[string]string{"gh/fine": "ok", "gh/locked": "restricted", "gh/broken": "hook_missing"}
	for slug, state := range want {
		if got := orgs[slug]["state"]; got != state {
			t.Errorf("org %s state = %v, want %s (%v)", slug, got, state, orgs[slug])
		}
	}
	rem, _ := orgs["gh/locked"]["remediation"].(map[string]any)
	if rem["action"] != "Request access" || rem["url"] != "https://github.com/settings/connections/applications/Iv1.e2e0123456789" ||
		!strings.Contains(rem["text"].(string), `"Request access"`) {
		t.Errorf("restricted org remediation = %v", rem)
	}
	projects := map[string]string{}
	for _, o := range orgs {
		for _, p := range o["projects"].([]any) {
			pm := p.(map[string]any)
			projects[pm["slug"].(string)] = pm["state"].(string)
		}
	}
	if projects["gh/broken/a"] != "hook_missing" || projects["gh/broken/b"] != "deliveries_failing" {
		t.Errorf("broken projects = %v", projects)
	}
	if hooks := s.gh.Hooks("broken/a"); len(hooks) != 1 || hooks[0].URL != hookA.URL {
		t.Errorf("broken/a hooks after the sweep = %+v, want exactly one at %s", hooks, hookA.URL)
	}
	if got := s.gh.Redeliveries("broken/b"); !slices.Equal(sorted(got), []string{"g-arrived", "g-lost"}) {
		t.Errorf("redelivered %v, want g-lost and g-arrived once each", got)
	}
	s.waitDelivery(t, "gh/broken/b", "g-lost")
	if n := len(s.pipelines(t, "gh/broken/b")); n != 2 {
		t.Errorf("broken/b pipelines = %d, want 2 (g-arrived once, g-lost once)", n)
	}
	// The project's settings show its state too.
	if _, body := s.call(t, http.MethodGet, "/api/v2/project/gh/broken/a/settings"); body["org_access"].(map[string]any)["state"] != "hook_missing" {
		t.Errorf("settings org_access = %v", body["org_access"])
	}

	// Second sweep: the repairs hold; broken recovers.
	s.check(t, "")
	if got := s.orgAccess(t)["gh/broken"]["state"]; got != "ok" {
		t.Errorf("broken after the repairs held: %v, want ok", got)
	}
	if got := s.gh.Redeliveries("broken/b"); len(got) != 2 {
		t.Errorf("redeliveries after the second sweep = %v, want still 2", got)
	}

	// Third sweep, nothing changed: 304s, except the restricted org's 403.
	before := s.gh.RateLimitedRequests()
	s.check(t, "")
	if cost := s.gh.RateLimitedRequests() - before; cost > 1 || float64(cost) > 0.05*float64(firstCost)+1 {
		t.Errorf("unchanged sweep cost %d rate-limited requests (first sweep %d), want at most the restricted org's 1", cost, firstCost)
	}

	// Recovery: the owner granted access.
	s.gh.SetOrgRestricted("locked", false)
	res = s.check(t, `{"org":"gh/locked"}`)
	if res["checked"] != float64(1) {
		t.Errorf("org-scoped check checked %v projects, want 1", res["checked"])
	}
	if got := s.orgAccess(t)["gh/locked"]; got["state"] != "ok" || got["remediation"] != nil {
		t.Errorf("locked after access was granted: %v", got)
	}

	// Fed by every caller: the trigger meets the restriction while reading
	// the config of a push, and the org is marked at once, before any sweep.
	s.gh.SetOrgRestricted("fine", true)
	fine := s.gh.Hooks("fine/app")[0]
	if status, body := do(t, providers[0].deliver(fine.URL, fine.Secret, "push", "f-push", push)); status != http.StatusAccepted {
		t.Fatalf("delivery to fine/app: %d %v", status, body)
	}
	s.waitDelivery(t, "gh/fine/app", "f-push")
	waitFor(t, "fine marked restricted by the trigger", func() bool { return s.orgAccess(t)["gh/fine"]["state"] == "restricted" })

	// Bad requests change nothing.
	for _, bad := range []string{`{"org":"gh"}`, `{"project":"gh/x"}`, `{"org":"gh/a","project":"gh/a/b"}`, `{"org":`, `{"orgs":"gh/a"}`} {
		req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v2/org-access/check", strings.NewReader(bad))
		req.Header.Set("Circle-Token", apiToken)
		if status, body := do(t, req); status != http.StatusBadRequest {
			t.Errorf("check %s: %d %v, want 400", bad, status, body)
		}
	}
	if status, _ := s.call(t, http.MethodPost, "/api/v2/org-access/check?x=1"); status != http.StatusOK {
		t.Errorf("check with an empty body: %d, want 200", status)
	}
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v2/org-access/check", strings.NewReader(`{"org":"gh/nobody"}`))
	req.Header.Set("Circle-Token", apiToken)
	if status, _ := do(t, req); status != http.StatusNotFound {
		t.Errorf("check of an org without projects: %d, want 404", status)
	}
	resp, err := http.Get(s.url + "/api/v2/org-access")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	var msg map[string]any
	if resp.StatusCode != http.StatusUnauthorized || json.Unmarshal(b, &msg) != nil {
		t.Errorf("GET org-access without a token: %d %s", resp.StatusCode, b)
	}
}

func sorted(ss []string) []string {
	out := slices.Clone(ss)
	slices.Sort(out)
	return out
}
