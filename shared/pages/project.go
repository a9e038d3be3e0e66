package pages

import (
	"encoding/base64"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/a-h/templ"

	"forgelink/shared/badge"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpapi"
	"forgelink/shared/keysvc"
)

// How much history the project page shows; the badge looks at the newest
// badgePipelines pipelines for its branch.
const (
	shownPipelines  = 20
	badgePipelines  = 100
	shownDeliveries = 20
)

// projectView is the project page.
type projectView struct {
	Slug    forgelink.Slug
	VCSName string
	// RepoURL is the repository on the VCS, made of the validated slug.
	RepoURL templ.SafeURL
	// Followed is false for a repository forgelink does not follow: the
	// page then offers Follow only.
	Followed bool
	Pending  bool
	Keys     []keysvc.Key
	SSHKeys  []keysvc.SSHKey
	Settings forgelink.Settings
	// StatusLabel names the "GitHub Status updates" setting on the VCS.
	StatusLabel string
	Badge       badgeView
	Pipelines   []*forgelink.Pipeline
	Skipped     []skippedEvent
	Failed      []*forgelink.DeliveryRecord
	Access      *forgelink.ProjectAccess
	// BitbucketKeysURL is where a Bitbucket user adds an SSH key.
	BitbucketKeysURL templ.SafeURL
	projectForm
}

// projectForm is what a failed POST shows again: the reason beside its
// form and the inputs it may keep (never a private key).
type projectForm struct {
	FollowError   string
	KeyError      string
	SSHError      string
	SettingsError string
	Hostname      string
	// Submitted holds the settings as the failed form sent them.
	Submitted *forgelink.Settings
}

// badgeView is the status badge and its Markdown.
type badgeView struct {
	// Image is the badge as a data: URI, so that it shows on the page for
	// a private project too (its public URL needs a token). templ refuses
	// data: URLs in src unless they are a SafeURL: this one is forgelink's
	// own badge SVG, base64-encoded.
	Image    templ.SafeURL
	Message  string
	URL      string
	Markdown string
	Private  bool
}

// skippedEvent is an event that made no pipeline, with the rule that
// skipped it.
type skippedEvent struct {
	ReceivedAt time.Time
	Event      string
	Ref        string
	Revision   string
	PRNumber   int
	Reason     string
}

// project is GET /projects/{vcs}/{org}/{repo} (pull permission).
func (p *Pages) project(w http.ResponseWriter, r *http.Request, s *session) {
	slug, err := slugOf(r)
	if err != nil {
		p.notFound(w, r)
		return
	}
	if err := p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionPull); err != nil {
		p.failed(w, r, s, err)
		return
	}
	p.showProject(w, r, s, slug, http.StatusOK, projectForm{})
}

// showProject renders the project page with status and a failed form's
// state. The caller has checked the user's permission.
func (p *Pages) showProject(w http.ResponseWriter, r *http.Request, s *session, slug forgelink.Slug, status int, form projectForm) {
	l := layout{Title: slug.FullName(), User: s.User, CSRF: s.CSRF}
	if status == http.StatusOK {
		l.Flash = flashes[r.URL.Query().Get("done")]
	}
	v, err := p.projectView(r, slug)
	if err != nil {
		p.failed(w, r, s, err)
		return
	}
	v.projectForm = form
	if form.Submitted != nil {
		v.Settings = *form.Submitted
	}
	p.render(w, r, status, "project", projectHTML(l, v))
}

