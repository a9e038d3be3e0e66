package pages_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/net/html"
)

// TestPagesAccessibleAndStrict parses every page in its states and checks
// what a screen reader, a keyboard and the Content-Security-Policy need:
// lang, one h1 and headings in order, a label for every input, unique ids
// that aria references resolve to, a name for every button and link, alt
// on images, no positive tabindex; no inline script, style or event
// handler; every form a POST with a csrf_token.
func TestPagesAccessibleAndStrict(t *testing.T) {
	e := newEnv(t)
	e.follow(t, ghSlug)
	e.follow(t, bbSlug)
	pl := e.addPipeline(t, ghSlug, "main")
	e.addSkip(t, ghSlug, "feature/x", "feature/x has no open pull request")

	anon := e.browser(t)
	b := e.browser(t)
	b.signInToken(t)
	b.get(t, "/projects/"+ghSlug)
	b.submit(t, "/projects/"+bbSlug+"/checkout-keys", url.Values{"type": {"user-key"}})
	b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"hostname": {"deploy.example.com"}, "private_key": {rsaPEM(t)}})

	pages := map[string]func() *page{
		"sign-in":            func() *page { return anon.get(t, "/") },
		"sign-in with error": func() *page { return anon.post(t, "/login", url.Values{"token": {"x"}}) },
		"repositories":       func() *page { return b.get(t, "/") },
		"project":            func() *page { return b.get(t, "/projects/"+ghSlug+"?done=settings-saved") },
		"bitbucket project":  func() *page { return b.get(t, "/projects/"+bbSlug) },
		"not followed":       func() *page { return b.get(t, "/projects/gh/octo-org/other") },
		"form error": func() *page {
			return b.submit(t, "/projects/"+ghSlug+"/ssh-keys", url.Values{"hostname": {"h.example.com"}, "private_key": {"nope"}})
		},
		"pipeline":   func() *page { return b.get(t, "/pipelines/"+pl.ID) },
		"org access": func() *page { return b.get(t, "/org-access") },
		"not found":  func() *page { return b.get(t, "/projects/gh/octo-org/nope") },
		"csrf":       func() *page { return b.post(t, "/projects/"+ghSlug+"/settings", nil) },
	}
	for name, get := range pages {
		t.Run(name, func(t *testing.T) {
			p := get()
			if p.status == http.StatusOK || p.status >= 400 {
				checkPage(t, p.body)
			} else {
				t.Fatalf("status %d", p.status)
			}
		})
	}
}

