package bbhook

import (
	"encoding/json"
	"strings"

	"forgelink/shared/forgelink"
	"forgelink/shared/hubsig"
)

// The Bitbucket Cloud delivery headers forgelink reads.
const (
	// EventHeader names the event, e.g. "repo:push" or "pullrequest:created".
	EventHeader = "X-Event-Key"
	// DeliveryHeader is the request's UUID.
	DeliveryHeader = "X-Request-UUID"
	// HookUUIDHeader is the UUID of the webhook that sent the delivery.
	HookUUIDHeader = "X-Hook-UUID"
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the
	// body. Bitbucket sends it only when the webhook has a secret.
	SignatureHeader = "X-Hub-Signature"
)

// VerifySignature reports whether signature, the value of the
// X-Hub-Signature header, is "sha256=" followed by the hex HMAC-SHA256 of
// body under one of secrets. Several secrets allow rotating one without
// losing deliveries. Empty secrets are skipped and never match: with no
// non-empty secret every delivery is refused, as is a delivery from a
// webhook that has no secret (it carries no signature).
//
// Every failure is of kind forgelink.Unauthorized. Verify the exact bytes
// received, before decoding anything.
func VerifySignature(body []byte, signature string, secrets ...[]byte) error {
	return hubsig.Verify("bitbucket", SignatureHeader, body, signature, secrets...)
}

// ParseEvent normalizes a Bitbucket Cloud delivery of the given event key
// (the X-Event-Key header) into the events forgelink acts on.
//
// A repo:push gives one event per entry of push.changes: a branch or tag
// push named by the new ref, or, when the new ref is null, the deletion of
// the old one (with Before its last commit). Changes to other kinds of ref
// are skipped. The pull request events map as
//
//	pullrequest:created   PROpened
//	pullrequest:updated   PRSynchronize
//	pullrequest:fulfilled PRMerged
//	pullrequest:rejected  PRClosed
//
// Bitbucket sends pullrequest:updated for a new source commit and for an
// edit of the title or description alike, so consumers should compare
// Revision with what they last built. A pull request is from a fork when
// its source repository differs from its destination repository or is gone.
//
// diagnostics:ping gives nil events and a nil error, meaning "nothing to
// do". Any other key, malformed JSON, and a payload missing a field the
// event cannot do without (push, a ref's name or commit, a pull request's
// id or branches) give an error of kind forgelink.Invalid.
func ParseEvent(eventKey string, body []byte) ([]forgelink.Event, error) {
	switch eventKey {
	case "repo:push":
		return whParsePush(body)
	case "pullrequest:created":
		return whParsePullRequest(eventKey, forgelink.PROpened, body)
	case "pullrequest:updated":
		return whParsePullRequest(eventKey, forgelink.PRSynchronize, body)
	case "pullrequest:fulfilled":
		return whParsePullRequest(eventKey, forgelink.PRMerged, body)
	case "pullrequest:rejected":
		return whParsePullRequest(eventKey, forgelink.PRClosed, body)
	case "diagnostics:ping":
		if !json.Valid(body) {
			return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: malformed JSON in %s payload", eventKey)
		}
		return nil, nil
	case "":
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: missing %s", EventHeader)
	}
	return nil, forgelink.IgnoredEvent("bitbucket", eventKey, body)
}

// The payload structs hold only what ParseEvent reads, so that decoding
// skips the rest of a payload cheaply.

type whActor struct {
	Nickname    string `json:"nickname"`
	Username    string `json:"username"` // gone from most payloads since 2019
	DisplayName string `json:"display_name"`
}

func (a *whActor) name() string {
	switch {
	case a == nil:
		return ""
	case a.Nickname != "":
		return a.Nickname
	case a.Username != "":
		return a.Username
	}
	return a.DisplayName
}

type whRepo struct {
	FullName   string `json:"full_name"`
	MainBranch *struct {
		Name string `json:"name"`
	} `json:"mainbranch"`
}

func (r *whRepo) fullName() string {
	if r == nil {
		return ""
	}
	return r.FullName
}

func (r *whRepo) mainBranch() string {
	if r == nil || r.MainBranch == nil {
		return ""
	}
	return r.MainBranch.Name
}

type whRef struct {
	Type   string `json:"type"`
	Name   string `json:"name"`
	Target *struct {
		Hash    string `json:"hash"`
		Message string `json:"message"`
	} `json:"target"`
}

