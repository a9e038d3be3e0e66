package pages_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/aws/aws-lambda-go/events"
	"github.com/awslabs/aws-lambda-go-api-proxy/httpadapter"

	"forgelink/shared/apiauth"
	"forgelink/shared/pages"
	"forgelink/shared/signin"
)

// behindAPIGateway configures no public URL: forgelink derives it from the
// request's host, https, as behind API Gateway.
func behindAPIGateway(cfg map[string]string, p *pages.Pages) {
	delete(cfg, "FORGELINK_PUBLIC_URL")
	p.PublicURL = ""
}

// TestThroughAPIGateway serves the pages as the keys function does in AWS:
// API Gateway v2 events through aws-lambda-go-api-proxy. Headers and
// cookies survive the adapter, and cookies are Secure on https.
func TestThroughAPIGateway(t *testing.T) {
	e := newEnv(t, behindAPIGateway)
	e.follow(t, ghSlug)
	mux := http.NewServeMux()
	for _, route := range signin.Routes {
		mux.Handle(route, e.users.Handler())
	}
	for _, route := range pages.Routes {
		mux.Handle(route, e.pages.Handler())
	}
	proxy := httpadapter.NewV2(mux).ProxyWithContext
	const host = "abc123.execute-api.eu-west-1.amazonaws.com"
	event := func(method, path string, headers map[string]string, cookies []string, body string) events.APIGatewayV2HTTPRequest {
		h := map[string]string{"host": host, "x-forwarded-proto": "https", "user-agent": "Mozilla/5.0"}
		for k, v := range headers {
			h[k] = v
		}
		ev := events.APIGatewayV2HTTPRequest{
			Version: "2.0", RouteKey: method + " " + path, RawPath: path, Headers: h, Cookies: cookies, Body: body,
			RequestContext: events.APIGatewayV2HTTPRequestContext{
				DomainName: host, Stage: "$default",
				HTTP: events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: method, Path: path, Protocol: "HTTP/1.1", SourceIP: "192.0.2.1"},
			},
		}
		return ev
	}
	send := func(ev events.APIGatewayV2HTTPRequest) events.APIGatewayV2HTTPResponse {
		t.Helper()
		resp, err := proxy(context.Background(), ev)
		if err != nil {
			t.Fatal(err)
		}
		return resp
	}

	home := send(event(http.MethodGet, "/", nil, nil, ""))
	if home.StatusCode != http.StatusOK || !strings.Contains(home.Body, "Sign in to forgelink") {
		t.Fatalf("GET /: %d\n%s", home.StatusCode, home.Body)
	}
	h := http.Header{}
	for k, v := range home.MultiValueHeaders {
		h[http.CanonicalHeaderKey(k)] = v
	}
	for k, v := range home.Headers {
		h.Set(k, v)
	}
	checkHeaders(t, "GET / through API Gateway", h, true)
	var loginCSRF string
	for _, c := range append(home.Cookies, h.Values("Set-Cookie")...) {
		if strings.HasPrefix(c, "forgelink_login_csrf=") {
			loginCSRF = strings.TrimPrefix(strings.Split(c, ";")[0], "forgelink_login_csrf=")
			if !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") {
				t.Errorf("sign-in form cookie %q: want Secure and HttpOnly on https", c)
			}
		}
	}
	if loginCSRF == "" {
		t.Fatalf("GET / set no sign-in form cookie: %v %v", home.Cookies, home.MultiValueHeaders)
	}

	form := url.Values{"csrf_token": {loginCSRF}, "token": {envToken}}.Encode()
	signIn := send(event(http.MethodPost, "/login", map[string]string{
		"content-type": "application/x-www-form-urlencoded", "origin": "https://" + host, "sec-fetch-site": "same-origin",
	}, []string{"forgelink_login_csrf=" + loginCSRF}, form))
	if signIn.StatusCode != http.StatusSeeOther {
		t.Fatalf("POST /login: %d\n%s", signIn.StatusCode, signIn.Body)
	}
	var session string
	setCookies := append(signIn.Cookies, signIn.MultiValueHeaders["Set-Cookie"]...)
	for _, c := range setCookies {
		if strings.HasPrefix(c, apiauth.SessionCookie+"=") {
			session = strings.Split(c, ";")[0]
			if !strings.Contains(c, "Secure") || !strings.Contains(c, "HttpOnly") || !strings.Contains(c, "SameSite=Lax") {
				t.Errorf("session cookie %q: want Secure, HttpOnly, SameSite=Lax", c)
			}
		}
	}
	if session == "" {
		t.Fatalf("POST /login set no session: %v", setCookies)
	}

	proj := send(event(http.MethodGet, "/projects/"+ghSlug, nil, []string{session}, ""))
	if proj.StatusCode != http.StatusOK {
		t.Fatalf("GET project: %d\n%s", proj.StatusCode, proj.Body)
	}
	mustContain(t, "project page", proj.Body, "<h1>octo-org/hello-world</h1>",
		"[![forgelink](https://"+host+"/gh/octo-org/hello-world.svg)](https://"+host+"/projects/gh/octo-org/hello-world)")
}
