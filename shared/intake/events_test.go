package intake

import (
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"forgelink/shared/forgelink"
)

// githubEvents is every webhook event GitHub documents for github.com
// (docs.github.com "Webhook events and payloads"); a hook set to "Send me
// everything" may deliver any of them.
var githubEvents = []string{
	"branch_protection_configuration", "branch_protection_rule", "check_run", "check_suite",
	"code_scanning_alert", "commit_comment", "create", "custom_property", "custom_property_values",
	"delete", "dependabot_alert", "deploy_key", "deployment", "deployment_protection_rule",
	"deployment_review", "deployment_status", "discussion", "discussion_comment", "fork",
	"github_app_authorization", "gollum", "installation", "installation_repositories",
	"installation_target", "issue_comment", "issue_dependencies", "issue_relates_to", "issues",
	"label", "marketplace_purchase", "member", "membership", "merge_group", "meta", "milestone",
	"org_block", "organization", "package", "page_build", "personal_access_token_request", "ping",
	"project", "project_card", "project_column", "projects_v2", "projects_v2_item",
	"projects_v2_status_update", "public", "pull_request", "pull_request_review",
	"pull_request_review_comment", "pull_request_review_thread", "push", "registry_package",
	"release", "repository", "repository_advisory", "repository_dispatch", "repository_import",
	"repository_ruleset", "repository_vulnerability_alert", "secret_scanning_alert",
	"secret_scanning_alert_location", "secret_scanning_scan", "security_advisory",
	"security_and_analysis", "sponsorship", "star", "status", "sub_issues", "team", "team_add",
	"watch", "workflow_dispatch", "workflow_job", "workflow_run",
}

// bitbucketEvents is every Bitbucket Cloud webhook event key (the
// HookEvent enum of Bitbucket's API, GET /2.0/hook_events/{subject}).
var bitbucketEvents = []string{
	"repo:push", "repo:fork", "repo:updated", "repo:transfer", "repo:created", "repo:deleted",
	"repo:imported", "repo:commit_comment_created", "repo:commit_status_created",
	"repo:commit_status_updated", "issue:created", "issue:updated", "issue:comment_created",
	"pullrequest:created", "pullrequest:updated", "pullrequest:approved", "pullrequest:unapproved",
	"pullrequest:fulfilled", "pullrequest:rejected", "pullrequest:comment_created",
	"pullrequest:comment_updated", "pullrequest:comment_deleted", "pullrequest:comment_resolved",
	"pullrequest:comment_reopened", "pullrequest:changes_request_created",
	"pullrequest:changes_request_removed", "pullrequest:push", "project:updated",
	"pipeline:span_created",
}

// acted are the events forgelink builds from: a delivery of one of these
// with something to build is accepted (202) and stored.
var acted = map[string]bool{
	"github/push": true, "github/pull_request": true,
	"bitbucket/repo:push": true, "bitbucket/pullrequest:created": true, "bitbucket/pullrequest:updated": true,
	"bitbucket/pullrequest:fulfilled": true, "bitbucket/pullrequest:rejected": true,
}

// eventFile is one delivery of testdata/events: the event name (the
// X-GitHub-Event or X-Event-Key header) and its payload. Bitbucket files
// are named after the key with ":" written as "-" (a colon is not allowed
// in a Go module's file names, nor on Windows).
type eventFile struct {
	vcs, event string
	body       []byte
}

func eventFiles(t *testing.T, vcs string) []eventFile {
	t.Helper()
	dir := filepath.Join("..", "..", "testdata", "events", vcs)
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no payloads in %s: %v", dir, err)
	}
	var out []eventFile
	for _, name := range names {
		event := strings.TrimSuffix(filepath.Base(name), ".json")
		if vcs == "bitbucket" {
			event = strings.Replace(event, "-", ":", 1)
		}
		body, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, eventFile{vcs: vcs, event: event, body: body})
	}
	return out
}

