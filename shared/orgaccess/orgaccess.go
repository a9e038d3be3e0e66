// Package orgaccess is the org-access health check: for every followed
// project it asks the VCS whether forgelink's token still works (revoked?
// refused by the organization's OAuth App access restrictions?), whether
// the repository, the webhook and the deploy key are still there, and
// whether recent deliveries failed; it repairs what it can (reinstalls the
// hook or key, reactivates the hook, redelivers failed deliveries) and
// keeps, per project and per organization, a state with what the user must
// do about the rest.
//
//	svc := &orgaccess.Service{Store: st, Checkers: checkers, Repair: follow.Repair, ...}
//	res, err := svc.Sweep(ctx, orgaccess.Scope{})   // every org (the schedule)
//	orgs, err := svc.Status(ctx, orgaccess.Scope{}) // what GET /api/v2/org-access shows
//
// Reads are conditional (ETags kept per project), so a sweep that finds
// nothing changed is answered by 304s that cost no rate limit; a sweep that
// runs low on rate limit stops and the next one starts with the projects
// checked longest ago.
package orgaccess

import (
	"cmp"
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/metrics"
)

// Store is what the sweep needs of storage.
type Store interface {
	ListProjects(ctx context.Context) ([]*forgelink.Project, error)
	GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error)
	UpdateProject(ctx context.Context, p *forgelink.Project) error
}

// Checkers returns the AccessChecker of a project's VCS, authenticated as
// the user who followed it.
type Checkers func(ctx context.Context, p *forgelink.Project) (forgelink.AccessChecker, error)

// RepairFunc reinstalls a project's missing deploy key and webhook
// (follow.Service.Repair).
type RepairFunc func(ctx context.Context, slug forgelink.Slug, publicURL string) (*forgelink.Project, error)

// Defaults of Service's knobs.
const (
	DefaultConcurrency  = 4
	DefaultMinRateLimit = 50
	DefaultOrgTimeout   = 2 * time.Minute
	// firstDeliveriesWindow is how far back the first sweep of a project
	// looks at its hook's deliveries.
	firstDeliveriesWindow = 24 * time.Hour
)

// Service runs sweeps and reports org access.
type Service struct {
	Store    Store
	Checkers Checkers
	Repair   RepairFunc
	// PublicURL is the base of reinstalled hook URLs for projects that do
	// not remember theirs.
	PublicURL string
	// GitHubWebURL (https://github.com, or an Enterprise Server's) and
	// OAuthClientID build the "Request access" / "Grant access" link.
	GitHubWebURL  string
	OAuthClientID string
	// Concurrency is how many organizations are checked at once.
	Concurrency int
	// MinRateLimit: an organization's sweep stops when fewer rate-limited
	// requests than this are left; the rest waits for the next sweep.
	MinRateLimit int
	// OrgTimeout bounds one organization's sweep.
	OrgTimeout time.Duration
	Now        func() time.Time
	Log        *slog.Logger
	// Metrics counts checks by the state found and, after a sweep of
	// every org, sets the orgs per state; nil: metrics.Default.
	Metrics *metrics.Registry
}

// Scope narrows a sweep or a report: every org (zero), one org (VCS and
// Org), or one project.
type Scope struct {
	VCS     forgelink.VCS
	Org     string
	Project *forgelink.Slug
	// Visible, when set, narrows the scope to the projects it accepts
	// (those the requesting user may see); an org's state in the answer is
	// then judged from those only.
	Visible func(forgelink.Slug) bool
}

// ParseScope reads an org ("gh/acme") or a project ("gh/acme/widget")
// slug; both empty is every org.
func ParseScope(org, project string) (Scope, error) {
	switch {
	case org != "" && project != "":
		return Scope{}, forgelink.Errorf(forgelink.Invalid, "give org or project, not both")
	case project != "":
		slug, err := forgelink.ParseSlug(project)
		if err != nil {
			return Scope{}, err
		}
		return Scope{VCS: slug.VCS, Org: slug.Org, Project: &slug}, nil
	case org != "":
		vcs, name, ok := strings.Cut(org, "/")
		if !ok || strings.Contains(name, "/") {
			return Scope{}, forgelink.Errorf(forgelink.Invalid, "org %q: want vcs/org, e.g. gh/acme", org)
		}
		slug, err := forgelink.NewSlug(vcs, name, "x")
		if err != nil {
			return Scope{}, forgelink.Errorf(forgelink.Invalid, "org %q: %s", org, forgelink.MessageOf(err))
		}
		return Scope{VCS: slug.VCS, Org: slug.Org}, nil
	}
	return Scope{}, nil
}

