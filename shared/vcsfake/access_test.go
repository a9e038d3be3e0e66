package vcsfake_test

import (
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/vcsfake"
)

// nextLink returns the rel="next" URL of a Link header, or "".
func nextLink(h http.Header) string {
	for _, l := range strings.Split(h.Get("Link"), ",") {
		if strings.HasSuffix(strings.TrimSpace(l), `rel="next"`) {
			return strings.Trim(strings.SplitN(strings.TrimSpace(l), ";", 2)[0], "<>")
		}
	}
	return ""
}

func TestGitHubStrongETagAnd304(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	h := g.AddHookDirect("o/r", vcsfake.Hook{URL: "https://x.example/", Events: []string{"push"}, Active: true})
	k := g.AddKeyDirect("o/r", "t", vcsfake.NewPublicKey(""), true)
	g.FailedDelivery("o/r", h.ID, "guid-1", "push", []byte(`{}`), 502)
	for _, path := range []string{"repos/o/r", "repos/o/r/hooks/" + h.ID, "repos/o/r/keys/" + k.ID, "repos/o/r/hooks/" + h.ID + "/deliveries"} {
		t.Run(path, func(t *testing.T) {
			resp, _ := call(t, "GET", g.URL+path, g.Token, "", nil)
			etag := resp.Header.Get("ETag")
			if resp.StatusCode != 200 || !strings.HasPrefix(etag, `"`) || !strings.HasSuffix(etag, `"`) || len(etag) < 10 {
				t.Fatalf("GET = %d with ETag %q, want 200 with a strong ETag", resp.StatusCode, etag)
			}
			charged := g.RateLimitedRequests()
			resp, body := call(t, "GET", g.URL+path, g.Token, "", http.Header{"If-None-Match": {etag}})
			if resp.StatusCode != http.StatusNotModified || len(body) != 0 || resp.Header.Get("ETag") != etag {
				t.Errorf("conditional GET = %d with %d bytes and ETag %q, want 304, no body, %s", resp.StatusCode, len(body), resp.Header.Get("ETag"), etag)
			}
			if resp.Header.Get("X-RateLimit-Remaining") == "" {
				t.Errorf("304 without X-RateLimit-Remaining")
			}
			if got := g.RateLimitedRequests(); got != charged {
				t.Errorf("RateLimitedRequests after a 304 = %d, want %d", got, charged)
			}
			reqs := g.Requests()
			if last := reqs[len(reqs)-1]; last.Status != http.StatusNotModified || !strings.HasSuffix(last.Path, path) {
				t.Errorf("last request = %+v, want the 304 recorded", last)
			}
		})
	}
	// A change of the hook makes its ETag stale.
	resp, _ := call(t, "GET", g.URL+"repos/o/r/hooks/"+h.ID, g.Token, "", nil)
	etag := resp.Header.Get("ETag")
	g.SetHookActive("o/r", h.ID, false)
	resp, body := call(t, "GET", g.URL+"repos/o/r/hooks/"+h.ID, g.Token, "", http.Header{"If-None-Match": {etag}})
	var got struct{ Active bool }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || got.Active {
		t.Errorf("GET after deactivation = %d %s, want 200 with active false", resp.StatusCode, body)
	}
}

func TestGitHubMembership(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("acme/r", "main", false)
	g.SetOrgRole("admins-inc", "admin")
	g.SetOrgRole("gone", "")
	g.AddRepo("gone/r", "main", false)
	tests := []struct {
		org, wantRole string // "": 404
	}{
		{"acme", "member"},
		{"ACME", "member"},
		{"admins-inc", "admin"},
		{"gone", ""},
		{"nobody", ""},
	}
	for _, tc := range tests {
		t.Run(tc.org, func(t *testing.T) {
			resp, body := call(t, "GET", g.URL+"user/memberships/orgs/"+tc.org, g.Token, "", nil)
			if tc.wantRole == "" {
				if resp.StatusCode != 404 {
					t.Errorf("GET = %d %s, want 404", resp.StatusCode, body)
				}
				return
			}
			var m struct {
				State, Role  string
				Organization struct{ Login string }
				User         struct{ Login string }
			}
			if err := json.Unmarshal(body, &m); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET = %d %s, want 200", resp.StatusCode, body)
			}
			if m.State != "active" || m.Role != tc.wantRole || m.Organization.Login != tc.org || m.User.Login != vcsfake.GitHubLogin {
				t.Errorf("membership = %+v, want active %s of %s", m, tc.wantRole, tc.org)
			}
		})
	}
}

