package forgelink

import (
	"context"
	"encoding/json"
	"strings"
	"time"
)

// AccessState is the health of a followed project's access to its
// repository, or of an organization's (the worst of its projects').
type AccessState string

// The access states, from best to worst for an organization's summary.
const (
	AccessOK AccessState = "ok"
	// AccessDeliveriesFailing: the hook's recent deliveries failed; they
	// were redelivered (GitHub) or recorded (Bitbucket).
	AccessDeliveriesFailing AccessState = "deliveries_failing"
	// AccessDeployKeyMissing: the deploy key was deleted; re-added.
	AccessDeployKeyMissing AccessState = "deploy_key_missing"
	// AccessHookInactive: the hook was deactivated; reactivated.
	AccessHookInactive AccessState = "hook_inactive"
	// AccessHookMissing: the hook was deleted; reinstalled.
	AccessHookMissing AccessState = "hook_missing"
	// AccessRepoMissing: 404 - renamed, deleted, or access lost.
	AccessRepoMissing AccessState = "repo_missing"
	// AccessRestricted: the organization's OAuth App access restrictions
	// refuse forgelink's token.
	AccessRestricted AccessState = "restricted"
	// AccessTokenRevoked: 401 - the follower must sign in again.
	AccessTokenRevoked AccessState = "token_revoked"
)

// accessOrder ranks states for Worse.
var accessOrder = map[AccessState]int{
	AccessOK: 0, AccessDeliveriesFailing: 1, AccessDeployKeyMissing: 2, AccessHookInactive: 3,
	AccessHookMissing: 4, AccessRepoMissing: 5, AccessRestricted: 6, AccessTokenRevoked: 7,
}

// Worse returns the worse of a and b ("" counts as ok).
func Worse(a, b AccessState) AccessState {
	if accessOrder[b] > accessOrder[a] || a == "" {
		return b
	}
	return a
}

// Repaired reports whether forgelink repairs state by itself (the hook,
// the deploy key, failed deliveries): what is left for the user is none.
func (s AccessState) Repaired() bool {
	switch s {
	case AccessHookMissing, AccessHookInactive, AccessDeployKeyMissing, AccessDeliveriesFailing:
		return true
	}
	return false
}

// oauthRestriction is what GitHub's 403 says when an organization's OAuth
// App access restrictions refuse the token.
const oauthRestriction = "OAuth App access restrictions"

// IsOAuthRestricted reports whether err is GitHub refusing the token
// because of the organization's OAuth App access restrictions.
func IsOAuthRestricted(err error) bool {
	return KindOf(err) == Forbidden && strings.Contains(MessageOf(err), oauthRestriction)
}

// maxEventName bounds a webhook event name forgelink accepts.
const maxEventName = 64

