// Package promexport serves a metrics.Registry in the Prometheus text
// format (and OpenMetrics, when the scraper asks) through the official
// client library, with the Go runtime's and the process's collectors
// beside forgelink's counters.
//
//	mux.Handle("GET /metrics", promexport.Handler(metrics.Default))
//
// It is its own package so that only the binaries that serve /metrics
// (make run, and the functions built for container platforms, i.e.
// without -tags lambda.norpc) link the Prometheus client; in Lambda the
// same values go out as EMF lines (metrics.EMF).
package promexport

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"forgelink/shared/metrics"
)

// Handler serves reg (nil: metrics.Default) and the Go and process
// collectors on a registry of its own.
func Handler(reg *metrics.Registry) http.Handler {
	pr := prometheus.NewRegistry()
	pr.MustRegister(
		NewCollector(reg),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return promhttp.HandlerFor(pr, promhttp.HandlerOpts{})
}

// Collector is a prometheus.Collector over a metrics.Registry: counters
// are forgelink_<name>_total, gauges forgelink_<name>.
type Collector struct {
	reg   *metrics.Registry
	descs map[*metrics.Desc]*prometheus.Desc
}

var _ prometheus.Collector = (*Collector)(nil)

// NewCollector returns a Collector of reg (nil: metrics.Default).
func NewCollector(reg *metrics.Registry) *Collector {
	c := &Collector{reg: reg, descs: map[*metrics.Desc]*prometheus.Desc{}}
	for _, d := range metrics.Families {
		c.descs[d] = promDesc(d)
	}
	return c
}

// Name is the Prometheus name of a family.
func Name(d *metrics.Desc) string {
	if d.Kind == metrics.Counter {
		return "forgelink_" + d.Name + "_total"
	}
	return "forgelink_" + d.Name
}

func promDesc(d *metrics.Desc) *prometheus.Desc {
	labels := make([]string, len(d.Labels))
	for i, l := range d.Labels {
		labels[i] = l.Name
	}
	return prometheus.NewDesc(Name(d), d.Help, labels, nil)
}

// Describe sends the descriptions of every family.
func (c *Collector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range metrics.Families {
		ch <- c.descs[d]
	}
}

// Collect sends every series' current value.
func (c *Collector) Collect(ch chan<- prometheus.Metric) {
	for _, s := range c.reg.Snapshot() {
		pd := c.descs[s.Desc]
		if pd == nil {
			continue // a family not in metrics.Families: not described
		}
		vt := prometheus.CounterValue
		if s.Desc.Kind == metrics.Gauge {
			vt = prometheus.GaugeValue
		}
		ch <- prometheus.MustNewConstMetric(pd, vt, float64(s.Value), s.Values...)
	}
}