func (r *whRef) hash() string {
	if r == nil || r.Target == nil {
		return ""
	}
	return r.Target.Hash
}

type whPush struct {
	Push *struct {
		Changes []struct {
			New *whRef `json:"new"`
			Old *whRef `json:"old"`
		} `json:"changes"`
	} `json:"push"`
	Actor      *whActor `json:"actor"`
	Repository *whRepo  `json:"repository"`
}

type whEndpoint struct {
	Branch *struct {
		Name string `json:"name"`
	} `json:"branch"`
	Commit *struct {
		Hash string `json:"hash"`
	} `json:"commit"`
	Repository *whRepo `json:"repository"`
}

func (e *whEndpoint) branch() string {
	if e == nil || e.Branch == nil {
		return ""
	}
	return e.Branch.Name
}

type whPullRequestEvent struct {
	PullRequest *struct {
		ID          int         `json:"id"`
		Source      *whEndpoint `json:"source"`
		Destination *whEndpoint `json:"destination"`
	} `json:"pullrequest"`
	Actor      *whActor `json:"actor"`
	Repository *whRepo  `json:"repository"`
}

func whDecode(eventKey string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return forgelink.E(forgelink.Invalid, "bitbucket: malformed JSON in "+eventKey+" payload", err)
	}
	return nil
}

func whParsePush(body []byte) ([]forgelink.Event, error) {
	var p whPush
	if err := whDecode("repo:push", body, &p); err != nil {
		return nil, err
	}
	if p.Push == nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: repo:push payload has no push")
	}
	var events []forgelink.Event
	for i, c := range p.Push.Changes {
		e := forgelink.Event{
			Before:        c.Old.hash(),
			Actor:         p.Actor.name(),
			DefaultBranch: p.Repository.mainBranch(),
		}
		ref := c.New
		if ref == nil {
			ref = c.Old
		}
		if ref == nil {
			continue
		}
		if ref.Name == "" {
			return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: repo:push change %d has no ref name", i)
		}
		switch ref.Type {
		case "branch":
			e.Type, e.Branch = forgelink.BranchPush, ref.Name
			if c.New == nil {
				e.Type = forgelink.BranchDelete
			}
		case "tag":
			e.Type, e.Tag = forgelink.TagPush, ref.Name
			if c.New == nil {
				e.Type = forgelink.TagDelete
			}
		default:
			continue // a Mercurial named branch or bookmark, from before 2020
		}
		if c.New != nil {
			if e.Revision = c.New.hash(); e.Revision == "" {
				return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: repo:push change %d has no target commit", i)
			}
			e.Message = c.New.Target.Message
		}
		events = append(events, e)
	}
	return events, nil
}

func whParsePullRequest(eventKey string, action forgelink.PRAction, body []byte) ([]forgelink.Event, error) {
	var p whPullRequestEvent
	if err := whDecode(eventKey, body, &p); err != nil {
		return nil, err
	}
	pr := p.PullRequest
	switch {
	case pr == nil:
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: %s payload has no pullrequest", eventKey)
	case pr.ID <= 0:
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: %s payload has no pull request id", eventKey)
	case pr.Source.branch() == "" || pr.Source.Commit == nil || pr.Source.Commit.Hash == "":
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: %s payload has no source branch and commit", eventKey)
	case pr.Destination.branch() == "":
		return nil, forgelink.Errorf(forgelink.Invalid, "bitbucket: %s payload has no destination branch", eventKey)
	}
	headRepo := pr.Source.Repository.fullName()
	baseRepo := pr.Destination.Repository.fullName()
	if baseRepo == "" {
		baseRepo = p.Repository.fullName()
	}
	return []forgelink.Event{{
		Type:          forgelink.PullRequest,
		Branch:        pr.Source.branch(),
		Revision:      pr.Source.Commit.Hash,
		Actor:         p.Actor.name(),
		DefaultBranch: p.Repository.mainBranch(),
		PR: &forgelink.PR{
			Number:     pr.ID,
			Action:     action,
			BaseBranch: pr.Destination.branch(),
			HeadRepo:   headRepo,
			// Workspace and repository slugs are case-insensitive. A source
			// repository that is gone is a deleted fork.
			Fork: headRepo == "" || !strings.EqualFold(headRepo, baseRepo),
		},
	}}, nil
}