func TestGitHubRestrictedOrgAnswersMembership(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("acme/r", "main", false)
	h := g.AddHookDirect("acme/r", vcsfake.Hook{URL: "https://x.example/", Events: []string{"push"}, Active: true})
	g.SetOrgRestricted("acme", true)
	want := string(corpusFile(t, "github/errors/oauth_app_access_restrictions.403.json"))
	want = strings.ReplaceAll(want, "`unit-mesh`", "`acme`")
	for _, path := range []string{"repos/acme/r", "repos/acme/r/hooks/" + h.ID + "/deliveries", "orgs/acme", "orgs/acme/members"} {
		resp, body := call(t, "GET", g.URL+path, g.Token, "", nil)
		if resp.StatusCode != 403 || string(body) != want {
			t.Errorf("GET %s = %d %s, want the corpus 403 naming acme", path, resp.StatusCode, body)
		}
	}
	if resp, body := call(t, "GET", g.URL+"user/memberships/orgs/acme", g.Token, "", nil); resp.StatusCode != 200 {
		t.Errorf("GET membership of a restricted org = %d %s, want 200", resp.StatusCode, body)
	}
	if resp, _ := call(t, "GET", g.URL+"orgs/other", g.Token, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET orgs/other = %d, want 404", resp.StatusCode)
	}
}

func TestGitHubDeliveriesCursorPagination(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	h := g.AddHookDirect("o/r", vcsfake.Hook{URL: "https://x.example/", Events: []string{"push"}, Active: true})
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var ids []string // newest first
	for i := range 5 {
		d := g.AddHookDelivery("o/r", h.ID, vcsfake.HookDeliveryRecord{Event: "push", DeliveredAt: base.Add(time.Duration(i) * time.Minute), StatusCode: 200})
		ids = append([]string{d.ID}, ids...)
	}
	var got []string
	next := g.URL + "repos/o/r/hooks/" + h.ID + "/deliveries?per_page=2"
	for page := 0; next != ""; page++ {
		if page > 5 {
			t.Fatal("too many pages")
		}
		resp, body := call(t, "GET", next, g.Token, "", nil)
		var ds []struct {
			ID          int64  `json:"id"`
			GUID        string `json:"guid"`
			DeliveredAt string `json:"delivered_at"`
			StatusCode  int    `json:"status_code"`
			Status      string `json:"status"`
		}
		if err := json.Unmarshal(body, &ds); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", next, resp.StatusCode, body)
		}
		for _, d := range ds {
			got = append(got, strconv.FormatInt(d.ID, 10))
			if d.Status != "OK" || d.GUID == "" || d.DeliveredAt == "" {
				t.Errorf("delivery %+v, want status OK, a guid and delivered_at", d)
			}
		}
		next = nextLink(resp.Header)
		if next != "" {
			u, _ := url.Parse(next)
			if !strings.HasPrefix(u.Query().Get("cursor"), "v1_") || u.Query().Get("per_page") != "2" || u.Query().Has("page") {
				t.Errorf("next link %s, want a cursor and per_page=2, no page", next)
			}
		}
		if page == 0 {
			// A delivery arriving between pages does not shift the cursor.
			g.AddHookDelivery("o/r", h.ID, vcsfake.HookDeliveryRecord{Event: "push", StatusCode: 200})
		}
	}
	if diff := cmp.Diff(ids, got); diff != "" {
		t.Errorf("delivery ids over the pages (-want +got):\n%s", diff)
	}
	if resp, _ := call(t, "GET", g.URL+"repos/o/r/hooks/"+h.ID+"/deliveries?cursor=bogus", g.Token, "", nil); resp.StatusCode != 422 {
		t.Errorf("GET with a bad cursor = %d, want 422", resp.StatusCode)
	}
	if resp, _ := call(t, "GET", g.URL+"repos/o/r/hooks/999/deliveries", g.Token, "", nil); resp.StatusCode != 404 {
		t.Errorf("GET deliveries of a missing hook = %d, want 404", resp.StatusCode)
	}
}

