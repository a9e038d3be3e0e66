package ghhook

import (
	"encoding/json"
	"net/url"
	"strings"

	"forgelink/shared/forgelink"
	"forgelink/shared/hubsig"
)

// The delivery headers forgelink reads. GitHub also sends the legacy
// X-Hub-Signature (HMAC-SHA1), which is deliberately ignored.
const (
	// EventHeader names the event, e.g. "push" or "pull_request".
	EventHeader = "X-GitHub-Event"
	// DeliveryHeader is the delivery's GUID. A redelivery keeps it, and
	// GitHub reuses it across hooks, so it is unique only per hook.
	DeliveryHeader = "X-GitHub-Delivery"
	// SignatureHeader carries "sha256=" and the hex HMAC-SHA256 of the body.
	SignatureHeader = "X-Hub-Signature-256"
)

const (
	// whZeroSHA is what GitHub sends as before on a ref's creation and as
	// after on its deletion.
	whZeroSHA = "0000000000000000000000000000000000000000"
)

// VerifySignature reports whether signature, the value of the
// X-Hub-Signature-256 header, is "sha256=" followed by the hex HMAC-SHA256
// of body under one of secrets. Several secrets allow rotating one without
// losing deliveries. Empty secrets are skipped and never match: with no
// non-empty secret every delivery is refused. There is no SHA-1 fallback.
//
// Every failure is of kind forgelink.Unauthorized. Verify the exact bytes
// received, before decoding anything.
func VerifySignature(body []byte, signature string, secrets ...[]byte) error {
	return hubsig.Verify("github", SignatureHeader, body, signature, secrets...)
}

// PayloadFromForm returns the JSON payload of a delivery sent as
// application/x-www-form-urlencoded, which GitHub puts in the "payload"
// field. The signature covers the form body, so verify that first and pass
// the result of PayloadFromForm to ParseEvent.
func PayloadFromForm(body []byte) ([]byte, error) {
	form, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, forgelink.E(forgelink.Invalid, "github: malformed form body", err)
	}
	payload := form.Get("payload")
	if payload == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: form body has no payload field")
	}
	return []byte(payload), nil
}

// ParseEvent normalizes a delivery of the given event (the X-GitHub-Event
// header) into the events forgelink acts on. A nil slice with a nil error
// means the delivery is valid but there is nothing to do:
//
//   - ping;
//   - create and delete, because GitHub sends a push (created or deleted)
//     for the same ref, and that push is the one normalized;
//   - pull_request actions other than opened, reopened, synchronize, edited
//     and closed (labeled, assigned, review_requested, ...);
//   - a push to a ref outside refs/heads/ and refs/tags/.
//
// A closed pull request is PRMerged when it was merged, PRClosed otherwise;
// it is from a fork when its head repository differs from its base
// repository or is gone (a deleted fork). The all-zero SHA GitHub sends for
// a created or deleted ref becomes "".
//
// Any other event, malformed JSON, and a payload missing a field the event
// cannot do without (a push's ref, a pull request's number or branches) give
// an error of kind forgelink.Invalid.
func ParseEvent(event string, body []byte) ([]forgelink.Event, error) {
	switch event {
	case "push":
		return whParsePush(body)
	case "pull_request":
		return whParsePullRequest(body)
	case "ping", "create", "delete":
		if !json.Valid(body) {
			return nil, forgelink.Errorf(forgelink.Invalid, "github: malformed JSON in %s payload", event)
		}
		return nil, nil
	case "":
		return nil, forgelink.Errorf(forgelink.Invalid, "github: missing %s", EventHeader)
	}
	return nil, forgelink.IgnoredEvent("github", event, body)
}

// The payload structs hold only what ParseEvent reads, so that decoding
// skips the rest of a payload cheaply.

type whUser struct {
	Login string `json:"login"`
}

type whRepo struct {
	FullName      string `json:"full_name"`
	DefaultBranch string `json:"default_branch"`
}

type whPush struct {
	Ref        string  `json:"ref"`
	Before     string  `json:"before"`
	After      string  `json:"after"`
	Deleted    bool    `json:"deleted"`
	Repository *whRepo `json:"repository"`
	Sender     *whUser `json:"sender"`
	Pusher     *struct {
		Name string `json:"name"`
	} `json:"pusher"`
	HeadCommit *struct {
		Message string `json:"message"`
	} `json:"head_commit"`
}

type whBranch struct {
	Ref  string  `json:"ref"`
	SHA  string  `json:"sha"`
	Repo *whRepo `json:"repo"`
}

