package vcsfake

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
)

// SetWorkspacePermission sets the token user's permission in workspace as
// GET /2.0/user/permissions/workspaces lists it: "owner", "collaborator"
// or "member"; "" makes the user no member, so the workspace is not
// listed. Until set, the user is a "member" of every workspace that owns
// one of the fake's repositories, and of no other.
func (b *Bitbucket) SetWorkspacePermission(workspace, permission string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.workspaces[lower(workspace)] = permission
}

// SetHookActive activates or deactivates a hook as someone on
// bitbucket.org would, failing the test when the hook does not exist.
func (b *Bitbucket) SetHookActive(fullName, id string, active bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, h := range b.mustRepo(fullName).hooks {
		if h.ID == id {
			h.Active = active
			return
		}
	}
	b.t.Fatalf("vcsfake: Bitbucket repository %q has no hook %q", fullName, id)
}

var bbQueryWorkspace = regexp.MustCompile(`workspace\.slug\s*=\s*"([^"]*)"`)

// workspacePermissions answers GET /2.0/user/permissions/workspaces, one
// workspace_membership per workspace, filtered by q=workspace.slug="...".
// The memberships are the fake's one set, whoever asks. b.mu is held.
func (b *Bitbucket) workspacePermissions(r *http.Request, who *bbToken) *response {
	var want string
	if m := bbQueryWorkspace.FindStringSubmatch(r.URL.Query().Get("q")); m != nil {
		want = lower(m[1])
	}
	perms := map[string]string{} // lower-case slug -> permission
	slugs := map[string]string{} // lower-case slug -> slug as added
	for _, repo := range b.repos {
		ws, _, _ := strings.Cut(repo.fullName, "/")
		slugs[lower(ws)] = ws
		perms[lower(ws)] = "member"
	}
	for ws, p := range b.workspaces {
		if _, ok := slugs[ws]; !ok {
			slugs[ws] = ws
		}
		perms[ws] = p
	}
	var list []string
	for ws, p := range perms {
		if p != "" && (want == "" || ws == want) {
			list = append(list, ws)
		}
	}
	slices.Sort(list)
	return b.page(r, len(list), func(i int) any {
		ws := list[i]
		return map[string]any{
			"type":       "workspace_membership",
			"permission": perms[ws],
			"user":       bbUserRef(who.user),
			"workspace":  map[string]any{"type": "workspace", "slug": slugs[ws], "name": slugs[ws]},
		}
	})
}
