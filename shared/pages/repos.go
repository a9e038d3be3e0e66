package pages

import (
	"net/http"

	"forgelink/shared/forgelink"
	"forgelink/shared/httpapi"
)

// reposView is the repositories page.
type reposView struct {
	Groups []repoGroup
	// ErrorSlug names the repository whose Follow / Unfollow failed, with
	// Error saying why.
	ErrorSlug string
	Error     string
}

// repoGroup is one VCS's repositories.
type repoGroup struct {
	VCSName string
	Repos   []httpapi.UserRepo
}

// flashes are what a page says after a successful POST (?done=...): a
// fixed set, so that no text of the URL is shown on the page.
var flashes = map[string]string{
	"followed":           "Following: forgelink added a read-only deploy key and a webhook to the repository.",
	"unfollowed":         "Unfollowed: forgelink removed its deploy key and webhook from the repository.",
	"deploy-key":         "Deploy key added.",
	"user-key":           "User key added to your account.",
	"user-key-manual":    "User key created. Bitbucket has no API for user keys: add the public key below to your Bitbucket account.",
	"key-removed":        "Checkout key removed.",
	"key-removed-manual": "Checkout key removed from forgelink. Remove it from your Bitbucket account's SSH keys too.",
	"last-key-removed":   "Checkout key removed. That was the last one: builds of a private repository cannot check out its code until you add one.",
	"ssh-key-added":      "SSH key added.",
	"ssh-key-exists":     "That SSH key was already added for this hostname.",
	"ssh-key-removed":    "SSH key removed.",
	"settings-saved":     "Settings saved.",
}

// repos is the signed-in user's home page: every repository the user can
// see, each with Follow, or when followed a link to its project page and
// Unfollow.
func (p *Pages) repos(w http.ResponseWriter, r *http.Request, s *session) {
	p.showRepos(w, r, s, http.StatusOK, reposView{}, flashes[r.URL.Query().Get("done")])
}

func (p *Pages) showRepos(w http.ResponseWriter, r *http.Request, s *session, status int, v reposView, flash string) {
	l := layout{Title: "Repositories", User: s.User, CSRF: s.CSRF, Nav: "repos", Flash: flash}
	repos, err := httpapi.UserRepos(r.Context(), s.User, "", p.Follow.Forges, p.Store)
	if err != nil {
		st, msg := p.explain(r, err)
		if status == http.StatusOK {
			status = st
		}
		l.Alert = "forgelink could not list your repositories: " + msg
	}
	byVCS := map[forgelink.VCS]*repoGroup{}
	for _, repo := range repos {
		g := byVCS[repo.Slug.VCS]
		if g == nil {
			g = &repoGroup{VCSName: repo.Slug.VCS.Name()}
			byVCS[repo.Slug.VCS] = g
		}
		g.Repos = append(g.Repos, repo)
	}
	for _, vcs := range []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket} {
		if g := byVCS[vcs]; g != nil {
			v.Groups = append(v.Groups, *g)
		}
	}
	p.render(w, r, status, "repos", reposHTML(l, v))
}

// follow installs the deploy key and the webhook (admin needed). The form
// comes from the repositories page (from=repos) or the project page; a
// failure is shown on the page it came from.
func (p *Pages) follow(w http.ResponseWriter, r *http.Request, s *session) {
	slug, err := slugOf(r)
	if err != nil {
		p.noPage(w, r)
		return
	}
	err = p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionAdmin)
	if forgelink.KindOf(err) == forgelink.NotFound {
		p.failed(w, r, s, err)
		return
	}
	if err == nil {
		_, err = p.Follow.Follow(r.Context(), slug, s.User.Login, p.baseURL(r))
	}
	if err != nil {
		p.followFailed(w, r, s, slug, err)
		return
	}
	http.Redirect(w, r, projectPath(slug)+"?done=followed", http.StatusSeeOther)
}

// unfollow removes forgelink from the repository (admin needed).
func (p *Pages) unfollow(w http.ResponseWriter, r *http.Request, s *session) {
	slug, err := slugOf(r)
	if err != nil {
		p.noPage(w, r)
		return
	}
	err = p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionAdmin)
	if forgelink.KindOf(err) == forgelink.NotFound {
		p.failed(w, r, s, err)
		return
	}
	if err == nil {
		err = p.Follow.Unfollow(r.Context(), slug)
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "forgelink does not follow "+slug.FullName(), err)
		}
	}
	if err != nil {
		p.followFailed(w, r, s, slug, err)
		return
	}
	http.Redirect(w, r, "/?done=unfollowed", http.StatusSeeOther)
}

// followFailed shows the page the Follow / Unfollow form came from again,
// with the reason.
func (p *Pages) followFailed(w http.ResponseWriter, r *http.Request, s *session, slug forgelink.Slug, err error) {
	status, msg := p.explain(r, err)
	if r.PostForm.Get("from") == "repos" {
		p.showRepos(w, r, s, status, reposView{ErrorSlug: slug.String(), Error: msg}, "")
		return
	}
	p.showProject(w, r, s, slug, status, projectForm{FollowError: msg})
}
