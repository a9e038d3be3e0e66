package server_test

import (
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/queue"
)

// report posts an executor status report with token.
func (s *stack) report(t *testing.T, pipelineID, token, body string) (int, map[string]any) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, s.url+"/api/v2/pipeline/"+pipelineID+"/status", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Circle-Token", token)
	}
	return do(t, req)
}

// badge fetches a badge and returns its body.
func (s *stack) badge(t *testing.T, path string) string {
	t.Helper()
	resp, err := http.Get(s.url + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, resp.StatusCode, b)
	}
	return string(b)
}

// waitFor polls cond until it holds or a generous deadline passes.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// handedOff returns the executor message of the pipeline on revision.
func (s *stack) handedOff(t *testing.T, revision string) *queue.PipelineMessage {
	t.Helper()
	for _, m := range s.srv.Handoff.Pipelines() {
		if m.Pipeline.Revision == revision {
			return m
		}
	}
	t.Fatalf("no pipeline handed off for %s", revision)
	return nil
}

// TestStatusesGitHub follows a repository, pushes, and plays the executor:
// GitHub sees exactly pending then success for the workflow's context, the
// badge turns from running to passing, and replayed, reordered and
// foreign reports change nothing.
func TestStatusesGitHub(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"    // github/push.json's head
	const tagRev = "d2b75aa7797ec26b088fa2dd527e9d2c052fcedd" // github/push.tag.json's
	const ctx = "ci/forgelink: ci"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL, secret := body["hook_url"].(string), s.gh.Hooks(repo)[0].Secret
	for _, r := range []string{rev, tagRev} {
		s.gh.SetFile(repo, r, ".circleci/config.yml", []byte(ciConfig))
	}
	gh := providers[0]
	deliver := func(event, id, file string) {
		t.Helper()
		if status, body := do(t, gh.deliver(hookURL, secret, event, id, corpus(t, "github/"+file))); status != http.StatusAccepted {
			t.Fatalf("delivery %s: %d %v", id, status, body)
		}
		s.waitDelivery(t, slug, id)
	}
	states := func(sha, context string) []string {
		var out []string
		for _, st := range s.gh.Statuses(repo, sha) {
			if st.Context == context {
				out = append(out, st.State)
			}
		}
		return out
	}

	deliver("push", "s-push", "push.json")
	waitFor(t, "the pending status", func() bool { return len(states(rev, ctx)) == 1 })
	got := s.gh.Statuses(repo, rev)[0]
	msg := s.handedOff(t, rev)
	if got.State != "pending" || got.TargetURL != s.url+"/pipelines/"+msg.Pipeline.ID || got.Description != "Workflow ci is queued" {
		t.Errorf("first status = %+v, want pending linking to the pipeline", got)
	}
	if msg.ExecutorToken == "" || msg.StatusURL != s.url+"/api/v2/pipeline/"+msg.Pipeline.ID+"/status" {
		t.Fatalf("executor message = %+v, want an executor token and the status URL", msg)
	}
	if !strings.Contains(s.badge(t, "/gh/octo-org/hello-world.svg"), "running") {
		t.Errorf("badge of a pending pipeline does not say running")
	}

	// The executor reports with its own token.
	id, tok := msg.Pipeline.ID, msg.ExecutorToken
	if status, body := s.report(t, id, tok, `{"state":"running"}`); status != http.StatusOK || body["changed"] != true || body["status"] != "running" {
		t.Fatalf("report running: %d %v", status, body)
	}
	if !strings.Contains(s.badge(t, "/gh/octo-org/hello-world.svg"), "running") {
		t.Errorf("badge of a running pipeline does not say running")
	}
	if status, body := s.report(t, id, tok, `{"state":"success","workflow":"ci"}`); status != http.StatusOK || body["status"] != "success" {
		t.Fatalf("report success: %d %v", status, body)
	}
	waitFor(t, "the success status", func() bool { return len(states(rev, ctx)) == 2 })
	if got := states(rev, ctx); !slices.Equal(got, []string{"pending", "success"}) {
		t.Errorf("GitHub saw %v for %s, want exactly pending then success", got, ctx)
	}
	waitFor(t, "the passing badge", func() bool {
		return strings.Contains(s.badge(t, "/gh/octo-org/hello-world.svg"), "passing")
	})

	// A replayed report is a no-op; a reordered one is a conflict naming both states.
	if status, body := s.report(t, id, tok, `{"state":"success"}`); status != http.StatusOK || body["changed"] != false {
		t.Errorf("replayed success: %d %v, want 200 unchanged", status, body)
	}
	status, body = s.report(t, id, tok, `{"state":"running"}`)
	if m, _ := body["message"].(string); status != http.StatusConflict || !strings.Contains(m, "success") || !strings.Contains(m, "running") {
		t.Errorf("running after success: %d %v, want 409 naming both states", status, body)
	}

	// Another pipeline's token, no token, a bad state, an unknown pipeline.
	deliver("push", "s-tag", "push.tag.json")
	other := s.handedOff(t, tagRev)
	for _, c := range []struct {
		name, id, token, body string
		want                  int
	}{
		{"another pipeline's executor token", id, other.ExecutorToken, `{"state":"failed"}`, http.StatusForbidden},
		{"no token", id, "", `{"state":"failed"}`, http.StatusUnauthorized},
		{"an unknown executor token", id, "fle_not-a-token", `{"state":"failed"}`, http.StatusUnauthorized},
		{"a pending report", id, apiToken, `{"state":"pending"}`, http.StatusBadRequest},
		{"an unknown workflow", other.Pipeline.ID, apiToken, `{"state":"running","workflow":"nope"}`, http.StatusBadRequest},
		{"truncated JSON", id, apiToken, `{"state":`, http.StatusBadRequest},
		{"an unknown pipeline", "00000000-0000-0000-0000-000000000000", apiToken, `{"state":"running"}`, http.StatusNotFound},
	} {
		if status, body := s.report(t, c.id, c.token, c.body); status != c.want {
			t.Errorf("%s: %d %v, want %d", c.name, status, body, c.want)
		}
	}
	if got := states(rev, ctx); len(got) != 2 {
		t.Errorf("bad reports posted statuses: %v", got)
	}

	// The pipelines API shows the states.
	pls := s.pipelines(t, slug)
	first := pls[len(pls)-1]
	if first["status"] != "success" || first["workflow_status"].(map[string]any)["ci"] != "success" {
		t.Errorf("pipeline after success = status %v workflows %v", first["status"], first["workflow_status"])
	}

	// GitHub Status updates off: nothing is posted, and the pipeline says why.
	if status, body := s.patch(t, "/api/v2/project/"+slug+"/settings", `{"advanced":{"set_github_status":false}}`); status != http.StatusOK {
		t.Fatalf("patch settings: %d %v", status, body)
	}
	before := s.gh.StatusPosts()
	if status, body := s.report(t, other.Pipeline.ID, other.ExecutorToken, `{"state":"failed"}`); status != http.StatusOK {
		t.Fatalf("report on the tag pipeline: %d %v", status, body)
	}
	waitFor(t, "the note on the tag pipeline", func() bool {
		_, p := s.call(t, http.MethodGet, "/api/v2/pipeline/"+other.Pipeline.ID)
		errs, _ := p["status_errors"].([]any)
		return len(errs) > 0 && strings.Contains(errs[0].(string), "set_github_status")
	})
	if after := s.gh.StatusPosts(); after != before {
		t.Errorf("GitHub Status updates off, yet %d statuses were posted", after-before)
	}
}

