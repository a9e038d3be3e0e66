// Package circleci reads the parts of a CircleCI .circleci/config.yml that
// decide whether a VCS event starts a pipeline, into a forgelink.Config for
// forgelink.Evaluate.
//
//	cfg, err := circleci.Parse(body)
//	in := forgelink.TriggerInput{Event: ev, Settings: p.Settings, DefaultBranch: p.DefaultBranch, Config: cfg}
//	if err != nil {
//		in.ConfigError = forgelink.MessageOf(err) // the pipeline is created in state error
//	}
//	d := forgelink.Evaluate(in)
//
// Only workflows, their job entries (name, requires, filters) and, for
// version 2.0 configs without workflows, the "build" job are read; steps,
// executors, orbs and parameters are not. Every error is of kind
// forgelink.Invalid and says what is wrong and on which line.
package circleci