func (p *Pages) projectView(r *http.Request, slug forgelink.Slug) (*projectView, error) {
	ctx := r.Context()
	v := &projectView{Slug: slug, VCSName: slug.VCS.Name(), StatusLabel: slug.VCS.Name() + " Status updates",
		BitbucketKeysURL: "https://bitbucket.org/account/settings/ssh-keys/"}
	v.RepoURL = templ.SafeURL("https://github.com/" + slug.FullName())
	if slug.VCS == forgelink.Bitbucket {
		v.RepoURL = templ.SafeURL("https://bitbucket.org/" + slug.FullName())
	}
	pr, err := p.Store.GetProject(ctx, slug)
	if forgelink.KindOf(err) == forgelink.NotFound {
		// Not followed: a page with Follow, for a repository that exists
		// (signed-in users' permission was checked on the VCS already;
		// local mode's user is not checked).
		if err := p.repoExists(r, slug); err != nil {
			return nil, err
		}
		return v, nil
	}
	if err != nil {
		return nil, err
	}
	v.Followed, v.Pending = true, pr.State == forgelink.Pending
	v.Settings, v.Access = pr.Settings, pr.Access
	if v.Keys, err = p.Keys.ListCheckoutKeys(ctx, slug); err != nil {
		return nil, err
	}
	if v.SSHKeys, err = p.Keys.ListSSHKeys(ctx, slug); err != nil {
		return nil, err
	}
	var recent []*forgelink.Pipeline
	if p.Pipelines != nil {
		if recent, _, err = p.Pipelines.ListPipelines(ctx, slug, forgelink.Page{Limit: badgePipelines}); err != nil {
			return nil, err
		}
		v.Pipelines = recent[:min(len(recent), shownPipelines)]
		recs, _, err := p.Pipelines.ListDeliveryRecords(ctx, slug, forgelink.Page{Limit: shownDeliveries})
		if err != nil {
			return nil, err
		}
		for _, rec := range recs {
			if rec.State == forgelink.Dead {
				v.Failed = append(v.Failed, rec)
				continue
			}
			for _, d := range rec.Decisions {
				if d.Build {
					continue
				}
				ref := d.Branch
				if d.Tag != "" {
					ref = "tag " + d.Tag
				}
				v.Skipped = append(v.Skipped, skippedEvent{ReceivedAt: rec.ReceivedAt, Event: rec.Event, Ref: ref,
					Revision: d.Revision, PRNumber: d.PRNumber, Reason: d.Reason})
			}
		}
	}
	v.Badge = p.badgeOf(r, pr, recent)
	return v, nil
}

// repoExists checks with the acting user's token that the VCS has the
// repository: NotFound when it does not.
func (p *Pages) repoExists(r *http.Request, slug forgelink.Slug) error {
	forge, err := p.Follow.Forges(r.Context(), slug.VCS)
	if err != nil {
		return err
	}
	if _, err := forge.Repository(r.Context(), slug); err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			return forgelink.E(forgelink.NotFound, "there is no repository "+slug.FullName()+" on "+slug.VCS.Name()+", or you cannot see it", err)
		}
		return forgelink.ForgeError(slug.VCS, "read the repository "+slug.FullName(), err)
	}
	return nil
}

// badgeOf is the project's badge as the public badge route shows it: the
// newest pipeline of the default branch among recent.
func (p *Pages) badgeOf(r *http.Request, pr *forgelink.Project, recent []*forgelink.Pipeline) badgeView {
	var state forgelink.StatusState
	for _, pl := range recent {
		if pl.Tag == "" && pr.DefaultBranch != "" && pl.Branch == pr.DefaultBranch {
			state = pl.CurrentStatus()
			break
		}
	}
	msg, color := badge.For(badge.StatusOf(state))
	svg := badge.SVG(badge.DefaultLabel, msg, color)
	slug := pr.Slug
	base := p.baseURL(r)
	img := base + "/" + slug.VCS.Short() + "/" + url.PathEscape(slug.Org) + "/" + url.PathEscape(slug.Repo) + ".svg"
	return badgeView{
		Image:    templ.SafeURL("data:image/svg+xml;base64," + base64.StdEncoding.EncodeToString(svg)),
		Message:  msg,
		URL:      img,
		Markdown: "[![forgelink](" + img + ")](" + base + projectPath(slug) + ")",
		Private:  pr.Private,
	}
}

// projectAction checks the user's admin permission on the form's project.
// A repository the user cannot see is answered 404 here; any other
// refusal is returned to be shown beside the form.
func (p *Pages) projectAction(w http.ResponseWriter, r *http.Request, s *session) (forgelink.Slug, bool, error) {
	slug, err := slugOf(r)
	if err != nil {
		p.noPage(w, r)
		return slug, false, nil
	}
	err = p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionAdmin)
	if forgelink.KindOf(err) == forgelink.NotFound {
		p.failed(w, r, s, err)
		return slug, false, nil
	}
	return slug, true, err
}

// done answers a successful form: 303 to the project page's section.
func done(w http.ResponseWriter, r *http.Request, slug forgelink.Slug, what, section string) {
	http.Redirect(w, r, projectPath(slug)+"?done="+what+"#"+section, http.StatusSeeOther)
}

