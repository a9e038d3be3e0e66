package vcsfake

import (
	"cmp"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/tls"
	"encoding/hex"
	"encoding/json"
	"hash"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// GitHubDeliveryTimeout is how long the GitHub fake waits for a webhook
// receiver to answer a delivery: GitHub's own limit of 10 seconds.
const GitHubDeliveryTimeout = 10 * time.Second

// HookDeliveryRecord is one attempt to deliver a webhook event, as GitHub
// keeps it among a hook's recent deliveries
// (GET /repos/{o}/{r}/hooks/{id}/deliveries).
type HookDeliveryRecord struct {
	// ID is the attempt's id, which the fake assigns. Redeliver takes it.
	ID string
	// GUID is the delivery's id, sent as X-GitHub-Delivery. A redelivery
	// keeps the GUID of the delivery it repeats. Random when left empty.
	GUID  string
	Event string
	// DeliveredAt is when the attempt was made, kept in whole seconds
	// (UTC) as GitHub shows it; now when left zero.
	DeliveredAt time.Time
	// StatusCode is the receiver's answer; 0 when it could not be
	// reached.
	StatusCode int
	// Status is GitHub's words for the outcome: "OK", "Invalid HTTP
	// Response: 502", "failed to connect to host". Derived from
	// StatusCode when left empty.
	Status     string
	Redelivery bool
	// Payload is the event's JSON, which a redelivery sends again.
	Payload []byte
	// Header is what the attempt was sent with: X-GitHub-Event,
	// X-GitHub-Delivery, X-GitHub-Hook-ID, the signatures. AddHookDelivery
	// fills it in, signed with the hook's current secret, when nil.
	Header http.Header
}

func (d *HookDeliveryRecord) clone() HookDeliveryRecord {
	c := *d
	c.Payload = slices.Clone(d.Payload)
	c.Header = d.Header.Clone()
	return c
}

// RateLimitedRequests returns how many answered requests counted against
// the rate limit: every request except a 304 Not Modified, which GitHub
// does not count. Requests() lists both, with their status, so
// CountRequests or a scan for Status 304 counts the conditional requests
// that cost nothing.
func (g *GitHub) RateLimitedRequests() int {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.charged
}

// SetOrgRole sets the token user's role in org as
// GET /user/memberships/orgs/{org} answers it: "admin" or "member"
// (GitHub also has "billing_manager"); "" makes the user no member, which
// GitHub answers with 404. Until set, the user is a member of every org
// that owns one of the fake's repositories, and of no other.
func (g *GitHub) SetOrgRole(org, role string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.roles[lower(org)] = role
}

// membership answers GET /user/memberships/orgs/{org} for who. g.mu is
// held.
func (g *GitHub) membership(r *http.Request, who *ghToken, org string) *response {
	role, ok := g.roles[lower(org)]
	if !ok {
		for name := range g.repos {
			if owner, _, _ := strings.Cut(name, "/"); owner == lower(org) {
				role = "member"
				break
			}
		}
	}
	if role == "" {
		return jsonResponse(http.StatusNotFound, ghNotFound)
	}
	return jsonResponse(http.StatusOK, map[string]any{
		"url":              g.apiURL(r, "orgs/"+org+"/memberships/"+who.user.login),
		"state":            "active",
		"role":             role,
		"organization_url": g.apiURL(r, "orgs/"+org),
		"organization": map[string]any{
			"login": org, "url": g.apiURL(r, "orgs/"+org),
			"repos_url": g.apiURL(r, "orgs/"+org+"/repos"), "description": nil,
		},
		"user": map[string]any{"login": who.user.login, "id": who.user.id, "type": "User", "site_admin": false},
	})
}

// SetHookActive activates or deactivates a hook as someone on github.com
// would, failing the test when the hook does not exist.
func (g *GitHub) SetHookActive(fullName, id string, active bool) {
	g.mu.Lock()
	defer g.mu.Unlock()
	h := g.mustHook(g.mustRepo(fullName), id)
	h.Active = active
	h.updated = time.Now().UTC().Truncate(time.Second)
}

// mustHook returns a hook for an accessor, failing the test when it does
// not exist. g.mu must be held.
func (g *GitHub) mustHook(repo *ghRepo, id string) *ghHook {
	i := slices.IndexFunc(repo.hooks, func(h *ghHook) bool { return h.ID == id })
	if i < 0 {
		g.t.Fatalf("vcsfake: GitHub repository %q has no hook %q", repo.fullName, id)
	}
	return repo.hooks[i]
}

// AddHookDelivery records a delivery attempt of the hook as GitHub would
// have made it, without sending anything, and returns it with its ID (and
// any GUID, DeliveredAt, Status and Header left empty filled in).
func (g *GitHub) AddHookDelivery(fullName, hookID string, d HookDeliveryRecord) HookDeliveryRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	repo := g.mustRepo(fullName)
	h := g.mustHook(repo, hookID)
	d = d.clone()
	if d.GUID == "" {
		d.GUID = newGUID()
	}
	if d.Header == nil {
		d.Header = newOutgoing(repo, h, d.GUID, d.Event, d.Payload).header
	}
	return g.record(hookID, d)
}

