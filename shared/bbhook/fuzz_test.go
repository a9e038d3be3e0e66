package bbhook_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"forgelink/shared/bbhook"
	"forgelink/shared/forgelink"
)

// fuzzEvents are the event names FuzzVerifyParse delivers under: the ones
// forgelink acts on, ones it ignores, and names it must refuse.
var fuzzEvents = []string{"repo:push", "pullrequest:created", "pullrequest:updated", "pullrequest:fulfilled", "pullrequest:rejected", "repo:fork", "pullrequest:approved", "diagnostics:ping", "", "bad event", strings.Repeat("x", 65)}

// fuzzSign is the X-Hub-Signature value of body under secret.
func fuzzSign(secret, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
}

// FuzzVerifyParse is intake's order of work on a delivery: verify the
// signature over the exact bytes received, then parse the payload. A
// signature is accepted exactly when it is the body's HMAC under the
// secret; every refusal is Unauthorized; a verified body parses to
// complete events or to an Invalid error. With sign set the fuzzer's
// signature is replaced by the right one, so the parser sees bodies that
// get past the check.
//
//	go test -run '^$' -fuzz '^FuzzVerifyParse$' -fuzztime 30s -fuzzminimizetime 5s ./shared/bbhook
func FuzzVerifyParse(f *testing.F) {
	for i, event := range fuzzEvents[:7] {
		body, err := os.ReadFile(filepath.Join("..", "..", "testdata", "events", "bitbucket", strings.Replace(event, ":", "-", 1)+".json"))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(uint8(i), body, "", true)
	}
	secret := []byte("fuzz-secret")
	small := []byte(`{"push":{"changes":[{"new":{"type":"branch","name":"main","target":{"hash":"6dcb09b5b57875f334f61aebed695e2e4193db5e"}},"old":null}]}}`)
	f.Add(uint8(0), small, fuzzSign(secret, small), false)
	f.Add(uint8(0), small, strings.ToUpper(fuzzSign(secret, small)), false)
	f.Add(uint8(0), small, "sha1=0123456789012345678901234567890123456789", false)
	f.Add(uint8(1), []byte(`{"pullrequest":{"id":1,"source":{"branch":{"name":"f"},"commit":{"hash":"a"}},"destination":{"branch":{"name":"main"}}}}`), "", true)
	f.Add(uint8(7), []byte(`{}`), "", true)
	f.Add(uint8(8), []byte(`{}`), "sha256=", false)

	f.Fuzz(func(t *testing.T, which uint8, body []byte, signature string, sign bool) {
		event := fuzzEvents[int(which)%len(fuzzEvents)]
		want := fuzzSign(secret, body)
		if sign {
			signature = want
		}
		err := bbhook.VerifySignature(body, signature, secret)
		valid := strings.HasPrefix(signature, "sha256=") && strings.EqualFold(signature, want)
		if (err == nil) != valid {
			t.Fatalf("VerifySignature(%q) = %v; the right signature is %q", signature, err, want)
		}
		if err != nil {
			if k := forgelink.KindOf(err); k != forgelink.Unauthorized {
				t.Fatalf("VerifySignature: kind %v, want %v: %v", k, forgelink.Unauthorized, err)
			}
			return
		}
		if err := bbhook.VerifySignature(body, signature, nil, []byte("other"), secret); err != nil {
			t.Fatalf("VerifySignature with the secret last of three: %v", err)
		}
		if err := bbhook.VerifySignature(body, signature, []byte("other"), nil); err == nil {
			t.Fatal("VerifySignature accepted the body under other secrets")
		}

		got, err := bbhook.ParseEvent(event, body)
		if err != nil {
			if got != nil {
				t.Errorf("ParseEvent returned events and an error: %v, %v", got, err)
			}
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Fatalf("ParseEvent(%q): kind %v, want %v: %v", event, k, forgelink.Invalid, err)
			}
			return
		}
		if acts := event == "repo:push" || event == "pullrequest:created" || event == "pullrequest:updated" ||
			event == "pullrequest:fulfilled" || event == "pullrequest:rejected"; !acts && got != nil {
			t.Errorf("ParseEvent(%q) = %+v, want nothing to do", event, got)
		}
		for _, e := range got {
			if e.Type == "" || (e.Type == forgelink.PullRequest) != (e.PR != nil) || (e.Branch == "") == (e.Tag == "") {
				t.Errorf("ParseEvent(%q) = malformed event %+v", event, e)
			}
			if e.PR != nil && (e.PR.Number <= 0 || e.Revision == "" || e.PR.BaseBranch == "") {
				t.Errorf("ParseEvent(%q) = incomplete pull request %+v %+v", event, e, *e.PR)
			}
		}
	})
}
