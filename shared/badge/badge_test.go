package badge_test

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"forgelink/shared/badge"
	"forgelink/shared/forgelink"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// parsed is what the tests read back from a badge.
type parsed struct {
	Width     int    `xml:"width,attr"`
	Height    int    `xml:"height,attr"`
	Role      string `xml:"role,attr"`
	AriaLabel string `xml:"aria-label,attr"`
	Title     string `xml:"title"`
	Rects     []struct {
		X     int    `xml:"x,attr"`
		Width int    `xml:"width,attr"`
		Fill  string `xml:"fill,attr"`
	} `xml:"g>rect"`
	Texts []struct {
		Hidden     string `xml:"aria-hidden,attr"`
		TextLength int    `xml:"textLength,attr"`
		Text       string `xml:",chardata"`
	} `xml:"g>text"`
}

// parse checks that svg is well-formed XML with an <svg> root and decodes it.
func parse(t *testing.T, svg []byte) parsed {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(svg))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("badge is not well-formed XML: %v\n%s", err, svg)
		}
	}
	var p parsed
	var root struct{ XMLName xml.Name }
	if err := xml.Unmarshal(svg, &root); err != nil {
		t.Fatal(err)
	}
	if got, want := root.XMLName, (xml.Name{Space: "http://www.w3.org/2000/svg", Local: "svg"}); got != want {
		t.Fatalf("root element %v, want %v", got, want)
	}
	if err := xml.Unmarshal(svg, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSVG(t *testing.T) {
	tests := []struct {
		name, label, message, color string
		wantTitle                   string
		wantFills                   []string
		wantTexts                   []string
	}{
		{
			name: "passing", label: "forgelink", message: "passing", color: "brightgreen",
			wantTitle: "forgelink: passing",
			wantFills: []string{"#555", "#4c1", "url(#s)"},
			wantTexts: []string{"forgelink", "forgelink", "passing", "passing"},
		},
		{
			name: "hex color", label: "build", message: "failing", color: "#E05D44",
			wantTitle: "build: failing",
			wantFills: []string{"#555", "#e05d44", "url(#s)"},
			wantTexts: []string{"build", "build", "failing", "failing"},
		},
		{
			name: "hex without hash", label: "build", message: "ok", color: "abc",
			wantTitle: "build: ok",
			wantFills: []string{"#555", "#abc", "url(#s)"},
			wantTexts: []string{"build", "build", "ok", "ok"},
		},
		{
			name: "unsafe color is lightgrey", label: "a", message: "b", color: `red"/><script>`,
			wantTitle: "a: b",
			wantFills: []string{"#555", "#9f9f9f", "url(#s)"},
			wantTexts: []string{"a", "a", "b", "b"},
		},
		{
			name: "escaping", label: `<a href="x">&`, message: `1 > 0 & "q" 'x'`, color: "red",
			wantTitle: `<a href="x">&: 1 > 0 & "q" 'x'`,
			wantFills: []string{"#555", "#e05d44", "url(#s)"},
			wantTexts: []string{`<a href="x">&`, `<a href="x">&`, `1 > 0 & "q" 'x'`, `1 > 0 & "q" 'x'`},
		},
		{
			name: "white space collapsed", label: " my\tlabel\n", message: "no  builds", color: "lightgrey",
			wantTitle: "my label: no builds",
			wantFills: []string{"#555", "#9f9f9f", "url(#s)"},
			wantTexts: []string{"my label", "my label", "no builds", "no builds"},
		},
		{
			name: "no label", label: "", message: "passing", color: "brightgreen",
			wantTitle: "passing",
			wantFills: []string{"#4c1", "url(#s)"},
			wantTexts: []string{"passing", "passing"},
		},
		{
			name: "invalid XML characters", label: "a\x01b", message: "bad \xff", color: "red",
			wantTitle: "a\uFFFDb: bad \uFFFD",
			wantFills: []string{"#555", "#e05d44", "url(#s)"},
			wantTexts: []string{"a\uFFFDb", "a\uFFFDb", "bad \uFFFD", "bad \uFFFD"},
		},
		{
			name: "non-ASCII", label: "ビルド", message: "réussi ✓", color: "green",
			wantTitle: "ビルド: réussi ✓",
			wantFills: []string{"#555", "#97ca00", "url(#s)"},
			wantTexts: []string{"ビルド", "ビルド", "réussi ✓", "réussi ✓"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			svg := badge.SVG(tc.label, tc.message, tc.color)
			p := parse(t, svg)
			if p.Title != tc.wantTitle || p.AriaLabel != tc.wantTitle {
				t.Errorf("title %q, aria-label %q, want %q", p.Title, p.AriaLabel, tc.wantTitle)
			}
			if p.Role != "img" || p.Height != 20 {
				t.Errorf("role %q height %d, want img 20", p.Role, p.Height)
			}
			var fills, texts []string
			for _, r := range p.Rects {
				fills = append(fills, r.Fill)
			}
			for _, x := range p.Texts {
				texts = append(texts, x.Text)
			}
			if diff := cmp.Diff(tc.wantFills, fills); diff != "" {
				t.Errorf("rect fills (-want +got):\n%s", diff)
			}
			if diff := cmp.Diff(tc.wantTexts, texts); diff != "" {
				t.Errorf("texts (-want +got):\n%s", diff)
			}
			// The parts tile the badge: the last rect (the gradient) spans it,
			// and the coloured rects sum to it.
			sum := 0
			for _, r := range p.Rects[:len(p.Rects)-1] {
				if r.X != sum {
					t.Errorf("rect at x=%d, want %d", r.X, sum)
				}
				sum += r.Width
				if r.Width <= 2*5 {
					t.Errorf("rect %d wide: no room for text", r.Width)
				}
			}
			if last := p.Rects[len(p.Rects)-1]; sum != p.Width || last.Width != p.Width {
				t.Errorf("parts %d wide, gradient %d, badge %d", sum, last.Width, p.Width)
			}
			if !bytes.Equal(svg, badge.SVG(tc.label, tc.message, tc.color)) {
				t.Error("SVG is not deterministic")
			}
		})
	}
}

func width(t *testing.T, label, message string) int {
	t.Helper()
	return parse(t, badge.SVG(label, message, "red")).Width
}

func TestSVGWidths(t *testing.T) {
	// Longer label, wider badge.
	prev := 0
	for _, label := range []string{"", "a", "ab", "abc", "abcdefghij", strings.Repeat("abcdefghij", 5)} {
		w := width(t, label, "passing")
		if w <= prev {
			t.Errorf("label %q: width %d, not more than %d for a shorter one", label, w, prev)
		}
		prev = w
	}
	// Widths follow the characters, not their count.
	if narrow, wide := width(t, "iiiiiiii", "x"), width(t, "WWWWWWWW", "x"); narrow >= wide {
		t.Errorf("width of iiiiiiii %d >= WWWWWWWW %d", narrow, wide)
	}
	if cjk, latin := width(t, "ビルド", "x"), width(t, "abc", "x"); cjk <= latin {
		t.Errorf("width of ビルド %d <= abc %d", cjk, latin)
	}
	// Each status has its own width and colour.
	type look struct {
		Width int
		Fill  string
	}
	got := map[badge.Status]look{}
	for _, s := range []badge.Status{badge.Passing, badge.Failing, badge.Running, badge.NoBuilds} {
		msg, color := badge.For(s)
		p := parse(t, badge.SVG(badge.DefaultLabel, msg, color))
		got[s] = look{p.Rects[1].Width, p.Rects[1].Fill}
	}
	want := map[badge.Status]look{
		// "forgelink" is 59 px wide with padding; messages are measured in 11px Verdana.
		badge.Passing:  {Width: 52, Fill: "#4c1"},
		badge.Failing:  {Width: 44, Fill: "#e05d44"},
		badge.Running:  {Width: 53, Fill: "#dfb317"},
		badge.NoBuilds: {Width: 60, Fill: "#9f9f9f"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("message rects (-want +got):\n%s", diff)
	}
	if got := width(t, badge.DefaultLabel, "x") - width(t, "", "x"); got != 59 {
		t.Errorf("label rect %d wide, want 59", got)
	}
}

func TestSVGGolden(t *testing.T) {
	msg, color := badge.For(badge.Passing)
	got := badge.SVG(badge.DefaultLabel, msg, color)
	path := filepath.Join("testdata", "passing.svg")
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("SVG differs from %s (-want +got); if intended, go test -update:\n%s", path, diff)
	}
}

func TestStatusOfAndFor(t *testing.T) {
	type badgeLook struct {
		Status         badge.Status
		Message, Color string
	}
	got := map[forgelink.StatusState]badgeLook{}
	for _, s := range []forgelink.StatusState{
		"", forgelink.StatusPending, forgelink.StatusRunning, forgelink.StatusSuccess,
		forgelink.StatusFailed, forgelink.StatusError, forgelink.StatusCanceled, "bogus",
	} {
		st := badge.StatusOf(s)
		msg, color := badge.For(st)
		got[s] = badgeLook{st, msg, color}
	}
	want := map[forgelink.StatusState]badgeLook{
		"":                       {badge.NoBuilds, "no builds", "lightgrey"},
		forgelink.StatusPending:  {badge.Running, "running", "yellow"},
		forgelink.StatusRunning:  {badge.Running, "running", "yellow"},
		forgelink.StatusSuccess:  {badge.Passing, "passing", "brightgreen"},
		forgelink.StatusFailed:   {badge.Failing, "failing", "red"},
		forgelink.StatusError:    {badge.Failing, "failing", "red"},
		forgelink.StatusCanceled: {badge.Failing, "failing", "red"},
		"bogus":                  {badge.NoBuilds, "no builds", "lightgrey"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("StatusOf/For (-want +got):\n%s", diff)
	}
	if msg, color := badge.For("weird"); msg != "weird" || color != "lightgrey" {
		t.Errorf(`For("weird") = %q, %q, want "weird", "lightgrey"`, msg, color)
	}
}

func TestShield(t *testing.T) {
	tests := []struct {
		name, label, message, color string
		want                        string
	}{
		{"passing", "forgelink", "passing", "brightgreen",
			`{"schemaVersion":1,"label":"forgelink","message":"passing","color":"brightgreen"}` + "\n"},
		{"no color", "forgelink", "no builds", "",
			`{"schemaVersion":1,"label":"forgelink","message":"no builds"}` + "\n"},
		{"escaped", `a"b`, "<&>", "red",
			`{"schemaVersion":1,"label":"a\"b","message":"\u003c\u0026\u003e","color":"red"}` + "\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := badge.Shield(tc.label, tc.message, tc.color)
			if diff := cmp.Diff(tc.want, string(got)); diff != "" {
				t.Errorf("Shield (-want +got):\n%s", diff)
			}
			var back map[string]any
			if err := json.Unmarshal(got, &back); err != nil {
				t.Fatal(err)
			}
			if back["label"] != tc.label || back["message"] != tc.message {
				t.Errorf("round trip: %v", back)
			}
		})
	}
}

func TestETag(t *testing.T) {
	a, b := badge.ETag([]byte("a")), badge.ETag([]byte("b"))
	if a == b {
		t.Errorf("ETag(a) = ETag(b) = %s", a)
	}
	if a != badge.ETag([]byte("a")) {
		t.Error("ETag is not deterministic")
	}
	// sha256("a") = ca978112ca1bbdcafac231b39a23dc4da786eff8147c4e72b9807785afee48bb
	if want := `"ca978112ca1bbdcafac231b39a23dc4d"`; a != want {
		t.Errorf("ETag(a) = %s, want %s", a, want)
	}
	if !badge.NotModified(a, a) {
		t.Errorf("NotModified(%s, %s) = false", a, a)
	}
}

func TestNotModified(t *testing.T) {
	const etag = `"abc"`
	tests := []struct {
		name        string
		ifNoneMatch string
		etag        string
		want        bool
	}{
		{"absent", "", etag, false},
		{"same", `"abc"`, etag, true},
		{"different", `"abd"`, etag, false},
		{"unquoted", `abc`, etag, false},
		{"weak request tag", `W/"abc"`, etag, true},
		{"weak current tag", `"abc"`, `W/"abc"`, true},
		{"both weak", `W/"abc"`, `W/"abc"`, true},
		{"lower-case w is not weak", `w/"abc"`, etag, false},
		{"star", `*`, etag, true},
		{"star with spaces", ` * `, etag, true},
		{"star needs a representation", `*`, "", false},
		{"star in a list is malformed", `"x", *`, etag, false},
		{"list, first", `"abc", "x"`, etag, true},
		{"list, last", `"x","y", W/"abc"`, etag, true},
		{"list, none", `"x", "y"`, etag, false},
		{"empty list elements", ` , ,"abc" ,`, etag, true},
		{"tabs", "\t\"x\"\t,\t\"abc\"", etag, true},
		{"comma inside the tag", `"a,bc"`, `"a,bc"`, true},
		{"malformed before match", `"x" "abc"`, etag, false},
		{"unterminated", `"abc`, etag, false},
		{"space inside", `"ab c"`, `"ab c"`, false},
		{"prefix of another", `"abcd"`, etag, false},
		{"empty opaque tag", `""`, `""`, true},
		{"no current etag", `"abc"`, "", false},
		{"malformed current etag", `"abc"`, `abc`, false},
		{"obs-text", "\"\xe9\"", "\"\xe9\"", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := badge.NotModified(tc.ifNoneMatch, tc.etag); got != tc.want {
				t.Errorf("NotModified(%q, %q) = %v, want %v", tc.ifNoneMatch, tc.etag, got, tc.want)
			}
		})
	}
}

func BenchmarkSVG(b *testing.B) {
	msg, color := badge.For(badge.Passing)
	b.ReportAllocs()
	for b.Loop() {
		badge.SVG(badge.DefaultLabel, msg, color)
	}
}

func BenchmarkSVGAndETag(b *testing.B) {
	label := "octo-org/hello-world " + strconv.Itoa(42)
	b.ReportAllocs()
	for b.Loop() {
		badge.ETag(badge.SVG(label, "no builds", "lightgrey"))
	}
}
