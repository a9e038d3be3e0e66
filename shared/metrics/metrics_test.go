package metrics

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func TestRegistry(t *testing.T) {
	r := New()
	// Every declared series exists at zero before its first event.
	n := 0
	for _, s := range r.Snapshot() {
		if s.Value != 0 || s.Seq != 0 {
			t.Errorf("%s %v = %d (seq %d) in a new registry", s.Desc.Name, s.Values, s.Value, s.Seq)
		}
		n++
	}
	if want := 2*5 + 2*3 + 2*4 + 2*9 + 2*8; n != want {
		t.Errorf("a new registry has %d series, want %d", n, want)
	}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				r.Delivery("github", Accepted)
			}
		}()
	}
	wg.Wait()
	if got := r.Value(Deliveries, "github", Accepted); got != 800 {
		t.Errorf("accepted = %d after 800 concurrent adds", got)
	}
	// A value outside a label's set is counted as other: a label never
	// carries what a caller passed through.
	r.Delivery("gitlab", "hk_secret/../x")
	if got := r.Value(Deliveries, Other, Other); got != 1 {
		t.Errorf("other/other = %d, want 1", got)
	}
	for _, s := range r.Snapshot() {
		for _, v := range s.Values {
			if strings.Contains(v, "secret") || v == "gitlab" {
				t.Errorf("a series is labelled %q", v)
			}
		}
	}
	r.SetAccessOrgs("bitbucket", "restricted", 3)
	r.SetAccessOrgs("bitbucket", "restricted", 2)
	if got := r.Value(AccessOrgs, "bitbucket", "restricted"); got != 2 {
		t.Errorf("gauge = %d, want the last set, 2", got)
	}
	// A nil registry is Default.
	var none *Registry
	before := Default.Value(Pipelines, "github", Created)
	none.Pipeline("github", Created)
	if got := Default.Value(Pipelines, "github", Created); got != before+1 {
		t.Errorf("a nil registry's count went to Default %d -> %d", before, got)
	}
}

// validateEMF checks one line against the CloudWatch embedded metric
// format specification: a JSON object alone on its line whose _aws member
// has a Timestamp in milliseconds and CloudWatchMetrics directives; each
// directive a Namespace (1-1024 characters), Dimensions (arrays of at most
// 30 keys, each naming a string member of the root) and Metrics (at most
// 100, each a Name of 1-1024 characters naming a numeric member of the
// root, a valid Unit); and no other members in the objects the
// specification defines.
func validateEMF(t *testing.T, line []byte, now time.Time) map[string]any {
	t.Helper()
	if !bytes.HasSuffix(line, []byte("\n")) || bytes.Count(line, []byte("\n")) != 1 {
		t.Fatalf("EMF line %q is not one line", line)
	}
	var root map[string]json.RawMessage
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.UseNumber()
	if err := dec.Decode(&root); err != nil {
		t.Fatalf("EMF line is not a JSON object: %v: %s", err, line)
	}
	if dec.More() {
		t.Fatalf("data after the EMF object: %s", line)
	}
	var meta map[string]json.RawMessage
	if err := json.Unmarshal(root["_aws"], &meta); err != nil {
		t.Fatalf("_aws: %v", err)
	}
	for k := range meta {
		if k != "Timestamp" && k != "CloudWatchMetrics" {
			t.Errorf("_aws has member %q", k)
		}
	}
	var ts int64
	if err := json.Unmarshal(meta["Timestamp"], &ts); err != nil {
		t.Fatalf("_aws.Timestamp %s is not an integer: %v", meta["Timestamp"], err)
	}
	if ts != now.UnixMilli() {
		t.Errorf("Timestamp = %d, want %d (milliseconds since the epoch)", ts, now.UnixMilli())
	}
	var dirs []map[string]json.RawMessage
	if err := json.Unmarshal(meta["CloudWatchMetrics"], &dirs); err != nil || len(dirs) == 0 {
		t.Fatalf("_aws.CloudWatchMetrics = %s: %v", meta["CloudWatchMetrics"], err)
	}
	values := map[string]any{}
	for _, dir := range dirs {
		for k := range dir {
			if k != "Namespace" && k != "Dimensions" && k != "Metrics" {
				t.Errorf("directive has member %q", k)
			}
		}
		var ns string
		if err := json.Unmarshal(dir["Namespace"], &ns); err != nil || ns == "" || len(ns) > 1024 {
			t.Errorf("Namespace = %s (%v)", dir["Namespace"], err)
		}
		var dims [][]string
		if err := json.Unmarshal(dir["Dimensions"], &dims); err != nil {
			t.Fatalf("Dimensions = %s: %v", dir["Dimensions"], err)
		}
		for _, set := range dims {
			if len(set) > 30 {
				t.Errorf("a dimension set has %d keys", len(set))
			}
			for _, d := range set {
				var v string
				if err := json.Unmarshal(root[d], &v); err != nil || v == "" || len(v) > 1024 {
					t.Errorf("dimension %q: root member %s is not a non-empty string", d, root[d])
				}
				values[d] = v
			}
		}
		var ms []map[string]json.RawMessage
		if err := json.Unmarshal(dir["Metrics"], &ms); err != nil || len(ms) == 0 || len(ms) > 100 {
			t.Fatalf("Metrics = %s (%d): %v", dir["Metrics"], len(ms), err)
		}
		for _, m := range ms {
			for k := range m {
				if k != "Name" && k != "Unit" && k != "StorageResolution" {
					t.Errorf("metric has member %q", k)
				}
			}
			var name, unit string
			if err := json.Unmarshal(m["Name"], &name); err != nil || name == "" || len(name) > 1024 {
				t.Errorf("metric Name = %s", m["Name"])
			}
			if err := json.Unmarshal(m["Unit"], &unit); err != nil || unit != "Count" {
				t.Errorf("metric %s Unit = %s, want Count", name, m["Unit"])
			}
			var v float64
			if err := json.Unmarshal(root[name], &v); err != nil {
				t.Errorf("metric %q: root member %s is not a number", name, root[name])
			}
			values[name] = v
		}
	}
	return values
}

