package httpapi

import (
	"net/http"
	"slices"
	"strings"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// repoJSON is CircleCI's v1.1 repository, as GET /api/v1.1/user/repos
// lists them.
type repoJSON struct {
	VCSType       string `json:"vcs_type"`
	Username      string `json:"username"`
	Name          string `json:"name"`
	FullName      string `json:"full_name"`
	Private       bool   `json:"private"`
	Admin         bool   `json:"admin"`
	Following     bool   `json:"following"`
	DefaultBranch string `json:"default_branch"`
}

// userRepos lists every repository the user can see on the VCS (all of a
// signed-in user's VCS; both for local mode's environment user, or the one
// named by /user/repos/{vcs}), marking those forgelink follows.
func (p *Projects) userRepos(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	u := apiauth.UserFrom(ctx)
	vcss := []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket}
	if !u.Env() {
		vcss = []forgelink.VCS{u.VCS}
	}
	if v := r.PathValue("vcs"); v != "" {
		vcs, err := forgelink.ParseVCS(v)
		if err != nil {
			httpjson.Error(w, r, p.log(), err)
			return
		}
		if !slices.Contains(vcss, vcs) {
			httpjson.Write(w, http.StatusOK, []repoJSON{})
			return
		}
		vcss = []forgelink.VCS{vcs}
	}
	following, err := p.followed(r)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	out := []repoJSON{}
	for _, vcs := range vcss {
		forge, err := p.Follow.Forges(ctx, vcs)
		if err != nil {
			if u.Env() && len(vcss) > 1 {
				continue // local mode without that VCS's token
			}
			httpjson.Error(w, r, p.log(), err)
			return
		}
		id, ok := forge.(forgelink.Identity)
		if !ok {
			continue
		}
		repos, err := id.Repos(ctx)
		if err != nil {
			httpjson.Error(w, r, p.log(), forgelink.ForgeError(vcs, "list your repositories", err))
			return
		}
		for _, repo := range repos {
			out = append(out, repoJSON{
				VCSType: vcs.Name(), Username: repo.Slug.Org, Name: repo.Slug.Repo, FullName: repo.Slug.FullName(),
				Private: repo.Private, Admin: repo.Admin, Following: following[strings.ToLower(repo.Slug.String())] != nil,
				DefaultBranch: repo.DefaultBranch,
			})
		}
	}
	httpjson.Write(w, http.StatusOK, out)
}

// followed returns the followed projects by lower-case slug.
func (p *Projects) followed(r *http.Request) (map[string]*forgelink.Project, error) {
	all, err := p.Store.ListProjects(r.Context())
	if err != nil {
		return nil, err
	}
	out := make(map[string]*forgelink.Project, len(all))
	for _, pr := range all {
		if pr.State == forgelink.Following {
			out[strings.ToLower(pr.Slug.String())] = pr
		}
	}
	return out, nil
}

// projectJSON is one of CircleCI's v1.1 followed projects.
type projectJSON struct {
	VCSType       string `json:"vcs_type"`
	Username      string `json:"username"`
	Reponame      string `json:"reponame"`
	Slug          string `json:"slug"`
	VCSURL        string `json:"vcs_url"`
	Following     bool   `json:"following"`
	DefaultBranch string `json:"default_branch"`
}

// listProjects lists the projects the user follows (those whose follower
// the user is).
func (p *Projects) listProjects(w http.ResponseWriter, r *http.Request) {
	u := apiauth.UserFrom(r.Context())
	all, err := p.Store.ListProjects(r.Context())
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	out := []projectJSON{}
	for _, pr := range all {
		if pr.State != forgelink.Following || pr.FollowerID != u.ID {
			continue
		}
		_, url := vcsNames(pr.Slug)
		out = append(out, projectJSON{
			VCSType: pr.Slug.VCS.Name(), Username: pr.Slug.Org, Reponame: pr.Slug.Repo, Slug: pr.Slug.String(),
			VCSURL: url, Following: true, DefaultBranch: pr.DefaultBranch,
		})
	}
	httpjson.Write(w, http.StatusOK, out)
}
