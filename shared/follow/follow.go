// Package follow installs and removes forgelink on a repository: a
// read-only deploy key and a signed webhook, recorded in the store.
//
//	svc := &follow.Service{Store: st, Sealer: sl, Forges: forges}
//	res, err := svc.Follow(ctx, slug, "octocat", "https://ci.example.com")
//
// Following is idempotent: following again re-installs whatever is missing
// on the VCS with the same key and secret, and never duplicates them.
package follow

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"forgelink/shared/forgelink"
	"forgelink/shared/sshkeys"
)

// DeployKeyTitle is the title of the deploy key forgelink installs.
const DeployKeyTitle = "forgelink"

// Purposes bound into sealed values' additional authenticated data.
const (
	PurposeDeployKey     = forgelink.PurposeDeployKey
	PurposeWebhookSecret = forgelink.PurposeWebhookSecret
)

// Forges returns the Forge for a VCS, authenticated as the acting user.
type Forges = forgelink.Forges

// Service follows and unfollows projects.
type Service struct {
	Store  forgelink.Store
	Sealer forgelink.Sealer
	Forges Forges
	// BeforeUnfollow, if set, runs first on unfollow, e.g. to remove the
	// checkout and SSH keys added through the keys API. An error stops the
	// unfollow with nothing else removed.
	BeforeUnfollow func(ctx context.Context, slug forgelink.Slug) error
	Now            func() time.Time
	Log            *slog.Logger
}

// Result is the outcome of a Follow.
type Result struct {
	Project *forgelink.Project
	// Created is true when this call created the project.
	Created bool
	// HookURL is the webhook URL installed on the repository.
	HookURL string
}

// HookURL returns the webhook URL for a project's hook id.
func HookURL(publicURL string, vcs forgelink.VCS, hookID string) string {
	return strings.TrimRight(publicURL, "/") + "/hooks/" + string(vcs) + "/" + hookID
}

// Follow installs the deploy key and the webhook on slug's repository and
// records the project. publicURL is the base of the installed webhook URL. A failure on the VCS after this call created the
// project rolls back what it added; if the rollback itself fails the
// project stays Pending and the next Follow finishes it.
func (s *Service) Follow(ctx context.Context, slug forgelink.Slug, user, publicURL string) (*Result, error) {
	forge, err := s.Forges(ctx, slug.VCS)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", slug, err)
	}
	repo, err := forge.Repository(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", slug, vcsError(slug, "read the repository", err))
	}

	p, created, err := s.loadOrCreate(ctx, slug, user)
	if err != nil {
		return nil, fmt.Errorf("follow %s: %w", slug, err)
	}
	if p.DeployKey.PublicKey == "" {
		// The project's deploy key was deleted through the checkout-key
		// API; following again installs a new one.
		if p.DeployKey, err = s.newDeployKey(ctx, slug); err != nil {
			return nil, fmt.Errorf("follow %s: %w", slug, err)
		}
		p.DeployKeyVCSID = ""
	}
	log := s.log().With("project", slug.String(), "hook_id", p.HookID)

	hookURL := HookURL(publicURL, slug.VCS, p.HookID)
	keyID, hookID, err := s.install(ctx, forge, p, hookURL)
	if err != nil {
		if created {
			s.rollback(ctx, forge, p, keyID, log)
		}
		return nil, fmt.Errorf("follow %s: %w", slug, err)
	}

	p.State = forgelink.Following
	// Whoever follows (again) takes the project over: background work acts
	// with this user's token from now on.
	p.FollowedBy, p.FollowerID = user, forgelink.ActorFrom(ctx)
	p.DeployKeyVCSID = keyID
	p.WebhookVCSID = hookID
	p.HookURL = hookURL
	p.DefaultBranch = repo.DefaultBranch
	p.Private = repo.Private
	p.UpdatedAt = s.now()
	if err := s.Store.UpdateProject(ctx, p); err != nil {
		return nil, fmt.Errorf("follow %s: record installed key and hook: %w", slug, err)
	}
	log.InfoContext(ctx, "followed", "created", created, "deploy_key_id", keyID, "webhook_id", hookID)
	return &Result{Project: p, Created: created, HookURL: hookURL}, nil
}