type whPullRequestEvent struct {
	Action      string `json:"action"`
	Number      int    `json:"number"`
	Before      string `json:"before"`
	PullRequest *struct {
		Number int       `json:"number"`
		Merged bool      `json:"merged"`
		Head   *whBranch `json:"head"`
		Base   *whBranch `json:"base"`
	} `json:"pull_request"`
	Repository *whRepo `json:"repository"`
	Sender     *whUser `json:"sender"`
}

func whDecode(event string, body []byte, v any) error {
	if err := json.Unmarshal(body, v); err != nil {
		return forgelink.E(forgelink.Invalid, "github: malformed JSON in "+event+" payload", err)
	}
	return nil
}

func whSHA(s string) string {
	if s == whZeroSHA {
		return ""
	}
	return s
}

func whParsePush(body []byte) ([]forgelink.Event, error) {
	var p whPush
	if err := whDecode("push", body, &p); err != nil {
		return nil, err
	}
	if p.Ref == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: push payload has no ref")
	}
	e := forgelink.Event{
		Revision: whSHA(p.After),
		Before:   whSHA(p.Before),
	}
	if name, ok := strings.CutPrefix(p.Ref, "refs/heads/"); ok {
		e.Type, e.Branch = forgelink.BranchPush, name
		if p.Deleted {
			e.Type = forgelink.BranchDelete
		}
	} else if name, ok := strings.CutPrefix(p.Ref, "refs/tags/"); ok {
		e.Type, e.Tag = forgelink.TagPush, name
		if p.Deleted {
			e.Type = forgelink.TagDelete
		}
	} else {
		return nil, nil
	}
	if e.Branch == "" && e.Tag == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: push payload has an empty ref name")
	}
	if p.HeadCommit != nil {
		e.Message = p.HeadCommit.Message
	}
	if p.Sender != nil {
		e.Actor = p.Sender.Login
	}
	if e.Actor == "" && p.Pusher != nil {
		e.Actor = p.Pusher.Name
	}
	if p.Repository != nil {
		e.DefaultBranch = p.Repository.DefaultBranch
	}
	return []forgelink.Event{e}, nil
}

func whParsePullRequest(body []byte) ([]forgelink.Event, error) {
	var p whPullRequestEvent
	if err := whDecode("pull_request", body, &p); err != nil {
		return nil, err
	}
	pr := p.PullRequest
	if pr == nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: pull_request payload has no pull_request")
	}
	number := p.Number
	if number == 0 {
		number = pr.Number
	}
	if number <= 0 {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: pull_request payload has no number")
	}
	var action forgelink.PRAction
	switch p.Action {
	case "opened":
		action = forgelink.PROpened
	case "reopened":
		action = forgelink.PRReopened
	case "synchronize":
		action = forgelink.PRSynchronize
	case "edited":
		action = forgelink.PREdited
	case "closed":
		action = forgelink.PRClosed
		if pr.Merged {
			action = forgelink.PRMerged
		}
	case "":
		return nil, forgelink.Errorf(forgelink.Invalid, "github: pull_request payload has no action")
	default:
		return nil, nil
	}
	if pr.Head == nil || pr.Head.Ref == "" || pr.Head.SHA == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: pull_request payload has no head ref and sha")
	}
	if pr.Base == nil || pr.Base.Ref == "" {
		return nil, forgelink.Errorf(forgelink.Invalid, "github: pull_request payload has no base ref")
	}
	var headRepo, baseRepo string
	if pr.Head.Repo != nil {
		headRepo = pr.Head.Repo.FullName
	}
	if pr.Base.Repo != nil {
		baseRepo = pr.Base.Repo.FullName
	}
	if baseRepo == "" && p.Repository != nil {
		baseRepo = p.Repository.FullName
	}
	e := forgelink.Event{
		Type:     forgelink.PullRequest,
		Branch:   pr.Head.Ref,
		Revision: pr.Head.SHA,
		PR: &forgelink.PR{
			Number:     number,
			Action:     action,
			BaseBranch: pr.Base.Ref,
			HeadRepo:   headRepo,
			// Owner and repository names are case-insensitive on GitHub. A
			// head repository that is gone (null) is a deleted fork.
			Fork: headRepo == "" || !strings.EqualFold(headRepo, baseRepo),
		},
	}
	if action == forgelink.PRSynchronize {
		e.Before = whSHA(p.Before)
	}
	if p.Sender != nil {
		e.Actor = p.Sender.Login
	}
	if p.Repository != nil {
		e.DefaultBranch = p.Repository.DefaultBranch
	}
	return []forgelink.Event{e}, nil
}
