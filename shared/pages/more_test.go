package pages_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"forgelink/shared/forgelink"
)

// TestPermissions signs in GitHub users with pull, admin and no access:
// reading needs pull, changing admin, and a repository the user cannot
// see is a 404 page, like one that does not exist.
func TestPermissions(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	pl := e.addPipeline(t, ghSlug, "main")
	e.gh.AddUser("reader", 1001, "Reader")
	e.gh.SetPermission(repo, "reader", "pull")
	e.gh.AddUser("stranger", 1002, "Stranger")
	e.gh.SetPermission(repo, "stranger", "")
	e.gh.AddUser("admin", 1003, "Admin")
	e.gh.SetPermission(repo, "admin", "admin")
	pr := e.project(t, ghSlug)

	t.Run("pull reads, cannot change", func(t *testing.T) {
		b := e.browser(t)
		b.signInGitHub(t, "reader")
		p := b.get(t, "/projects/"+ghSlug)
		if p.status != http.StatusOK {
			t.Fatalf("project page = %d, want 200", p.status)
		}
		mustContain(t, "page", p.body, pr.DeployKey.FingerprintSHA256)
		if p := b.get(t, "/pipelines/"+pl.ID); p.status != http.StatusOK {
			t.Errorf("pipeline page = %d, want 200", p.status)
		}
		for _, f := range []struct {
			path string
			form url.Values
		}{
			{"/settings", url.Values{"build_prs_only": {"on"}}},
			{"/checkout-keys", url.Values{"type": {"deploy-key"}}},
			{"/ssh-keys", url.Values{"hostname": {"x.example.com"}, "private_key": {rsaPEM(t)}}},
			{"/unfollow", nil},
		} {
			p := b.submit(t, "/projects/"+ghSlug+f.path, f.form)
			if p.status != http.StatusForbidden {
				t.Errorf("POST %s = %d, want 403", f.path, p.status)
			}
			mustContain(t, f.path, p.body, "This needs admin permission on octo-org/hello-world; reader has pull.")
		}
		after := e.project(t, ghSlug)
		if after.Settings.BuildPRsOnly || after.State != forgelink.Following {
			t.Error("a pull-only user changed the project")
		}
		if n, _ := e.st.ListSSHKeys(context.Background(), after.Slug); len(n) != 0 {
			t.Error("a pull-only user added an SSH key")
		}
		if n := len(e.gh.DeployKeys(repo)); n != 1 {
			t.Errorf("%d deploy keys, want 1", n)
		}
	})
	t.Run("no access is not found", func(t *testing.T) {
		b := e.browser(t)
		b.signInGitHub(t, "stranger")
		for _, path := range []string{"/projects/" + ghSlug, "/pipelines/" + pl.ID, "/projects/" + bbSlug} {
			p := b.get(t, path)
			if p.status != http.StatusNotFound {
				t.Errorf("GET %s = %d, want 404", path, p.status)
			}
			mustNotContain(t, path, p.body, pr.DeployKey.FingerprintMD5, pl.Revision[:7], "Checkout SSH keys")
		}
		unknown := b.get(t, "/pipelines/00000000-0000-0000-0000-000000000000")
		hidden := b.get(t, "/pipelines/"+pl.ID)
		if strings.ReplaceAll(unknown.body, "00000000-0000-0000-0000-000000000000", "ID") != strings.ReplaceAll(hidden.body, pl.ID, "ID") {
			t.Error("a hidden pipeline's page differs from an unknown one's")
		}
		p := b.submit(t, "/projects/"+ghSlug+"/settings", url.Values{"build_prs_only": {"on"}})
		if p.status != http.StatusNotFound || e.project(t, ghSlug).Settings.BuildPRsOnly {
			t.Errorf("POST settings = %d, want 404 and nothing changed", p.status)
		}
		if org := b.get(t, "/org-access"); strings.Contains(org.body, ghSlug) {
			t.Error("org access shows a project the user cannot see")
		}
	})
	t.Run("admin changes", func(t *testing.T) {
		b := e.browser(t)
		b.signInGitHub(t, "admin")
		b.get(t, "/projects/"+ghSlug)
		p := b.submit(t, "/projects/"+ghSlug+"/settings", url.Values{"build_prs_only": {"on"}})
		if p.status != http.StatusSeeOther || !e.project(t, ghSlug).Settings.BuildPRsOnly {
			t.Errorf("POST settings = %d, want 303 and saved", p.status)
		}
		// keysvc lets only the follower manage keys: shown beside the form.
		p = b.submit(t, "/projects/"+ghSlug+"/checkout-keys", url.Values{"type": {"deploy-key"}})
		if p.status != http.StatusForbidden {
			t.Errorf("Add Deploy Key by a non-follower = %d, want 403", p.status)
		}
		mustContain(t, "page", p.body, `<p class="error" role="alert" id="key-error">Only a user who follows gh/octo-org/hello-world may`)
	})
}