// TestStatusesGitHubRefusedAndRetried: a 500 and a rate limit are retried
// until the status lands; an OAuth App access restriction is not retried,
// and the pipeline and project record it.
func TestStatusesGitHubRefusedAndRetried(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "gh/octo-org/hello-world"
	const rev = "366701fde727cb7a9e7f21eb88264f59f6f9b89c"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL, secret := body["hook_url"].(string), s.gh.Hooks(repo)[0].Secret
	s.gh.SetFile(repo, rev, ".circleci/config.yml", []byte(ciConfig))
	s.gh.FailNext(http.MethodPost, "/statuses/"+rev, http.StatusBadGateway, 2)
	if status, body := do(t, providers[0].deliver(hookURL, secret, "push", "r-push", corpus(t, "github/push.json"))); status != http.StatusAccepted {
		t.Fatalf("delivery: %d %v", status, body)
	}
	waitFor(t, "the pending status after two 502s", func() bool { return len(s.gh.Statuses(repo, rev)) == 1 })

	// Access restricted by the organization: recorded, not retried.
	msg := s.handedOff(t, rev)
	s.gh.FailNextResponse(http.MethodPost, "/statuses/"+rev, 1, http.StatusForbidden, nil, string(corpus(t, "github/errors/oauth_app_access_restrictions.403.json")))
	if status, body := s.report(t, msg.Pipeline.ID, msg.ExecutorToken, `{"state":"failed"}`); status != http.StatusOK {
		t.Fatalf("report: %d %v", status, body)
	}
	waitFor(t, "the refusal on the pipeline", func() bool {
		_, p := s.call(t, http.MethodGet, "/api/v2/pipeline/"+msg.Pipeline.ID)
		errs, _ := p["status_errors"].([]any)
		return len(errs) == 1 && strings.Contains(errs[0].(string), "could not post status ci/forgelink: ci")
	})
	// The project records it too, for the org-access check.
	waitFor(t, "the refusal on the project", func() bool {
		p, err := s.srv.Store.GetProject(t.Context(), mustSlug(t, slug))
		if err != nil {
			t.Fatal(err)
		}
		return p.VCSProblem != nil && p.VCSProblem.Kind == "forbidden" && strings.Contains(p.VCSProblem.Message, "OAuth App access restrictions")
	})
	time.Sleep(50 * time.Millisecond) // a retry would have come by now (backoff 10ms)
	if got := len(s.gh.Statuses(repo, rev)); got != 1 {
		t.Errorf("statuses after a 403 = %d, want still 1 (not retried into a post)", got)
	}
}

