package httpapi

import (
	"log/slog"
	"net/http"
	"strings"
	"time"

	"forgelink/shared/apiauth"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
	"forgelink/shared/keysvc"
	"forgelink/shared/sshkeys"
)

// Keys serves the key API of the keys function on CircleCI's v1.1 and v2
// paths and JSON: checkout keys, additional SSH keys, /api/v2/me, and the
// executor's checkout material.
//
// Every route takes the API token (Circle-Token) except
// GET /api/v2/pipeline/{id}/checkout, which takes a runner token as
// "Authorization: Bearer <token>": minted per pipeline by
// POST /api/v2/pipeline/{id}/runner-token (or keysvc.MintRunnerTokenFor in
// the hand-off to the executor), good once, for keysvc.DefaultRunnerTokenTTL.
//
// Choices where CircleCI leaves room:
//   - POST .../ssh-key answers 201 with the key's public fields when it
//     adds the key, and 200 with the same fields when the project already
//     has that key (same fingerprint) for that hostname: a retry is
//     harmless. The private key is never returned.
//   - On Bitbucket, a user key ("user-key", or v1.1 "github-user-key" /
//     "bitbucket-user-key") is created and answered 201 with instructions to
//     add it to the Bitbucket account by hand; v1.1 calls it
//     "bitbucket-user-key".
//   - POST ...checkout-key?key_type=rsa makes an RSA-4096 key; ed25519 is
//     the default.
//   - The checkout material's known_hosts is empty, with known_hosts_note
//     saying what to do, for GitHub Enterprise Server, whose host keys
//     forgelink cannot know.
//   - A fork's pull-request pipeline that may not see secrets gets the
//     checkout key but no additional SSH keys (as CircleCI).
type Keys struct {
	Service *keysvc.Service
	Auth    apiauth.Authenticator
	// Authz checks the user's permission on the repository (see
	// Projects.Authz); nil allows every authenticated user.
	Authz apiauth.Authorizer
	Log   *slog.Logger
}

// Limits of request bodies.
const (
	maxKeyRequestBody = 4 << 10
	maxSSHKeyBody     = 2*sshkeys.MaxKeySize + 4<<10 // JSON escaping can double a key
)

// Handler returns the key routes; every other request goes to fallback
// (404 when nil), untouched, so the keys function can serve Projects and
// Keys on one path prefix:
//
//	mux.Handle("/api/", keys.Handler(projects.Handler()))
func (k *Keys) Handler(fallback http.Handler) http.Handler {
	if fallback == nil {
		fallback = http.HandlerFunc(httpjson.NotFound)
	}
	mux := http.NewServeMux()
	auth := func(pattern string, h http.HandlerFunc) {
		if strings.Contains(pattern, "{repo}") {
			h = authorized(k.Authz, k.log(), h)
		}
		mux.Handle(pattern, apiauth.Require(k.Auth, k.log(), h))
	}
	const (
		v1     = "/api/v1.1/project/{vcs}/{org}/{repo}"
		v2     = "/api/v2/project/{vcs}/{org}/{repo}"
		v1Keys = v1 + "/checkout-key"
		v2Keys = v2 + "/checkout-key"
	)
	auth("GET "+v1Keys, k.list(v1Style))
	auth("POST "+v1Keys, k.create(v1Style))
	auth("GET "+v1Keys+"/{fingerprint}", k.get(v1Style))
	auth("DELETE "+v1Keys+"/{fingerprint}", k.delete)
	auth("GET "+v2Keys, k.list(v2Style))
	auth("POST "+v2Keys, k.create(v2Style))
	auth("GET "+v2Keys+"/{fingerprint}", k.get(v2Style))
	auth("DELETE "+v2Keys+"/{fingerprint}", k.delete)
	auth("GET "+v1+"/ssh-key", k.listSSHKeys)
	auth("POST "+v1+"/ssh-key", k.addSSHKey)
	auth("DELETE "+v1+"/ssh-key", k.deleteSSHKey)
	auth("GET /api/v2/me", k.me)
	auth("POST /api/v2/pipeline/{id}/runner-token", k.runnerToken)
	mux.HandleFunc("GET /api/v2/pipeline/{id}/checkout", k.checkout)

	for path, allow := range map[string]string{
		v1Keys: "GET, POST", v1Keys + "/{fingerprint}": "GET, DELETE",
		v2Keys: "GET, POST", v2Keys + "/{fingerprint}": "GET, DELETE",
		v1 + "/ssh-key": "GET, POST, DELETE", "/api/v2/me": "GET",
		"/api/v2/pipeline/{id}/runner-token": "POST", "/api/v2/pipeline/{id}/checkout": "GET",
	} {
		mux.Handle(path, httpjson.MethodNotAllowed(allow))
	}
	mux.Handle("/", fallback)
	return mux
}

