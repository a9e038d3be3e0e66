package forgelink

import "context"

// RepoReader is what the trigger function reads from a VCS.
type RepoReader interface {
	// File returns the content of path at ref (a commit sha or branch) and a
	// cache key for it: the git blob sha where the VCS gives one, otherwise
	// "sha256:<hex of content>". NotFound when the file or ref does not exist.
	File(ctx context.Context, slug Slug, path, ref string) (content []byte, key string, err error)
	// OpenPullRequests returns the numbers of the open pull requests whose
	// head is branch in the repository itself.
	OpenPullRequests(ctx context.Context, slug Slug, branch string) ([]int, error)
}

// AccountKeys adds SSH keys to the authenticated user's account (GitHub
// user keys) and tells who that user is.
type AccountKeys interface {
	// Me returns the authenticated user's login and primary verified email ("" if not visible).
	Me(ctx context.Context) (login, email string, err error)
	// AddUserKey adds publicKey to the user's account and returns its id.
	AddUserKey(ctx context.Context, title, publicKey string) (id string, err error)
	// DeleteUserKey removes it; a key already gone is not an error.
	DeleteUserKey(ctx context.Context, id string) error
	// RepoAdmin reports whether the user has admin rights on the repository.
	RepoAdmin(ctx context.Context, slug Slug) (bool, error)
}

// RevisionResolver expands an abbreviated commit hash to the full one.
// Bitbucket's pull-request payloads carry 12-character hashes where its
// push payloads carry 40; the trigger function expands them so a push and
// a pull-request update of one commit make one pipeline.
type RevisionResolver interface {
	// FullRevision returns the full hash of the commit rev abbreviates
	// (rev itself when it is already full). NotFound for an unknown commit.
	FullRevision(ctx context.Context, slug Slug, rev string) (string, error)
}