// everything reports whether sc is every org, unnarrowed.
func (sc Scope) everything() bool {
	return sc.VCS == "" && sc.Org == "" && sc.Project == nil && sc.Visible == nil
}

func (sc Scope) has(p *forgelink.Project) bool {
	if sc.Visible != nil && !sc.Visible(p.Slug) {
		return false
	}
	switch {
	case sc.Project != nil:
		return p.Slug == *sc.Project
	case sc.Org != "":
		return p.Slug.VCS == sc.VCS && strings.EqualFold(p.Slug.Org, sc.Org)
	}
	return true
}

// Org is an organization's (or workspace's) access: the worst state of its
// followed projects, and what to do about it.
type Org struct {
	VCS   string                `json:"vcs"`
	Org   string                `json:"org"`
	Slug  string                `json:"slug"` // gh/acme
	State forgelink.AccessState `json:"state"`
	// Since is when the org entered State; CheckedAt its latest check.
	Since       time.Time       `json:"since"`
	CheckedAt   time.Time       `json:"checked_at"`
	Remediation *Remediation    `json:"remediation,omitempty"`
	Projects    []ProjectStatus `json:"projects"`
}

// ProjectStatus is one project's access in an Org.
type ProjectStatus struct {
	Slug      string                `json:"slug"`
	State     forgelink.AccessState `json:"state"`
	Since     time.Time             `json:"since"`
	CheckedAt time.Time             `json:"checked_at"`
	Detail    string                `json:"detail,omitempty"`
	Repairs   []string              `json:"repairs,omitempty"`
}

// Remediation tells the user what to do: Action is the button to click
// ("Request access", "Grant access") or the step ("Sign in again"), URL
// where.
type Remediation struct {
	Action string `json:"action"`
	Text   string `json:"text"`
	URL    string `json:"url,omitempty"`
}

// Result is a sweep's outcome.
type Result struct {
	Orgs []Org `json:"orgs"`
	// Checked counts the projects checked; Deferred those left for the
	// next sweep (rate limit, timeout, a transient VCS failure).
	Checked  int       `json:"checked"`
	Deferred int       `json:"deferred"`
	Started  time.Time `json:"started_at"`
	Finished time.Time `json:"finished_at"`
}

// Sweep checks the projects in scope, organizations concurrently (at most
// Concurrency at once, each within OrgTimeout), repairs what it can,
// stores each project's access and logs every change of an org's state
// once (org_access_changed). It fails only when the projects cannot be
// listed: a VCS or store failure defers that project to the next sweep.
func (s *Service) Sweep(ctx context.Context, scope Scope) (*Result, error) {
	res := &Result{Started: s.now()}
	all, err := s.following(ctx)
	if err != nil {
		return nil, err
	}
	projects, err := inScope(all, scope)
	if err != nil {
		return nil, err
	}
	// An org's state is judged from all its projects, also when the scope
	// is one project of it.
	orgs := groupByOrg(all)
	byOrg := groupByOrg(projects)
	before := map[string]Org{}
	for key := range byOrg {
		before[key] = s.summary(orgs[key])
	}
	var mu sync.Mutex
	swept := map[string]*forgelink.Project{}
	sem := make(chan struct{}, cmp.Or(s.Concurrency, DefaultConcurrency))
	var wg sync.WaitGroup
	for _, ps := range byOrg {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			octx, cancel := context.WithTimeout(ctx, cmp.Or(s.OrgTimeout, DefaultOrgTimeout))
			defer cancel()
			after, checked, deferred := s.sweepOrg(octx, ps)
			mu.Lock()
			for _, p := range after {
				swept[p.Slug.String()] = p
			}
			res.Checked += checked
			res.Deferred += deferred
			mu.Unlock()
		}()
	}
	wg.Wait()
	for key := range byOrg {
		ps := slices.Clone(orgs[key])
		for i, p := range ps {
			if np := swept[p.Slug.String()]; np != nil {
				ps[i] = np
			}
		}
		org := s.summary(ps)
		s.logChange(ctx, before[key], org)
		if scope.Visible != nil {
			// Answer only what the requester may see.
			org = s.summary(slices.DeleteFunc(ps, func(p *forgelink.Project) bool { return !scope.Visible(p.Slug) }))
		}
		res.Orgs = append(res.Orgs, org)
	}
	slices.SortFunc(res.Orgs, func(a, b Org) int { return strings.Compare(a.Slug, b.Slug) })
	if scope.everything() {
		s.countOrgs(orgs, res.Orgs)
	}
	res.Finished = s.now()
	s.log().InfoContext(ctx, "org access sweep done", "orgs", len(res.Orgs), "checked", res.Checked, "deferred", res.Deferred,
		"duration_ms", res.Finished.Sub(res.Started).Milliseconds())
	return res, nil
}

