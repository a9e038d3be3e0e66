package badge

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/xml"
	"math"
	"strconv"
	"strings"
	"unicode"

	"forgelink/shared/forgelink"
)

// Content types of the two badge forms.
const (
	SVGContentType    = "image/svg+xml;charset=utf-8"
	ShieldContentType = "application/json"
)

// DefaultLabel is the left-hand text of forgelink's badges.
const DefaultLabel = "forgelink"

// Status is what a badge says about a project's latest pipeline.
type Status string

// The badge statuses. A badge has only these four: a pipeline that errored
// (broken config) or was canceled is Failing, since either way the branch
// has no passing build to show; pending is Running.
const (
	Passing  Status = "passing"
	Failing  Status = "failing"
	Running  Status = "running"
	NoBuilds Status = "no builds"
)

// StatusOf is the badge status of a pipeline in state s (usually
// forgelink.Overall of its workflows): success is Passing; failed, error
// and canceled are Failing; pending and running are Running; "" (no
// pipeline on the branch) and unknown states are NoBuilds.
func StatusOf(s forgelink.StatusState) Status {
	switch s {
	case forgelink.StatusSuccess:
		return Passing
	case forgelink.StatusFailed, forgelink.StatusError, forgelink.StatusCanceled:
		return Failing
	case forgelink.StatusPending, forgelink.StatusRunning:
		return Running
	}
	return NoBuilds
}

// For returns the message and color of a badge for s: the message is the
// status itself ("passing"), the color a shields.io color name, which both
// SVG and Shield accept: passing "brightgreen" (#4c1), failing "red"
// (#e05d44), running "yellow" (#dfb317), no builds "lightgrey" (#9f9f9f).
// An unknown status keeps its text and is lightgrey.
func For(s Status) (message, color string) {
	switch s {
	case Passing:
		return string(s), "brightgreen"
	case Failing:
		return string(s), "red"
	case Running:
		return string(s), "yellow"
	}
	return string(s), "lightgrey"
}

// namedColors are shields.io's color names (and aliases) with their hex.
var namedColors = map[string]string{
	"brightgreen":   "#4c1",
	"green":         "#97ca00",
	"yellowgreen":   "#a4a61d",
	"yellow":        "#dfb317",
	"orange":        "#fe7d37",
	"red":           "#e05d44",
	"blue":          "#007ec6",
	"grey":          "#555",
	"gray":          "#555",
	"lightgrey":     "#9f9f9f",
	"lightgray":     "#9f9f9f",
	"success":       "#4c1",
	"important":     "#fe7d37",
	"critical":      "#e05d44",
	"informational": "#007ec6",
	"inactive":      "#9f9f9f",
}

// fill is the SVG fill for color: a shields.io color name, or a 3- or
// 6-digit hex color with or without '#'. Anything else is lightgrey, so
// nothing but a known color reaches the SVG.
func fill(color string) string {
	c := strings.ToLower(strings.TrimSpace(color))
	if hex, ok := namedColors[c]; ok {
		return hex
	}
	h := strings.TrimPrefix(c, "#")
	if len(h) == 3 || len(h) == 6 {
		ok := true
		for i := 0; i < len(h); i++ {
			ok = ok && ('0' <= h[i] && h[i] <= '9' || 'a' <= h[i] && h[i] <= 'f')
		}
		if ok {
			return "#" + h
		}
	}
	return namedColors["lightgrey"]
}

// verdana holds the advance widths of the printable ASCII characters
// (' ' to '~') in Verdana, in font units of a 2048-unit em. DejaVu Sans,
// the fallback, is close enough: the SVG's textLength makes the glyphs fit
// the computed width whichever font draws them.
var verdana = [...]uint16{
	720, 806, 940, 1676, 1302, 2204, 1488, 550, 930, 930, 1302, 1676, 745, 930, 745, 930, // ' ' to '/'
	1302, 1302, 1302, 1302, 1302, 1302, 1302, 1302, 1302, 1302, // '0' to '9'
	930, 930, 1676, 1676, 1676, 1117, 2048, // ':' to '@'
	1401, 1405, 1430, 1577, 1294, 1178, 1587, 1540, 862, 931, 1418, 1141, 1726, // 'A' to 'M'
	1532, 1612, 1235, 1612, 1424, 1400, 1262, 1499, 1401, 2025, 1403, 1260, 1403, // 'N' to 'Z'
	930, 930, 930, 1676, 1302, 1302, // '[' to '`'
	1230, 1276, 1067, 1276, 1220, 720, 1276, 1296, 562, 705, 1212, 562, 1992, // 'a' to 'm'
	1296, 1243, 1276, 1276, 874, 1067, 807, 1296, 1212, 1672, 1212, 1212, 1076, // 'n' to 'z'
	1300, 930, 1300, 1676, // '{' to '~'
}

