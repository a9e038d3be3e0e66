// Package trigger turns queued webhook deliveries into pipelines or
// recorded skips: it keeps the open-PR index, reads .circleci/config.yml at
// the event's revision (cached by blob sha), applies the pure rules of
// forgelink.Evaluate, and hands created pipelines on.
//
//	svc := &trigger.Service{Store: st, Readers: readers, Handoff: h}
//	err := svc.Handle(ctx, msg) // a Transient error means: deliver again
//
// Handling the same message twice creates nothing twice: pipelines are
// unique per (project, branch or tag, revision) in the store, and the
// delivery record is replaced.
package trigger

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"

	"forgelink/shared/circleci"
	"forgelink/shared/forgelink"
	"forgelink/shared/metrics"
)

// ConfigPath is where the pipeline configuration lives in a repository.
const ConfigPath = ".circleci/config.yml"

// Store is what the trigger function needs of storage.
type Store interface {
	GetProject(ctx context.Context, slug forgelink.Slug) (*forgelink.Project, error)
	forgelink.PipelineStore
}

// Readers returns the RepoReader for a VCS, authenticated as the project's follower.
type Readers func(ctx context.Context, p *forgelink.Project) (forgelink.RepoReader, error)

// Handoff passes a created pipeline on: to the executor, and to the status
// function for its pending commit status.
type Handoff interface {
	Handoff(ctx context.Context, p *forgelink.Pipeline) error
}

// Service evaluates deliveries.
type Service struct {
	Store   Store
	Readers Readers
	Handoff Handoff
	// Access, optional, is told when the VCS refuses to show the config
	// (revoked token, OAuth App restriction, repository gone).
	Access forgelink.AccessObserver
	Now    func() time.Time
	Log    *slog.Logger
	// Metrics counts decisions (pipelines created, events skipped); nil:
	// metrics.Default.
	Metrics *metrics.Registry

	cache configCache
}

// Handle processes one queued delivery.
func (s *Service) Handle(ctx context.Context, m *forgelink.Message) error {
	log := s.log().With("delivery", m.DeliveryID, "hook_id", m.HookID, "project", m.Project)
	slug, err := forgelink.ParseSlug(m.Project)
	if err != nil {
		return fmt.Errorf("trigger %s: %w", m.DeliveryID, err)
	}
	project, err := s.Store.GetProject(ctx, slug)
	if forgelink.KindOf(err) == forgelink.NotFound {
		log.InfoContext(ctx, "project no longer followed; delivery dropped")
		return nil
	}
	if err != nil {
		return fmt.Errorf("trigger %s: %w", m.DeliveryID, err)
	}
	rec := &forgelink.DeliveryRecord{
		Project:     m.Project,
		HookID:      m.HookID,
		DeliveryID:  m.DeliveryID,
		Event:       m.Event,
		ReceivedAt:  m.ReceivedAt,
		ProcessedAt: s.now(),
		State:       forgelink.Decided,
	}
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = rec.ProcessedAt
	}
	e := &evaluation{s: s, project: project, msg: m, log: log}
	for _, ev := range m.Events {
		d, err := e.event(ctx, ev)
		if err != nil {
			return fmt.Errorf("trigger %s: %w", m.DeliveryID, err)
		}
		rec.Decisions = append(rec.Decisions, d)
	}
	if err := s.Store.PutDeliveryRecord(ctx, rec); err != nil {
		return fmt.Errorf("trigger %s: record decisions: %w", m.DeliveryID, err)
	}
	return nil
}

// RecordDead records in the project's deliveries that m failed every
// attempt, with the last error, so the deliveries API shows it as dead
// and it can be retried. It is the queues' OnDead.
func (s *Service) RecordDead(ctx context.Context, m *forgelink.Message, attempts int, cause error) {
	msg := forgelink.MessageOf(cause)
	if msg == "" || forgelink.KindOf(cause) == forgelink.Internal {
		msg = cause.Error()
	}
	now := s.now()
	rec := &forgelink.DeliveryRecord{
		Project: m.Project, HookID: m.HookID, DeliveryID: m.DeliveryID, Event: m.Event,
		ReceivedAt: m.ReceivedAt, ProcessedAt: now,
		State: forgelink.Dead, Error: msg, Attempts: attempts,
	}
	if rec.ReceivedAt.IsZero() {
		rec.ReceivedAt = now
	}
	if err := s.Store.PutDeliveryRecord(ctx, rec); err != nil {
		s.log().ErrorContext(ctx, "could not record dead delivery", "delivery", m.DeliveryID, "hook_id", m.HookID, "err", err)
	}
}

// evaluation is the state of handling one message.
type evaluation struct {
	s       *Service
	project *forgelink.Project
	msg     *forgelink.Message
	log     *slog.Logger
	reader  forgelink.RepoReader
}

func (e *evaluation) repoReader(ctx context.Context) (forgelink.RepoReader, error) {
	if e.reader == nil {
		r, err := e.s.Readers(ctx, e.project)
		if err != nil {
			return nil, err
		}
		e.reader = r
	}
	return e.reader, nil
}