// countOrgs sets the metrics' organizations per (vcs, state) from a sweep
// of every org; states no org is in are set to 0.
func (s *Service) countOrgs(projects map[string][]*forgelink.Project, orgs []Org) {
	n := map[[2]string]int{}
	for _, o := range orgs {
		if ps := projects[o.Slug]; len(ps) > 0 {
			n[[2]string{string(ps[0].Slug.VCS), string(o.State)}]++
		}
	}
	for _, vcs := range []forgelink.VCS{forgelink.GitHub, forgelink.Bitbucket} {
		for _, state := range metrics.AccessStates {
			s.Metrics.SetAccessOrgs(string(vcs), state, n[[2]string{string(vcs), state}])
		}
	}
}

// logChange logs an org's change of state once, as org_access_changed.
func (s *Service) logChange(ctx context.Context, before, after Org) {
	old := cmp.Or(before.State, forgelink.AccessOK)
	if old == after.State {
		return
	}
	s.log().InfoContext(ctx, "org_access_changed", "org", after.Slug, "old", string(old), "new", string(after.State),
		"projects", len(after.Projects))
}

// Status reports the stored access of the organizations in scope, without
// calling the VCS.
func (s *Service) Status(ctx context.Context, scope Scope) ([]Org, error) {
	projects, err := s.projects(ctx, scope)
	if err != nil {
		return nil, err
	}
	orgs := []Org{}
	for _, ps := range groupByOrg(projects) {
		orgs = append(orgs, s.summary(ps))
	}
	slices.SortFunc(orgs, func(a, b Org) int { return strings.Compare(a.Slug, b.Slug) })
	return orgs, nil
}

// Observe records a refusal that a caller (trigger evaluation, status
// posting) met on a project's repository, at once rather than at the next
// sweep: a revoked token, an OAuth App restriction, a missing repository.
// Anything else is ignored.
func (s *Service) Observe(ctx context.Context, slug forgelink.Slug, cause error) {
	state, ok := forgelink.AccessStateOf(cause)
	if !ok || state == forgelink.AccessOK {
		return
	}
	msg := cmp.Or(forgelink.MessageOf(cause), cause.Error())
	var before Org
	if all, err := s.following(ctx); err == nil {
		if ps := groupByOrg(all)[orgKey(slug)]; len(ps) > 0 {
			before = s.summary(ps)
		}
	}
	changed := false
	err := s.update(ctx, slug, func(p *forgelink.Project) bool {
		acc := copyAccess(p.Access)
		if acc.State == state && acc.Detail == msg {
			return false
		}
		s.setState(ctx, p, acc, state, msg, nil)
		p.Access = acc
		changed = true
		return true
	})
	if err != nil {
		s.log().WarnContext(ctx, "could not record an access refusal", "project", slug.String(), "err", err)
		return
	}
	if !changed || before.Slug == "" {
		return
	}
	if all, err := s.following(ctx); err == nil {
		if ps := groupByOrg(all)[orgKey(slug)]; len(ps) > 0 {
			s.logChange(ctx, before, s.summary(ps))
		}
	}
}

