package httpapi

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
	"time"
)

// The shapes CircleCI's API documentation gives for keys, as field → JSON
// type ("string", "bool", "null", "array", "object"). A CircleCI client
// decodes these fields; forgelink may add others.
var (
	// API v1.1 "List Checkout Keys" / "New Checkout Key" / "Get Checkout Key".
	circleV1CheckoutKey = map[string]string{
		"public_key": "string", "type": "string", "fingerprint": "string", "preferred": "bool", "time": "string",
	}
	// API v2 "Get all checkout keys" items / "Create a new checkout key".
	circleV2CheckoutKey = map[string]string{
		"public-key": "string", "type": "string", "fingerprint": "string", "preferred": "bool", "created-at": "string",
	}
	// API v2 lists.
	circleV2List = map[string]string{"items": "array", "next_page_token": "null"}
	// "Delete Checkout Key" (v1.1 and v2).
	circleMessage = map[string]string{"message": "string"}
	// API v2 "User Information" (/me).
	circleV2Me = map[string]string{"id": "string", "login": "string", "name": "string"}
)

var md5Fingerprint = regexp.MustCompile(`^([0-9a-f]{2}:){15}[0-9a-f]{2}$`)

func jsonType(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case bool:
		return "bool"
	case nil:
		return "null"
	case []any:
		return "array"
	case map[string]any:
		return "object"
	case float64:
		return "number"
	}
	return "?"
}

// checkShape checks that obj has every field of shape with its type.
func checkShape(t *testing.T, what string, obj map[string]any, shape map[string]string) {
	t.Helper()
	for field, typ := range shape {
		v, ok := obj[field]
		if !ok {
			t.Errorf("%s: no field %q (have %v)", what, field, obj)
			continue
		}
		if got := jsonType(v); got != typ {
			t.Errorf("%s: field %q is %s (%v), want %s", what, field, got, v, typ)
		}
	}
}