// loadOrCreate returns the stored project, creating a Pending one with a new
// deploy key, webhook secret and hook id when there is none.
func (s *Service) loadOrCreate(ctx context.Context, slug forgelink.Slug, user string) (*forgelink.Project, bool, error) {
	p, err := s.Store.GetProject(ctx, slug)
	if err == nil {
		return p, false, nil
	}
	if forgelink.KindOf(err) != forgelink.NotFound {
		return nil, false, err
	}
	p, err = s.newProject(ctx, slug, user)
	if err != nil {
		return nil, false, err
	}
	err = s.Store.CreateProject(ctx, p)
	if forgelink.KindOf(err) == forgelink.Conflict {
		// Another follow of the same repository won the race; finish its project.
		p, err = s.Store.GetProject(ctx, slug)
		return p, false, err
	}
	if err != nil {
		return nil, false, err
	}
	return p, true, nil
}

func (s *Service) newProject(ctx context.Context, slug forgelink.Slug, user string) (*forgelink.Project, error) {
	now := s.now()
	key, err := s.newDeployKey(ctx, slug)
	if err != nil {
		return nil, err
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	sealedSecret, err := s.Sealer.Seal(ctx, []byte(secret), slug.AAD(PurposeWebhookSecret))
	if err != nil {
		return nil, fmt.Errorf("seal webhook secret: %w", err)
	}
	hookID, err := NewHookID()
	if err != nil {
		return nil, err
	}
	return &forgelink.Project{
		Slug:       slug,
		State:      forgelink.Pending,
		HookID:     hookID,
		FollowedBy: user,
		DeployKey:  key,
		Secrets:    []forgelink.WebhookSecret{{Sealed: sealedSecret}},
		Settings:   forgelink.DefaultSettings(),
		CreatedAt:  now,
		UpdatedAt:  now,
	}, nil
}

// newDeployKey generates an ed25519 deploy key and seals its private half.
func (s *Service) newDeployKey(ctx context.Context, slug forgelink.Slug) (forgelink.SSHKey, error) {
	key, err := sshkeys.Generate(sshkeys.ED25519, rand.Reader)
	if err != nil {
		return forgelink.SSHKey{}, fmt.Errorf("generate deploy key: %w", err)
	}
	sealed, err := s.Sealer.Seal(ctx, key.PrivatePEM, slug.AAD(PurposeDeployKey))
	if err != nil {
		return forgelink.SSHKey{}, fmt.Errorf("seal deploy key: %w", err)
	}
	return forgelink.SSHKey{
		PublicKey:         key.AuthorizedKey,
		FingerprintMD5:    key.FingerprintMD5,
		FingerprintSHA256: key.FingerprintSHA256,
		SealedPrivateKey:  sealed,
		CreatedAt:         s.now(),
	}, nil
}

// install ensures the deploy key and then the hook. It returns the key id
// even when installing the hook fails, so a rollback can remove it.
func (s *Service) install(ctx context.Context, forge forgelink.Forge, p *forgelink.Project, hookURL string) (keyID, hookID string, err error) {
	keyID, err = forge.EnsureDeployKey(ctx, p.Slug, DeployKeyTitle, p.DeployKey.PublicKey)
	if err != nil {
		return "", "", vcsError(p.Slug, "add the deploy key", err)
	}
	secret, err := s.currentSecret(ctx, p)
	if err != nil {
		return keyID, "", err
	}
	hookID, err = forge.EnsureHook(ctx, p.Slug, forgelink.HookSpec{URL: hookURL, Secret: secret})
	if err != nil {
		return keyID, "", vcsError(p.Slug, "add the webhook", err)
	}
	return keyID, hookID, nil
}

func (s *Service) currentSecret(ctx context.Context, p *forgelink.Project) (string, error) {
	if len(p.Secrets) == 0 {
		return "", forgelink.Errorf(forgelink.Internal, "project %s has no webhook secret", p.Slug)
	}
	b, err := s.Sealer.Open(ctx, p.Secrets[0].Sealed, p.Slug.AAD(PurposeWebhookSecret))
	if err != nil {
		return "", fmt.Errorf("open webhook secret: %w", err)
	}
	return string(b), nil
}

// Repair reinstalls what is missing of a followed project on its
// repository - the deploy key from its stored public key, the webhook with
// the project's current secret at its URL (p.HookURL, else publicURL's) -
// without duplicating what is there, and records the VCS ids. It returns
// the project as stored.
func (s *Service) Repair(ctx context.Context, slug forgelink.Slug, publicURL string) (*forgelink.Project, error) {
	for attempt := 1; ; attempt++ {
		p, err := s.Store.GetProject(ctx, slug)
		if err != nil {
			return nil, fmt.Errorf("repair %s: %w", slug, err)
		}
		// Background work acts with the follower's token.
		forge, err := s.Forges(forgelink.WithActor(ctx, p.FollowerID), slug.VCS)
		if err != nil {
			return nil, fmt.Errorf("repair %s: %w", slug, err)
		}
		hookURL := p.HookURL
		if hookURL == "" {
			if publicURL == "" {
				return nil, forgelink.Errorf(forgelink.Invalid, "repair %s: the hook URL is unknown: set FORGELINK_PUBLIC_URL or follow the project again", slug)
			}
			hookURL = HookURL(publicURL, slug.VCS, p.HookID)
		}
		keyID, hookID, err := s.install(ctx, forge, p, hookURL)
		if err != nil {
			return nil, fmt.Errorf("repair %s: %w", slug, err)
		}
		p.DeployKeyVCSID, p.WebhookVCSID, p.HookURL, p.UpdatedAt = keyID, hookID, hookURL, s.now()
		err = s.Store.UpdateProject(ctx, p)
		if err == nil {
			s.log().InfoContext(ctx, "repaired", "project", slug.String(), "deploy_key_id", keyID, "webhook_id", hookID)
			return p, nil
		}
		if forgelink.KindOf(err) != forgelink.Conflict || attempt == 3 {
			return nil, fmt.Errorf("repair %s: record installed key and hook: %w", slug, err)
		}
	}
}

// rollback undoes a first follow that failed halfway. When it cannot remove
// the deploy key it keeps the Pending project, whose key the next follow
// finds and reuses.
func (s *Service) rollback(ctx context.Context, forge forgelink.Forge, p *forgelink.Project, keyID string, log *slog.Logger) {
	// The caller's context may be what failed; the rollback gets its own.
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if keyID != "" {
		if err := forge.DeleteDeployKey(ctx, p.Slug, keyID); err != nil {
			log.WarnContext(ctx, "rollback: deploy key stays; the next follow reuses it", "err", err)
			return
		}
	}
	if err := s.Store.DeleteProject(ctx, p.Slug); err != nil {
		log.WarnContext(ctx, "rollback: pending project stays; the next follow finishes it", "err", err)
		return
	}
	log.InfoContext(ctx, "rolled back a follow that failed halfway")
}

// Unfollow removes the webhook and the deploy key from the repository and
// then the project. If the VCS refuses, the project stays followed and the
// error says why; unfollowing again retries.
func (s *Service) Unfollow(ctx context.Context, slug forgelink.Slug) error {
	p, err := s.Store.GetProject(ctx, slug)
	if err != nil {
		return fmt.Errorf("unfollow %s: %w", slug, err)
	}
	forge, err := s.Forges(ctx, slug.VCS)
	if err != nil {
		return fmt.Errorf("unfollow %s: %w", slug, err)
	}
	if s.BeforeUnfollow != nil {
		if err := s.BeforeUnfollow(ctx, slug); err != nil {
			return fmt.Errorf("unfollow %s: %w", slug, err)
		}
		// It may have removed the project's own deploy key: reload.
		if p, err = s.Store.GetProject(ctx, slug); err != nil {
			return fmt.Errorf("unfollow %s: %w", slug, err)
		}
	}
	if p.WebhookVCSID != "" {
		if err := forge.DeleteHook(ctx, slug, p.WebhookVCSID); err != nil {
			return fmt.Errorf("unfollow %s: %w", slug, vcsError(slug, "remove the webhook", err))
		}
	}
	if p.DeployKeyVCSID != "" {
		if err := forge.DeleteDeployKey(ctx, slug, p.DeployKeyVCSID); err != nil {
			return fmt.Errorf("unfollow %s: %w", slug, vcsError(slug, "remove the deploy key", err))
		}
	}
	if err := s.Store.DeleteProject(ctx, slug); err != nil {
		return fmt.Errorf("unfollow %s: %w", slug, err)
	}
	s.log().InfoContext(ctx, "unfollowed", "project", slug.String())
	return nil
}

// vcsError is forgelink.ForgeError with the repository named, and a hint
// about admin rights when the VCS refuses.
func vcsError(slug forgelink.Slug, doing string, err error) error {
	err = forgelink.ForgeError(slug.VCS, doing+" of "+slug.FullName(), err)
	if forgelink.KindOf(err) == forgelink.Forbidden && !strings.Contains(forgelink.MessageOf(err), "token") {
		return forgelink.E(forgelink.Forbidden, forgelink.MessageOf(err)+" (you need admin rights on the repository)", err)
	}
	return err
}

// NewSecret returns a random webhook secret: 32 bytes, hex-encoded.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate webhook secret: %w", err)
	}
	return hex.EncodeToString(b), nil
}

