package intake

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	gogithub "github.com/google/go-github/v60/github"

	"forgelink/shared/ghhook"
)

// The intake benchmarks compare forgelink's verify+parse of a real push
// payload with the floor a go-github user pays for the same work
// (ValidatePayload + ParseWebHook), in the same run: report the ratio.

func BenchmarkFloorGoGitHubValidateParse(b *testing.B) {
	body := corpus(b, "github/push.json")
	sig := sign(ghSecret, body)
	r := httptest.NewRequest(http.MethodPost, "/hooks/github/"+ghHook, nil)
	r.Header.Set("Content-Type", "application/json")
	r.Header.Set("X-Hub-Signature-256", sig)
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		payload, err := gogithub.ValidatePayload(r, []byte(ghSecret))
		if err != nil {
			b.Fatal(err)
		}
		if _, err := gogithub.ParseWebHook("push", payload); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyParse(b *testing.B) {
	body := corpus(b, "github/push.json")
	sig := sign(ghSecret, body)
	r := httptest.NewRequest(http.MethodPost, "/hooks/github/"+ghHook, nil)
	rd := bytes.NewReader(body)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		rd.Reset(body)
		r.Body = io.NopCloser(rd)
		payload, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, MaxWebhookBody))
		if err != nil {
			b.Fatal(err)
		}
		if err := ghhook.VerifySignature(payload, sig, []byte(ghSecret)); err != nil {
			b.Fatal(err)
		}
		if _, err := ghhook.ParseEvent("push", payload); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkIntakeBolt is the whole intake handler on the embedded store:
// project lookup, secret unsealing, verify, parse, conditional store,
// enqueue, state update and the JSON answer.
func BenchmarkIntakeBolt(b *testing.B) {
	env := newIntakeEnvB(b)
	body := corpus(b, "github/push.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		r := ghDelivery("/hooks/github/"+ghHook, "push", fmt.Sprint("bench-", i), body, ghSecret)
		w := httptest.NewRecorder()
		env.h.ServeHTTP(w, r)
		if w.Code != http.StatusAccepted {
			b.Fatalf("status %d: %s", w.Code, w.Body)
		}
	}
}