func checkPage(t *testing.T, body string) {
	t.Helper()
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	var (
		h1s, lastLevel int
		ids            = map[string]int{}
		labelFor       = map[string]bool{}
		refs           []string
		controls       []string
		title          string
	)
	var walk func(n *html.Node, inForm *html.Node)
	walk = func(n *html.Node, form *html.Node) {
		if n.Type == html.ElementNode {
			attrs := map[string]string{}
			for _, a := range n.Attr {
				attrs[a.Key] = a.Val
				if strings.HasPrefix(a.Key, "on") {
					t.Errorf("<%s %s>: inline event handler", n.Data, a.Key)
				}
				if a.Key == "style" {
					t.Errorf("<%s>: inline style attribute", n.Data)
				}
			}
			if id, ok := attrs["id"]; ok {
				ids[id]++
			}
			for _, k := range []string{"aria-describedby", "aria-labelledby"} {
				refs = append(refs, strings.Fields(attrs[k])...)
			}
			if ti, ok := attrs["tabindex"]; ok && ti != "0" && ti != "-1" {
				t.Errorf("<%s tabindex=%s>: positive tabindex breaks keyboard order", n.Data, ti)
			}
			switch n.Data {
			case "html":
				if attrs["lang"] != "en" {
					t.Errorf(`<html lang=%q>, want "en"`, attrs["lang"])
				}
			case "title":
				title = text(n)
			case "h1", "h2", "h3", "h4", "h5", "h6":
				level := int(n.Data[1] - '0')
				if level == 1 {
					h1s++
				}
				if lastLevel == 0 && level != 1 {
					t.Errorf("the first heading is <%s>, want <h1>", n.Data)
				}
				if lastLevel > 0 && level > lastLevel+1 {
					t.Errorf("<%s>%s</%s> skips a level after h%d", n.Data, text(n), n.Data, lastLevel)
				}
				lastLevel = level
				if strings.TrimSpace(text(n)) == "" {
					t.Errorf("empty <%s>", n.Data)
				}
			case "style":
				t.Error("a <style> element: the CSP allows only the stylesheet")
			case "script":
				if attrs["src"] == "" || strings.TrimSpace(text(n)) != "" {
					t.Error("an inline <script>: the CSP allows only /static scripts")
				}
			case "label":
				if attrs["for"] == "" {
					t.Errorf("<label>%s</label> without for", text(n))
				}
				labelFor[attrs["for"]] = true
			case "input", "textarea", "select":
				if attrs["type"] != "hidden" {
					if attrs["id"] == "" && attrs["aria-label"] == "" {
						t.Errorf("<%s name=%s> has no id for a label", n.Data, attrs["name"])
					}
					controls = append(controls, attrs["id"])
				}
			case "button":
				if strings.TrimSpace(text(n)) == "" && attrs["aria-label"] == "" {
					t.Error("a <button> without a name")
				}
				if attrs["type"] == "" {
					t.Errorf("<button>%s</button> without a type", text(n))
				}
			case "a":
				if strings.TrimSpace(text(n)) == "" {
					t.Errorf("<a href=%q> without text", attrs["href"])
				}
				if h := attrs["href"]; strings.HasPrefix(strings.ToLower(h), "javascript:") {
					t.Errorf("<a href=%q>", h)
				}
			case "img":
				if _, ok := attrs["alt"]; !ok {
					t.Errorf("<img> without alt")
				}
			case "form":
				if strings.ToLower(attrs["method"]) != "post" {
					t.Errorf("<form action=%q method=%q>: every form here changes state and must be a POST", attrs["action"], attrs["method"])
				}
				if !hasCSRF(n) {
					t.Errorf("<form action=%q> without a csrf_token", attrs["action"])
				}
				form = n
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c, form)
		}
	}
	walk(doc, nil)
	if h1s != 1 {
		t.Errorf("%d <h1>, want exactly one", h1s)
	}
	if strings.TrimSpace(title) == "" {
		t.Error("no <title>")
	}
	for id, n := range ids {
		if n > 1 {
			t.Errorf("id %q used %d times", id, n)
		}
	}
	for _, c := range controls {
		if c != "" && !labelFor[c] {
			t.Errorf("input #%s has no <label for>", c)
		}
	}
	for id := range labelFor {
		if ids[id] == 0 {
			t.Errorf("<label for=%q> names no element", id)
		}
	}
	for _, r := range refs {
		if ids[r] == 0 {
			t.Errorf("aria reference %q names no element", r)
		}
	}
	if !strings.Contains(body, `<meta name="viewport" content="width=device-width, initial-scale=1">`) {
		t.Error("no viewport meta: unreadable on a phone")
	}
}

func hasCSRF(form *html.Node) bool {
	found := false
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.ElementNode && n.Data == "input" {
			var name, typ, val string
			for _, a := range n.Attr {
				switch a.Key {
				case "name":
					name = a.Val
				case "type":
					typ = a.Val
				case "value":
					val = a.Val
				}
			}
			if name == "csrf_token" && typ == "hidden" && val != "" {
				found = true
			}
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(form)
	return found
}

func text(n *html.Node) string {
	var sb strings.Builder
	var walk func(n *html.Node)
	walk = func(n *html.Node) {
		if n.Type == html.TextNode {
			sb.WriteString(n.Data)
		}
		for c := n.FirstChild; c != nil; c = c.NextSibling {
			walk(c)
		}
	}
	walk(n)
	return sb.String()
}