// event decides one event and acts on the decision.
func (e *evaluation) event(ctx context.Context, ev forgelink.Event) (forgelink.EventDecision, error) {
	rev, err := e.fullRevision(ctx, ev.Revision)
	if err != nil {
		return forgelink.EventDecision{}, err
	}
	ev.Revision = rev
	if err := e.updatePRIndex(ctx, ev); err != nil {
		return forgelink.EventDecision{}, err
	}
	in := forgelink.TriggerInput{
		Event:         ev,
		Settings:      e.project.Settings,
		DefaultBranch: e.project.DefaultBranch,
	}
	if ev.Type == forgelink.BranchPush && e.project.Settings.BuildPRsOnly {
		open, err := e.branchHasOpenPR(ctx, ev.Branch)
		if err != nil {
			return forgelink.EventDecision{}, err
		}
		in.BranchHasOpenPR = open
	}
	// Rules that skip without a config come first; only fetch the config
	// when the event got past them.
	in.ConfigMissing = true
	d := forgelink.Evaluate(in)
	if !d.Build && d.Reason == forgelink.ReasonNoConfig {
		in.ConfigMissing = false
		cfg, parseErr, err := e.config(ctx, ev.Revision)
		switch {
		case err != nil && forgelink.KindOf(err) == forgelink.NotFound:
			in.ConfigMissing = true
		case err != nil && forgelink.KindOf(err) == forgelink.Transient:
			return forgelink.EventDecision{}, err
		case err != nil:
			// The VCS refused for good (token revoked, access restricted):
			// retrying will not help; the org-access sweep tells the user.
			in.ConfigMissing = true
			d = forgelink.Evaluate(in)
			d.Reason = "could not read " + ConfigPath + ": " + messageOf(err)
			e.log.WarnContext(ctx, "config unreadable", "err", err)
			if e.s.Access != nil {
				e.s.Access.Observe(ctx, e.project.Slug, err)
			}
			e.s.Metrics.Pipeline(string(e.project.Slug.VCS), metrics.Skipped)
			return decisionRecord(ev, d), nil
		case parseErr != nil:
			in.ConfigError = messageOf(parseErr)
		default:
			in.Config = cfg
		}
		d = forgelink.Evaluate(in)
	}
	rec := decisionRecord(ev, d)
	if !d.Build {
		e.log.InfoContext(ctx, "skipped", "reason", d.Reason, "type", string(ev.Type), "branch", ev.Branch, "tag", ev.Tag)
		e.s.Metrics.Pipeline(string(e.project.Slug.VCS), metrics.Skipped)
		return rec, nil
	}
	p, dup, err := e.createPipeline(ctx, ev, d)
	if err != nil {
		return forgelink.EventDecision{}, err
	}
	rec.PipelineID, rec.PipelineNumber, rec.Duplicate = p.ID, p.Number, dup
	return rec, nil
}

func decisionRecord(ev forgelink.Event, d forgelink.Decision) forgelink.EventDecision {
	r := forgelink.EventDecision{
		Type:     ev.Type,
		Branch:   ev.Branch,
		Tag:      ev.Tag,
		Revision: ev.Revision,
		Build:    d.Build,
		Reason:   d.Reason,
	}
	if ev.PR != nil {
		r.PRNumber = ev.PR.Number
	}
	return r
}

// createPipeline stores the pipeline and hands it off. A pipeline that
// already exists for the revision is not created again; if this very
// delivery created it (a retried message), it is handed off again, since
// the first attempt may have failed before the hand-off.
func (e *evaluation) createPipeline(ctx context.Context, ev forgelink.Event, d forgelink.Decision) (*forgelink.Pipeline, bool, error) {
	p := &forgelink.Pipeline{
		ID:             uuid.NewString(),
		Project:        e.project.Slug.String(),
		State:          forgelink.PipelineCreated,
		Trigger:        d.Trigger,
		Branch:         d.Branch,
		Tag:            d.Tag,
		Revision:       d.Revision,
		PRNumber:       d.PRNumber,
		Fork:           d.Fork,
		SecretsExposed: d.SecretsExposed,
		Workflows:      d.Workflows,
		Actor:          ev.Actor,
		HookID:         e.msg.HookID,
		DeliveryID:     e.msg.DeliveryID,
		CreatedAt:      e.s.now(),
	}
	if p.Workflows == nil {
		p.Workflows = []string{}
	}
	if d.ConfigError != "" {
		p.State = forgelink.PipelineErrored
		p.Errors = []string{d.ConfigError}
	}
	p.InitStatus()
	existing, err := e.s.Store.CreatePipeline(ctx, p)
	vcs := string(e.project.Slug.VCS)
	if forgelink.KindOf(err) == forgelink.Conflict && existing != nil {
		if existing.HookID != e.msg.HookID || existing.DeliveryID != e.msg.DeliveryID {
			e.log.InfoContext(ctx, "pipeline exists for this revision", "pipeline", existing.ID, "number", existing.Number)
			e.s.Metrics.Pipeline(vcs, metrics.Existing)
			return existing, true, nil
		}
		// This delivery created it on an earlier attempt: counted then.
		p = existing
	} else if err != nil {
		return nil, false, fmt.Errorf("create pipeline: %w", err)
	} else {
		e.s.Metrics.Pipeline(vcs, metrics.Created)
		if existing != nil {
			p = existing
		}
	}
	if err := e.s.Handoff.Handoff(ctx, p); err != nil {
		return nil, false, fmt.Errorf("hand off pipeline %s: %w", p.ID, err)
	}
	e.log.InfoContext(ctx, "pipeline created", "pipeline", p.ID, "number", p.Number, "trigger", p.Trigger, "branch", p.Branch, "tag", p.Tag, "state", string(p.State))
	return p, false, nil
}

