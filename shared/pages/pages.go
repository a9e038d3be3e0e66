package pages

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"embed"
	"encoding/hex"
	"errors"
	"io/fs"
	"log/slog"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/a-h/templ"

	"forgelink/shared/apiauth"
	"forgelink/shared/follow"
	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
	"forgelink/shared/keysvc"
	"forgelink/shared/orgaccess"
	"forgelink/shared/sshkeys"
)

// Users is sign-in as the pages need it: browser sessions, the VCS's
// permissions, which OAuth sign-ins are configured, and local mode's
// token sign-in. *signin.Service is one.
type Users interface {
	apiauth.SessionAuthenticator
	apiauth.Authorizer
	// Enabled reports whether sign-in with the VCS's OAuth flow is on.
	Enabled(vcs forgelink.VCS) bool
	// StartEnvSession begins a browser session of local mode's
	// environment user (after the "API token" form checked the token).
	StartEnvSession(w http.ResponseWriter, r *http.Request) error
}

// AccessReporter reports each organization's access;
// *orgaccess.Service is one (only its stored state is read: no VCS call).
type AccessReporter interface {
	Status(ctx context.Context, scope orgaccess.Scope) ([]orgaccess.Org, error)
}

// Pages serves the settings pages.
type Pages struct {
	Users     Users
	Store     forgelink.Store
	Pipelines forgelink.PipelineStore
	Follow    *follow.Service
	Keys      *keysvc.Service
	// Access reports org access for /org-access; nil says it is not
	// available here.
	Access AccessReporter
	// TokenSignIn shows the sign-in form with an "API token" input that
	// starts a session of the environment user (local mode).
	TokenSignIn bool
	// PublicURL is forgelink's base URL (badge URLs, webhook URLs of a
	// follow, whether cookies are Secure). Empty: the request's own
	// https://host, which is right behind API Gateway.
	PublicURL string
	Log       *slog.Logger
}

// Routes are the paths and prefixes Handler serves, for mounting it beside
// the API and sign-in (whose /login/ prefix and /logout it leaves alone).
var Routes = []string{"/{$}", "/login", "/projects/", "/pipelines/", "/org-access", "/static/"}

// Limits of form bodies: the SSH key form carries a private key, URL-encoded
// (up to three bytes per byte); the sign-in form a token.
const (
	maxFormBody   = 3*sshkeys.MaxKeySize + 16<<10
	maxSignInBody = 8 << 10
)

// ContentSecurityPolicy allows nothing inline and nothing from elsewhere:
// the stylesheet and script come from /static, the badge is a data: URI.
const ContentSecurityPolicy = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"object-src 'none'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'"

//go:embed static
var staticFS embed.FS

// staticVersion is a short hash of each static file, appended to its URL
// so that a cached copy is never stale after an upgrade.
var staticVersion = hashStatic()

func hashStatic() map[string]string {
	out := map[string]string{}
	_ = fs.WalkDir(staticFS, "static", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := staticFS.ReadFile(path)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out[strings.TrimPrefix(path, "static/")] = hex.EncodeToString(sum[:6])
		return nil
	})
	return out
}

// static is a static file's URL, with its content's hash.
func static(name string) templ.SafeURL {
	return templ.SafeURL("/static/" + name + "?v=" + staticVersion[name])
}

// when is a time as the pages show it.
func when(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.UTC().Format("2006-01-02 15:04 UTC")
}

// short is a commit's short SHA.
func short(sha string) string {
	if len(sha) > 7 {
		return sha[:7]
	}
	return sha
}

// keyType names a checkout key's type.
func keyType(k keysvc.Key) string {
	if k.Type == forgelink.CheckoutUserKey {
		return "User key"
	}
	return "Deploy key"
}

// projectURL is a project page's path, or one of its forms' with suffix
// ("/follow", ...). The slug was validated (letters, digits, '-', '_',
// '.'), so the URL is safe as it is.
func projectURL(slug forgelink.Slug, suffix string) templ.SafeURL {
	return templ.SafeURL(projectPath(slug) + suffix)
}

// slugURL is the project page's path of a stored slug ("gh/org/repo"),
// or templ's failed-sanitization URL when the slug is not valid.
func slugURL(s string) templ.SafeURL {
	if _, err := forgelink.ParseSlug(s); err != nil {
		return templ.FailedSanitizationURL
	}
	return templ.SafeURL("/projects/" + s)
}

// pipelineURL is a pipeline page's path.
func pipelineURL(id string) templ.SafeURL {
	return templ.SafeURL("/pipelines/" + url.PathEscape(id))
}