// FailedDelivery records that GitHub delivered payload as event guid to
// the hook now and got status (0: could not connect), without sending
// anything: a delivery forgelink missed, for the sweep to redeliver.
func (g *GitHub) FailedDelivery(fullName, hookID, guid, event string, payload []byte, status int) HookDeliveryRecord {
	return g.AddHookDelivery(fullName, hookID, HookDeliveryRecord{GUID: guid, Event: event, Payload: payload, StatusCode: status})
}

// Deliver delivers payload as event to the hook now, as GitHub does when
// the event happens: it POSTs to the hook's URL, signed with its secret,
// waits for the answer (at most GitHubDeliveryTimeout) and records the
// attempt, which it returns. The hook's active flag is not consulted.
func (g *GitHub) Deliver(fullName, hookID, event string, payload []byte) HookDeliveryRecord {
	g.mu.Lock()
	repo := g.mustRepo(fullName)
	o := newOutgoing(repo, g.mustHook(repo, hookID), newGUID(), event, payload)
	g.mu.Unlock()
	d := o.send()
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.record(hookID, d)
}

// HookDeliveries returns the hook's delivery attempts newest first, as
// GitHub lists them.
func (g *GitHub) HookDeliveries(fullName, hookID string) []HookDeliveryRecord {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.mustHook(g.mustRepo(fullName), hookID)
	var out []HookDeliveryRecord
	for _, d := range g.sortedDeliveries(hookID) {
		out = append(out, d.clone())
	}
	return out
}

// Redeliveries returns the GUIDs that POST
// /repos/{o}/{r}/hooks/{id}/deliveries/{id}/attempts redelivered in the
// repository, oldest first; a GUID redelivered twice appears twice.
func (g *GitHub) Redeliveries(fullName string) []string {
	g.mu.Lock()
	defer g.mu.Unlock()
	return slices.Clone(g.mustRepo(fullName).redelivered)
}

// record stores d as the hook's newest attempt and returns a copy with its
// id. g.mu is held.
func (g *GitHub) record(hookID string, d HookDeliveryRecord) HookDeliveryRecord {
	d.ID = strconv.FormatInt(g.id(), 10)
	if d.DeliveredAt.IsZero() {
		d.DeliveredAt = time.Now()
	}
	d.DeliveredAt = d.DeliveredAt.UTC().Truncate(time.Second)
	if d.Status == "" {
		d.Status = deliveryStatus(d.StatusCode)
	}
	g.deliveries[hookID] = append(g.deliveries[hookID], &d)
	return d.clone()
}

// deliveryStatus is GitHub's words for a delivery's outcome.
func deliveryStatus(code int) string {
	switch {
	case code == 0:
		return "failed to connect to host"
	case code >= 200 && code <= 299:
		return "OK"
	}
	return "Invalid HTTP Response: " + strconv.Itoa(code)
}

// sortedDeliveries returns the hook's attempts newest first: by
// delivered_at, then by id. g.mu is held.
func (g *GitHub) sortedDeliveries(hookID string) []*HookDeliveryRecord {
	ds := slices.Clone(g.deliveries[hookID])
	slices.SortStableFunc(ds, func(a, b *HookDeliveryRecord) int {
		if c := b.DeliveredAt.Compare(a.DeliveredAt); c != 0 {
			return c
		}
		return cmp.Compare(mustInt(b.ID), mustInt(a.ID))
	})
	return ds
}