func (k *Keys) log() *slog.Logger {
	if k.Log != nil {
		return k.Log
	}
	return slog.Default()
}

// login is the authenticated user's login.
func login(r *http.Request) string {
	if u := apiauth.UserFrom(r.Context()); u != nil {
		return u.Login
	}
	return ""
}

// keyStyle is the JSON dialect of a route: v1.1 or v2.
type keyStyle int

const (
	v1Style keyStyle = iota
	v2Style
)

// v1CheckoutKey is CircleCI's API v1.1 checkout key, plus forgelink's
// fingerprint_sha256, the user key's account, and instructions for a key
// the user must install by hand.
type v1CheckoutKey struct {
	PublicKey         string    `json:"public_key"`
	Type              string    `json:"type"` // deploy-key, github-user-key, bitbucket-user-key
	Fingerprint       string    `json:"fingerprint"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	Preferred         bool      `json:"preferred"`
	Time              time.Time `json:"time"`
	Login             string    `json:"login,omitempty"`
	Instructions      string    `json:"instructions,omitempty"`
}

// v2CheckoutKey is CircleCI's API v2 checkout key, with the same additions.
type v2CheckoutKey struct {
	PublicKey         string    `json:"public-key"`
	Type              string    `json:"type"` // deploy-key, user-key
	Fingerprint       string    `json:"fingerprint"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	Preferred         bool      `json:"preferred"`
	CreatedAt         time.Time `json:"created-at"`
	Login             string    `json:"login,omitempty"`
	Instructions      string    `json:"instructions,omitempty"`
}

// v1TypeName is a key type's v1.1 name.
func v1TypeName(k keysvc.Key) string {
	if k.Type != forgelink.CheckoutUserKey {
		return string(k.Type)
	}
	if k.VCS == forgelink.Bitbucket {
		return "bitbucket-user-key"
	}
	return "github-user-key"
}

// keyJSON renders a key in the route's dialect. With sha256Digest (v2's
// ?digest=sha256) "fingerprint" carries the SHA-256 fingerprint.
func keyJSON(style keyStyle, k keysvc.Key, sha256Digest bool) any {
	fp := k.FingerprintMD5
	if sha256Digest {
		fp = k.FingerprintSHA256
	}
	if style == v1Style {
		return v1CheckoutKey{
			PublicKey: k.PublicKey, Type: v1TypeName(k), Fingerprint: fp, FingerprintSHA256: k.FingerprintSHA256,
			Preferred: k.Preferred, Time: k.CreatedAt.UTC(), Login: k.Login, Instructions: k.Instructions,
		}
	}
	return v2CheckoutKey{
		PublicKey: k.PublicKey, Type: string(k.Type), Fingerprint: fp, FingerprintSHA256: k.FingerprintSHA256,
		Preferred: k.Preferred, CreatedAt: k.CreatedAt.UTC(), Login: k.Login, Instructions: k.Instructions,
	}
}

// digestOf reads v2's digest parameter: "md5" (the default) or "sha256".
func digestOf(r *http.Request) (bool, error) {
	switch d := r.URL.Query().Get("digest"); d {
	case "", "md5":
		return false, nil
	case "sha256":
		return true, nil
	}
	return false, forgelink.Errorf(forgelink.Invalid, "digest must be md5 or sha256")
}

func (k *Keys) list(style keyStyle) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug, err := slugOf(r)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		sha, err := digestOf(r)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		keys, err := k.Service.ListCheckoutKeys(r.Context(), slug)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		items := make([]any, 0, len(keys))
		for _, key := range keys {
			items = append(items, keyJSON(style, key, sha))
		}
		if style == v1Style {
			httpjson.Write(w, http.StatusOK, items)
			return
		}
		httpjson.Write(w, http.StatusOK, listPage[any]{Items: items})
	}
}

func (k *Keys) get(style keyStyle) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug, err := slugOf(r)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		sha, err := digestOf(r)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		key, err := k.Service.GetCheckoutKey(r.Context(), slug, r.PathValue("fingerprint"))
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		httpjson.Write(w, http.StatusOK, keyJSON(style, key, sha))
	}
}

// createKeyRequest is the body of POST .../checkout-key.
type createKeyRequest struct {
	Type    string `json:"type"`
	KeyType string `json:"key_type"` // also ?key_type=
}

// checkoutKeyType maps an API type name to a key type. v1.1 names user
// keys after the VCS; v2 says "user-key"; both dialects accept all three.
func checkoutKeyType(name string) (forgelink.CheckoutKeyType, error) {
	switch name {
	case "deploy-key", "":
		return forgelink.CheckoutDeployKey, nil
	case "user-key", "github-user-key", "bitbucket-user-key":
		return forgelink.CheckoutUserKey, nil
	}
	return "", forgelink.Errorf(forgelink.Invalid, "type must be deploy-key or user-key (v1.1: github-user-key)")
}