// followAction is the path suffix of the Follow or Unfollow form.
func followAction(following bool) string { return pick(following, "/unfollow", "/follow") }

// followLabel is the Follow or Unfollow button's text.
func followLabel(following bool) string { return pick(following, "Unfollow", "Follow") }

// pick is a if cond, else b.
func pick(cond bool, a, b string) string {
	if cond {
		return a
	}
	return b
}

// orElse is s, or def when s is empty.
func orElse(s, def string) string { return pick(s != "", s, def) }

// firstOf is the first non-empty string of ss.
func firstOf(ss ...string) string {
	for _, s := range ss {
		if s != "" {
			return s
		}
	}
	return ""
}

// prefixed is prefix+s, or "" when s is empty: " by octocat".
func prefixed(prefix, s string) string { return pick(s != "", prefix+s, "") }

// idIf is " "+id when cond holds: one more id in an aria-describedby.
func idIf(cond bool, id string) string { return pick(cond, " "+id, "") }

// prNumber is " #12" for pull request 12, "" for none.
func prNumber(n int) string {
	if n == 0 {
		return ""
	}
	return " #" + strconv.Itoa(n)
}

// sinceText is " since <when>", or "" for a zero time.
func sinceText(t time.Time) string { return pick(!t.IsZero(), " since "+when(t), "") }

// repairsText is " Repaired: <what>." for each repair.
func repairsText(repairs []string) string {
	var b strings.Builder
	for _, r := range repairs {
		b.WriteString(" Repaired: " + r + ".")
	}
	return b.String()
}

// layout is what every page gets; the page's own view is its component's
// other parameter.
type layout struct {
	// Title is the page's <title> and its one h1.
	Title string
	// User is the signed-in user; nil on the sign-in page.
	User *apiauth.User
	// CSRF is the session's CSRF token, for every form's csrf_token.
	CSRF string
	// Nav marks the current main navigation entry: "repos", "org-access".
	Nav string
	// Flash says what the last POST did; Alert what went wrong.
	Flash string
	Alert string
}

// session is the signed-in user of a request and the session's CSRF token.
type session struct {
	User *apiauth.User
	CSRF string
}

// pageFunc is a page or form handler of a signed-in user.
type pageFunc func(w http.ResponseWriter, r *http.Request, s *session)

// Handler returns the pages. Mount it on Routes.
func (p *Pages) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", p.home)
	mux.HandleFunc("POST /login", p.tokenSignIn)
	mux.HandleFunc("GET /login", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/", http.StatusSeeOther) })

	const project = "/projects/{vcs}/{org}/{repo}"
	mux.HandleFunc("GET "+project, p.signedIn(p.project))
	mux.HandleFunc("POST "+project+"/follow", p.form(p.follow))
	mux.HandleFunc("POST "+project+"/unfollow", p.form(p.unfollow))
	mux.HandleFunc("POST "+project+"/checkout-keys", p.form(p.addCheckoutKey))
	mux.HandleFunc("POST "+project+"/checkout-keys/remove", p.form(p.removeCheckoutKey))
	mux.HandleFunc("POST "+project+"/ssh-keys", p.form(p.addSSHKey))
	mux.HandleFunc("POST "+project+"/ssh-keys/remove", p.form(p.removeSSHKey))
	mux.HandleFunc("POST "+project+"/settings", p.form(p.saveSettings))
	// A form's URL opened directly (e.g. after a failed POST was shown):
	// back to its project page.
	mux.HandleFunc("GET "+project+"/{action...}", func(w http.ResponseWriter, r *http.Request) {
		if slug, err := slugOf(r); err == nil {
			http.Redirect(w, r, projectPath(slug), http.StatusSeeOther)
			return
		}
		p.notFound(w, r)
	})
	mux.HandleFunc("GET /pipelines/{id}", p.signedIn(p.pipeline))
	mux.HandleFunc("GET /org-access", p.signedIn(p.orgAccess))
	mux.Handle("GET /static/", staticHandler())
	mux.HandleFunc("/", p.notFound)

	// Defence in depth beside the CSRF token: browsers say where a request
	// comes from (Sec-Fetch-Site, Origin); cross-origin POSTs are refused.
	cop := http.NewCrossOriginProtection()
	cop.SetDenyHandler(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p.errorPage(w, r, nil, http.StatusForbidden, "Request refused", "This form was sent from another site. Open forgelink and send it from there.")
	}))
	return secure(cop.Handler(mux))
}

