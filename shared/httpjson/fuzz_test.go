package httpjson_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// fuzzBody has a field of every kind the API's request bodies use (the
// settings patch's *bool and *[]string, strings, numbers, a nested
// object) and some they might.
type fuzzBody struct {
	Advanced *struct {
		BuildPRsOnly *bool     `json:"build_prs_only"`
		Overrides    *[]string `json:"pr_only_branch_overrides"`
	} `json:"advanced"`
	Label    string            `json:"label"`
	Hostname *string           `json:"hostname"`
	Count    int64             `json:"count"`
	Size     uint8             `json:"size"`
	Ratio    float32           `json:"ratio"`
	Pair     [2]string         `json:"pair"`
	Labels   map[string]string `json:"labels"`
}

// goTypeNames are what a message must not show a client: forgelink's Go
// types. Clients know JSON.
var goTypeNames = []string{"int64", "uint8", "float32", "[]string", "*bool", "map[string]", "[2]string", "struct {", "httpjson", "fuzzBody"}

// FuzzDecodeStrict checks the decoder every JSON request body of the API
// goes through: no body panics; a refusal is Invalid with a message that
// names no Go type (unless the body itself holds that text); an accepted
// body is exactly one JSON object with known fields, which survives a
// round trip; and Read agrees with DecodeStrict.
//
//	go test -run '^$' -fuzz '^FuzzDecodeStrict$' -fuzztime 30s ./shared/httpjson
func FuzzDecodeStrict(f *testing.F) {
	for _, s := range []string{
		`{"advanced":{"build_prs_only":true,"pr_only_branch_overrides":["main","release/*"]}}`,
		`{"label":"laptop","hostname":"git.example.com","count":-3,"size":255,"ratio":1.5e3,"pair":["a","b"],"labels":{"k":"v"}}`,
		`{"advanced":null,"hostname":null}`,
		`{"count":1e400}`, `{"size":256}`, `{"pair":["a","b","c"]}`, `{"unknown":1}`, `{"label":"a"} {}`,
		`[]`, `"x"`, `null`, ``, `{`, "{\"label\":\"\xff\"}", `{"advanced":{"build_prs_only":"yes"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v fuzzBody
		err := httpjson.DecodeStrict(body, &v)

		r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
		var viaRead fuzzBody
		readErr := httpjson.Read(httptest.NewRecorder(), r, 1<<20, &viaRead, false)
		if (err == nil) != (readErr == nil) {
			t.Fatalf("DecodeStrict = %v but Read = %v", err, readErr)
		}

		if err != nil {
			if k := forgelink.KindOf(err); k != forgelink.Invalid {
				t.Fatalf("kind %v, want %v: %v", k, forgelink.Invalid, err)
			}
			msg := forgelink.MessageOf(err)
			if msg == "" {
				t.Fatalf("no message: %v", err)
			}
			for _, name := range goTypeNames {
				if strings.Contains(msg, name) && !bytes.Contains(body, []byte(name)) {
					t.Fatalf("message %q names the Go type %q", msg, name)
				}
			}
			if httpjson.StatusOf(err) != http.StatusBadRequest {
				t.Fatalf("StatusOf = %d, want 400", httpjson.StatusOf(err))
			}
			return
		}
		trimmed := bytes.TrimSpace(body)
		if !json.Valid(trimmed) || trimmed[0] != '{' && !bytes.Equal(trimmed, []byte("null")) {
			t.Fatalf("accepted %q, which is not one JSON object", body)
		}
		out, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("Marshal: %v", err)
		}
		var again fuzzBody
		if err := httpjson.DecodeStrict(out, &again); err != nil {
			t.Fatalf("the decoded value, encoded (%s), does not decode: %v", out, err)
		}
		if out2, _ := json.Marshal(again); !bytes.Equal(out, out2) {
			t.Fatalf("round trip changed the value: %s, then %s", out, out2)
		}
	})
}
