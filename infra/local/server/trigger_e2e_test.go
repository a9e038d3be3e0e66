package server_test

import (
	"net/http"
	"strings"
	"testing"
	"time"
)

const ciConfig = `version: 2.1
jobs:
  build:
    docker: [{image: cimg/base:stable}]
    steps: [checkout]
  release:
    docker: [{image: cimg/base:stable}]
    steps: [checkout]
workflows:
  ci:
    jobs: [build]
  release:
    jobs:
      - release:
          filters:
            tags: {only: /^v.*/}
            branches: {ignore: /.*/}
`

// pipelines lists the project's pipelines through the API.
func (s *stack) pipelines(t *testing.T, slug string) []map[string]any {
	t.Helper()
	status, body := s.call(t, http.MethodGet, "/api/v2/project/"+slug+"/pipeline?limit=100")
	if status != http.StatusOK {
		t.Fatalf("list pipelines: %d %v", status, body)
	}
	var out []map[string]any
	for _, it := range body["items"].([]any) {
		out = append(out, it.(map[string]any))
	}
	return out
}

// deliveries lists the project's processed deliveries, keyed by id.
func (s *stack) deliveries(t *testing.T, slug string) map[string]map[string]any {
	t.Helper()
	status, body := s.call(t, http.MethodGet, "/api/v2/project/"+slug+"/deliveries?limit=100")
	if status != http.StatusOK {
		t.Fatalf("list deliveries: %d %v", status, body)
	}
	out := map[string]map[string]any{}
	for _, it := range body["items"].([]any) {
		m := it.(map[string]any)
		out[m["id"].(string)] = m
	}
	return out
}

// waitDelivery waits until the trigger function recorded delivery id.
func (s *stack) waitDelivery(t *testing.T, slug, id string) map[string]any {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		if d, ok := s.deliveries(t, slug)[id]; ok {
			return d
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("delivery %s was never processed", id)
	return nil
}

func firstDecision(t *testing.T, d map[string]any) map[string]any {
	t.Helper()
	ds, _ := d["decisions"].([]any)
	if len(ds) == 0 {
		t.Fatalf("delivery %v has no decisions", d)
	}
	return ds[0].(map[string]any)
}

func (s *stack) patch(t *testing.T, path, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPatch, s.url+path, strings.NewReader(body))
	req.Header.Set("Circle-Token", apiToken)
	req.Header.Set("Content-Type", "application/json")
	return do(t, req)
}

