package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/shared/accessapi"
	"forgelink/shared/apiauth"
	"forgelink/shared/config"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/forges"
	"forgelink/shared/lambdarun"
	"forgelink/shared/orgaccess"
	"forgelink/shared/vcsfake"
)

// The API's own host, as the deployed stack's FORGELINK_PUBLIC_URL would
// name it.
const sampleAPIURL = "https://abc123.execute-api.us-east-1.amazonaws.com"

// orgAccessFunction is functions/orgaccess wired as its main wires it -
// config from the environment, the VCS clients of forges.FromEnv, repairs
// by follow.Service with the KMS sealer, the static API token - over the
// local AWS server's DynamoDB and KMS.
type orgAccessFunction struct {
	schedule lambdarun.ScheduleFunc
	api      func(context.Context, events.APIGatewayV2HTTPRequest) (events.APIGatewayV2HTTPResponse, error)
}

func newOrgAccessFunction(t *testing.T, st *lambdaStack, extra map[string]string) *orgAccessFunction {
	t.Helper()
	env := map[string]string{}
	for k, v := range st.env {
		env[k] = v
	}
	for k, v := range extra {
		env[k] = v
	}
	cfg, err := config.FromEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok })
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.NewJSONHandler(io.Discard, nil))
	vcs := forges.FromEnv(cfg, nil)
	repair := &follow.Service{Store: st.store, Sealer: st.seal, Forges: vcs, Log: log}
	svc := &orgaccess.Service{
		Store: st.store, Checkers: forges.Checkers(vcs), Repair: repair.Repair, PublicURL: cfg.PublicURL,
		GitHubWebURL: cfg.GitHubWebURL, OAuthClientID: cfg.OAuthClientID, Log: log,
	}
	api := &accessapi.API{Service: svc, Auth: apiauth.NewStaticToken(cfg.APIToken, apiauth.User{Login: cfg.APIUser}), Log: log}
	return &orgAccessFunction{
		schedule: func(ctx context.Context, _ events.EventBridgeEvent) error {
			_, err := svc.Sweep(ctx, orgaccess.Scope{})
			return err
		},
		api: httpadapter.NewV2(api.Handler()).ProxyWithContext,
	}
}

// loadScheduled reads events/scheduled.json as Lambda hands it to the
// function, failing when it is not what `make events` writes.
func loadScheduled(t *testing.T) events.EventBridgeEvent {
	t.Helper()
	root, err := repoRoot()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(root, "events", "scheduled.json"))
	if err != nil {
		t.Fatal(err)
	}
	want, err := json.MarshalIndent(scheduledEvent(), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, append(want, '\n')) {
		t.Errorf("events/scheduled.json is stale: run make events")
	}
	var ev events.EventBridgeEvent
	if err := json.Unmarshal(b, &ev); err != nil {
		t.Fatal(err)
	}
	if ev.DetailType != "Scheduled Event" || ev.Source != "aws.events" {
		t.Fatalf("events/scheduled.json is not a scheduled event: %+v", ev)
	}
	return ev
}

// orgAccessRequest is an API Gateway v2 event for the org-access routes,
// built as the samples in events/ are.
func orgAccessRequest(t *testing.T, method, path, query, body, token string) events.APIGatewayV2HTTPRequest {
	t.Helper()
	route := "GET /api/v2/org-access"
	if method == http.MethodPost {
		route = "POST /api/v2/org-access/check"
	}
	s := sampleEvent{method: method, route: route, path: path, body: body, headers: map[string]string{}}
	if token != "" {
		s.headers["circle-token"] = token
	}
	ev, err := buildEvent(s, "")
	if err != nil {
		t.Fatal(err)
	}
	ev.RawQueryString = query
	return *ev
}

// listOrgAccess calls GET /api/v2/org-access through the adapter and
// returns the orgs by slug.
func (fn *orgAccessFunction) listOrgAccess(t *testing.T) map[string]orgaccess.Org {
	t.Helper()
	resp, err := fn.api(context.Background(), orgAccessRequest(t, http.MethodGet, "/api/v2/org-access", "", "", SampleAPIToken))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET /api/v2/org-access: %d %s", resp.StatusCode, resp.Body)
	}
	var body struct {
		Items []orgaccess.Org `json:"items"`
	}
	if err := json.Unmarshal([]byte(resp.Body), &body); err != nil {
		t.Fatalf("GET /api/v2/org-access: %v: %s", err, resp.Body)
	}
	out := map[string]orgaccess.Org{}
	for _, o := range body.Items {
		out[o.Slug] = o
	}
	return out
}