// TestEveryEventType sends a signed delivery of every event type GitHub
// and Bitbucket Cloud document, with their example payloads, through the
// intake handler. The events forgelink acts on are accepted and stored;
// every other is answered 200 {"ignored": true, "event": ...} and stored
// nowhere, so a hook set to send everything lists no failed delivery.
// The same payload cut short is not JSON: 400, stored nowhere.
func TestEveryEventType(t *testing.T) {
	for _, vcs := range []struct {
		name  string
		want  []string
		hook  string
		build func(path, event, id string, body []byte, secret string) *http.Request
		sec   string
	}{
		{"github", githubEvents, ghHook, ghDelivery, ghSecret},
		{"bitbucket", bitbucketEvents, bbHook, bbDelivery, bbSecret},
	} {
		files := eventFiles(t, vcs.name)
		var got []string
		for _, f := range files {
			got = append(got, f.event)
		}
		if missing, extra := diffSets(vcs.want, got); len(missing)+len(extra) > 0 {
			t.Errorf("testdata/events/%s: missing payloads for %q, unexpected files for %q", vcs.name, missing, extra)
		}
		env := newIntakeEnv(t)
		path := "/hooks/" + vcs.name + "/" + vcs.hook
		for _, f := range files {
			t.Run(vcs.name+"/"+f.event, func(t *testing.T) {
				id := "evt-" + vcs.name + "-" + f.event
				before := env.queue.count()
				status, body := serve(env.h, vcs.build(path, f.event, id, f.body, vcs.sec))
				_, err := env.store.GetDelivery(context.Background(), vcs.hook, id)
				stored := err == nil
				if !stored && forgelink.KindOf(err) != forgelink.NotFound {
					t.Fatalf("GetDelivery: %v, want found or NotFound", err)
				}
				queued := env.queue.count() - before
				nothing := func(what string) {
					if stored || queued != 0 {
						t.Errorf("%s: stored %v, queued %d; want nothing stored or queued", what, stored, queued)
					}
				}
				ignored := status == http.StatusOK && body["ignored"] == true && body["event"] == f.event
				switch key := vcs.name + "/" + f.event; {
				case f.event == "ping":
					if status != http.StatusOK || body["ping"] != true {
						t.Errorf("ping: %d %v, want 200 {\"ping\": true}", status, body)
					}
					nothing("ping")
				case acted[key] && status == http.StatusAccepted:
					if !stored || queued != 1 {
						t.Errorf("accepted delivery: stored %v, queued %d; want stored and queued once", stored, queued)
					}
				case acted[key] && ignored:
					// A payload with nothing to build, e.g. a labeled pull request.
					t.Logf("%s: nothing to build in this payload", f.event)
					nothing("ignored delivery")
				case acted[key]:
					t.Errorf("%d %v, want 202 (or 200 ignored when there is nothing to build)", status, body)
				default:
					if !ignored {
						t.Errorf("%d %v, want 200 {\"ignored\": true, \"event\": %q}", status, body, f.event)
					}
					nothing("ignored delivery")
				}

				// Cut short, the body is not JSON: 400 whatever the event.
				cutID := id + "-cut"
				status, body = serve(env.h, vcs.build(path, f.event, cutID, f.body[:len(f.body)/2], vcs.sec))
				if status != http.StatusBadRequest || body["message"] == nil {
					t.Errorf("truncated payload: %d %v, want 400 with a message", status, body)
				}
				if _, err := env.store.GetDelivery(context.Background(), vcs.hook, cutID); forgelink.KindOf(err) != forgelink.NotFound {
					t.Errorf("truncated payload: GetDelivery = %v, want NotFound", err)
				}
			})
		}
	}
}

// diffSets returns what want has and got lacks, and what got has and want
// lacks.
func diffSets(want, got []string) (missing, extra []string) {
	for _, w := range want {
		if !slices.Contains(got, w) {
			missing = append(missing, w)
		}
	}
	for _, g := range got {
		if !slices.Contains(want, g) {
			extra = append(extra, g)
		}
	}
	return missing, extra
}