// TestTriggerGitHub drives real GitHub payloads through the one-process
// server and checks the pipelines and recorded skips.
func TestTriggerGitHub(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL := body["hook_url"].(string)
	secret := s.gh.Hooks(repo)[0].Secret
	for _, rev := range []string{"366701fde727cb7a9e7f21eb88264f59f6f9b89c", "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd", "ec26c3e57ca3a959ca5aad62de7213c562f8c821"} {
		s.gh.SetFile(repo, rev, ".circleci/config.yml", []byte(ciConfig))
	}
	s.gh.SetFile(repo, "f7220f1f753260bf6f1c533357c70213e9fd4abe", ".circleci/config.yml", []byte("workflows: [unclosed"))
	gh := providers[0]
	deliver := func(event, id, file string) {
		t.Helper()
		if status, body := do(t, gh.deliver(hookURL, secret, event, id, corpus(t, "github/"+file))); status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %v", id, status, body)
		}
		s.waitDelivery(t, slug, id)
	}

	deliver("push", "g-push-main", "push.json")
	deliver("push", "g-tag", "push.tag.json")
	deliver("pull_request", "g-pr-opened", "pull_request.opened.json")
	deliver("pull_request", "g-pr-sync", "pull_request.synchronize.json") // same head sha: no second pipeline
	deliver("pull_request", "g-pr-fork", "pull_request.opened.fork.json")
	deliver("push", "g-no-config", "push.created.json")
	deliver("push", "g-bad-config", "push.forced.json")

	// Only build pull requests: a push to a branch without an open PR is skipped;
	// the VCS is asked once, then the index answers.
	if status, body := s.patch(t, "/api/v2/project/"+slug+"/settings", `{"advanced":{"build_prs_only":true}}`); status != http.StatusOK {
		t.Fatalf("patch settings: %d %v", status, body)
	}
	deliver("push", "g-prs-only-1", "push.created.json")
	deliver("push", "g-prs-only-2", "push.created.json")
	asked := 0
	for _, r := range s.gh.Requests() {
		if strings.HasSuffix(r.Path, "/pulls") {
			asked++
		}
	}
	if asked != 1 {
		t.Errorf("asked GitHub for open PRs %d times, want 1", asked)
	}

	pls := s.pipelines(t, slug)
	type want struct {
		number            float64
		event, ref, state string
		workflows         string
	}
	wants := []want{ // newest first
		{4, "push", "main", "errored", ""},
		{3, "pull_request", "changes", "created", "ci"},
		{2, "tag", "v0.0.1", "created", "release"},
		{1, "push", "main", "created", "ci"},
	}
	if len(pls) != len(wants) {
		t.Fatalf("got %d pipelines %v, want %d", len(pls), pls, len(wants))
	}
	for i, w := range wants {
		p := pls[i]
		vcs := p["vcs"].(map[string]any)
		ref, _ := vcs["branch"].(string)
		if ref == "" {
			ref, _ = vcs["tag"].(string)
		}
		var wf []string
		for _, x := range p["workflows"].([]any) {
			wf = append(wf, x.(string))
		}
		if p["number"] != w.number || p["trigger"].(map[string]any)["event"] != w.event || ref != w.ref || p["state"] != w.state || strings.Join(wf, ",") != w.workflows {
			t.Errorf("pipeline %d = number %v event %v ref %q state %v workflows %v; want %+v", i, p["number"], p["trigger"].(map[string]any)["event"], ref, p["state"], wf, w)
		}
	}
	if errs := pls[0]["errors"].([]any); len(errs) != 1 || !strings.Contains(errs[0].(map[string]any)["message"].(string), "circleci") {
		t.Errorf("errored pipeline errors = %v, want the config parse error", errs)
	}
	if pr := pls[1]; pr["vcs"].(map[string]any)["review_id"] != "2" || pr["secrets_exposed"] != true || pr["vcs"].(map[string]any)["fork"] != false {
		t.Errorf("PR pipeline = %v, want review_id 2, secrets exposed, not a fork", pr)
	}

	ds := s.deliveries(t, slug)
	reasons := map[string]string{
		"g-pr-fork":    "forked pull requests are not built (build_fork_prs is off)",
		"g-no-config":  "no .circleci/config.yml",
		"g-prs-only-1": "only build pull requests",
	}
	for id, want := range reasons {
		d := firstDecision(t, ds[id])
		if d["build"] != false || !strings.HasPrefix(d["reason"].(string), want) {
			t.Errorf("delivery %s decision %v, want a skip %q", id, d, want)
		}
	}
	if d := firstDecision(t, ds["g-pr-sync"]); d["build"] != true || d["duplicate"] != true || d["pipeline_number"] != float64(3) {
		t.Errorf("synchronize of the same commit: %v, want the existing pipeline 3", d)
	}
	// Every pipeline was handed off with a pending (or error) status request.
	if got := len(s.srv.Handoff.StatusRequests()); got != 4 {
		t.Errorf("status requests = %d, want 4", got)
	}

	// The executor's message carries a single-use runner token for the checkout material.
	msgs := s.srv.Handoff.Pipelines()
	first := msgs[0]
	if first.RunnerToken == "" || first.CheckoutURL != s.url+"/api/v2/pipeline/"+first.Pipeline.ID+"/checkout" {
		t.Fatalf("executor message = %+v, want a runner token and checkout URL", first)
	}
	checkout := func() (int, map[string]any) {
		req, _ := http.NewRequest(http.MethodGet, first.CheckoutURL, nil)
		req.Header.Set("Authorization", "Bearer "+first.RunnerToken)
		return do(t, req)
	}
	status, body = checkout()
	if status != http.StatusOK || body["revision"] != first.Pipeline.Revision || body["checkout_key"] == nil {
		t.Fatalf("checkout material: %d %v", status, body)
	}
	if key, _ := body["checkout_key"].(map[string]any)["private_key"].(string); !strings.Contains(key, "PRIVATE KEY") {
		t.Errorf("checkout material has no private key")
	}
	if status, _ := checkout(); status != http.StatusUnauthorized {
		t.Errorf("second use of the runner token: %d, want 401", status)
	}

	// Settings: unknown fields and wrong types change nothing.
	for _, bad := range []string{`{"advanced":{"build_pr_only":true}}`, `{"advanced":{"build_fork_prs":"yes"}}`, `{"advanced":`, `{"advanced":{"pr_only_branch_overrides":["/(/"]}}`} {
		if status, body := s.patch(t, "/api/v2/project/"+slug+"/settings", bad); status != http.StatusBadRequest {
			t.Errorf("PATCH %s: %d %v, want 400", bad, status, body)
		}
	}
	status, body = s.call(t, http.MethodGet, "/api/v2/project/"+slug+"/settings")
	adv := body["advanced"].(map[string]any)
	if status != http.StatusOK || adv["build_prs_only"] != true || adv["build_fork_prs"] != false {
		t.Errorf("settings after bad patches: %d %v", status, body)
	}
}

