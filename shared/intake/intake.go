package intake

import (
	"context"
	"fmt"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"forgelink/shared/bbhook"
	"forgelink/shared/forgelink"
	"forgelink/shared/ghhook"
	"forgelink/shared/httpjson"
	"forgelink/shared/metrics"
)

// MaxWebhookBody is the largest delivery intake reads: GitHub caps payloads
// at 25 MB.
const MaxWebhookBody = 25 << 20

// provider is what intake needs to know about one VCS's webhooks.
type provider struct {
	vcs             forgelink.VCS
	eventHeader     string
	deliveryHeader  string
	signatureHeader string
	pings           []string
	verify          func(body []byte, signature string, secrets ...[]byte) error
	parse           func(event string, body []byte) ([]forgelink.Event, error)
	fromForm        func(body []byte) ([]byte, error) // nil: form bodies are refused
}

var providers = map[string]*provider{
	"github": {
		vcs:             forgelink.GitHub,
		eventHeader:     ghhook.EventHeader,
		deliveryHeader:  ghhook.DeliveryHeader,
		signatureHeader: ghhook.SignatureHeader,
		pings:           []string{"ping"},
		verify:          ghhook.VerifySignature,
		parse:           ghhook.ParseEvent,
		fromForm:        ghhook.PayloadFromForm,
	},
	"bitbucket": {
		vcs:             forgelink.Bitbucket,
		eventHeader:     bbhook.EventHeader,
		deliveryHeader:  bbhook.DeliveryHeader,
		signatureHeader: bbhook.SignatureHeader,
		pings:           []string{"diagnostics:ping"},
		verify:          bbhook.VerifySignature,
		parse:           bbhook.ParseEvent,
	},
}

// Intake receives webhook deliveries: it verifies each against its
// project's secret, drops duplicates, stores it and enqueues it for the
// trigger function. It never calls a VCS API and starts no goroutine that
// outlives the request.
type Intake struct {
	Store  Store
	Sealer forgelink.Sealer
	// Inbox stores and queues accepted deliveries in one durable step.
	Inbox forgelink.Inbox
	Now   func() time.Time
	Log   *slog.Logger
	// Metrics counts deliveries by outcome; nil: metrics.Default.
	Metrics *metrics.Registry
}

// Store is what intake reads: the project a hook id belongs to, and a
// duplicate delivery's state.
type Store interface {
	GetProjectByHookID(ctx context.Context, hookID string) (*forgelink.Project, error)
	GetDelivery(ctx context.Context, hookID, id string) (*forgelink.Delivery, error)
}

// Handler serves POST /hooks/github/{hookID} and POST /hooks/bitbucket/{hookID}.
func (in *Intake) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /hooks/{vcs}/{hookID}", in.receive)
	mux.HandleFunc("POST /hooks/{vcs}", func(w http.ResponseWriter, r *http.Request) {
		httpjson.Write(w, http.StatusNotFound, map[string]string{"message": "post to the hook URL that follow installed: /hooks/" + r.PathValue("vcs") + "/{hook-id}"})
	})
	mux.HandleFunc("/hooks/{vcs}/{hookID}", httpjson.MethodNotAllowed("POST"))
	mux.HandleFunc("/", httpjson.NotFound)
	return mux
}