// emfLines splits output into its lines, each with its newline.
func emfLines(b []byte) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return append(out, b)
		}
		out = append(out, b[:i+1])
		b = b[i+1:]
	}
	return out
}

func TestEMF(t *testing.T) {
	r := New()
	now := time.Date(2026, 11, 25, 12, 0, 0, 123e6, time.UTC)
	var out bytes.Buffer
	e := &EMF{Registry: r, Function: "webhook", Out: &out, Now: func() time.Time { return now }}
	if err := e.Flush(); err != nil || out.Len() != 0 {
		t.Fatalf("first flush with nothing counted wrote %q (%v)", out.String(), err)
	}
	r.Delivery("github", Accepted)
	r.Delivery("github", Accepted)
	r.Delivery("github", Duplicate)
	r.Delivery("bitbucket", Rejected)
	r.SetAccessOrgs("github", "ok", 0)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	lines := emfLines(out.Bytes())
	if len(lines) != 2 {
		t.Fatalf("EMF wrote %d lines, want one per vcs (bitbucket, github):\n%s", len(lines), out.String())
	}
	var all []map[string]any
	for _, l := range lines {
		all = append(all, validateEMF(t, l, now))
	}
	want := []map[string]any{
		{"function": "webhook", "vcs": "bitbucket", "deliveries_rejected": 1.0},
		{"function": "webhook", "vcs": "github", "deliveries_accepted": 2.0, "deliveries_duplicate": 1.0, "access_orgs_ok": 0.0},
	}
	if diff := cmp.Diff(want, all); diff != "" {
		t.Errorf("EMF values (-want +got):\n%s", diff)
	}
	if !bytes.Contains(lines[0], []byte(`"Namespace":"forgelink"`)) || !bytes.Contains(lines[0], []byte(`"Dimensions":[["function","vcs"]]`)) {
		t.Errorf("line lacks the namespace or the dimensions: %s", lines[0])
	}

	// The next flush carries only what moved since: the increase of a
	// counter, a gauge set again (even to the same value).
	out.Reset()
	r.Delivery("github", Accepted)
	r.SetAccessOrgs("github", "ok", 0)
	if err := e.Flush(); err != nil {
		t.Fatal(err)
	}
	vals := validateEMF(t, out.Bytes(), now)
	if diff := cmp.Diff(map[string]any{"function": "webhook", "vcs": "github", "deliveries_accepted": 1.0, "access_orgs_ok": 0.0}, vals); diff != "" {
		t.Errorf("second flush (-want +got):\n%s", diff)
	}
	out.Reset()
	if err := e.Flush(); err != nil || out.Len() != 0 {
		t.Errorf("a flush with nothing moved wrote %q (%v)", out.String(), err)
	}
}

// TestEMFManyMetrics: more than 100 metrics of one vcs are split over
// lines of at most 100 (the specification's limit per directive).
func TestEMFManyMetrics(t *testing.T) {
	values := make([]string, 150)
	for i := range values {
		values[i] = fmt.Sprintf("v%03d", i)
	}
	wide := &Desc{Name: "wide", Kind: Counter, Labels: []Label{vcsLabel, {Name: "n", Values: values}}}
	r := New()
	for _, v := range values {
		r.Add(wide, 1, "github", v)
	}
	now := time.Unix(1_800_000_000, 0)
	var out bytes.Buffer
	if err := (&EMF{Registry: r, Function: "trigger", Out: &out, Now: func() time.Time { return now }}).Flush(); err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, l := range emfLines(out.Bytes()) {
		seen += len(validateEMF(t, l, now)) - 2 // less function and vcs
	}
	if seen != 150 {
		t.Errorf("%d metrics written, want 150", seen)
	}
}

func TestEMFName(t *testing.T) {
	for _, tc := range []struct {
		d      *Desc
		values []string
		want   string
	}{
		{Deliveries, []string{"github", Accepted}, "deliveries_accepted"},
		{StatusPosts, []string{"bitbucket", GaveUp}, "status_posts_gave_up"},
		{AccessChecks, []string{"github", "token_revoked"}, "access_checks_token_revoked"},
	} {
		if got := EMFName(tc.d, tc.values); got != tc.want {
			t.Errorf("EMFName(%s, %v) = %q, want %q", tc.d.Name, tc.values, got, tc.want)
		}
	}
}