// secure sets the security headers of every answer.
func secure(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("Content-Security-Policy", ContentSecurityPolicy)
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		h.Set("Cache-Control", "no-store")
		next.ServeHTTP(w, r)
	})
}

// staticHandler serves the embedded stylesheet and script. Their URLs
// carry the content's hash, so they may be cached for a day.
func staticHandler() http.Handler {
	sub, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err)
	}
	files := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		name := strings.TrimPrefix(r.URL.Path, "/static/")
		if _, ok := staticVersion[name]; !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Cache-Control", "public, max-age=86400")
		files.ServeHTTP(w, r)
	})
}

// sessionOf authenticates the request's session cookie (only the cookie:
// pages take no API tokens). It returns an Unauthorized error when there
// is no live session.
func (p *Pages) sessionOf(r *http.Request) (*session, error) {
	c, err := r.Cookie(apiauth.SessionCookie)
	if err != nil || c.Value == "" {
		return nil, forgelink.Errorf(forgelink.Unauthorized, "not signed in")
	}
	u, csrf, err := p.Users.AuthenticateSession(r.Context(), c.Value)
	if err != nil {
		return nil, err
	}
	return &session{User: u, CSRF: csrf}, nil
}

// withUser returns r acting as the session's user: VCS calls use the
// user's own token.
func withUser(r *http.Request, s *session) *http.Request {
	ctx := apiauth.WithUser(r.Context(), s.User)
	return r.WithContext(forgelink.WithActor(ctx, s.User.ID))
}

// authenticate returns the request's session, or answers the sign-in page
// (no session) or an error page and returns nil.
func (p *Pages) authenticate(w http.ResponseWriter, r *http.Request) *session {
	s, err := p.sessionOf(r)
	switch {
	case err == nil:
		return s
	case forgelink.KindOf(err) == forgelink.Unauthorized:
		next := ""
		if r.Method == http.MethodGet {
			next = r.URL.RequestURI()
		}
		p.signInPage(w, r, http.StatusUnauthorized, next, "")
	default:
		p.log().ErrorContext(r.Context(), "page: could not check the session", "err", err)
		p.errorPage(w, r, nil, http.StatusServiceUnavailable, "Try again", "forgelink could not check your session just now; reload the page.")
	}
	return nil
}

// signedIn wraps a page: only a signed-in user sees it.
func (p *Pages) signedIn(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if s := p.authenticate(w, r); s != nil {
			h(w, withUser(r, s), s)
		}
	}
}

// form wraps a state-changing form: a signed-in user, a body within
// limits, and the session's CSRF token in csrf_token, else 403 before
// anything changes.
func (p *Pages) form(h pageFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		s := p.authenticate(w, r)
		if s == nil {
			return
		}
		if !isForm(r) {
			p.errorPage(w, r, s, http.StatusUnsupportedMediaType, "Not a form", formOnly)
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, maxFormBody)
		if err := r.ParseForm(); err != nil {
			var tooBig *http.MaxBytesError
			if errors.As(err, &tooBig) {
				p.errorPage(w, r, nil, http.StatusRequestEntityTooLarge, "Too large", "The form was larger than forgelink accepts. A private key is at most 64 KiB.")
				return
			}
			p.errorPage(w, r, nil, http.StatusBadRequest, "Bad request", "forgelink could not read the form; reload the page and try again.")
			return
		}
		got := r.PostForm.Get(apiauth.CSRFField)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(s.CSRF)) != 1 {
			p.log().InfoContext(r.Context(), "page form refused: missing or wrong CSRF token", "path", r.URL.Path, "user", s.User.Login)
			p.errorPage(w, r, s, http.StatusForbidden, "Request refused",
				"The form's security token is missing or out of date (you may have signed in again elsewhere). Nothing was changed: reload the page and try again.")
			return
		}
		h(w, withUser(r, s), s)
	}
}

// formOnly says why a POST that is not a form was refused.
const formOnly = "forgelink's forms are sent as application/x-www-form-urlencoded, as a browser sends them; nothing was changed."

// isForm reports whether r's body is a URL-encoded form, the only body
// the pages' forms send (ParseForm would read any other as empty, and the
// request would be refused for a missing CSRF token instead).
func isForm(r *http.Request) bool {
	mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	return err == nil && mt == "application/x-www-form-urlencoded"
}

