package vcsfake

import (
	"encoding/base64"
	"net/http"
	"slices"
	"strings"
	"time"
)

// BitbucketUserUUID and BitbucketDisplayName are the uuid and display name
// of BitbucketUsername, the user of Token.
const (
	BitbucketUserUUID    = "{00000000-0000-4000-8000-000000000001}"
	BitbucketDisplayName = "Octo Cat"
)

// BitbucketDefaultScopes are the scopes of the Bitbucket fake's tokens and
// OAuth consumers until SetScopes or SetConsumerScopes changes them: all
// that forgelink uses. Every API answer to a token with scopes lists them
// in X-OAuth-Scopes.
var BitbucketDefaultScopes = []string{"account", "email", "pullrequest", "repository", "repository:admin", "repository:write", "webhook"}

// bbUser is a Bitbucket account.
type bbUser struct {
	nickname    string // also the username
	uuid        string // with braces
	displayName string
	accountID   string
}

// bbToken is what a Bitbucket token the fake accepts stands for.
type bbToken struct {
	user   *bbUser
	scopes []string
	// expires is when an OAuth access token expires (zero: never);
	// expired is ExpireToken's.
	expires time.Time
	expired bool
}

// AddUser adds a Bitbucket account and returns a new access token for it,
// which does not expire, with BitbucketDefaultScopes. uuid gets braces if
// it has none. The user sees the public repositories (no permission, not
// listed as a member's) and no private one until SetPermission says
// otherwise. A nickname or uuid already taken fails the test. Emails and
// workspace memberships are the fake's one set, shared by all users.
func (b *Bitbucket) AddUser(nickname, uuid, displayName string) string {
	b.mu.Lock()
	defer b.mu.Unlock()
	uuid = "{" + strings.Trim(uuid, "{}") + "}"
	for _, u := range b.users {
		if strings.EqualFold(u.nickname, nickname) || strings.EqualFold(u.uuid, uuid) {
			b.t.Fatalf("vcsfake: Bitbucket already has a user with nickname %q or uuid %s", nickname, uuid)
		}
	}
	u := &bbUser{nickname: nickname, uuid: uuid, displayName: displayName, accountID: "557058:" + strings.Trim(uuid, "{}")}
	b.users[lower(nickname)] = u
	tok := "bbat_" + randomHex(18)
	b.tokens[tok] = &bbToken{user: u, scopes: slices.Clone(BitbucketDefaultScopes)}
	return tok
}

// SetPermission sets nickname's permission on the repository: "admin",
// "write" or "read", or "" for none, which hides the repository from the
// user (404 on every /repositories/{w}/{r}/... request, even for a public
// repository). Unless set, BitbucketUsername is an admin of every
// repository and other users see only public repositories, with no
// permission (not listed by /user/permissions/repositories or
// ?role=member). Key and hook calls of non-admins answer 403.
func (b *Bitbucket) SetPermission(fullName, nickname, permission string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch permission {
	case "admin", "write", "read", "":
	default:
		b.t.Fatalf("vcsfake: Bitbucket has no permission %q; use admin, write, read or \"\"", permission)
	}
	if b.users[lower(nickname)] == nil {
		b.t.Fatalf("vcsfake: Bitbucket has no user %q; call AddUser first", nickname)
	}
	r := b.mustRepo(fullName)
	if r.perms == nil {
		r.perms = map[string]string{}
	}
	r.perms[lower(nickname)] = permission
}

// SetScopes sets the scopes of token (any token the fake accepts), which
// every API answer to it lists in X-OAuth-Scopes; none leaves the header
// out, as for a token that is not an OAuth one. Without the email scope
// (and with some scope) /user/emails answers 403.
func (b *Bitbucket) SetScopes(token string, scopes ...string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tokens[token]
	if t == nil {
		b.t.Fatalf("vcsfake: Bitbucket has no token %q", token)
	}
	t.scopes = append([]string{}, scopes...)
}

// SetToken changes the token of BitbucketUsername the fake was created
// with (or set last) to token, keeping its scopes; the old one then gets
// 401. "user:app_password" is accepted as basic auth, anything else as
// "Authorization: Bearer". The Token field keeps the token the fake was
// created with. Tokens of AddUser and of the OAuth flow are not affected.
func (b *Bitbucket) SetToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tokens[b.core.token]
	if t == nil {
		t = &bbToken{user: b.owner, scopes: slices.Clone(BitbucketDefaultScopes)}
	}
	delete(b.tokens, b.core.token)
	b.tokens[token] = t
	b.core.token = token
}

