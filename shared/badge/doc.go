// Package badge renders a project's status badge: an SVG in the flat style of
// shields.io and CircleCI badges, and the same badge as shields.io endpoint
// JSON, with a strong ETag for conditional requests.
//
// A handler turns the latest pipeline's state into a badge and answers 304
// when the client already has it:
//
//	msg, color := badge.For(badge.StatusOf(state))
//	body := badge.SVG(badge.DefaultLabel, msg, color)
//	etag := badge.ETag(body)
//	w.Header().Set("ETag", etag)
//	if badge.NotModified(strings.Join(r.Header.Values("If-None-Match"), ","), etag) {
//		w.WriteHeader(http.StatusNotModified)
//		return
//	}
//	w.Header().Set("Content-Type", badge.SVGContentType)
//	w.Write(body)
//
// The package does no I/O and keeps no state; every function is safe for
// concurrent use.
package badge
