package pages

import (
	"net/http"
	"strconv"

	"forgelink/shared/forgelink"
	"forgelink/shared/orgaccess"
)

// pipelineView is one pipeline's page.
type pipelineView struct {
	Slug      forgelink.Slug
	P         *forgelink.Pipeline
	Status    forgelink.StatusState
	Workflows []workflowState
}

type workflowState struct {
	Name  string
	State forgelink.StatusState
}

// pipeline is GET /pipelines/{id}, the commit statuses' target_url (pull
// permission on its project; otherwise the same 404 as an unknown id).
func (p *Pages) pipeline(w http.ResponseWriter, r *http.Request, s *session) {
	notFound := forgelink.Errorf(forgelink.NotFound, "there is no pipeline %s, or you cannot see its repository", r.PathValue("id"))
	if p.Pipelines == nil {
		p.failed(w, r, s, notFound)
		return
	}
	pl, err := p.Pipelines.GetPipeline(r.Context(), r.PathValue("id"))
	if forgelink.KindOf(err) == forgelink.NotFound {
		p.failed(w, r, s, notFound)
		return
	}
	if err != nil {
		p.failed(w, r, s, err)
		return
	}
	slug, err := forgelink.ParseSlug(pl.Project)
	if err == nil {
		err = p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionPull)
	}
	if k := forgelink.KindOf(err); k == forgelink.NotFound || k == forgelink.Invalid {
		err = notFound
	}
	if err != nil {
		p.failed(w, r, s, err)
		return
	}
	v := pipelineView{Slug: slug, P: pl, Status: pl.CurrentStatus()}
	if len(pl.Workflows) > 0 {
		for _, name := range pl.StatusWorkflows() {
			v.Workflows = append(v.Workflows, workflowState{Name: name, State: pl.WorkflowState(name)})
		}
	}
	title := "Pipeline " + strconv.FormatInt(pl.Number, 10) + " of " + slug.FullName()
	p.render(w, r, http.StatusOK, "pipeline", pipelineHTML(layout{Title: title, User: s.User, CSRF: s.CSRF}, v))
}

// orgAccessView is the org-access page.
type orgAccessView struct {
	Available bool
	Orgs      []orgaccess.Org
}

// orgAccess is GET /org-access: each organization's access state and, for
// restricted ones, the exact "Request access" / "Grant access" link. A
// signed-in user sees the organizations of the projects they can read.
func (p *Pages) orgAccess(w http.ResponseWriter, r *http.Request, s *session) {
	l := layout{Title: "Org access", User: s.User, CSRF: s.CSRF, Nav: "org-access"}
	v := orgAccessView{Available: p.Access != nil}
	if p.Access != nil {
		orgs, err := p.Access.Status(r.Context(), orgaccess.Scope{})
		if err != nil {
			p.failed(w, r, s, err)
			return
		}
		for _, org := range orgs {
			var visible []orgaccess.ProjectStatus
			for _, ps := range org.Projects {
				slug, err := forgelink.ParseSlug(ps.Slug)
				if err != nil {
					continue
				}
				err = p.Users.Authorize(r.Context(), s.User, slug, forgelink.PermissionPull)
				switch forgelink.KindOf(err) {
				case forgelink.NotFound, forgelink.Forbidden:
					continue
				}
				if err != nil {
					p.failed(w, r, s, err)
					return
				}
				visible = append(visible, ps)
			}
			if len(visible) > 0 {
				org.Projects = visible
				v.Orgs = append(v.Orgs, org)
			}
		}
	}
	p.render(w, r, http.StatusOK, "orgaccess", orgAccessHTML(l, v))
}