// render answers the page (name is for the log). It is rendered into a
// buffer first, so a failure is a clean 500. templ's components stop at a
// cancelled context, as the request's is once the client has closed its
// side (a form cut off in transit): the page is still rendered and sent.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, status int, name string, page templ.Component) {
	var buf bytes.Buffer
	if err := page.Render(context.WithoutCancel(r.Context()), &buf); err != nil {
		p.log().ErrorContext(r.Context(), "page: render failed", "page", name, "err", err)
		http.Error(w, "forgelink could not show this page.", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// errorPage answers a page that says what went wrong. s may be nil.
func (p *Pages) errorPage(w http.ResponseWriter, r *http.Request, s *session, status int, title, message string) {
	l := layout{Title: title}
	if s != nil {
		l.User, l.CSRF = s.User, s.CSRF
	}
	p.render(w, r, status, "error", errorHTML(l, message))
}

// failed answers an error page for err: its message when a person may
// read it, a generic one (and a log line) when it is internal.
func (p *Pages) failed(w http.ResponseWriter, r *http.Request, s *session, err error) {
	status, msg := p.explain(r, err)
	title := "Something went wrong"
	switch status {
	case http.StatusNotFound:
		title = "Not found"
	case http.StatusForbidden:
		title = "Not allowed"
	}
	p.errorPage(w, r, s, status, title, msg)
}

// explain returns the status and the readable message of err. Internal
// errors are logged and never shown.
func (p *Pages) explain(r *http.Request, err error) (int, string) {
	kind := forgelink.KindOf(err)
	status := httpjson.StatusOf(err)
	msg := forgelink.MessageOf(err)
	if kind == forgelink.Internal || msg == "" || status == 0 {
		p.log().ErrorContext(r.Context(), "page request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		return http.StatusInternalServerError, "Something went wrong inside forgelink; try again. If it happens again, the server's log says why."
	}
	p.log().InfoContext(r.Context(), "page request refused", "method", r.Method, "path", r.URL.Path, "status", status, "err", err)
	return status, upperFirst(msg) + endStop(msg)
}

// upperFirst starts a message with a capital, as a sentence on a page
// (error messages start in lower case), except forgelink's own name.
func upperFirst(s string) string {
	if s == "" || s[0] < 'a' || s[0] > 'z' || strings.HasPrefix(s, "forgelink") {
		return s
	}
	return string(s[0]-'a'+'A') + s[1:]
}

func endStop(s string) string {
	if strings.HasSuffix(s, ".") || strings.HasSuffix(s, "?") || strings.HasSuffix(s, "!") || strings.HasSuffix(s, ".)") {
		return ""
	}
	return "."
}

func (p *Pages) notFound(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET")
		p.errorPage(w, r, nil, http.StatusMethodNotAllowed, "Not allowed", "This page is not sent a "+r.Method+" request.")
		return
	}
	p.noPage(w, r)
}

// noPage answers 404, also to a form's POST whose path names no
// repository (it is not the method that is wrong there).
func (p *Pages) noPage(w http.ResponseWriter, r *http.Request) {
	p.errorPage(w, r, nil, http.StatusNotFound, "Not found", "There is no page here.")
}

// baseURL is PublicURL, or behind API Gateway the request's https host.
func (p *Pages) baseURL(r *http.Request) string {
	if p.PublicURL != "" {
		return strings.TrimRight(p.PublicURL, "/")
	}
	return "https://" + r.Host
}

func (p *Pages) log() *slog.Logger {
	if p.Log != nil {
		return p.Log
	}
	return slog.Default()
}

// slugOf reads {vcs}/{org}/{repo} from the path.
func slugOf(r *http.Request) (forgelink.Slug, error) {
	return forgelink.NewSlug(r.PathValue("vcs"), r.PathValue("org"), r.PathValue("repo"))
}

// projectPath is a project page's path.
func projectPath(slug forgelink.Slug) string { return "/projects/" + slug.String() }

// stateText says an org-access state in words.
func stateText(s forgelink.AccessState) string {
	switch s {
	case forgelink.AccessOK, "":
		return "OK"
	case forgelink.AccessRestricted:
		return "Restricted by the organization's OAuth App access policy"
	case forgelink.AccessTokenRevoked:
		return "Token revoked or expired"
	case forgelink.AccessRepoMissing:
		return "Repository missing"
	case forgelink.AccessHookMissing:
		return "Webhook missing (reinstalled)"
	case forgelink.AccessHookInactive:
		return "Webhook inactive (reactivated)"
	case forgelink.AccessDeployKeyMissing:
		return "Deploy key missing (reinstalled)"
	case forgelink.AccessDeliveriesFailing:
		return "Deliveries failing (redelivered)"
	}
	return string(s)
}
