package intake

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"

	"forgelink/shared/forgelink"
)

// fuzzInbox keeps the one delivery an exec accepted: the fuzz target
// checks that intake accepts exactly the 202s, and a million executions
// must not grow a store.
type fuzzInbox struct {
	mu       sync.Mutex
	accepted []*forgelink.Delivery
}

func (in *fuzzInbox) Accept(ctx context.Context, d *forgelink.Delivery) error {
	in.mu.Lock()
	defer in.mu.Unlock()
	in.accepted = append(in.accepted, d)
	return nil
}

func (in *fuzzInbox) Requeue(ctx context.Context, d *forgelink.Delivery) error {
	return forgelink.Errorf(forgelink.Internal, "fuzz: no delivery is accepted twice")
}

func (in *fuzzInbox) take() []*forgelink.Delivery {
	in.mu.Lock()
	defer in.mu.Unlock()
	out := in.accepted
	in.accepted = nil
	return out
}

// fuzzNames are the event names a fuzzed delivery goes under; past their
// end the fuzzer's own name is used.
var fuzzNames = map[bool][]string{
	false: {"push", "pull_request", "ping", "create", "issues", "workflow_run", ""},
	true:  {"repo:push", "pullrequest:created", "pullrequest:fulfilled", "diagnostics:ping", "repo:fork", "issue:created", ""},
}

var fuzzActed = map[string]bool{
	"push": true, "pull_request": true,
	"repo:push": true, "pullrequest:created": true, "pullrequest:updated": true, "pullrequest:fulfilled": true, "pullrequest:rejected": true,
}

var fuzzContentTypes = []string{"application/json", "application/x-www-form-urlencoded", "", "application/json; charset=utf-8", "text/plain", "application/json; =bad"}