// following lists every followed project.
func (s *Service) following(ctx context.Context) ([]*forgelink.Project, error) {
	all, err := s.Store.ListProjects(ctx)
	if err != nil {
		return nil, fmt.Errorf("org access: %w", err)
	}
	var out []*forgelink.Project
	for _, p := range all {
		if p.State == forgelink.Following {
			out = append(out, p)
		}
	}
	return out, nil
}

// projects lists the followed projects in scope.
func (s *Service) projects(ctx context.Context, scope Scope) ([]*forgelink.Project, error) {
	all, err := s.following(ctx)
	if err != nil {
		return nil, err
	}
	return inScope(all, scope)
}

// inScope returns the projects of all in scope; NotFound when a scope
// names a project or org without followed projects.
func inScope(all []*forgelink.Project, scope Scope) ([]*forgelink.Project, error) {
	var out []*forgelink.Project
	for _, p := range all {
		if scope.has(p) {
			out = append(out, p)
		}
	}
	if scope.Project != nil && len(out) == 0 {
		return nil, forgelink.Errorf(forgelink.NotFound, "project %s is not followed", scope.Project)
	}
	if scope.Org != "" && len(out) == 0 {
		return nil, forgelink.Errorf(forgelink.NotFound, "no followed projects in %s/%s", scope.VCS.Short(), scope.Org)
	}
	return out, nil
}

func orgKey(slug forgelink.Slug) string {
	return slug.VCS.Short() + "/" + strings.ToLower(slug.Org)
}

func groupByOrg(projects []*forgelink.Project) map[string][]*forgelink.Project {
	out := map[string][]*forgelink.Project{}
	for _, p := range projects {
		k := orgKey(p.Slug)
		out[k] = append(out[k], p)
	}
	return out
}

// sweepOrg checks an org's projects, those checked longest ago first, and
// returns them as stored afterwards.
func (s *Service) sweepOrg(ctx context.Context, projects []*forgelink.Project) (after []*forgelink.Project, checked, deferred int) {
	slices.SortFunc(projects, func(a, b *forgelink.Project) int {
		return checkedAt(a).Compare(checkedAt(b))
	})
	minLeft := cmp.Or(s.MinRateLimit, DefaultMinRateLimit)
	stopped := ""
	for _, p := range projects {
		if stopped != "" || ctx.Err() != nil {
			deferred++
			s.Metrics.AccessCheck(string(p.Slug.VCS), metrics.Deferred)
			after = append(after, p)
			continue
		}
		np, ck, err := s.checkProject(ctx, p)
		if err != nil {
			s.log().WarnContext(ctx, "org access: project check deferred", "project", p.Slug.String(), "err", err)
			deferred++
			s.Metrics.AccessCheck(string(p.Slug.VCS), metrics.Deferred)
			after = append(after, p)
			continue
		}
		checked++
		if np.Access != nil {
			s.Metrics.AccessCheck(string(np.Slug.VCS), string(cmp.Or(np.Access.State, forgelink.AccessOK)))
		}
		after = append(after, np)
		if ck == nil {
			continue
		}
		if left, reset := ck.RateLimit(); left >= 0 && left < minLeft && reset.After(s.now()) {
			stopped = fmt.Sprintf("%d requests left until %s", left, reset.Format(time.RFC3339))
			s.log().WarnContext(ctx, "org access: rate limit low; the rest of the org waits for the next sweep", "org", orgKey(p.Slug), "left", left, "reset", reset)
		}
	}
	return after, checked, deferred
}

func checkedAt(p *forgelink.Project) time.Time {
	if p.Access == nil {
		return time.Time{}
	}
	return p.Access.CheckedAt
}

// found is one check's finding.
type found struct {
	state   forgelink.AccessState
	detail  string
	repairs []string
}

func (f *found) add(state forgelink.AccessState, detail string, repair string) {
	f.state = forgelink.Worse(f.state, state)
	if detail != "" {
		f.detail = strings.TrimSpace(f.detail + " " + detail)
	}
	if repair != "" {
		f.repairs = append(f.repairs, repair)
	}
}