// receive handles one delivery. The order matters: the project (and so the
// secret) is chosen from the URL, the body is read through a limit, and the
// signature is verified before a byte of the body is parsed.
func (in *Intake) receive(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, ok := providers[r.PathValue("vcs")]
	if !ok {
		httpjson.NotFound(w, r)
		return
	}
	hookID := r.PathValue("hookID")
	deliveryID := r.Header.Get(p.deliveryHeader)
	log := in.log().With("delivery", deliveryID, "hook_id", hookID, "vcs", string(p.vcs))
	// Every answer from here on is counted once: 4xx rejected, 5xx failed,
	// unless a branch below names the outcome.
	outcome := metrics.Rejected
	defer func() { in.Metrics.Delivery(string(p.vcs), outcome) }()
	fail := func(err error) {
		if httpjson.StatusOf(err) >= 500 {
			outcome = metrics.Failed
		}
		httpjson.Error(w, r, log, err)
	}
	// Each of these headers is read once: a second copy (a proxy's, or
	// an attacker's beside a replayed signature) would be ignored, so a
	// request that carries one is refused rather than half-read.
	for _, h := range []string{p.signatureHeader, p.eventHeader, p.deliveryHeader} {
		if len(r.Header.Values(h)) > 1 {
			fail(forgelink.Errorf(forgelink.Invalid, "send one %s header, not %d", h, len(r.Header.Values(h))))
			return
		}
	}

	project, err := in.Store.GetProjectByHookID(ctx, hookID)
	if err == nil && project.Slug.VCS != p.vcs {
		err = forgelink.Errorf(forgelink.NotFound, "unknown hook")
	}
	if err != nil {
		if forgelink.KindOf(err) == forgelink.NotFound {
			err = forgelink.E(forgelink.NotFound, "unknown hook: the repository is not followed", err)
		}
		fail(err)
		return
	}
	log = log.With("project", project.Slug.String())

	body, err := httpjson.ReadLimited(w, r, MaxWebhookBody)
	if err != nil {
		fail(err)
		return
	}
	secrets, err := in.secrets(ctx, project)
	if err != nil {
		fail(err)
		return
	}
	if err := p.verify(body, r.Header.Get(p.signatureHeader), secrets...); err != nil {
		fail(err)
		return
	}

	payload, err := jsonPayload(p, r.Header.Get("Content-Type"), body)
	if err != nil {
		fail(err)
		return
	}
	event := r.Header.Get(p.eventHeader)
	if event == "" {
		fail(forgelink.Errorf(forgelink.Invalid, "missing %s header", p.eventHeader))
		return
	}
	for _, ping := range p.pings {
		if event == ping {
			// A ping is answered without a delivery id, but its body
			// must be JSON like any other event's.
			if _, err := p.parse(event, payload); err != nil {
				httpjson.Error(w, r, log, err)
				return
			}
			log.InfoContext(ctx, "ping")
			outcome = metrics.Ignored
			httpjson.Write(w, http.StatusOK, map[string]any{"ping": true})
			return
		}
	}
	if deliveryID == "" {
		fail(forgelink.Errorf(forgelink.Invalid, "missing %s header", p.deliveryHeader))
		return
	}
	if len(deliveryID) > 200 {
		fail(forgelink.Errorf(forgelink.Invalid, "%s header is too long", p.deliveryHeader))
		return
	}
	// Stores key deliveries by this id: DynamoDB would turn invalid UTF-8
	// into U+FFFD (two ids, one key) where bbolt keeps the bytes.
	if !utf8.ValidString(deliveryID) || strings.IndexFunc(deliveryID, unicode.IsControl) >= 0 {
		httpjson.Error(w, r, log, forgelink.Errorf(forgelink.Invalid, "%s header must be printable text", p.deliveryHeader))
		return
	}
	events, err := p.parse(event, payload)
	if err != nil {
		fail(err)
		return
	}
	log = log.With("event", event)
	if len(events) == 0 {
		log.InfoContext(ctx, "ignored: nothing to build")
		outcome = metrics.Ignored
		httpjson.Write(w, http.StatusOK, map[string]any{"ignored": true, "event": event})
		return
	}

	now := in.now()
	d := &forgelink.Delivery{
		HookID:     hookID,
		ID:         deliveryID,
		Project:    project.Slug.String(),
		Event:      event,
		Events:     events,
		State:      forgelink.Received,
		ReceivedAt: now,
		ExpiresAt:  now.Add(forgelink.DeliveryTTL),
	}
	status, resp, err := in.accept(ctx, d, log)
	if err != nil {
		fail(err)
		return
	}
	outcome = metrics.Duplicate
	if status == http.StatusAccepted {
		outcome = metrics.Accepted
	}
	httpjson.Write(w, status, resp)
}