// Widths of characters outside the table, in the same units: combining
// marks take no room, East Asian wide characters and emoji a full em, and
// anything else about a digit's width.
const (
	emWidth      = 2048
	defaultWidth = 1302
	fontSize     = 11 // px
)

// textWidth is the width of s in 11px Verdana, in pixels, rounded up.
func textWidth(s string) int {
	units := 0
	for _, r := range s {
		switch {
		case ' ' <= r && r <= '~':
			units += int(verdana[r-' '])
		case unicode.Is(unicode.Mn, r) || unicode.Is(unicode.Me, r):
		case wide(r):
			units += emWidth
		default:
			units += defaultWidth
		}
	}
	return int(math.Ceil(float64(units) * fontSize / emWidth))
}

// wide reports whether r is (roughly) an East Asian wide character or an
// emoji.
func wide(r rune) bool {
	switch {
	case 0x1100 <= r && r <= 0x115F, // Hangul Jamo
		0x2E80 <= r && r <= 0xA4CF, // CJK radicals to Yi
		0xAC00 <= r && r <= 0xD7A3, // Hangul syllables
		0xF900 <= r && r <= 0xFAFF, // CJK compatibility ideographs
		0xFE30 <= r && r <= 0xFE4F, // CJK compatibility forms
		0xFF00 <= r && r <= 0xFF60, // full-width forms
		0xFFE0 <= r && r <= 0xFFE6,
		0x1F300 <= r && r <= 0x1FAFF, // emoji and pictographs
		0x20000 <= r && r <= 0x3FFFD: // CJK extensions
		return true
	}
	return false
}

// clean makes s what an SVG renderer will show: valid UTF-8 with runs of
// white space collapsed to one space and none at either end.
func clean(s string) string {
	return strings.Join(strings.Fields(strings.ToValidUTF8(s, "\uFFFD")), " ")
}

// escape appends s to b, escaped for XML text and attribute values.
// Characters XML cannot hold become U+FFFD.
func escape(b *bytes.Buffer, s string) {
	_ = xml.EscapeText(b, []byte(s)) // writes to a bytes.Buffer cannot fail
}

// Layout of the flat style, in pixels.
const (
	height     = 20
	padding    = 5 // either side of a text
	labelColor = "#555"
)

// SVG renders a flat-style badge (shields.io's "flat", as CircleCI's
// badges): label on grey on the left, message on color on the right,
// rounded corners, white text with a shadow. color is a shields.io color
// name (see For) or a hex color; anything else is lightgrey. Each side is
// as wide as its text in 11px Verdana (from a table of character widths)
// plus padding. White space in label and message is collapsed as an SVG
// renderer would, and all text is XML-escaped. An empty label gives a
// message-only badge.
//
// The SVG has role="img", an aria-label and a <title> of
// "label: message" (or just the message), and is the same bytes for the
// same arguments.
func SVG(label, message, color string) []byte {
	label, message = clean(label), clean(message)
	title := message
	if label != "" {
		title = label + ": " + message
	}

	lw, mw := 0, textWidth(message)+2*padding
	if label != "" {
		lw = textWidth(label) + 2*padding
	}
	total := lw + mw

	var b bytes.Buffer
	b.Grow(1200 + 4*(len(label)+len(message)))
	b.WriteString(`<svg xmlns="http://www.w3.org/2000/svg" width="`)
	b.WriteString(strconv.Itoa(total))
	b.WriteString(`" height="20" role="img" aria-label="`)
	escape(&b, title)
	b.WriteString("\">\n<title>")
	escape(&b, title)
	b.WriteString("</title>\n")
	b.WriteString(`<linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient>` + "\n")
	b.WriteString(`<clipPath id="r"><rect width="`)
	b.WriteString(strconv.Itoa(total))
	b.WriteString(`" height="20" rx="3" fill="#fff"/></clipPath>` + "\n")
	b.WriteString(`<g clip-path="url(#r)">`)
	if label != "" {
		rect(&b, 0, lw, labelColor)
	}
	rect(&b, lw, mw, fill(color))
	rect(&b, 0, total, "url(#s)")
	b.WriteString("</g>\n")
	b.WriteString(`<g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" text-rendering="geometricPrecision" font-size="110">` + "\n")
	if label != "" {
		text(&b, 0, lw, label)
	}
	text(&b, lw, mw, message)
	b.WriteString("</g>\n</svg>\n")
	return b.Bytes()
}