func mac(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

func TestGitHubRedelivery(t *testing.T) {
	payload := corpusFile(t, "github/pull_request.opened.json")
	tests := []struct {
		name        string
		contentType string
		secret      string
		wantBody    string
		wantCT      string
	}{
		{"json hook", "json", "s3cret", string(payload), "application/json"},
		{"form hook", "form", "s3cret", "payload=" + url.QueryEscape(string(payload)), "application/x-www-form-urlencoded"},
		{"no secret, no signature", "json", "", string(payload), "application/json"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			g := vcsfake.NewGitHub(t)
			g.AddRepo("o/r", "main", false)
			var (
				mu       sync.Mutex
				got      []http.Header
				bodies   []string
				callback int
			)
			rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				b, _ := io.ReadAll(r.Body)
				// The receiver calls the fake back while it redelivers.
				status := 0
				req, _ := http.NewRequest(http.MethodGet, g.URL+"repos/o/r", nil)
				req.Header.Set("Authorization", "Bearer "+g.Token)
				if resp, err := http.DefaultClient.Do(req); err == nil {
					resp.Body.Close()
					status = resp.StatusCode
				}
				mu.Lock()
				defer mu.Unlock()
				got, bodies, callback = append(got, r.Header.Clone()), append(bodies, string(b)), status
				w.WriteHeader(http.StatusNoContent)
			}))
			t.Cleanup(rc.Close)
			h := g.AddHookDirect("o/r", vcsfake.Hook{URL: rc.URL + "/hook", Secret: tc.secret, Events: []string{"pull_request"}, ContentType: tc.contentType, Active: true})
			failed := g.FailedDelivery("o/r", h.ID, "guid-7", "pull_request", payload, 0)
			if failed.Status != "failed to connect to host" || failed.Redelivery {
				t.Errorf("failed delivery = %+v", failed)
			}

			resp, body := call(t, "POST", g.URL+"repos/o/r/hooks/"+h.ID+"/deliveries/"+failed.ID+"/attempts", g.Token, "", nil)
			if resp.StatusCode != http.StatusAccepted {
				t.Fatalf("POST attempts = %d %s, want 202", resp.StatusCode, body)
			}
			mu.Lock()
			defer mu.Unlock()
			if len(got) != 1 || callback != 200 {
				t.Fatalf("receiver got %d requests (callback %d), want 1 and a 200 callback", len(got), callback)
			}
			header := got[0]
			if bodies[0] != tc.wantBody {
				t.Errorf("body = %.80q..., want %.80q...", bodies[0], tc.wantBody)
			}
			wantHeader := map[string]string{
				"Content-Type":      tc.wantCT,
				"X-GitHub-Event":    "pull_request",
				"X-GitHub-Delivery": "guid-7",
				"X-GitHub-Hook-ID":  h.ID,
			}
			if tc.secret != "" {
				wantHeader["X-Hub-Signature-256"] = "sha256=" + mac(sha256.New, tc.secret, []byte(tc.wantBody))
				wantHeader["X-Hub-Signature"] = "sha1=" + mac(sha1.New, tc.secret, []byte(tc.wantBody))
			} else {
				wantHeader["X-Hub-Signature-256"] = ""
			}
			for k, v := range wantHeader {
				if header.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, header.Get(k), v)
				}
			}

			ds := g.HookDeliveries("o/r", h.ID)
			if len(ds) != 2 {
				t.Fatalf("%d deliveries, want 2", len(ds))
			}
			re := ds[0]
			if !re.Redelivery || re.GUID != "guid-7" || re.StatusCode != http.StatusNoContent || re.Status != "OK" || re.ID == failed.ID || string(re.Payload) != string(payload) {
				t.Errorf("newest delivery = %+v, want the redelivery of guid-7 answered 204", re)
			}
			if re.Header.Get("X-Hub-Signature-256") != wantHeader["X-Hub-Signature-256"] {
				t.Errorf("recorded signature = %q, want %q", re.Header.Get("X-Hub-Signature-256"), wantHeader["X-Hub-Signature-256"])
			}
			if diff := cmp.Diff([]string{"guid-7"}, g.Redeliveries("o/r")); diff != "" {
				t.Errorf("Redeliveries (-want +got):\n%s", diff)
			}

			// The delivery's detail shows the request that was sent.
			resp, body = call(t, "GET", g.URL+"repos/o/r/hooks/"+h.ID+"/deliveries/"+re.ID, g.Token, "", nil)
			var detail struct {
				Redelivery bool `json:"redelivery"`
				Request    struct {
					Headers map[string]string `json:"headers"`
					Payload json.RawMessage   `json:"payload"`
				} `json:"request"`
			}
			if err := json.Unmarshal(body, &detail); err != nil || resp.StatusCode != 200 || !detail.Redelivery ||
				detail.Request.Headers["X-Github-Delivery"] != "guid-7" || !json.Valid(detail.Request.Payload) {
				t.Errorf("GET delivery = %d %.200s, want the redelivery with its request", resp.StatusCode, body)
			}
		})
	}
}