// ExpireToken makes the access token expired, as if its two hours had
// passed: every API call with it answers 401 "Access token expired." until
// the client uses a new one (a refresh).
func (b *Bitbucket) ExpireToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	t := b.tokens[token]
	if t == nil {
		b.t.Fatalf("vcsfake: Bitbucket has no token %q", token)
	}
	t.expired = true
}

// RevokeToken makes token invalid, as a user revoking a consumer's access
// does (its refresh tokens stay valid; see RevokeRefreshToken).
func (b *Bitbucket) RevokeToken(token string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.tokens, token)
}

// caller returns what the request's credentials stand for, or nil; expired
// reports a known token past its expiry. b.mu is held.
func (b *Bitbucket) caller(r *http.Request) (who *bbToken, expired bool) {
	scheme, cred, _ := strings.Cut(r.Header.Get("Authorization"), " ")
	var key string
	switch {
	case strings.EqualFold(scheme, "bearer") && !strings.Contains(cred, ":"):
		key = cred
	case strings.EqualFold(scheme, "basic"):
		pair, err := base64.StdEncoding.DecodeString(cred)
		if err != nil || !strings.Contains(string(pair), ":") {
			return nil, false
		}
		key = string(pair)
	default:
		return nil, false
	}
	t := b.tokens[key]
	switch {
	case t == nil:
		return nil, false
	case t.expired || (!t.expires.IsZero() && !time.Now().Before(t.expires)):
		return nil, true
	}
	return t, false
}

// access returns u's permission on repo ("" for none) and whether u can
// see it at all. b.mu is held.
func (b *Bitbucket) access(repo *bbRepo, u *bbUser) (perm string, visible bool) {
	if p, ok := repo.perms[lower(u.nickname)]; ok {
		return p, p != ""
	}
	if u == b.owner {
		return "admin", true
	}
	return "", !repo.private
}

// bbUserJSON is GET /2.0/user's answer for u.
func bbUserJSON(u *bbUser) map[string]any {
	return map[string]any{
		"type": "user", "uuid": u.uuid, "username": u.nickname, "nickname": u.nickname,
		"display_name": u.displayName, "account_id": u.accountID,
		"links": map[string]any{
			"html":   map[string]string{"href": "https://bitbucket.org/" + u.uuid + "/"},
			"avatar": map[string]string{"href": "https://secure.gravatar.com/avatar/" + strings.Trim(u.uuid, "{}")},
		},
	}
}

// bbUserRef is u where another object names it.
func bbUserRef(u *bbUser) map[string]any {
	return map[string]any{
		"type": "user", "uuid": u.uuid, "nickname": u.nickname, "display_name": u.displayName, "account_id": u.accountID,
	}
}

// bbRoleRank is how much each ?role= needs, and bbPermRank how much each
// permission has.
var (
	bbRoleRank = map[string]int{"member": 1, "contributor": 2, "admin": 3}
	bbPermRank = map[string]int{"read": 1, "write": 2, "admin": 3}
)

// listRepos answers GET /2.0/repositories: with role=member, contributor
// or admin the repositories who has at least read, write or admin on;
// without a role every public repository. Sorted by full name. b.mu is
// held.
func (b *Bitbucket) listRepos(r *http.Request, who *bbToken) *response {
	role := r.URL.Query().Get("role")
	need := bbRoleRank[role]
	if role != "" && need == 0 {
		return bbError(http.StatusBadRequest, "Invalid role: "+role+"; use member, contributor or admin", nil)
	}
	var repos []*bbRepo
	for _, repo := range b.repos {
		perm, visible := b.access(repo, who.user)
		if (role == "" && visible && !repo.private) || (role != "" && bbPermRank[perm] >= need) {
			repos = append(repos, repo)
		}
	}
	slices.SortFunc(repos, func(x, y *bbRepo) int { return strings.Compare(lower(x.fullName), lower(y.fullName)) })
	return b.page(r, len(repos), func(i int) any { return b.repoJSON(r, repos[i]) })
}
