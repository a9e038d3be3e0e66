package forgelink

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"
)

// VCS names a version-control service.
type VCS string

// The supported VCSs. The values are CircleCI's long names.
const (
	GitHub    VCS = "github"
	Bitbucket VCS = "bitbucket"
)

// ParseVCS accepts CircleCI's long and short VCS names ("github", "gh",
// "bitbucket", "bb").
func ParseVCS(s string) (VCS, error) {
	switch strings.ToLower(s) {
	case "github", "gh":
		return GitHub, nil
	case "bitbucket", "bb":
		return Bitbucket, nil
	}
	return "", Errorf(Invalid, "unknown vcs %q: want github, gh, bitbucket or bb", s)
}

// Short returns the v2 slug prefix: "gh" or "bb".
func (v VCS) Short() string {
	if v == Bitbucket {
		return "bb"
	}
	return "gh"
}

// Name returns the VCS's product name, for messages: "GitHub" or "Bitbucket".
func (v VCS) Name() string {
	if v == Bitbucket {
		return "Bitbucket"
	}
	return "GitHub"
}

// Slug identifies a repository on a VCS: gh/ORG/REPO or bb/WORKSPACE/REPO.
type Slug struct {
	VCS  VCS
	Org  string
	Repo string
}

// NewSlug validates and returns the slug for vcs/org/repo.
func NewSlug(vcs, org, repo string) (Slug, error) {
	v, err := ParseVCS(vcs)
	if err != nil {
		return Slug{}, err
	}
	if !validName(org) || !validName(repo) {
		return Slug{}, Errorf(Invalid, "invalid repository %q/%q: names are 1-100 letters, digits, '-', '_' or '.'", org, repo)
	}
	return Slug{VCS: v, Org: org, Repo: repo}, nil
}

// ParseSlug parses a v2 project slug such as "gh/octo-org/hello-world".
func ParseSlug(s string) (Slug, error) {
	parts := strings.Split(s, "/")
	if len(parts) != 3 {
		return Slug{}, Errorf(Invalid, "invalid project slug %q: want vcs/org/repo", s)
	}
	return NewSlug(parts[0], parts[1], parts[2])
}

// validName reports whether s may be a GitHub owner or repository name or a
// Bitbucket workspace or repository slug. The set is deliberately the
// intersection of what both accept, and excludes path tricks like "..".
func validName(s string) bool {
	if len(s) == 0 || len(s) > 100 || s == "." || s == ".." {
		return false
	}
	for _, r := range s {
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', r == '-', r == '_', r == '.':
		default:
			return false
		}
	}
	return true
}

// String returns the v2 slug, e.g. "gh/octo-org/hello-world".
func (s Slug) String() string { return s.VCS.Short() + "/" + s.Org + "/" + s.Repo }

// FullName returns "org/repo" as the VCS writes it.
func (s Slug) FullName() string { return s.Org + "/" + s.Repo }

// ProjectState says how far following a project has got.
type ProjectState string

// Project states. A project is Pending from the moment its keys are stored
// until both the deploy key and the hook are installed; a later follow
// finishes a pending project with the same key and secret.
const (
	Pending   ProjectState = "pending"
	Following ProjectState = "following"
)

// Project is a followed repository.
type Project struct {
	Slug  Slug
	State ProjectState
	// HookID is the opaque id in the installed webhook URL
	// (/hooks/github/{HookID}); it selects the secret before the body is read.
	HookID        string
	DefaultBranch string
	Private       bool
	// FollowedBy is the login of the user who followed the project, and
	// FollowerID that user's id ("" for local mode's environment user):
	// background work for the project acts with the follower's token.
	FollowedBy string
	FollowerID string `json:",omitempty"`

	// DeployKey is the project's read-only checkout key.
	DeployKey SSHKey
	// DeployKeyVCSID is the VCS's id for the installed deploy key ("" until installed).
	DeployKeyVCSID string
	// WebhookVCSID is the VCS's id for the installed hook ("" until installed).
	WebhookVCSID string
	// HookURL is the URL the installed hook posts to, kept so a repair can
	// reinstall it where no public URL is configured (AWS). "" for
	// projects followed before it was kept.
	HookURL string `json:",omitempty"`
	// Secrets holds the webhook secrets, newest first, sealed. A second
	// secret exists only during a rotation's grace period.
	Secrets []WebhookSecret

	Settings Settings

	// VCSProblem is the last refusal the VCS gave the follower's token
	// while forgelink acted on its own (posting a commit status), for the
	// org-access check to report; nil when there was none.
	VCSProblem *VCSProblem `json:",omitempty"`
	// Access is what the org-access sweep (or a caller that met a
	// refusal) last found; nil before the first check.
	Access *ProjectAccess `json:",omitempty"`

	CreatedAt time.Time
	UpdatedAt time.Time
	// Version increases by one on every update; stores use it for
	// optimistic concurrency (an update with a stale Version is a Conflict).
	Version int64
}

