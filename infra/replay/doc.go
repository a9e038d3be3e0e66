// Package replay builds, sends and checks a webhook replay: signed GitHub
// and Bitbucket deliveries made from the corpus (testdata/corpus and
// testdata/events), rewritten per delivery to their own revisions,
// branches, tags and pull requests across a few projects, with duplicates
// (the same delivery id resent), deliveries out of order and badly signed
// ones mixed in; then executor reports on the pipelines that came of them,
// some duplicated and reordered.
//
// What forgelink must have made of it all is worked out here from what was
// sent, by rules written down in this package, not by forgelink's code:
// every branch push and pull request builds (the projects' configs run
// every workflow on every branch and tag), tags build, a branch or tag
// deletion, a closed or merged pull request, a pull request from a fork and
// a "[ci skip]" commit are skipped, and one (project, branch or tag,
// revision) is one pipeline however often it is named. The tests in
// infra/local (the `make run` binary) and infra/devstack (the functions'
// handlers on DynamoDB and SQS) run the same plan and the same checks.
//
//	plan, err := replay.NewPlan(replay.Options{Deliveries: 2000, Projects: projects, Testdata: dir})
//	answers := replay.SendAll(ctx, plan.Sends, 8, replay.HTTP(client))
//	tally, problems := plan.CheckAnswers(answers)
package replay