// accept hands d to the inbox, which stores and queues it durably. A
// duplicate is answered 200 and creates nothing; one that was accepted
// but not yet decided (its queueing failed, or it died) is queued again,
// so the VCS's redelivery recovers it.
func (in *Intake) accept(ctx context.Context, d *forgelink.Delivery, log *slog.Logger) (int, any, error) {
	err := in.Inbox.Accept(ctx, d)
	if err == nil {
		log.InfoContext(ctx, "delivery accepted", "events", len(d.Events))
		return http.StatusAccepted, map[string]any{"delivery": d.ID}, nil
	}
	if forgelink.KindOf(err) != forgelink.Conflict {
		if forgelink.KindOf(err) == forgelink.Transient {
			return 0, nil, forgelink.E(forgelink.Transient, "could not queue the delivery; redeliver it", err)
		}
		return 0, nil, fmt.Errorf("intake: accept delivery: %w", err)
	}
	prev, err := in.Store.GetDelivery(ctx, d.HookID, d.ID)
	if err != nil {
		return 0, nil, fmt.Errorf("intake: read duplicate delivery: %w", err)
	}
	if prev.State == forgelink.Decided {
		log.InfoContext(ctx, "duplicate delivery dropped")
		return http.StatusOK, map[string]any{"duplicate": true, "delivery": d.ID}, nil
	}
	if err := in.Inbox.Requeue(ctx, prev); forgelink.KindOf(err) == forgelink.Conflict {
		// Waiting or being evaluated right now: nothing to do.
		log.InfoContext(ctx, "redelivery of a delivery in the queue; nothing to do")
		return http.StatusOK, map[string]any{"duplicate": true, "delivery": d.ID}, nil
	} else if err != nil {
		return 0, nil, forgelink.E(forgelink.Transient, "could not queue the delivery; redeliver it", err)
	}
	log.InfoContext(ctx, "redelivery of an undecided delivery; queued again", "state", string(prev.State))
	return http.StatusOK, map[string]any{"duplicate": true, "delivery": d.ID, "requeued": true}, nil
}

// secrets opens the project's webhook secrets that are still valid: the
// current one and, during a rotation's grace period, the previous one.
func (in *Intake) secrets(ctx context.Context, p *forgelink.Project) ([][]byte, error) {
	now := in.now()
	out := make([][]byte, 0, len(p.Secrets))
	for _, s := range p.Secrets {
		if !s.ExpiresAt.IsZero() && now.After(s.ExpiresAt) {
			continue
		}
		b, err := in.Sealer.Open(ctx, s.Sealed, p.Slug.AAD(forgelink.PurposeWebhookSecret))
		if err != nil {
			return nil, fmt.Errorf("intake: open webhook secret of %s: %w", p.Slug, err)
		}
		out = append(out, b)
	}
	return out, nil
}

// jsonPayload returns the JSON payload of a delivery body by content type.
func jsonPayload(p *provider, contentType string, body []byte) ([]byte, error) {
	mt, _, err := mime.ParseMediaType(contentType)
	if contentType == "" {
		mt, err = "application/json", nil
	}
	if err != nil {
		return nil, forgelink.Errorf(forgelink.Invalid, "unreadable Content-Type %q", contentType)
	}
	switch {
	case mt == "application/json":
		return body, nil
	case mt == "application/x-www-form-urlencoded" && p.fromForm != nil:
		return p.fromForm(body)
	}
	return nil, forgelink.Errorf(forgelink.Invalid, "unsupported Content-Type %q: configure the hook to send application/json", mt)
}

func (in *Intake) now() time.Time {
	if in.Now != nil {
		return in.Now().UTC()
	}
	return time.Now().UTC()
}

func (in *Intake) log() *slog.Logger {
	if in.Log != nil {
		return in.Log
	}
	return slog.Default()
}