func TestPipelinePage(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	pl := e.addPipeline(t, ghSlug, "main")
	b := e.browser(t)
	b.signInToken(t)
	p := b.get(t, "/pipelines/"+pl.ID)
	if p.status != http.StatusOK {
		t.Fatalf("GET = %d", p.status)
	}
	checkHeaders(t, "pipeline page", p.header, true)
	mustContain(t, "pipeline page", p.body, "<h1>Pipeline 1 of octo-org/hello-world</h1>", `<a href="/projects/gh/octo-org/hello-world">`,
		"<code>"+pl.Revision+"</code>", "<dt>Branch</dt><dd>main</dd>", "push by octocat", "build: <span class=\"status status-pending\">pending</span>",
		"<code>"+pl.ID+"</code>", "withheld")

	if p := b.get(t, "/pipelines/nope"); p.status != http.StatusNotFound {
		t.Errorf("unknown pipeline = %d, want 404", p.status)
	}
}

func TestOrgAccessPage(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	e.follow(t, bbSlug)
	b := e.browser(t)
	b.signInToken(t)
	p := b.get(t, "/org-access")
	checkHeaders(t, "org access", p.header, true)
	mustContain(t, "org access", p.body, "<h1>Org access</h1>", `aria-current="page">Org access</a>`, "octo-org <span class=\"vcs\">on GitHub</span>",
		"octo-org <span class=\"vcs\">on Bitbucket</span>", `<strong class="state state-ok">OK</strong>`)
	mustNotContain(t, "org access", p.body, "Request access", "Grant access")

	link := e.gh.WebURL + "/settings/connections/applications/" + oauthClientID
	for _, tc := range []struct{ role, action string }{{"member", "Request access"}, {"admin", "Grant access"}} {
		t.Run(tc.role, func(t *testing.T) {
			pr := e.project(t, ghSlug)
			now := time.Now().UTC()
			pr.Access = &forgelink.ProjectAccess{State: forgelink.AccessRestricted, Since: now, CheckedAt: now, OrgRole: tc.role,
				Detail: "GitHub: Although you appear to have the correct authorization credentials, the octo-org organization has enabled OAuth App access restrictions"}
			if err := e.st.UpdateProject(context.Background(), pr); err != nil {
				t.Fatal(err)
			}
			p := b.get(t, "/org-access")
			mustContain(t, "org access", p.body, `<a class="button" href="`+link+`">`+tc.action+`</a>`,
				`<strong class="state state-restricted">Restricted by the organization&#39;s OAuth App access policy</strong>`, "has enabled OAuth App access restrictions")
			proj := b.get(t, "/projects/"+ghSlug)
			mustContain(t, "project page", proj.body, `<p class="warn">Org access: Restricted`)
		})
	}
}

func TestStatic(t *testing.T) {
	e := newEnv(t)
	b := e.browser(t)
	home := b.get(t, "/")
	for _, tc := range []struct{ name, ctype string }{{"style.css", "text/css; charset=utf-8"}, {"copy.js", "text/javascript; charset=utf-8"}} {
		link := "/static/" + tc.name + "?v="
		i := strings.Index(home.body, link)
		if i < 0 {
			t.Fatalf("the page does not link %s", tc.name)
		}
		end := strings.IndexByte(home.body[i:], '"')
		p := b.get(t, strings.ReplaceAll(home.body[i:i+end], "&amp;", "&"))
		if p.status != http.StatusOK || p.header.Get("Content-Type") != tc.ctype {
			t.Errorf("%s: %d %s", tc.name, p.status, p.header.Get("Content-Type"))
		}
		checkHeaders(t, tc.name, p.header, false)
		if cc := p.header.Get("Cache-Control"); cc != "public, max-age=86400" {
			t.Errorf("%s: Cache-Control %q", tc.name, cc)
		}
	}
	for _, path := range []string{"/static/", "/static/nope.css", "/static/../pages.go", "/static/%2e%2e/pages.go"} {
		if p := b.get(t, path); p.status == http.StatusOK || strings.Contains(p.body, "package pages") {
			t.Errorf("GET %s = %d, want no file", path, p.status)
		}
	}
}