// TestOrgAccessLambdaEvents runs the scheduled sample through the orgaccess
// function's schedule on the local AWS server, against fake GitHub and
// Bitbucket APIs that have the sample repositories but neither the hook
// nor the deploy key the seeded projects name ("1"): the sweep finds the
// hook missing and reinstalls both, signed with the seeded secret, and
// GET /api/v2/org-access shows it.
func TestOrgAccessLambdaEvents(t *testing.T) {
	st := newLambdaStack(t)
	ctx := context.Background()
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo(SampleOrg+"/"+SampleRepo, "main", false)
	bb := vcsfake.NewBitbucket(t)
	bb.AddRepo(SampleOrg+"/"+SampleRepo, "main", true)
	// Someone else's key takes the fake's first id: a VCS never hands out
	// the seeded id "1" again, and the sweep tells a re-added key by its
	// new id.
	bb.AddRepo("someone/else", "main", true)
	bb.AddKeyDirect("someone/else", "theirs", vcsfake.NewPublicKey("theirs"))
	vcsEnv := map[string]string{
		"GITHUB_API_URL": gh.URL, "GITHUB_TOKEN": gh.Token,
		"BITBUCKET_API_URL": bb.URL, "BITBUCKET_TOKEN": bb.Token,
	}
	ghSlug, _ := forgelink.NewSlug(SampleVCS, SampleOrg, SampleRepo)
	bbSlug, _ := forgelink.NewSlug("bitbucket", SampleOrg, SampleRepo)
	scheduled := loadScheduled(t)

	// As make invoke runs it: no FORGELINK_PUBLIC_URL, and the seeded
	// projects predate HookURL. The sweep records what it found and why it
	// could not repair; nothing is installed.
	fn := newOrgAccessFunction(t, st, vcsEnv)
	if err := fn.schedule(ctx, scheduled); err != nil {
		t.Fatalf("schedule: %v", err)
	}
	p, err := st.store.GetProject(ctx, ghSlug)
	if err != nil {
		t.Fatal(err)
	}
	if a := p.Access; a == nil || a.State != forgelink.AccessHookMissing ||
		!strings.Contains(a.Detail, "The webhook was deleted.") || !strings.Contains(a.Detail, "The deploy key was deleted.") ||
		!strings.Contains(a.Detail, "Repair failed") || !strings.Contains(a.Detail, "FORGELINK_PUBLIC_URL") || len(a.Repairs) != 0 {
		t.Errorf("without a public URL: access %+v, want hook_missing, both deletions and why the repair failed", a)
	}
	if hooks, keys := gh.Hooks(SampleOrg+"/"+SampleRepo), gh.DeployKeys(SampleOrg+"/"+SampleRepo); len(hooks)+len(keys) != 0 {
		t.Errorf("without a public URL the sweep installed hooks %+v and keys %+v", hooks, keys)
	}

	// With the stack's API URL the next scheduled sweep repairs.
	vcsEnv["FORGELINK_PUBLIC_URL"] = sampleAPIURL
	vcsEnv["GITHUB_OAUTH_CLIENT_ID"] = "Iv1.sample"
	fn = newOrgAccessFunction(t, st, vcsEnv)
	if err := fn.schedule(ctx, scheduled); err != nil {
		t.Fatalf("schedule: %v", err)
	}
	for _, tc := range []struct {
		slug  forgelink.Slug
		hooks []vcsfake.Hook
		keys  []vcsfake.Key
	}{
		{ghSlug, gh.Hooks(SampleOrg + "/" + SampleRepo), gh.DeployKeys(SampleOrg + "/" + SampleRepo)},
		{bbSlug, bb.Hooks(SampleOrg + "/" + SampleRepo), bb.DeployKeys(SampleOrg + "/" + SampleRepo)},
	} {
		p, err := st.store.GetProject(ctx, tc.slug)
		if err != nil {
			t.Fatal(err)
		}
		wantURL := follow.HookURL(sampleAPIURL, tc.slug.VCS, p.HookID)
		if len(tc.hooks) != 1 || tc.hooks[0].URL != wantURL || tc.hooks[0].Secret != SampleSecret || !tc.hooks[0].Active {
			t.Errorf("%s: hooks %+v, want one active hook at %s signed with the seeded secret %q", tc.slug, tc.hooks, wantURL, SampleSecret)
			continue
		}
		material := strings.Join(strings.Fields(p.DeployKey.PublicKey)[:2], " ")
		if len(tc.keys) != 1 || tc.keys[0].Key != material || !tc.keys[0].ReadOnly {
			t.Errorf("%s: deploy keys %+v, want the seeded key, read-only", tc.slug, tc.keys)
			continue
		}
		if p.WebhookVCSID != tc.hooks[0].ID || p.DeployKeyVCSID != tc.keys[0].ID || p.HookURL != wantURL {
			t.Errorf("%s: stored hook %s at %q, key %s; want %s at %s, %s", tc.slug, p.WebhookVCSID, p.HookURL, p.DeployKeyVCSID, tc.hooks[0].ID, wantURL, tc.keys[0].ID)
		}
		a := p.Access
		wantRepairs := []string{"reinstalled the webhook (id " + tc.hooks[0].ID + ")", "re-added the deploy key (id " + tc.keys[0].ID + ")"}
		if a == nil || a.State != forgelink.AccessHookMissing || strings.Join(a.Repairs, "|") != strings.Join(wantRepairs, "|") || strings.Contains(a.Detail, "Repair failed") {
			t.Errorf("%s: access %+v, want hook_missing with repairs %q", tc.slug, a, wantRepairs)
		}
	}

	// GET /api/v2/org-access as API Gateway delivers it lists both orgs.
	orgs := fn.listOrgAccess(t)
	for _, slug := range []string{"gh/" + SampleOrg, "bb/" + SampleOrg} {
		o, ok := orgs[slug]
		if !ok || o.State != forgelink.AccessHookMissing || o.Remediation == nil || o.Remediation.Action != "None" ||
			len(o.Projects) != 1 || len(o.Projects[0].Repairs) != 2 || o.CheckedAt.IsZero() {
			t.Errorf("org %s = %+v, want hook_missing (repaired by itself) with the project's two repairs", slug, o)
		}
	}
	if len(orgs) != 2 {
		t.Errorf("orgs = %v, want the two sample orgs", orgs)
	}

	// The repairs hold: the next scheduled sweep finds both ok, and adds
	// nothing on the VCSs.
	if err := fn.schedule(ctx, scheduled); err != nil {
		t.Fatalf("schedule: %v", err)
	}
	for slug, o := range fn.listOrgAccess(t) {
		if o.State != forgelink.AccessOK || o.Remediation != nil {
			t.Errorf("after the repairs held, %s = %s %+v, want ok", slug, o.State, o.Remediation)
		}
	}
	if n := len(gh.Hooks(SampleOrg+"/"+SampleRepo)) + len(bb.Hooks(SampleOrg+"/"+SampleRepo)); n != 2 {
		t.Errorf("%d hooks in all after the third sweep, want 2", n)
	}

	// An OAuth App restriction is reported with the button to click, and
	// an org-scoped check through the adapter sees the change at once.
	gh.SetOrgRestricted(SampleOrg, true)
	resp, err := fn.api(ctx, orgAccessRequest(t, http.MethodPost, "/api/v2/org-access/check", "", `{"org":"gh/`+SampleOrg+`"}`, SampleAPIToken))
	if err != nil {
		t.Fatal(err)
	}
	var res orgaccess.Result
	if resp.StatusCode != http.StatusOK || json.Unmarshal([]byte(resp.Body), &res) != nil || res.Checked != 1 || len(res.Orgs) != 1 {
		t.Fatalf("POST check: %d %s, want one project checked", resp.StatusCode, resp.Body)
	}
	if rem := res.Orgs[0].Remediation; res.Orgs[0].State != forgelink.AccessRestricted || rem == nil || rem.Action != "Request access" ||
		rem.URL != "https://github.com/settings/connections/applications/Iv1.sample" {
		t.Errorf("restricted org = %+v, remediation %+v", res.Orgs[0], rem)
	}
	// GET with ?org= lists only that org.
	resp, err = fn.api(ctx, orgAccessRequest(t, http.MethodGet, "/api/v2/org-access", "org=bb/"+SampleOrg, "", SampleAPIToken))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusOK || !strings.Contains(resp.Body, `"slug":"bb/`+SampleOrg+`"`) || strings.Contains(resp.Body, `"slug":"gh/`) {
		t.Errorf("GET ?org=bb/%s: %d %s", SampleOrg, resp.StatusCode, resp.Body)
	}
	// Without the token: 401.
	resp, err = fn.api(ctx, orgAccessRequest(t, http.MethodGet, "/api/v2/org-access", "", "", ""))
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("GET without a token: %d %s, want 401", resp.StatusCode, resp.Body)
	}
}
