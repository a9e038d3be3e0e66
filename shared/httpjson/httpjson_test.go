package httpjson_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"forgelink/shared/forgelink"
	"forgelink/shared/httpjson"
)

// reportBody is a request body as the HTTP functions decode them.
type reportBody struct {
	Meta      *struct{ A int } `json:"meta,omitempty"`
	Tags      *[2]string       `json:"tags,omitempty"`
	Count     int              `json:"count,omitempty"`
	State     string           `json:"state"`
	Workflow  string           `json:"workflow"`
	TargetURL string           `json:"target_url"`
}

// TestDecodeStrictNotAnObject: a body that is JSON but not an object
// failed json's type check with no field, and the old DecodeStrict
// answered `field "" must be httpjson_test.reportBody, not array` - the
// Go type name of the handler's struct, in a 400 meant for the client.
func TestDecodeStrictNotAnObject(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`[1]`, "body must be a JSON object, not array"},
		{`[]`, "body must be a JSON object, not array"},
		{`"x"`, "body must be a JSON object, not string"},
		{`3`, "body must be a JSON object, not number"},
		{` -2.5e3 `, "body must be a JSON object, not number"},
		{`true`, "body must be a JSON object, not bool"},
	} {
		t.Run(tc.body, func(t *testing.T) {
			var v reportBody
			err := httpjson.DecodeStrict([]byte(tc.body), &v)
			if forgelink.KindOf(err) != forgelink.Invalid || forgelink.MessageOf(err) != tc.want {
				t.Errorf("DecodeStrict(%s) = %v (message %q), want Invalid %q", tc.body, err, forgelink.MessageOf(err), tc.want)
			}
			for _, leak := range []string{"reportBody", "httpjson", "struct", `field ""`} {
				if strings.Contains(err.Error(), leak) {
					t.Errorf("DecodeStrict(%s) = %q names %q", tc.body, err, leak)
				}
			}
			// Into a map, as a handler with free-form bodies decodes.
			var m map[string]any
			if err := httpjson.DecodeStrict([]byte(tc.body), &m); forgelink.MessageOf(err) != tc.want {
				t.Errorf("DecodeStrict(%s) into a map = %v, want %q", tc.body, err, tc.want)
			}
		})
	}

	// Through Read and Error, the client sees the message with a 400.
	r := httptest.NewRequest(http.MethodPost, "/report", strings.NewReader(`[1]`))
	w := httptest.NewRecorder()
	var v reportBody
	err := httpjson.Read(w, r, 1<<10, &v, false)
	if httpjson.StatusOf(err) != http.StatusBadRequest || forgelink.MessageOf(err) != "body must be a JSON object, not array" {
		t.Errorf("Read([1]) = %v (HTTP %d), want 400 with the plain message", err, httpjson.StatusOf(err))
	}
}

// TestDecodeStrictFieldErrors: a wrong field type names the field and the
// JSON it takes (never a Go type), and an object still decodes.
func TestDecodeStrictFieldErrors(t *testing.T) {
	for _, tc := range []struct{ body, want string }{
		{`{"state":3}`, `field "state" must be a string, not number`},
		{`{"meta":3}`, `field "meta" must be an object, not number`},
		{`{"tags":{}}`, `field "tags" must be an array, not object`},
		{`{"count":"x"}`, `field "count" must be an integer, not string`},
		{`{"state":"running","extra":1}`, `invalid JSON: json: unknown field "extra"`},
		{`{"state":"running"} {}`, "invalid JSON: data after the object"},
		{``, "empty body: want a JSON object"},
	} {
		var v reportBody
		err := httpjson.DecodeStrict([]byte(tc.body), &v)
		if forgelink.KindOf(err) != forgelink.Invalid || forgelink.MessageOf(err) != tc.want {
			t.Errorf("DecodeStrict(%s) = %v (message %q), want Invalid %q", tc.body, err, forgelink.MessageOf(err), tc.want)
		}
	}
	var v reportBody
	if err := httpjson.DecodeStrict([]byte(`{"state":"running","target_url":"https://ci.example.com/1"}`), &v); err != nil ||
		v != (reportBody{State: "running", TargetURL: "https://ci.example.com/1"}) {
		t.Errorf("DecodeStrict(object) = %+v, %v", v, err)
	}
}