// checkProject runs a project's checks and stores what it found. A
// transient failure returns an error and stores nothing.
func (s *Service) checkProject(ctx context.Context, p *forgelink.Project) (*forgelink.Project, forgelink.AccessChecker, error) {
	ck, err := s.Checkers(ctx, p)
	if err != nil {
		return nil, nil, err
	}
	acc := copyAccess(p.Access)
	f := &found{state: forgelink.AccessOK}
	etag := func(k string) string { return acc.ETags[k] }
	setETag := func(k string, pr forgelink.Probe) {
		if pr.ETag != "" {
			acc.ETags[k] = pr.ETag
		}
	}
	deliveriesSince := acc.DeliveriesCheckedAt
	repair := false

	pr, err := ck.CheckRepository(ctx, p.Slug, etag("repo"))
	if err != nil {
		state, ok := forgelink.AccessStateOf(err)
		if !ok {
			return nil, nil, err
		}
		f.add(state, forgelink.MessageOf(err), "")
		// The role decides "Request access" or "Grant access"; read it
		// when the org became restricted, not on every sweep.
		if state == forgelink.AccessRestricted && (acc.OrgRole == "" || acc.State != forgelink.AccessRestricted) {
			if role, rerr := ck.OrgRole(ctx, p.Slug.Org); rerr == nil {
				acc.OrgRole = role
			}
		}
		delete(acc.ETags, "repo")
	} else {
		setETag("repo", pr)
		if p.WebhookVCSID != "" {
			hi, err := ck.CheckHook(ctx, p.Slug, p.WebhookVCSID, etag("hook"))
			switch {
			case forgelink.KindOf(err) == forgelink.NotFound:
				f.add(forgelink.AccessHookMissing, "The webhook was deleted.", "")
				repair = true
			case err != nil:
				return nil, nil, err
			case !hi.NotModified && !hi.Active:
				if err := ck.ActivateHook(ctx, p.Slug, p.WebhookVCSID); err != nil {
					return nil, nil, err
				}
				f.add(forgelink.AccessHookInactive, "The webhook was deactivated.", "reactivated the webhook")
				delete(acc.ETags, "hook") // it changed: read it afresh next time
			default:
				setETag("hook", hi.Probe)
			}
		}
		if p.DeployKeyVCSID != "" {
			kp, err := ck.CheckDeployKey(ctx, p.Slug, p.DeployKeyVCSID, etag("key"))
			switch {
			case forgelink.KindOf(err) == forgelink.NotFound:
				f.add(forgelink.AccessDeployKeyMissing, "The deploy key was deleted.", "")
				repair = true
			case err != nil:
				return nil, nil, err
			default:
				setETag("key", kp)
			}
		}
		if repair {
			fixed, err := s.Repair(ctx, p.Slug, s.PublicURL)
			if err != nil {
				f.detail += " Repair failed: " + cmp.Or(forgelink.MessageOf(err), err.Error())
			} else {
				if f.state == forgelink.AccessHookMissing || p.WebhookVCSID != fixed.WebhookVCSID {
					f.repairs = append(f.repairs, "reinstalled the webhook (id "+fixed.WebhookVCSID+")")
				}
				if p.DeployKeyVCSID != fixed.DeployKeyVCSID {
					f.repairs = append(f.repairs, "re-added the deploy key (id "+fixed.DeployKeyVCSID+")")
				}
				p = fixed
				delete(acc.ETags, "hook")
				delete(acc.ETags, "key")
				delete(acc.ETags, "deliveries")
			}
		}
		if p.WebhookVCSID != "" && f.state != forgelink.AccessHookMissing {
			if err := s.checkDeliveries(ctx, ck, p, acc, f, deliveriesSince); err != nil {
				return nil, nil, err
			}
		}
	}
	stored, err := s.store(ctx, p.Slug, acc, f)
	if err != nil {
		return nil, nil, err
	}
	return stored, ck, nil
}

