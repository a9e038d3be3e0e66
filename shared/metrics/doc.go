// Package metrics counts what an operator watches - webhook deliveries
// accepted, duplicate, rejected, ignored or failed; pipelines created and
// events skipped; commit statuses posted, failed, refused; org-access
// checks and organizations by state - with nothing but the standard
// library, and writes them out as CloudWatch embedded metric format lines
// (EMF, in Lambda). The promexport sub-package serves the same values in
// the Prometheus text format at GET /metrics (make run, container mode);
// only binaries that import it link the Prometheus client.
//
//	in := &intake.Intake{..., Metrics: nil} // nil: metrics.Default
//	in.Metrics.Delivery("github", metrics.Accepted)
//	emf := &metrics.EMF{Registry: metrics.Default, Function: metrics.FunctionName(), Out: os.Stdout}
//	emf.Flush() // after each Lambda invocation
//
// Every label takes values from a fixed set (vcs, outcome, state); any
// other value is counted as "other". No label ever holds an organization,
// a repository, an id, a token or anything a client sent, so the metrics
// can be scraped without the API token and without leaking who uses
// forgelink.
//
// The domain package (shared/forgelink) does not import this package: the
// services (intake, trigger, statussvc, orgaccess) count through an
// optional *Registry field, nil meaning Default.
package metrics
