package forgelink

import (
	"context"
	"fmt"
)

// Repository is what forgelink needs to know about a VCS repository.
type Repository struct {
	FullName      string
	DefaultBranch string
	Private       bool
	// Admin reports whether the authenticated user may add keys and hooks.
	Admin bool
}

// HookSpec describes the webhook forgelink installs on a followed repository.
type HookSpec struct {
	URL    string
	Secret string
}

// Forges returns the Forge for a VCS, authenticated as the acting user.
type Forges func(ctx context.Context, vcs VCS) (Forge, error)

// Forge is the part of a VCS API that following uses. Implementations
// attach error kinds: NotFound for a missing repository, key or hook,
// Unauthorized for a bad token, Forbidden for missing rights, Transient for
// 5xx and rate limits, Upstream for other refusals.
type Forge interface {
	// Repository returns the repository, or NotFound.
	Repository(ctx context.Context, slug Slug) (*Repository, error)
	// EnsureDeployKey makes sure the public key is installed read-only and
	// returns its VCS id. It adds nothing when the key is already there.
	EnsureDeployKey(ctx context.Context, slug Slug, title, publicKey string) (id string, err error)
	// DeleteDeployKey removes a deploy key; a key already gone is not an error.
	DeleteDeployKey(ctx context.Context, slug Slug, id string) error
	// EnsureHook makes sure exactly one hook posts to spec.URL with
	// spec.Secret and forgelink's events, and returns its VCS id. An
	// existing hook with that URL is updated, never duplicated.
	EnsureHook(ctx context.Context, slug Slug, spec HookSpec) (id string, err error)
	// DeleteHook removes a hook; a hook already gone is not an error.
	DeleteHook(ctx context.Context, slug Slug, id string) error
}

// ForgeError gives a Forge error a client-safe message that says what
// forgelink was doing ("add the deploy key to o/r"), keeping the VCS's own
// message where it tells the user what to do (a missing token scope). The
// VCS rejecting the user's token is not the caller failing to authenticate
// to forgelink, so Unauthorized becomes Forbidden; a request the VCS found
// Invalid is an Upstream refusal to forgelink's caller.
func ForgeError(vcs VCS, doing string, err error) error {
	name := vcs.Name()
	kind, msg := KindOf(err), MessageOf(err)
	switch kind {
	case Unauthorized:
		return E(Forbidden, fmt.Sprintf("%s rejected the token while trying to %s; sign in again or set a valid token", name, doing), err)
	case Forbidden:
		if msg == "" {
			msg = "permission denied"
		}
		return E(Forbidden, fmt.Sprintf("%s refused to %s: %s", name, doing, msg), err)
	case NotFound:
		return E(NotFound, fmt.Sprintf("%s could not %s: not found, or the token cannot see it", name, doing), err)
	case Transient:
		return E(Transient, fmt.Sprintf("%s is unavailable or rate limiting while trying to %s; try again", name, doing), err)
	case Conflict, Upstream, Invalid:
		if msg == "" {
			msg = "request refused"
		}
		if kind == Invalid {
			kind = Upstream
		}
		return E(kind, fmt.Sprintf("%s refused to %s: %s", name, doing, msg), err)
	}
	return err
}