func (k *Keys) create(style keyStyle) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		slug, err := slugOf(r)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		var req createKeyRequest
		if err := httpjson.Read(w, r, maxKeyRequestBody, &req, true); err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		typ, err := checkoutKeyType(req.Type)
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		keyType := req.KeyType
		if q := r.URL.Query().Get("key_type"); q != "" {
			keyType = q
		}
		key, err := k.Service.CreateCheckoutKey(r.Context(), login(r), slug, typ, sshkeys.Type(strings.ToLower(keyType)))
		if err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
		httpjson.Write(w, http.StatusCreated, keyJSON(style, key, false))
	}
}

// deleteResponse is CircleCI's {"message": "ok"}, plus how many checkout
// keys are left and what the user must still do.
type deleteResponse struct {
	Message       string `json:"message"`
	RemainingKeys int    `json:"remaining_keys"`
	Warning       string `json:"warning,omitempty"`
	ManualStep    string `json:"manual_step,omitempty"`
}

func (k *Keys) delete(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	res, err := k.Service.DeleteCheckoutKey(r.Context(), login(r), slug, r.PathValue("fingerprint"))
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	out := deleteResponse{Message: "ok", RemainingKeys: res.Remaining, ManualStep: res.ManualStep}
	if res.Remaining == 0 {
		out.Warning = "that was the project's last checkout key: builds of a private repository cannot check out its code until you add one (POST checkout-key)"
	}
	httpjson.Write(w, http.StatusOK, out)
}

// sshKeyJSON is an additional SSH key as the API shows it: never the
// private key.
type sshKeyJSON struct {
	Hostname          string    `json:"hostname"`
	PublicKey         string    `json:"public_key"`
	Fingerprint       string    `json:"fingerprint"`
	FingerprintSHA256 string    `json:"fingerprint_sha256"`
	Time              time.Time `json:"time"`
}

func toSSHKeyJSON(s keysvc.SSHKey) sshKeyJSON {
	return sshKeyJSON{Hostname: s.Hostname, PublicKey: s.PublicKey, Fingerprint: s.FingerprintMD5, FingerprintSHA256: s.FingerprintSHA256, Time: s.CreatedAt.UTC()}
}

// addSSHKeyRequest is CircleCI's v1.1 ssh-key body.
type addSSHKeyRequest struct {
	Hostname   string `json:"hostname"`
	PrivateKey string `json:"private_key"`
}

func (k *Keys) addSSHKey(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	var req addSSHKeyRequest
	if err := httpjson.Read(w, r, maxSSHKeyBody, &req, false); err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	if strings.TrimSpace(req.PrivateKey) == "" {
		httpjson.Error(w, r, k.log(), forgelink.Errorf(forgelink.Invalid, "private_key is required"))
		return
	}
	key, created, err := k.Service.AddSSHKey(r.Context(), login(r), slug, req.Hostname, []byte(req.PrivateKey))
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	status := http.StatusOK
	if created {
		status = http.StatusCreated
	}
	httpjson.Write(w, status, toSSHKeyJSON(key))
}

func (k *Keys) listSSHKeys(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	keys, err := k.Service.ListSSHKeys(r.Context(), slug)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	out := make([]sshKeyJSON, 0, len(keys))
	for _, key := range keys {
		out = append(out, toSSHKeyJSON(key))
	}
	httpjson.Write(w, http.StatusOK, out)
}

// deleteSSHKeyRequest is CircleCI's v1.1 DELETE ssh-key body. The same
// fields may come as query parameters instead.
type deleteSSHKeyRequest struct {
	Fingerprint string  `json:"fingerprint"`
	Hostname    *string `json:"hostname"`
}

func (k *Keys) deleteSSHKey(w http.ResponseWriter, r *http.Request) {
	slug, err := slugOf(r)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	var req deleteSSHKeyRequest
	if err := httpjson.Read(w, r, maxKeyRequestBody, &req, true); err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	q := r.URL.Query()
	if q.Has("fingerprint") {
		req.Fingerprint = q.Get("fingerprint")
	}
	if q.Has("hostname") {
		h := q.Get("hostname")
		req.Hostname = &h
	}
	key, err := k.Service.DeleteSSHKey(r.Context(), login(r), slug, req.Hostname, req.Fingerprint)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	httpjson.Write(w, http.StatusOK, map[string]any{"message": "ok", "deleted": toSSHKeyJSON(key)})
}