// rect appends a full-height rectangle from x, w wide.
func rect(b *bytes.Buffer, x, w int, fill string) {
	b.WriteString(`<rect`)
	if x != 0 {
		b.WriteString(` x="`)
		b.WriteString(strconv.Itoa(x))
		b.WriteString(`"`)
	}
	b.WriteString(` width="`)
	b.WriteString(strconv.Itoa(w))
	b.WriteString(`" height="20" fill="`)
	b.WriteString(fill)
	b.WriteString(`"/>`)
}

// text appends s centred in the box from x, w wide, with its shadow. Text
// is drawn at ten times the size and scaled down, as shields.io does, so
// that positions are whole numbers and small sizes render crisply.
func text(b *bytes.Buffer, x, w int, s string) {
	cx := strconv.Itoa(x*10 + w*5)
	tl := strconv.Itoa((w - 2*padding) * 10)
	b.WriteString(`<text aria-hidden="true" x="`)
	b.WriteString(cx)
	b.WriteString(`" y="150" fill="#010101" fill-opacity=".3" transform="scale(.1)" textLength="`)
	b.WriteString(tl)
	b.WriteString(`">`)
	escape(b, s)
	b.WriteString("</text>")
	b.WriteString(`<text x="`)
	b.WriteString(cx)
	b.WriteString(`" y="140" transform="scale(.1)" fill="#fff" textLength="`)
	b.WriteString(tl)
	b.WriteString(`">`)
	escape(b, s)
	b.WriteString("</text>\n")
}

// shield is the shields.io endpoint schema, version 1.
type shield struct {
	SchemaVersion int    `json:"schemaVersion"`
	Label         string `json:"label"`
	Message       string `json:"message"`
	Color         string `json:"color,omitempty"`
}

// Shield renders the badge as shields.io endpoint JSON,
// {"schemaVersion":1,"label":...,"message":...,"color":...}, for
// https://img.shields.io/endpoint?url=... . color is passed through as
// given (shields.io accepts its color names and hex); "" leaves it out, and
// shields.io uses lightgrey. White space is collapsed as in SVG.
func Shield(label, message, color string) []byte {
	b, err := json.Marshal(shield{
		SchemaVersion: 1,
		Label:         clean(label),
		Message:       clean(message),
		Color:         strings.TrimSpace(color),
	})
	if err != nil {
		panic("badge: marshal shield: " + err.Error()) // strings and an int always marshal
	}
	return append(b, '\n')
}

// ETag is a strong entity tag for body: the first 16 bytes of its SHA-256
// in hex, quoted, e.g. "9f86d081884c7d659a2feaa0c55ad015" (with the quotes).
func ETag(body []byte) string {
	sum := sha256.Sum256(body)
	return `"` + hex.EncodeToString(sum[:16]) + `"`
}

// NotModified reports whether a request whose If-None-Match header is
// ifNoneMatch may be answered 304 Not Modified for a representation whose
// entity tag is etag (RFC 9110, section 13.1.2): when the header is "*", or
// lists an entity tag that matches etag by weak comparison (a "W/" prefix
// on either side is ignored). Several If-None-Match header lines must be
// joined with commas first. A malformed header is ignored, as the RFC
// allows: the answer is false. An empty etag never matches.
func NotModified(ifNoneMatch, etag string) bool {
	want, rest, ok := scanETag(etag)
	if !ok || strings.TrimSpace(rest) != "" {
		return false
	}
	h := strings.TrimSpace(ifNoneMatch)
	if h == "*" {
		return true
	}
	for {
		h = strings.TrimLeft(h, " \t")
		if h == "" {
			return false
		}
		if h[0] == ',' { // empty list elements are allowed
			h = h[1:]
			continue
		}
		var tag string
		tag, h, ok = scanETag(h)
		if !ok {
			return false
		}
		if tag == want {
			return true
		}
		h = strings.TrimLeft(h, " \t")
		if h != "" && h[0] != ',' {
			return false
		}
	}
}

// scanETag reads one entity-tag at the start of s and returns its
// opaque-tag (quotes included, without any W/ prefix) and the rest of s.
func scanETag(s string) (opaque, rest string, ok bool) {
	s = strings.TrimPrefix(s, "W/")
	if len(s) < 2 || s[0] != '"' {
		return "", "", false
	}
	for i := 1; i < len(s); i++ {
		switch c := s[i]; {
		case c == '"':
			return s[:i+1], s[i+1:], true
		case c == 0x21 || 0x23 <= c && c != 0x7f: // etagc, obs-text included
		default:
			return "", "", false
		}
	}
	return "", "", false
}