// checkDeliveries redelivers, once each, the hook's deliveries that failed
// since the last sweep. Redeliveries are not redelivered again; intake's
// de-duplication keeps a redelivery of what did arrive from building
// twice.
func (s *Service) checkDeliveries(ctx context.Context, ck forgelink.AccessChecker, p *forgelink.Project, acc *forgelink.ProjectAccess, f *found, since time.Time) error {
	if since.IsZero() {
		since = s.now().Add(-firstDeliveriesWindow)
	}
	ds, pr, err := ck.RecentDeliveries(ctx, p.Slug, p.WebhookVCSID, since, acc.ETags["deliveries"])
	switch {
	case forgelink.KindOf(err) == forgelink.Invalid:
		return nil // no deliveries API (Bitbucket)
	case err != nil:
		return err
	}
	if pr.ETag != "" {
		acc.ETags["deliveries"] = pr.ETag
	}
	if pr.NotModified {
		return nil
	}
	// Deliveries in since's second that the last sweep looked at are not
	// new; others in that second came after it read the list.
	seen := map[string]bool{}
	if since.Equal(acc.DeliveriesCheckedAt) {
		for _, id := range acc.DeliveriesAtCheck {
			seen[id] = true
		}
	}
	newest := since
	redelivered, failed := 0, 0
	for _, d := range ds {
		if d.DeliveredAt.Before(since) || d.DeliveredAt.Equal(since) && seen[d.ID] {
			continue
		}
		if d.DeliveredAt.After(newest) {
			newest = d.DeliveredAt
		}
		if d.Redelivery || !d.Failed() {
			continue
		}
		failed++
		if err := ck.Redeliver(ctx, p.Slug, p.WebhookVCSID, d.ID); err != nil {
			if forgelink.KindOf(err) == forgelink.Transient {
				return err
			}
			s.log().WarnContext(ctx, "org access: redelivery refused", "project", p.Slug.String(), "delivery", d.GUID, "err", err)
			continue
		}
		redelivered++
	}
	var atNewest []string
	for _, d := range ds {
		if d.DeliveredAt.Equal(newest) {
			atNewest = append(atNewest, d.ID)
		}
	}
	acc.DeliveriesCheckedAt, acc.DeliveriesAtCheck = newest, atNewest
	if failed > 0 {
		repair := ""
		if redelivered > 0 {
			repair = fmt.Sprintf("redelivered %d failed deliveries", redelivered)
		}
		f.add(forgelink.AccessDeliveriesFailing, fmt.Sprintf("%d deliveries failed since %s.", failed, since.Format(time.RFC3339)), repair)
		// The redeliveries are new deliveries: read the list afresh.
		delete(acc.ETags, "deliveries")
	}
	return nil
}

// store writes what a check found into the project's access, re-reading
// the project if it changed meanwhile.
func (s *Service) store(ctx context.Context, slug forgelink.Slug, acc *forgelink.ProjectAccess, f *found) (*forgelink.Project, error) {
	var out *forgelink.Project
	err := s.update(ctx, slug, func(p *forgelink.Project) bool {
		next := copyAccess(acc)
		next.State, next.Since = "", time.Time{}
		if p.Access != nil {
			next.State, next.Since = p.Access.State, p.Access.Since
		}
		s.setState(ctx, p, next, f.state, f.detail, f.repairs)
		p.Access = next
		out = p
		return true
	})
	return out, err
}

// setState moves acc to state, logging a change once.
func (s *Service) setState(ctx context.Context, p *forgelink.Project, acc *forgelink.ProjectAccess, state forgelink.AccessState, detail string, repairs []string) {
	now := s.now()
	old := cmp.Or(acc.State, forgelink.AccessOK)
	if acc.State != state {
		acc.Since = now
		if old != state {
			s.log().InfoContext(ctx, "project_access_changed", "project", p.Slug.String(), "old", string(old), "new", string(state), "detail", detail)
		}
	}
	acc.State, acc.CheckedAt, acc.Detail, acc.Repairs = state, now, detail, repairs
	if state != forgelink.AccessRestricted {
		acc.OrgRole = ""
	}
}

