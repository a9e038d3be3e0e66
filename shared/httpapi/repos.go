package httpapi

import (
	"context"
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
	var only forgelink.VCS
	if v := r.PathValue("vcs"); v != "" {
		vcs, err := forgelink.ParseVCS(v)
		if err != nil {
			httpjson.Error(w, r, p.log(), err)
			return
		}
		only = vcs
	}
	repos, err := UserRepos(r.Context(), apiauth.UserFrom(r.Context()), only, p.Follow.Forges, p.Store)
	if err != nil {
		httpjson.Error(w, r, p.log(), err)
		return
	}
	out := []repoJSON{}
	for _, repo := range repos {
		out = append(out, repoJSON{
			VCSType: repo.Slug.VCS.Name(), Username: repo.Slug.Org, Name: repo.Slug.Repo, FullName: repo.Slug.FullName(),
			Private: repo.Private, Admin: repo.Admin, Following: repo.Following, DefaultBranch: repo.DefaultBranch,
		})
	}
	httpjson.Write(w, http.StatusOK, out)
}

// UserRepo is a repository the user can see, and whether forgelink
// follows it.
type UserRepo struct {
	forgelink.UserRepo
	Following bool
}

// ProjectLister lists the stored projects; forgelink.Store is one.
type ProjectLister interface {
	ListProjects(ctx context.Context) ([]*forgelink.Project, error)
}

// UserRepos lists every repository u can see on its VCS with the acting
// user's forge (ctx carries the actor): a signed-in user's one VCS, or for
// local mode's environment user both (one without a token is left out).
// only, when set, narrows the list to that VCS. It is what GET
// /api/v1.1/user/repos and the repositories page show.
func UserRepos(ctx context.Context, u *apiauth.User, only forgelink.VCS, forges forgelink.Forges, st ProjectLister) ([]UserRepo, error) {
	vcss := []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket}
	if !u.Env() {
		vcss = []forgelink.VCS{u.VCS}
	}
	if only != "" {
		if !slices.Contains(vcss, only) {
			return nil, nil
		}
		vcss = []forgelink.VCS{only}
	}
	following, err := followedProjects(ctx, st)
	if err != nil {
		return nil, err
	}
	var out []UserRepo
	for _, vcs := range vcss {
		forge, err := forges(ctx, vcs)
		if err != nil {
			if u.Env() && len(vcss) > 1 {
				continue // local mode without that VCS's token
			}
			return nil, err
		}
		id, ok := forge.(forgelink.Identity)
		if !ok {
			continue
		}
		repos, err := id.Repos(ctx)
		if err != nil {
			return nil, forgelink.ForgeError(vcs, "list your repositories", err)
		}
		for _, repo := range repos {
			out = append(out, UserRepo{UserRepo: repo, Following: following[strings.ToLower(repo.Slug.String())] != nil})
		}
	}
	return out, nil
}

// followedProjects returns the followed projects by lower-case slug.
func followedProjects(ctx context.Context, st ProjectLister) (map[string]*forgelink.Project, error) {
	all, err := st.ListProjects(ctx)
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