// deliveriesRoute answers /repos/{o}/{r}/hooks/{id}/deliveries[/...].
// g.mu is held.
func (g *GitHub) deliveriesRoute(r *http.Request, repo *ghRepo, h *ghHook, s []string) *response {
	find := func(id string) *HookDeliveryRecord {
		for _, d := range g.deliveries[h.ID] {
			if d.ID == id {
				return d
			}
		}
		return nil
	}
	switch {
	case len(s) == 0 && r.Method == http.MethodGet:
		return g.listDeliveries(r, repo, h)
	case len(s) == 1 && r.Method == http.MethodGet:
		if d := find(s[0]); d != nil {
			return jsonResponse(http.StatusOK, deliveryDetailJSON(repo, d))
		}
	case len(s) == 2 && s[1] == "attempts" && r.Method == http.MethodPost:
		if d := find(s[0]); d != nil {
			return g.redeliver(repo, h, d)
		}
	}
	return jsonResponse(http.StatusNotFound, ghNotFound)
}

// listDeliveries answers a page of the hook's deliveries, newest first,
// with GitHub's cursor pagination: the Link header's rel="next" carries
// an opaque cursor ("v1_" and the id of the next page's first attempt),
// which stays right when newer deliveries arrive between pages.
func (g *GitHub) listDeliveries(r *http.Request, repo *ghRepo, h *ghHook) *response {
	q := r.URL.Query()
	per, err := strconv.Atoi(q.Get("per_page"))
	if err != nil || per <= 0 {
		per = 30
	}
	per = min(per, 100)
	ds := g.sortedDeliveries(h.ID)
	lo := 0
	if c := q.Get("cursor"); c != "" {
		lo = slices.IndexFunc(ds, func(d *HookDeliveryRecord) bool { return "v1_"+d.ID == c })
		if lo < 0 {
			return jsonResponse(http.StatusUnprocessableEntity, ghValidation([]map[string]string{{
				"resource": "HookDelivery", "code": "invalid", "field": "cursor", "message": "cursor is invalid",
			}}))
		}
	}
	hi := min(lo+per, len(ds))
	items := make([]any, 0, hi-lo)
	for _, d := range ds[lo:hi] {
		items = append(items, deliveryJSON(repo, d))
	}
	resp := jsonResponse(http.StatusOK, items)
	if hi < len(ds) {
		v := url.Values{"cursor": {"v1_" + ds[hi].ID}, "per_page": {strconv.Itoa(per)}}
		next := url.URL{Scheme: "http", Host: r.Host, Path: r.URL.Path, RawQuery: v.Encode()}
		resp.header = http.Header{"Link": {"<" + next.String() + `>; rel="next"`}}
	}
	return resp
}

func deliveryJSON(repo *ghRepo, d *HookDeliveryRecord) map[string]any {
	var action any
	var p struct {
		Action *string `json:"action"`
	}
	if json.Unmarshal(d.Payload, &p) == nil && p.Action != nil {
		action = *p.Action
	}
	return map[string]any{
		"id":              mustInt(d.ID),
		"guid":            d.GUID,
		"delivered_at":    d.DeliveredAt.Format(time.RFC3339),
		"redelivery":      d.Redelivery,
		"duration":        0.05,
		"status":          d.Status,
		"status_code":     d.StatusCode,
		"event":           d.Event,
		"action":          action,
		"installation_id": nil,
		"repository_id":   repo.id,
		"throttled_at":    nil,
	}
}

// deliveryDetailJSON is GET .../deliveries/{id}: the list item with the
// request that was sent.
func deliveryDetailJSON(repo *ghRepo, d *HookDeliveryRecord) map[string]any {
	out := deliveryJSON(repo, d)
	headers := map[string]string{}
	for k := range d.Header {
		headers[k] = d.Header.Get(k)
	}
	var payload any
	if json.Valid(d.Payload) {
		payload = json.RawMessage(d.Payload)
	} else if d.Payload != nil {
		payload = string(d.Payload)
	}
	out["url"] = ""
	out["request"] = map[string]any{"headers": headers, "payload": payload}
	out["response"] = map[string]any{"headers": map[string]string{}, "payload": nil}
	return out
}