// addCheckoutKey is "Add Deploy Key" / "Add User Key".
func (p *Pages) addCheckoutKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok, err := p.projectAction(w, r, s)
	if !ok {
		return
	}
	var typ forgelink.CheckoutKeyType
	switch r.PostForm.Get("type") {
	case "deploy-key":
		typ = forgelink.CheckoutDeployKey
	case "user-key":
		typ = forgelink.CheckoutUserKey
	default:
		if err == nil {
			err = forgelink.Errorf(forgelink.Invalid, "choose Add Deploy Key or Add User Key")
		}
	}
	var key keysvc.Key
	if err == nil {
		key, err = p.Keys.CreateCheckoutKey(r.Context(), s.User.Login, slug, typ, "")
	}
	if err != nil {
		status, msg := p.explain(r, err)
		p.showProject(w, r, s, slug, status, projectForm{KeyError: msg})
		return
	}
	what := string(typ)
	if key.Instructions != "" {
		what = "user-key-manual"
	}
	done(w, r, slug, what, "checkout-keys")
}

// removeCheckoutKey removes a checkout key from the VCS and forgelink.
func (p *Pages) removeCheckoutKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok, err := p.projectAction(w, r, s)
	if !ok {
		return
	}
	var res *keysvc.Deleted
	if err == nil {
		res, err = p.Keys.DeleteCheckoutKey(r.Context(), s.User.Login, slug, r.PostForm.Get("fingerprint"))
	}
	if err != nil {
		status, msg := p.explain(r, err)
		p.showProject(w, r, s, slug, status, projectForm{KeyError: msg})
		return
	}
	what := "key-removed"
	switch {
	case res.Remaining == 0:
		what = "last-key-removed"
	case res.ManualStep != "":
		what = "key-removed-manual"
	}
	done(w, r, slug, what, "checkout-keys")
}

// addSSHKey is "Add SSH Key": a hostname and a pasted private key. On
// failure the hostname is kept; the private key is never sent back.
func (p *Pages) addSSHKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok, err := p.projectAction(w, r, s)
	if !ok {
		return
	}
	hostname := strings.TrimSpace(r.PostForm.Get("hostname"))
	privateKey := r.PostForm.Get("private_key")
	if err == nil && strings.TrimSpace(privateKey) == "" {
		err = forgelink.Errorf(forgelink.Invalid, "paste the private key")
	}
	created := false
	if err == nil {
		_, created, err = p.Keys.AddSSHKey(r.Context(), s.User.Login, slug, hostname, []byte(privateKey))
	}
	if err != nil {
		status, msg := p.explain(r, err)
		p.showProject(w, r, s, slug, status, projectForm{SSHError: msg, Hostname: hostname})
		return
	}
	what := "ssh-key-exists"
	if created {
		what = "ssh-key-added"
	}
	done(w, r, slug, what, "ssh-keys")
}

// removeSSHKey removes an additional SSH key (by hostname and fingerprint).
func (p *Pages) removeSSHKey(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok, err := p.projectAction(w, r, s)
	if !ok {
		return
	}
	if err == nil {
		hostname := r.PostForm.Get("hostname")
		_, err = p.Keys.DeleteSSHKey(r.Context(), s.User.Login, slug, &hostname, r.PostForm.Get("fingerprint"))
	}
	if err != nil {
		status, msg := p.explain(r, err)
		p.showProject(w, r, s, slug, status, projectForm{SSHError: msg})
		return
	}
	done(w, r, slug, "ssh-key-removed", "ssh-keys")
}

// saveSettings is Advanced Settings' "Save": the form sends every
// checkbox, so an absent one is off.
func (p *Pages) saveSettings(w http.ResponseWriter, r *http.Request, s *session) {
	slug, ok, err := p.projectAction(w, r, s)
	if !ok {
		return
	}
	on := func(name string) *bool {
		v := r.PostForm.Get(name) != ""
		return &v
	}
	change := httpapi.SettingsChange{
		BuildPRsOnly:              on("build_prs_only"),
		BuildForkPRs:              on("build_fork_prs"),
		ForksReceiveSecretEnvVars: on("forks_receive_secret_env_vars"),
		SetGitHubStatus:           on("set_github_status"),
	}
	if err == nil {
		_, err = httpapi.UpdateSettings(r.Context(), p.Store, slug, change)
	}
	if err != nil {
		status, msg := p.explain(r, err)
		submitted := forgelink.Settings{BuildPRsOnly: *change.BuildPRsOnly, BuildForkPRs: *change.BuildForkPRs,
			ForksReceiveSecretEnvVars: *change.ForksReceiveSecretEnvVars, SetGitHubStatus: *change.SetGitHubStatus}
		p.showProject(w, r, s, slug, status, projectForm{SettingsError: msg, Submitted: &submitted})
		return
	}
	done(w, r, slug, "settings-saved", "advanced")
}