// TestStatusesBitbucket: INPROGRESS for the new pipeline, then SUCCESSFUL,
// under one stable key per workflow.
func TestStatusesBitbucket(t *testing.T) {
	s := newTriggerStack(t)
	const repo, slug = "octo-org/hello-world", "bb/octo-org/hello-world"
	const rev = "141977fedf5cf35aa290ac87d4b5177ac4cd9de1"
	status, body := s.call(t, http.MethodPost, "/api/v1.1/project/"+slug+"/follow")
	if status != http.StatusCreated {
		t.Fatalf("follow: %d %v", status, body)
	}
	hookURL, secret := body["hook_url"].(string), s.bb.Hooks(repo)[0].Secret
	s.bb.SetFile(repo, rev, ".circleci/config.yml", []byte(ciConfig))
	if status, body := do(t, providers[1].deliver(hookURL, secret, "repo:push", "b-push", corpus(t, "bitbucket/repo-push.json"))); status != http.StatusAccepted {
		t.Fatalf("delivery: %d %v", status, body)
	}
	waitFor(t, "INPROGRESS", func() bool { return len(s.bb.BuildStatuses(repo, rev)) == 1 })
	msg := s.handedOff(t, rev)
	for _, st := range []string{"running", "success"} {
		if status, body := s.report(t, msg.Pipeline.ID, msg.ExecutorToken, `{"state":"`+st+`"}`); status != http.StatusOK {
			t.Fatalf("report %s: %d %v", st, status, body)
		}
	}
	waitFor(t, "SUCCESSFUL", func() bool { return len(s.bb.BuildStatuses(repo, rev)) == 2 })
	var seen []string
	for _, b := range s.bb.BuildStatuses(repo, rev) {
		if b.Key != "forgelink-ci" || b.Name != "ci/forgelink: ci" {
			t.Errorf("build status key %q name %q, want forgelink-ci / ci/forgelink: ci", b.Key, b.Name)
		}
		seen = append(seen, b.State)
	}
	if !slices.Equal(seen, []string{"INPROGRESS", "SUCCESSFUL"}) {
		t.Errorf("Bitbucket saw %v, want INPROGRESS then SUCCESSFUL", seen)
	}
	// Bitbucket projects here are private: the badge needs the token.
	if resp, err := http.Get(s.url + "/bb/octo-org/hello-world.svg"); err != nil || resp.StatusCode != http.StatusNotFound {
		t.Errorf("private badge without a token: %v %v, want 404", resp.StatusCode, err)
	}
	waitFor(t, "the passing badge", func() bool {
		return strings.Contains(s.badge(t, "/bb/octo-org/hello-world.svg?circle-token="+apiToken), "passing")
	})
}

func mustSlug(t *testing.T, s string) forgelink.Slug {
	t.Helper()
	slug, err := forgelink.ParseSlug(s)
	if err != nil {
		t.Fatal(err)
	}
	return slug
}