// meJSON is CircleCI's v2 /me, plus the VCS and the user's email.
type meJSON struct {
	ID      string  `json:"id"`
	Login   string  `json:"login"`
	Name    string  `json:"name"`
	Email   *string `json:"email"`
	VCSType string  `json:"vcs_type,omitempty"`
}

func (k *Keys) me(w http.ResponseWriter, r *http.Request) {
	var vcs forgelink.VCS
	if v := r.URL.Query().Get("vcs"); v != "" {
		var err error
		if vcs, err = forgelink.ParseVCS(v); err != nil {
			httpjson.Error(w, r, k.log(), err)
			return
		}
	}
	id := login(r)
	if u := apiauth.UserFrom(r.Context()); u != nil && !u.Env() {
		// A signed-in user is one account on one VCS.
		id, vcs = u.ID, u.VCS
	}
	me, err := k.Service.Me(r.Context(), vcs, login(r))
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	out := meJSON{ID: id, Login: me.Login, Name: me.Login, VCSType: string(me.VCS)}
	if me.Email != "" {
		out.Email = &me.Email
	}
	httpjson.Write(w, http.StatusOK, out)
}

// runnerTokenJSON answers POST /api/v2/pipeline/{id}/runner-token.
type runnerTokenJSON struct {
	Token      string    `json:"token"`
	PipelineID string    `json:"pipeline_id"`
	ExpiresAt  time.Time `json:"expires_at"`
	SingleUse  bool      `json:"single_use"`
}

func (k *Keys) runnerToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	token, expires, err := k.Service.MintRunnerToken(r.Context(), login(r), id)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	httpjson.Write(w, http.StatusCreated, runnerTokenJSON{Token: token, PipelineID: id, ExpiresAt: expires.UTC(), SingleUse: true})
}

// checkoutJSON is the executor's checkout material. It is the one answer
// that carries private keys.
type checkoutJSON struct {
	PipelineID     string           `json:"pipeline_id"`
	ProjectSlug    string           `json:"project_slug"`
	VCSType        string           `json:"vcs_type"`
	VCSURL         string           `json:"vcs_url"`
	CloneURL       string           `json:"clone_url"`
	Revision       string           `json:"revision"`
	Branch         string           `json:"branch,omitempty"`
	Tag            string           `json:"tag,omitempty"`
	KnownHosts     string           `json:"known_hosts"`
	KnownHostsNote string           `json:"known_hosts_note,omitempty"`
	CheckoutKey    *privateKeyJSON  `json:"checkout_key"`
	SSHKeys        []privateKeyJSON `json:"ssh_keys"`
}

type privateKeyJSON struct {
	Type              string `json:"type,omitempty"`
	Hostname          string `json:"hostname,omitempty"`
	PublicKey         string `json:"public_key"`
	Fingerprint       string `json:"fingerprint"`
	FingerprintSHA256 string `json:"fingerprint_sha256"`
	PrivateKey        string `json:"private_key"`
}

func toPrivateKeyJSON(p keysvc.PrivateKey) privateKeyJSON {
	return privateKeyJSON{Type: string(p.Type), Hostname: p.Hostname, PublicKey: p.PublicKey, Fingerprint: p.FingerprintMD5, FingerprintSHA256: p.FingerprintSHA256, PrivateKey: p.PrivateKey}
}

// bearerToken reads "Authorization: Bearer <token>".
func bearerToken(r *http.Request) string {
	scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return ""
	}
	return strings.TrimSpace(tok)
}

func (k *Keys) checkout(w http.ResponseWriter, r *http.Request) {
	tok := bearerToken(r)
	if tok == "" {
		httpjson.Error(w, r, k.log(), forgelink.Errorf(forgelink.Unauthorized, "missing runner token: send Authorization: Bearer <runner token>"))
		return
	}
	c, err := k.Service.Checkout(r.Context(), r.PathValue("id"), tok)
	if err != nil {
		httpjson.Error(w, r, k.log(), err)
		return
	}
	out := checkoutJSON{
		PipelineID: c.PipelineID, ProjectSlug: c.Project.String(), VCSType: string(c.Project.VCS),
		VCSURL: c.VCSURL, CloneURL: c.CloneURL, Revision: c.Revision, Branch: c.Branch, Tag: c.Tag,
		KnownHosts: c.KnownHosts, KnownHostsNote: c.KnownHostsNote, SSHKeys: []privateKeyJSON{},
	}
	if c.CheckoutKey != nil {
		ck := toPrivateKeyJSON(*c.CheckoutKey)
		out.CheckoutKey = &ck
	}
	for _, s := range c.SSHKeys {
		out.SSHKeys = append(out.SSHKeys, toPrivateKeyJSON(s))
	}
	httpjson.Write(w, http.StatusOK, out)
}