// redeliver answers POST .../deliveries/{id}/attempts. It really
// redelivers, synchronously, before answering 202 (GitHub answers first
// and delivers soon after; doing it first keeps tests deterministic): the
// stored payload goes to the hook's current URL, signed with its current
// secret, under the same GUID, and the attempt is recorded with
// redelivery true and the status it got. The POST is made after g.mu is
// released, as the receiver may call the fake. g.mu is held.
func (g *GitHub) redeliver(repo *ghRepo, h *ghHook, d *HookDeliveryRecord) *response {
	o := newOutgoing(repo, h, d.GUID, d.Event, d.Payload)
	o.redelivery = true
	hookID, guid := h.ID, d.GUID
	return &response{then: func() *response {
		rec := o.send()
		g.mu.Lock()
		defer g.mu.Unlock()
		g.record(hookID, rec)
		repo.redelivered = append(repo.redelivered, guid)
		return jsonResponse(http.StatusAccepted, map[string]any{})
	}}
}

// outgoing is a webhook delivery about to be sent, prepared while the
// fake's lock is held.
type outgoing struct {
	url        string
	insecure   bool
	header     http.Header
	body       []byte
	record     HookDeliveryRecord
	redelivery bool
}

// newOutgoing prepares the delivery of payload as event guid to h, as
// GitHub sends it: JSON, or "payload=<JSON>" form-encoded for a form
// hook, with the event headers and, when the hook has a secret,
// X-Hub-Signature-256 (and the legacy SHA-1 X-Hub-Signature) over the
// body.
func newOutgoing(repo *ghRepo, h *ghHook, guid, event string, payload []byte) *outgoing {
	body, ct := slices.Clone(payload), "application/json"
	if h.ContentType == "form" {
		body, ct = []byte("payload="+url.QueryEscape(string(payload))), "application/x-www-form-urlencoded"
	}
	hdr := http.Header{}
	hdr.Set("User-Agent", "GitHub-Hookshot/vcsfake")
	hdr.Set("Content-Type", ct)
	hdr.Set("X-GitHub-Event", event)
	hdr.Set("X-GitHub-Delivery", guid)
	hdr.Set("X-GitHub-Hook-ID", h.ID)
	hdr.Set("X-GitHub-Hook-Installation-Target-Type", "repository")
	hdr.Set("X-GitHub-Hook-Installation-Target-ID", strconv.FormatInt(repo.id, 10))
	if h.Secret != "" {
		hdr.Set("X-Hub-Signature", "sha1="+hmacHex(sha1.New, h.Secret, body))
		hdr.Set("X-Hub-Signature-256", "sha256="+hmacHex(sha256.New, h.Secret, body))
	}
	return &outgoing{
		url: h.URL, insecure: h.insecureSSL == "1", header: hdr, body: body,
		record: HookDeliveryRecord{GUID: guid, Event: event, Payload: slices.Clone(payload), Header: hdr.Clone()},
	}
}

func hmacHex(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// send POSTs the delivery with a plain client (no redirects followed, TLS
// verified unless the hook's insecure_ssl is "1") and returns the attempt
// to record: the receiver's status, or 0 when it could not be reached or
// did not answer within GitHubDeliveryTimeout.
func (o *outgoing) send() HookDeliveryRecord {
	d := o.record
	d.Redelivery = o.redelivery
	d.DeliveredAt = time.Now()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	if o.insecure {
		tr.TLSClientConfig = &tls.Config{InsecureSkipVerify: true}
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{
		Transport:     tr,
		Timeout:       GitHubDeliveryTimeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	req, err := http.NewRequest(http.MethodPost, o.url, strings.NewReader(string(o.body)))
	if err != nil {
		return d
	}
	req.Header = o.header.Clone()
	resp, err := hc.Do(req)
	if err != nil {
		return d
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	d.StatusCode = resp.StatusCode
	return d
}

// newGUID returns a delivery GUID as GitHub writes them: a UUID without
// braces.
func newGUID() string { return strings.Trim(newUUID(), "{}") }
