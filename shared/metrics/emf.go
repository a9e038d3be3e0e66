package metrics

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path"
	"runtime/debug"
	"strings"
	"sync"
	"time"
)

// Namespace is the CloudWatch namespace of forgelink's metrics.
const Namespace = "forgelink"

// maxMetricsPerDirective is the EMF limit on one directive's Metrics.
const maxMetricsPerDirective = 100

// EMF writes a registry's changes as CloudWatch embedded metric format
// lines: one JSON object per line and per vcs, with the counters that
// moved (their increase since the previous Flush) and the gauges that
// were set, under namespace "forgelink" with the dimensions function and
// vcs. CloudWatch Logs turns each line of a Lambda function's output into
// metrics; nothing else is needed (no agent, no API call, no dependency).
//
//	emf := &metrics.EMF{Registry: metrics.Default, Function: "webhook", Out: os.Stdout}
//	defer emf.Flush() // after each invocation
type EMF struct {
	Registry *Registry
	// Function is the "function" dimension (FunctionName()).
	Function string
	Out      io.Writer
	Now      func() time.Time

	mu   sync.Mutex
	last map[string]Sample // by series key, as last flushed
}

// Flush writes what changed since the previous Flush (nothing when
// nothing did).
func (e *EMF) Flush() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.last == nil {
		e.last = map[string]Sample{}
	}
	byVCS := map[string][]emfValue{}
	var order []string
	for _, s := range e.Registry.Snapshot() {
		k := key(s.Desc, s.Values)
		prev, seen := e.last[k]
		if s.Seq == prev.Seq && seen {
			continue
		}
		v := s.Value
		if s.Desc.Kind == Counter {
			v -= prev.Value
		}
		e.last[k] = s
		if s.Seq == 0 || (s.Desc.Kind == Counter && v == 0) {
			continue
		}
		vcs := s.Values[0]
		if _, ok := byVCS[vcs]; !ok {
			order = append(order, vcs)
		}
		byVCS[vcs] = append(byVCS[vcs], emfValue{name: EMFName(s.Desc, s.Values), v: v})
	}
	now := time.Now
	if e.Now != nil {
		now = e.Now
	}
	ts := now().UnixMilli()
	for _, vcs := range order {
		vals := byVCS[vcs]
		for len(vals) > 0 {
			n := min(len(vals), maxMetricsPerDirective)
			line, err := emfLine(ts, e.Function, vcs, vals[:n])
			if err != nil {
				return err
			}
			if _, err := e.Out.Write(line); err != nil {
				return fmt.Errorf("metrics: write EMF: %w", err)
			}
			vals = vals[n:]
		}
	}
	return nil
}

type emfValue struct {
	name string
	v    int64
}

// EMFName is the CloudWatch metric name of a series: the family's name
// and its label values other than vcs (a dimension), joined by "_":
// deliveries_accepted, access_checks_token_revoked.
func EMFName(d *Desc, values []string) string {
	parts := []string{d.Name}
	if len(values) > 1 {
		parts = append(parts, values[1:]...)
	}
	return strings.Join(parts, "_")
}

// emfDirective is a MetricDirective of the EMF specification.
type emfDirective struct {
	Namespace  string      `json:"Namespace"`
	Dimensions [][]string  `json:"Dimensions"`
	Metrics    []emfMetric `json:"Metrics"`
}

type emfMetric struct {
	Name string `json:"Name"`
	Unit string `json:"Unit"`
}

func emfLine(ts int64, function, vcs string, vals []emfValue) ([]byte, error) {
	doc := map[string]any{
		"function": function,
		"vcs":      vcs,
	}
	dir := emfDirective{Namespace: Namespace, Dimensions: [][]string{{"function", "vcs"}}}
	for _, v := range vals {
		dir.Metrics = append(dir.Metrics, emfMetric{Name: v.name, Unit: "Count"})
		doc[v.name] = v.v
	}
	doc["_aws"] = map[string]any{
		"Timestamp":         ts,
		"CloudWatchMetrics": []emfDirective{dir},
	}
	b, err := json.Marshal(doc)
	if err != nil {
		return nil, fmt.Errorf("metrics: encode EMF: %w", err)
	}
	return append(b, '\n'), nil
}

// FunctionName names the running function for the "function" dimension:
// the last element of the main package's import path
// (forgelink/functions/webhook: "webhook"), else
// AWS_LAMBDA_FUNCTION_NAME, else "forgelink".
func FunctionName() string {
	if info, ok := debug.ReadBuildInfo(); ok && strings.Contains(info.Path, "/functions/") {
		return path.Base(info.Path)
	}
	if n := os.Getenv("AWS_LAMBDA_FUNCTION_NAME"); n != "" {
		return n
	}
	return "forgelink"
}