// FuzzIntake sends fuzzed deliveries through the intake handler - the
// whole verify-then-parse path of both hooks, with fuzzed event names,
// content types, delivery ids, bodies and signatures (or, with signIt set,
// the right signature for the body). Never a 5xx; a bad signature is 401;
// a delivery is accepted (handed to the inbox) exactly when the answer is
// 202, and then it is an event forgelink acts on with complete events; a
// 200 is a ping or {"ignored": true, "event": <the header's event>}; every
// 4xx has a message.
//
//	go test -run '^$' -fuzz '^FuzzIntake$' -fuzztime 30s -fuzzminimizetime 5s ./shared/intake
func FuzzIntake(f *testing.F) {
	for _, s := range []struct {
		bitbucket bool
		which     uint8
		file      string
	}{
		{false, 0, "github/push.json"}, {false, 1, "github/pull_request.opened.json"},
		{false, 2, "github/ping.json"}, {false, 3, "github/create.tag.json"},
		{true, 0, "bitbucket/repo-push.json"}, {true, 1, "bitbucket/pullrequest-created.json"},
		{true, 2, "bitbucket/pullrequest-fulfilled.json"},
	} {
		f.Add(s.bitbucket, s.which, "", uint8(0), corpus(f, s.file), true, "", "d-1")
	}
	push := corpus(f, "github/push.json")
	f.Add(false, uint8(0), "", uint8(1), []byte("payload="+url.QueryEscape(string(push))), true, "", "d-2")
	f.Add(false, uint8(4), "", uint8(0), []byte(`{"action":"opened"}`), true, "", "d-3")
	f.Add(true, uint8(4), "", uint8(0), []byte(`{"actor":{}}`), true, "", "d-4")
	f.Add(false, uint8(200), "check_suite", uint8(3), []byte(`{}`), true, "", "d-5")
	f.Add(false, uint8(200), "issues<script>", uint8(0), []byte(`{}`), true, "", "d-6")
	f.Add(false, uint8(0), "", uint8(0), push, false, "sha256=00", "d-7")
	f.Add(true, uint8(0), "", uint8(4), []byte(`{}`), true, "", "")

	env := newIntakeEnvB(f)
	inbox := &fuzzInbox{}
	h := (&Intake{Store: env.store, Sealer: env.sealer, Inbox: inbox, Log: slog.New(slog.NewTextHandler(io.Discard, nil))}).Handler()

	f.Fuzz(func(t *testing.T, bitbucket bool, which uint8, name string, ct uint8, body []byte, signIt bool, signature, id string) {
		event := name
		if names := fuzzNames[bitbucket]; int(which) < len(names) {
			event = names[which]
		}
		path, secret, build := "/hooks/github/"+ghHook, ghSecret, ghDelivery
		if bitbucket {
			path, secret, build = "/hooks/bitbucket/"+bbHook, bbSecret, bbDelivery
		}
		r := build(path, "", "", body, "")
		// Header values the fuzzer makes up must be ones net/http could
		// have received: no line breaks or NULs.
		for _, v := range []string{event, signature, id} {
			if strings.ContainsAny(v, "\r\n\x00") {
				return
			}
		}
		set := func(key, value string) {
			if value != "" {
				r.Header.Set(key, value)
			} else {
				r.Header.Del(key)
			}
		}
		eventHeader, idHeader, sigHeader := "X-GitHub-Event", "X-GitHub-Delivery", "X-Hub-Signature-256"
		if bitbucket {
			eventHeader, idHeader, sigHeader = "X-Event-Key", "X-Request-UUID", "X-Hub-Signature"
		}
		valid := sign(secret, body)
		if signIt {
			signature = valid
		}
		set(eventHeader, event)
		set(idHeader, id)
		set(sigHeader, signature)
		set("Content-Type", fuzzContentTypes[int(ct)%len(fuzzContentTypes)])

		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		status := w.Code
		var out map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &out); err != nil {
			t.Fatalf("%d: answer is not JSON: %q", status, w.Body)
		}
		accepted := inbox.take()
		signedRight := strings.HasPrefix(signature, "sha256=") && strings.EqualFold(signature, valid)
		switch {
		case status >= 500:
			t.Fatalf("%s %q: %d %v", event, body, status, out)
		case !signedRight && status != http.StatusUnauthorized:
			t.Fatalf("signature %q (right: %q): %d %v, want 401", signature, valid, status, out)
		case (status == http.StatusAccepted) != (len(accepted) == 1) || len(accepted) > 1:
			t.Fatalf("%d %v, but the inbox got %d deliveries", status, out, len(accepted))
		case status == http.StatusAccepted:
			d := accepted[0]
			if !fuzzActed[event] || d.Event != event || d.ID != id || d.HookID == "" || len(d.Events) == 0 || out["delivery"] != id {
				t.Fatalf("accepted %+v for event %q id %q, answered %v", d, event, id, out)
			}
			for _, e := range d.Events {
				if e.Type == "" || (e.Branch == "") == (e.Tag == "") || e.Type == forgelink.PullRequest && (e.PR == nil || e.Revision == "") {
					t.Fatalf("accepted an incomplete event %+v", e)
				}
			}
		case status == http.StatusOK:
			if out["ping"] != true && (out["ignored"] != true || out["event"] != event) {
				t.Fatalf("%s: 200 %v, want a ping or {\"ignored\": true, \"event\": %q}", event, out, event)
			}
		case status >= 400:
			if msg, _ := out["message"].(string); msg == "" {
				t.Fatalf("%d without a message: %v", status, out)
			}
		default:
			t.Fatalf("%s: unexpected %d %v", event, status, out)
		}
		if status == http.StatusOK && !json.Valid(payloadOf(r.Header.Get("Content-Type"), body)) {
			t.Fatalf("%s: 200 %v for a payload that is not JSON: %q", event, out, body)
		}
	})
}

// payloadOf is the JSON payload of a body, as GitHub sends it under each
// content type; nil when there is none.
func payloadOf(contentType string, body []byte) []byte {
	if strings.HasPrefix(contentType, "application/x-www-form-urlencoded") {
		v, err := url.ParseQuery(string(body))
		if err != nil {
			return nil
		}
		return []byte(v.Get("payload"))
	}
	return bytes.Clone(body)
}
