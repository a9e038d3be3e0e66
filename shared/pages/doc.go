// Package pages serves forgelink's settings pages: server-rendered HTML
// (templ components, *.templ, compiled to Go in *_templ.go by make
// generate; one small embedded stylesheet) for people who would rather
// click than curl, with CircleCI's words so that its users find their way.
// Every page and form works with JavaScript off; one tiny script
// (/static/copy.js) adds copy buttons.
//
//	pg := &pages.Pages{Users: users, Store: st, Pipelines: st, Follow: followSvc, Keys: keySvc, Access: access}
//	for _, route := range pages.Routes {
//		mux.Handle(route, pg.Handler())
//	}
//
// Routes:
//
//	GET  /                                 sign-in page, or the user's repositories with Follow / Unfollow
//	POST /login                            local mode's "API token" sign-in
//	GET  /projects/{vcs}/{org}/{repo}      Checkout SSH keys, Additional SSH Keys, Advanced Settings, Status badge, Pipelines
//	POST /projects/{vcs}/{org}/{repo}/...  follow, unfollow, checkout-keys[/remove], ssh-keys[/remove], settings
//	GET  /pipelines/{id}                   one pipeline (the commit statuses' target_url)
//	GET  /org-access                       each organization's access, with what to click
//	GET  /static/...                       the stylesheet and the copy script
//
// A page is served only to a browser session (the forgelink_session cookie
// that sign-in sets); without one every page is the sign-in page and shows
// no data. API tokens are not accepted here. Every state-changing form is a
// POST carrying the session's CSRF token in csrf_token: a missing or wrong
// one is answered 403 before anything changes; cross-origin POSTs are
// refused too (http.CrossOriginProtection). Reading a project needs pull
// permission on the repository, changing it admin (the VCS says which,
// through Users.Authorize); a repository the user cannot see is a 404 page.
// A successful POST answers 303 to a page, so that reloading it does not
// send the form again; a failed one shows the page again with the reason
// beside the form and its inputs kept, except a private key, which is
// never sent back.
//
// Every answer carries a Content-Security-Policy without inline script or
// style, X-Frame-Options DENY, Referrer-Policy same-origin and
// X-Content-Type-Options nosniff; pages are Cache-Control no-store.
//
// templ escapes every value it writes and sanitizes URL attributes (href,
// src, action) as html/template does; templ.SafeURL marks only URLs this
// package builds itself: paths of validated slugs, constants and the
// badge's data: URI. No text/template or html/template: they call methods
// by reflection, which keeps every exported method of every linked type in
// the binary.
package pages