// update applies change to the stored project until it sticks.
func (s *Service) update(ctx context.Context, slug forgelink.Slug, change func(p *forgelink.Project) bool) error {
	for attempt := 1; ; attempt++ {
		p, err := s.Store.GetProject(ctx, slug)
		if err != nil {
			return fmt.Errorf("org access: %s: %w", slug, err)
		}
		if !change(p) {
			return nil
		}
		err = s.Store.UpdateProject(ctx, p)
		if err == nil {
			return nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict || attempt == 5 {
			return fmt.Errorf("org access: %s: %w", slug, err)
		}
	}
}

func copyAccess(a *forgelink.ProjectAccess) *forgelink.ProjectAccess {
	out := &forgelink.ProjectAccess{State: forgelink.AccessOK, ETags: map[string]string{}}
	if a == nil {
		return out
	}
	*out = *a
	out.ETags = make(map[string]string, len(a.ETags))
	for k, v := range a.ETags {
		out.ETags[k] = v
	}
	out.Repairs = slices.Clone(a.Repairs)
	return out
}

// summary is an org's state from its projects': the worst, since the
// earliest of the projects in it.
func (s *Service) summary(projects []*forgelink.Project) Org {
	slug := projects[0].Slug
	org := Org{VCS: slug.VCS.Name(), Org: slug.Org, Slug: orgKey(slug), State: forgelink.AccessOK, Projects: []ProjectStatus{}}
	var role string
	for _, p := range projects {
		ps := ProjectStatus{Slug: p.Slug.String(), State: forgelink.AccessOK}
		if a := p.Access; a != nil {
			ps = ProjectStatus{Slug: p.Slug.String(), State: cmp.Or(a.State, forgelink.AccessOK), Since: a.Since, CheckedAt: a.CheckedAt, Detail: a.Detail, Repairs: a.Repairs}
			if a.OrgRole != "" {
				role = a.OrgRole
			}
		}
		org.State = forgelink.Worse(org.State, ps.State)
		if ps.CheckedAt.After(org.CheckedAt) {
			org.CheckedAt = ps.CheckedAt
		}
		org.Projects = append(org.Projects, ps)
	}
	slices.SortFunc(org.Projects, func(a, b ProjectStatus) int { return strings.Compare(a.Slug, b.Slug) })
	for _, ps := range org.Projects {
		if ps.State == org.State && (org.Since.IsZero() || ps.Since.Before(org.Since)) {
			org.Since = ps.Since
		}
	}
	org.Remediation = s.remediation(slug, org.State, role)
	return org
}

// remediation says what the user must do about state, in GitHub's and
// CircleCI's words.
func (s *Service) remediation(slug forgelink.Slug, state forgelink.AccessState, role string) *Remediation {
	vcs := slug.VCS.Name()
	switch state {
	case forgelink.AccessRestricted:
		link := strings.TrimRight(cmp.Or(s.GitHubWebURL, "https://github.com"), "/") + "/settings/connections/applications/" + s.OAuthClientID
		if s.OAuthClientID == "" {
			link = strings.TrimRight(cmp.Or(s.GitHubWebURL, "https://github.com"), "/") + "/settings/applications"
		}
		if role == "admin" {
			return &Remediation{Action: "Grant access", URL: link, Text: fmt.Sprintf(
				"The organization %s has OAuth App access restrictions on and has not approved forgelink. You are an owner of %s: open %s, find %s under \"Organization access\" and click \"Grant access\".",
				slug.Org, slug.Org, link, slug.Org)}
		}
		return &Remediation{Action: "Request access", URL: link, Text: fmt.Sprintf(
			"The organization %s has OAuth App access restrictions on and has not approved forgelink. Open %s, find %s under \"Organization access\" and click \"Request access\"; an owner of %s must then approve it.",
			slug.Org, link, slug.Org, slug.Org)}
	case forgelink.AccessTokenRevoked:
		return &Remediation{Action: "Sign in again", Text: fmt.Sprintf(
			"%s no longer accepts the token of the user who followed these projects (revoked or expired). Sign in again (or set a new token) and follow the projects again.", vcs)}
	case forgelink.AccessRepoMissing:
		return &Remediation{Action: "Follow again", Text: fmt.Sprintf(
			"%s answers 404 for a followed repository: it was renamed or deleted, or the follower lost access. Follow it under its new name, or unfollow it.", vcs)}
	case forgelink.AccessHookMissing, forgelink.AccessHookInactive, forgelink.AccessDeployKeyMissing, forgelink.AccessDeliveriesFailing:
		return &Remediation{Action: "None", Text: "forgelink repaired this by itself (see each project's repairs); nothing to do unless it comes back."}
	}
	return nil
}

func (s *Service) now() time.Time {
	if s.Now != nil {
		return s.Now().UTC()
	}
	return time.Now().UTC()
}

func (s *Service) log() *slog.Logger {
	if s.Log != nil {
		return s.Log
	}
	return slog.Default()
}