// NewHookID returns a random, URL-safe, opaque hook id.
func NewHookID() (string, error) {
	b := make([]byte, 18)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate hook id: %w", err)
	}
	return "hk_" + base64.RawURLEncoding.EncodeToString(b), nil
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

// RotationGrace is how long the previous webhook secret stays valid after
// a rotation, so deliveries signed before the hook changed still verify.
const RotationGrace = 24 * time.Hour

// RotateSecret gives the project a new webhook secret and installs it on
// the hook. The new secret is stored first, alongside the old one (valid
// for RotationGrace), so no delivery fails verification while the hook
// changes; if the VCS refuses the change, the new secret is removed again.
func (s *Service) RotateSecret(ctx context.Context, slug forgelink.Slug, publicURL string) (*forgelink.Project, error) {
	p, err := s.Store.GetProject(ctx, slug)
	if err != nil {
		return nil, fmt.Errorf("rotate secret of %s: %w", slug, err)
	}
	if p.State != forgelink.Following {
		return nil, forgelink.Errorf(forgelink.Conflict, "project %s is not fully followed yet; follow it again first", slug)
	}
	forge, err := s.Forges(ctx, slug.VCS)
	if err != nil {
		return nil, fmt.Errorf("rotate secret of %s: %w", slug, err)
	}
	secret, err := NewSecret()
	if err != nil {
		return nil, err
	}
	sealed, err := s.Sealer.Seal(ctx, []byte(secret), slug.AAD(PurposeWebhookSecret))
	if err != nil {
		return nil, fmt.Errorf("rotate secret of %s: seal: %w", slug, err)
	}
	now := s.now()
	previous := p.Secrets
	p.Secrets = []forgelink.WebhookSecret{{Sealed: sealed}}
	if len(previous) > 0 {
		old := previous[0]
		old.ExpiresAt = now.Add(RotationGrace)
		p.Secrets = append(p.Secrets, old)
	}
	p.UpdatedAt = now
	if err := s.Store.UpdateProject(ctx, p); err != nil {
		return nil, fmt.Errorf("rotate secret of %s: %w", slug, err)
	}
	hookID, err := forge.EnsureHook(ctx, slug, forgelink.HookSpec{URL: HookURL(publicURL, slug.VCS, p.HookID), Secret: secret})
	if err != nil {
		p.Secrets = previous
		if rerr := s.Store.UpdateProject(context.WithoutCancel(ctx), p); rerr != nil {
			s.log().WarnContext(ctx, "rotate: could not drop the unused new secret; it expires with the next rotation", "project", slug.String(), "err", rerr)
		}
		return nil, fmt.Errorf("rotate secret of %s: %w", slug, vcsError(slug, "update the webhook", err))
	}
	if hookID != p.WebhookVCSID || p.HookURL == "" {
		p.WebhookVCSID, p.HookURL = hookID, HookURL(publicURL, slug.VCS, p.HookID)
		if err := s.Store.UpdateProject(ctx, p); err != nil {
			return nil, fmt.Errorf("rotate secret of %s: %w", slug, err)
		}
	}
	s.log().InfoContext(ctx, "webhook secret rotated", "project", slug.String(), "previous_valid_until", now.Add(RotationGrace))
	return p, nil
}
