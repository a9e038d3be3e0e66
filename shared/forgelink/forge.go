package forgelink

import "context"

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