// fullRevision expands an abbreviated commit hash (Bitbucket's pull-request
// payloads) so that pipelines are keyed by the same revision a push names.
// Where the VCS cannot say, the abbreviation is kept.
func (e *evaluation) fullRevision(ctx context.Context, rev string) (string, error) {
	if rev == "" || len(rev) >= 40 {
		return rev, nil
	}
	r, err := e.repoReader(ctx)
	if err != nil {
		return "", err
	}
	res, ok := r.(forgelink.RevisionResolver)
	if !ok {
		return rev, nil
	}
	full, err := res.FullRevision(ctx, e.project.Slug, rev)
	switch {
	case err == nil:
		return full, nil
	case forgelink.KindOf(err) == forgelink.Transient:
		return "", err
	}
	e.log.WarnContext(ctx, "could not expand an abbreviated revision; keeping it", "revision", rev, "err", err)
	return rev, nil
}

// updatePRIndex keeps the open-PR index from pull-request events. Only
// pull requests whose head lives in the repository matter: the index
// answers "does this pushed branch have an open PR".
func (e *evaluation) updatePRIndex(ctx context.Context, ev forgelink.Event) error {
	if ev.Type != forgelink.PullRequest || ev.PR == nil || ev.PR.Fork || ev.Branch == "" {
		return nil
	}
	var open bool
	switch ev.PR.Action {
	case forgelink.PROpened, forgelink.PRReopened, forgelink.PRSynchronize:
		open = true
	case forgelink.PRClosed, forgelink.PRMerged:
		open = false
	default:
		return nil
	}
	if err := e.s.Store.SetPROpen(ctx, e.project.Slug, ev.Branch, ev.PR.Number, open); err != nil {
		return fmt.Errorf("open-PR index: %w", err)
	}
	return nil
}

// branchHasOpenPR answers from the index, asking the VCS once for a branch
// the index has never heard of (the project was followed after the PR was
// opened) and remembering the answer.
func (e *evaluation) branchHasOpenPR(ctx context.Context, branch string) (bool, error) {
	prs, known, err := e.s.Store.OpenPRs(ctx, e.project.Slug, branch)
	if err != nil {
		return false, fmt.Errorf("open-PR index: %w", err)
	}
	if known {
		return len(prs) > 0, nil
	}
	r, err := e.repoReader(ctx)
	if err != nil {
		return false, err
	}
	prs, err = r.OpenPullRequests(ctx, e.project.Slug, branch)
	if err != nil {
		return false, fmt.Errorf("list open pull requests for %s: %w", branch, err)
	}
	if err := e.s.Store.SetOpenPRs(ctx, e.project.Slug, branch, prs); err != nil {
		return false, fmt.Errorf("open-PR index: %w", err)
	}
	return len(prs) > 0, nil
}

// config returns the parsed config at revision. parseErr is the config's
// own fault (shown on an errored pipeline); err is a failure to read it.
func (e *evaluation) config(ctx context.Context, revision string) (cfg *forgelink.Config, parseErr, err error) {
	r, err := e.repoReader(ctx)
	if err != nil {
		return nil, nil, err
	}
	content, key, err := r.File(ctx, e.project.Slug, ConfigPath, revision)
	if err != nil {
		return nil, nil, fmt.Errorf("read %s at %s: %w", ConfigPath, revision, err)
	}
	if c, perr, ok := e.s.cache.get(key); ok {
		return c, perr, nil
	}
	c, perr := circleci.Parse(content)
	e.s.cache.put(key, c, perr)
	return c, perr, nil
}

func messageOf(err error) string {
	if m := forgelink.MessageOf(err); m != "" {
		return m
	}
	return err.Error()
}

// configCache keeps parsed configs by blob key. Configs are small and few
// per project, so a bounded map cleared when full is enough.
type configCache struct {
	mu sync.Mutex
	m  map[string]cachedConfig
}

type cachedConfig struct {
	cfg *forgelink.Config
	err error
}

const maxCachedConfigs = 512

func (c *configCache) get(key string) (*forgelink.Config, error, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	v, ok := c.m[key]
	return v.cfg, v.err, ok
}

func (c *configCache) put(key string, cfg *forgelink.Config, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil || len(c.m) >= maxCachedConfigs {
		c.m = make(map[string]cachedConfig)
	}
	c.m[key] = cachedConfig{cfg, err}
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