// IgnoredEvent checks a delivery of an event forgelink does not act on: a
// hook set to send everything delivers dozens of them, and each must be
// answered 2xx so the VCS does not list it as a failed delivery - provided
// its name is a plausible event name and its body is JSON. vcs names the
// VCS in the Invalid error.
func IgnoredEvent(vcs, event string, body []byte) error {
	if len(event) > maxEventName || strings.IndexFunc(event, func(r rune) bool {
		return !('a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '_' || r == ':' || r == '-' || r == '.')
	}) >= 0 {
		return Errorf(Invalid, "%s: invalid event name %q", vcs, event)
	}
	if !json.Valid(body) {
		return Errorf(Invalid, "%s: malformed JSON in %s payload", vcs, event)
	}
	return nil
}

// AccessStateOf classifies a VCS refusal: Unauthorized is a revoked token,
// an OAuth App restriction is restricted, NotFound a missing repository.
// ok is false for anything else (a transient failure says nothing).
func AccessStateOf(err error) (AccessState, bool) {
	switch {
	case err == nil:
		return AccessOK, true
	case KindOf(err) == Unauthorized:
		return AccessTokenRevoked, true
	case IsOAuthRestricted(err):
		return AccessRestricted, true
	case KindOf(err) == NotFound:
		return AccessRepoMissing, true
	}
	return "", false
}

// AccessObserver learns of a VCS refusal met while acting for a project
// (orgaccess.Service.Observe), so the org-access state changes at once
// rather than at the next sweep.
type AccessObserver interface {
	Observe(ctx context.Context, slug Slug, cause error)
}

// ProjectAccess is what the org-access sweep last found for a project.
type ProjectAccess struct {
	State AccessState `json:"state"`
	// Since is when State began; CheckedAt when it was last confirmed.
	Since     time.Time `json:"since"`
	CheckedAt time.Time `json:"checked_at"`
	// Detail says what was found ("GitHub: ... OAuth App access
	// restrictions ..."), Repairs what forgelink did about it.
	Detail  string   `json:"detail,omitempty"`
	Repairs []string `json:"repairs,omitempty"`
	// OrgRole is the follower's role in the organization ("admin",
	// "member"), read when access is restricted.
	OrgRole string `json:"org_role,omitempty"`
	// ETags of the sweep's conditional reads, by what was read.
	ETags map[string]string `json:"etags,omitempty"`
	// DeliveriesCheckedAt is the newest hook delivery time the sweep has
	// looked at: failures after it are new.
	DeliveriesCheckedAt time.Time `json:"deliveries_checked_at,omitzero"`
	// DeliveriesAtCheck holds the ids of the deliveries at
	// DeliveriesCheckedAt that the sweep has looked at: GitHub's times
	// have whole seconds, so a delivery in that same second may come
	// after the sweep read the list.
	DeliveriesAtCheck []string `json:"deliveries_at_check,omitempty"`
}

// Probe is the outcome of one conditional read.
type Probe struct {
	// ETag is the answer's ETag ("" when none).
	ETag string
	// NotModified is a 304: nothing changed since the ETag sent. It costs
	// no rate limit on GitHub.
	NotModified bool
}

// HookInfo is what the sweep reads of an installed hook.
type HookInfo struct {
	Probe
	Active bool
}

// HookDelivery is one delivery in a hook's recent deliveries.
type HookDelivery struct {
	// ID is the VCS's id of the delivery attempt (for redelivery).
	ID string
	// GUID is the delivery id forgelink saw (X-GitHub-Delivery).
	GUID        string
	Event       string
	DeliveredAt time.Time
	// StatusCode is what forgelink answered; 0 when GitHub could not
	// connect.
	StatusCode int
	// Redelivery marks an attempt that was itself a redelivery.
	Redelivery bool
}

// Failed reports whether the delivery did not reach forgelink or was
// refused: no answer, or an answer other than 2xx.
func (d HookDelivery) Failed() bool { return d.StatusCode < 200 || d.StatusCode > 299 }

// AccessChecker is the part of a VCS API the org-access sweep uses.
// Reads take the ETag of the previous answer ("" reads unconditionally)
// and answer NotModified for a 304. Errors carry kinds as a Forge's do.
type AccessChecker interface {
	// CheckRepository reads the repository: Unauthorized, Forbidden (an
	// OAuth App restriction: IsOAuthRestricted) or NotFound when access
	// is lost.
	CheckRepository(ctx context.Context, slug Slug, etag string) (Probe, error)
	// CheckHook reads the installed hook: NotFound when it was deleted.
	CheckHook(ctx context.Context, slug Slug, hookID, etag string) (HookInfo, error)
	// ActivateHook turns a deactivated hook on again.
	ActivateHook(ctx context.Context, slug Slug, hookID string) error
	// CheckDeployKey reads the installed deploy key: NotFound when it was
	// deleted.
	CheckDeployKey(ctx context.Context, slug Slug, keyID, etag string) (Probe, error)
	// RecentDeliveries returns the hook's deliveries at or after since, newest
	// first, following the pagination cursor until it passes since. etag
	// applies to the first page; NotModified returns none. A VCS without
	// the API returns Invalid.
	RecentDeliveries(ctx context.Context, slug Slug, hookID string, since time.Time, etag string) ([]HookDelivery, Probe, error)
	// Redeliver asks the VCS to send delivery id again. A VCS without the
	// API returns Invalid.
	Redeliver(ctx context.Context, slug Slug, hookID, id string) error
	// OrgRole returns the token's user's role in org: "admin" or
	// "member".
	OrgRole(ctx context.Context, org string) (string, error)
	// RateLimit returns the rate-limited requests left and when the limit
	// resets, from the latest answer; remaining is -1 when unknown.
	RateLimit() (remaining int, reset time.Time)
}