func TestGitHubRedeliveryErrors(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	h := g.AddHookDirect("o/r", vcsfake.Hook{URL: "http://127.0.0.1:1/none", Events: []string{"push"}, Active: true})
	d := g.FailedDelivery("o/r", h.ID, "guid-1", "push", []byte(`{}`), 500)
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/hooks/"+h.ID+"/deliveries/999/attempts", g.Token, "", nil); resp.StatusCode != 404 {
		t.Errorf("redeliver an unknown delivery = %d, want 404", resp.StatusCode)
	}
	// An unreachable receiver: accepted, recorded with status 0.
	if resp, _ := call(t, "POST", g.URL+"repos/o/r/hooks/"+h.ID+"/deliveries/"+d.ID+"/attempts", g.Token, "", nil); resp.StatusCode != 202 {
		t.Errorf("redeliver = %d, want 202", resp.StatusCode)
	}
	if ds := g.HookDeliveries("o/r", h.ID); len(ds) != 2 || ds[0].StatusCode != 0 || !ds[0].Redelivery || ds[0].Status != "failed to connect to host" {
		t.Errorf("deliveries = %+v, want a failed redelivery first", ds)
	}
}

func TestGitHubDeliver(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	var got http.Header
	rc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Clone()
		w.WriteHeader(http.StatusBadRequest)
	}))
	t.Cleanup(rc.Close)
	h := g.AddHookDirect("o/r", vcsfake.Hook{URL: rc.URL, Secret: "s", Events: []string{"push"}, ContentType: "json", Active: true})
	d := g.Deliver("o/r", h.ID, "push", []byte(`{"ref":"refs/heads/main"}`))
	if d.Redelivery || d.StatusCode != 400 || d.Status != "Invalid HTTP Response: 400" || d.GUID == "" || got.Get("X-GitHub-Delivery") != d.GUID {
		t.Errorf("Deliver = %+v (receiver saw GUID %q), want a first delivery answered 400", d, got.Get("X-GitHub-Delivery"))
	}
	if len(g.Redeliveries("o/r")) != 0 {
		t.Errorf("Redeliveries = %q, want none", g.Redeliveries("o/r"))
	}
}

func TestBitbucketWorkspacePermissions(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws-a/r", "main", false)
	b.AddRepo("ws-b/r", "main", false)
	b.SetWorkspacePermission("ws-b", "owner")
	b.SetWorkspacePermission("ws-c", "collaborator")
	b.SetWorkspacePermission("ws-a", "")
	list := func(q string) map[string]string {
		t.Helper()
		u := b.URL + "user/permissions/workspaces"
		if q != "" {
			u += "?q=" + url.QueryEscape(q)
		}
		resp, body := call(t, "GET", u, b.Token, "", nil)
		var page struct {
			Values []struct {
				Type       string `json:"type"`
				Permission string `json:"permission"`
				Workspace  struct{ Slug string }
			}
		}
		if err := json.Unmarshal(body, &page); err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s = %d %s", u, resp.StatusCode, body)
		}
		out := map[string]string{}
		for _, v := range page.Values {
			if v.Type != "workspace_membership" {
				t.Errorf("type = %q, want workspace_membership", v.Type)
			}
			out[v.Workspace.Slug] = v.Permission
		}
		return out
	}
	if diff := cmp.Diff(map[string]string{"ws-b": "owner", "ws-c": "collaborator"}, list("")); diff != "" {
		t.Errorf("all workspaces (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"ws-b": "owner"}, list(`workspace.slug="ws-b"`)); diff != "" {
		t.Errorf("filtered (-want +got):\n%s", diff)
	}
	if got := list(`workspace.slug="ws-a"`); len(got) != 0 {
		t.Errorf("a workspace the user left = %v, want none", got)
	}
}

func TestBitbucketHookActiveAndETag(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	h := b.AddHookDirect("ws/r", vcsfake.Hook{URL: "https://x.example/", Events: []string{"repo:push"}, Active: true})
	path := b.URL + "repositories/ws/r/hooks/" + url.PathEscape(h.ID)
	resp, _ := call(t, "GET", path, b.Token, "", nil)
	etag := resp.Header.Get("ETag")
	if resp, _ := call(t, "GET", path, b.Token, "", http.Header{"If-None-Match": {etag}}); etag == "" || resp.StatusCode != 304 {
		t.Errorf("conditional GET = %d with ETag %q, want 304", resp.StatusCode, etag)
	}
	b.SetHookActive("ws/r", h.ID, false)
	resp, body := call(t, "GET", path, b.Token, "", http.Header{"If-None-Match": {etag}})
	var got struct{ Active bool }
	if err := json.Unmarshal(body, &got); err != nil || resp.StatusCode != 200 || got.Active {
		t.Errorf("GET after deactivation = %d %s, want 200 with active false", resp.StatusCode, body)
	}
	if hs := b.Hooks("ws/r"); hs[0].Active {
		t.Errorf("Hooks = %+v, want inactive", hs)
	}
}