func checkCheckoutKey(t *testing.T, what string, obj map[string]any, v2 bool) {
	t.Helper()
	shape, types, timeField := circleV1CheckoutKey, []string{"deploy-key", "github-user-key"}, "time"
	if v2 {
		shape, types, timeField = circleV2CheckoutKey, []string{"deploy-key", "user-key"}, "created-at"
	}
	checkShape(t, what, obj, shape)
	typ, _ := obj["type"].(string)
	if !contains(types, typ) {
		t.Errorf("%s: type %q, want one of %q", what, typ, types)
	}
	if fp, _ := obj["fingerprint"].(string); !md5Fingerprint.MatchString(fp) {
		t.Errorf("%s: fingerprint %q is not MD5 colon hex", what, fp)
	}
	if ts, _ := obj[timeField].(string); ts != "" {
		if _, err := time.Parse(time.RFC3339, ts); err != nil {
			t.Errorf("%s: %s %q is not an ISO 8601 time: %v", what, timeField, ts, err)
		}
	}
	if pk, _ := obj[map[bool]string{false: "public_key", true: "public-key"}[v2]].(string); !strings.HasPrefix(pk, "ssh-") {
		t.Errorf("%s: public key %q is not an OpenSSH public key", what, pk)
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// circleRequest sends a request the way CircleCI's documentation shows it
// (curl with Content-Type and the Circle-Token header, or the circle-token
// query parameter) and decodes the JSON answer.
func (e *keysEnv) circleRequest(t *testing.T, method, path, body string, queryToken bool) (int, any) {
	t.Helper()
	var r *http.Request
	if body != "" {
		r = httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Content-Type", "application/json")
	} else {
		r = httptest.NewRequest(method, path, nil)
	}
	if queryToken {
		q := r.URL.Query()
		q.Set("circle-token", followerToken)
		r.URL.RawQuery = q.Encode()
	} else {
		r.Header.Set("Circle-Token", followerToken)
	}
	status, b := e.serve(t, r)
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("%s %s: answer is not JSON: %s", method, path, b)
	}
	return status, v
}

// TestKeysCircleCIShapes drives the key API with the requests and checks
// the answers against the field names and types of CircleCI's API v1.1 and
// v2 documentation.
func TestKeysCircleCIShapes(t *testing.T) {
	e := newKeysEnv(t)
	base1 := "/api/v1.1/project/github/octo-org/hello-world"
	base2 := "/api/v2/project/gh/octo-org/hello-world"

	// v1.1: POST {"type":"github-user-key"}, then {"type":"deploy-key"}.
	for _, typ := range []string{"github-user-key", "deploy-key"} {
		status, v := e.circleRequest(t, "POST", base1+"/checkout-key", `{"type":"`+typ+`"}`, false)
		if status != http.StatusCreated {
			t.Fatalf("POST checkout-key %s: %d %v", typ, status, v)
		}
		obj, _ := v.(map[string]any)
		checkCheckoutKey(t, "v1.1 new "+typ, obj, false)
		if obj["type"] != typ {
			t.Errorf("v1.1 new key type %v, want %s", obj["type"], typ)
		}
	}
	// v1.1 list: an array of checkout keys, exactly one preferred.
	status, v := e.circleRequest(t, "GET", base1+"/checkout-key", "", true)
	list, ok := v.([]any)
	if status != 200 || !ok || len(list) != 3 {
		t.Fatalf("v1.1 list: %d %v, want an array of 3", status, v)
	}
	preferred := 0
	var fingerprint string
	for i, item := range list {
		obj, _ := item.(map[string]any)
		checkCheckoutKey(t, "v1.1 list item", obj, false)
		if obj["preferred"] == true {
			preferred++
		}
		if i == len(list)-1 {
			fingerprint, _ = obj["fingerprint"].(string)
		}
	}
	if preferred != 1 {
		t.Errorf("v1.1 list: %d keys preferred, want 1", preferred)
	}
	// v1.1 get by fingerprint.
	status, v = e.circleRequest(t, "GET", base1+"/checkout-key/"+fingerprint, "", false)
	obj, _ := v.(map[string]any)
	if status != 200 {
		t.Fatalf("v1.1 get: %d %v", status, v)
	}
	checkCheckoutKey(t, "v1.1 get", obj, false)

	// v2: POST {"type":"user-key"}, list, get.
	status, v = e.circleRequest(t, "POST", base2+"/checkout-key", `{"type":"user-key"}`, false)
	obj, _ = v.(map[string]any)
	if status != http.StatusCreated {
		t.Fatalf("v2 POST checkout-key: %d %v", status, v)
	}
	checkCheckoutKey(t, "v2 new user-key", obj, true)
	status, v = e.circleRequest(t, "GET", base2+"/checkout-key", "", false)
	page, _ := v.(map[string]any)
	if status != 200 {
		t.Fatalf("v2 list: %d %v", status, v)
	}
	checkShape(t, "v2 list", page, circleV2List)
	items, _ := page["items"].([]any)
	if len(items) != 4 {
		t.Fatalf("v2 list: %d items, want 4", len(items))
	}
	for _, item := range items {
		obj, _ := item.(map[string]any)
		checkCheckoutKey(t, "v2 list item", obj, true)
	}
	status, v = e.circleRequest(t, "GET", base2+"/checkout-key/"+fingerprint, "", false)
	obj, _ = v.(map[string]any)
	if status != 200 {
		t.Fatalf("v2 get: %d %v", status, v)
	}
	checkCheckoutKey(t, "v2 get", obj, true)

	// DELETE answers {"message": "ok"} in both versions.
	status, v = e.circleRequest(t, "DELETE", base2+"/checkout-key/"+fingerprint, "", false)
	obj, _ = v.(map[string]any)
	if status != 200 || obj["message"] != "ok" {
		t.Errorf("v2 delete: %d %v, want 200 {\"message\":\"ok\"}", status, v)
	}
	checkShape(t, "v2 delete", obj, circleMessage)
	fp1, _ := items[0].(map[string]any)["fingerprint"].(string)
	status, v = e.circleRequest(t, "DELETE", base1+"/checkout-key/"+fp1, "", true)
	obj, _ = v.(map[string]any)
	if status != 200 || obj["message"] != "ok" {
		t.Errorf("v1.1 delete: %d %v, want 200 {\"message\":\"ok\"}", status, v)
	}

	// v1.1 ssh-key: the documented body, an RSA private key in PEM.
	status, v = e.circleRequest(t, "POST", base1+"/ssh-key", sshKeyBody("hostname", rsaPEM(t)), false)
	obj, _ = v.(map[string]any)
	if status != http.StatusCreated {
		t.Fatalf("v1.1 ssh-key: %d %v", status, v)
	}
	checkShape(t, "v1.1 ssh-key", obj, map[string]string{"hostname": "string", "fingerprint": "string", "public_key": "string"})
	if _, ok := obj["private_key"]; ok {
		t.Error("v1.1 ssh-key answer has a private_key")
	}
	if fp, _ := obj["fingerprint"].(string); !md5Fingerprint.MatchString(fp) {
		t.Errorf("ssh-key fingerprint %q is not MD5 colon hex", fp)
	}
	// An error is {"message": ...} with a 4xx.
	status, v = e.circleRequest(t, "POST", base1+"/ssh-key", `{"hostname":"hostname","private_key":"RSA private key"}`, false)
	obj, _ = v.(map[string]any)
	if status != http.StatusBadRequest {
		t.Errorf("ssh-key with the documentation's placeholder key: %d, want 400", status)
	}
	checkShape(t, "ssh-key error", obj, circleMessage)

	// v2 /me.
	status, v = e.circleRequest(t, "GET", "/api/v2/me", "", false)
	obj, _ = v.(map[string]any)
	if status != 200 {
		t.Fatalf("/api/v2/me: %d %v", status, v)
	}
	checkShape(t, "/api/v2/me", obj, circleV2Me)
}