// TestTriggerBitbucket does the same with real Bitbucket payloads. A push
// and a pull-request update of one commit make one pipeline, although
// Bitbucket names the commit by 40 characters in the one and 12 in the other.
func TestTriggerBitbucket(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "bb/octo-org/hello-world"
	const develop = "507a576e59b3c4d5e6f708192a3b4c5d6e7f8091" // the PR payload's 507a576e59b3, in full
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL := body["hook_url"].(string)
	secret := s.bb.Hooks(repo)[0].Secret
	s.bb.SetFile(repo, "141977fedf5cf35aa290ac87d4b5177ac4cd9de1", ".circleci/config.yml", []byte(ciConfig))
	s.bb.SetFile(repo, develop, ".circleci/config.yml", []byte(ciConfig))
	// A push of develop at that commit: the corpus push, renamed.
	developPush := strings.NewReplacer(`"master"`, `"develop"`, "141977fedf5cf35aa290ac87d4b5177ac4cd9de1", develop).Replace(string(corpus(t, "bitbucket/repo-push.json")))
	bb := providers[1]
	for _, d := range []struct {
		event, id string
		body      []byte
	}{
		{"repo:push", "b-push", corpus(t, "bitbucket/repo-push.json")},
		{"repo:push", "b-tag", corpus(t, "bitbucket/repo-push.tag-create.json")},
		{"repo:push", "b-push-develop", []byte(developPush)},
		{"pullrequest:created", "b-pr", corpus(t, "bitbucket/pullrequest-created.json")},
	} {
		if status, body := do(t, bb.deliver(hookURL, secret, d.event, d.id, d.body)); status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %v", d.id, status, body)
		}
		s.waitDelivery(t, slug, d.id)
	}
	pls := s.pipelines(t, slug)
	if len(pls) != 2 {
		t.Fatalf("pipelines = %v, want 2", pls)
	}
	if v := pls[0]["vcs"].(map[string]any); v["branch"] != "develop" || v["revision"] != develop || pls[0]["number"] != float64(2) {
		t.Errorf("newest pipeline = %v, want develop #2 at the full revision", pls[0])
	}
	if v := pls[1]["vcs"].(map[string]any); v["branch"] != "master" || pls[1]["number"] != float64(1) {
		t.Errorf("first pipeline = %v, want master #1", pls[1])
	}
	ds := s.deliveries(t, slug)
	if d := firstDecision(t, ds["b-pr"]); d["build"] != true || d["duplicate"] != true || d["pipeline_number"] != float64(2) || d["revision"] != develop {
		t.Errorf("PR of the pushed commit: %v, want the existing pipeline 2 at the full revision", d)
	}
	d := firstDecision(t, ds["b-tag"])
	if d["build"] != false || d["reason"] != "no workflow matches tag feature/x" {
		t.Errorf("tag feature/x decision = %v, want skipped by the tag filter", d)
	}
}