// Clone returns a deep copy of p: the copy shares no slice, map or
// pointer with p, and keeps nil where p has nil (TestProjectClone walks
// every field, so a new reference field that Clone misses fails it).
func (p *Project) Clone() *Project {
	c := *p
	c.DeployKey.SealedPrivateKey = slices.Clone(p.DeployKey.SealedPrivateKey)
	if p.Secrets != nil {
		c.Secrets = make([]WebhookSecret, len(p.Secrets))
		for i, s := range p.Secrets {
			c.Secrets[i] = WebhookSecret{Sealed: slices.Clone(s.Sealed), ExpiresAt: s.ExpiresAt}
		}
	}
	c.Settings.AlwaysBuildBranches = slices.Clone(p.Settings.AlwaysBuildBranches)
	if p.VCSProblem != nil {
		v := *p.VCSProblem
		c.VCSProblem = &v
	}
	if p.Access != nil {
		a := *p.Access
		a.Repairs = slices.Clone(a.Repairs)
		a.ETags = maps.Clone(a.ETags)
		a.DeliveriesAtCheck = slices.Clone(a.DeliveriesAtCheck)
		c.Access = &a
	}
	return &c
}

// SSHKey is a key pair whose private half is stored sealed.
type SSHKey struct {
	PublicKey         string // authorized_keys format
	FingerprintMD5    string // "aa:bb:..." as ssh-keygen -E md5 prints it, without "MD5:"
	FingerprintSHA256 string // "SHA256:..."
	SealedPrivateKey  []byte // Sealer output; AAD is the record id
	CreatedAt         time.Time
}

// WebhookSecret is one sealed webhook secret.
type WebhookSecret struct {
	Sealed []byte
	// ExpiresAt is zero for the current secret and the end of the grace
	// period for a secret being rotated out.
	ExpiresAt time.Time
}

// Settings are a project's advanced settings, with CircleCI's names.
type Settings struct {
	BuildPRsOnly              bool     `json:"build_prs_only"`
	BuildForkPRs              bool     `json:"build_fork_prs"`
	ForksReceiveSecretEnvVars bool     `json:"forks_receive_secret_env_vars"`
	SetGitHubStatus           bool     `json:"set_github_status"`
	AlwaysBuildBranches       []string `json:"pr_only_branch_overrides,omitempty"` // CircleCI's name for branches built without a PR
}

// DefaultSettings are the settings of a newly followed project.
func DefaultSettings() Settings {
	return Settings{SetGitHubStatus: true}
}

// Purposes bound into sealed values' additional authenticated data.
const (
	PurposeDeployKey     = "deploy-key"
	PurposeWebhookSecret = "webhook-secret"
)

// AAD returns the additional authenticated data binding a sealed value to
// this project and to its purpose, so a ciphertext cannot be moved to
// another record or field.
func (s Slug) AAD(purpose string) []byte {
	return []byte(fmt.Sprintf("forgelink/project/%s/%s", s, purpose))
}

// VCSProblem is a refusal by the VCS that a retry will not fix: a revoked
// token (401), an organization's OAuth App access restrictions or missing
// rights (403), a repository gone (404), a request it rejected (422).
type VCSProblem struct {
	At time.Time
	// Kind is the error kind's name ("unauthorized", "forbidden", ...).
	Kind string
	// Doing says what forgelink was doing, e.g. "post status ci/forgelink: build".
	Doing   string
	Message string
}
