package replay

import (
	"os"
	"strconv"
	"testing"
	"time"

	"forgelink/shared/vcsfake"
)

// Deliveries returns how many deliveries a replay test sends: the value
// of the first of the environment variables named that is set (make
// replay sets FORGELINK_REPLAY_DELIVERIES and
// FORGELINK_REPLAY_LAMBDA_DELIVERIES), or def.
func Deliveries(t testing.TB, def int, env ...string) int {
	t.Helper()
	for _, name := range env {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		n, err := strconv.Atoi(v)
		if err != nil || n < 20 {
			t.Fatalf("%s=%q: want a number of at least 20", name, v)
		}
		return n
	}
	return def
}

// Fakes are the fake GitHub and Bitbucket APIs of a replay.
type Fakes struct {
	GitHub    *vcsfake.GitHub
	Bitbucket *vcsfake.Bitbucket
}

// NewFakes serves the projects' repositories, each with its default
// branch, until the test ends.
//
// The fake GitHub counts its token's requests against GitHub's 5,000 an
// hour, which a replay of a few thousand deliveries exceeds (a config
// read per pipeline, a post per status): forgelink then waits, as it
// should, until the hour is over. A replay is not about rate limits, so
// every 100 ms a new hour begins.
func NewFakes(t testing.TB, projects []*Project) *Fakes {
	f := &Fakes{GitHub: vcsfake.NewGitHub(t), Bitbucket: vcsfake.NewBitbucket(t)}
	stop, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
				f.GitHub.SetRateLimitRemaining(vcsfake.GitHubRateLimit)
			}
		}
	}()
	t.Cleanup(func() { close(stop); <-done })
	for _, p := range projects {
		if p.VCS == GitHub {
			f.GitHub.AddRepo(p.FullName, p.DefaultBranch(), false)
		} else {
			f.Bitbucket.AddRepo(p.FullName, p.DefaultBranch(), false)
		}
	}
	return f
}

// Hook returns the one webhook following installed on the project's
// repository, failing the test unless there is exactly one, with a
// secret.
func (f *Fakes) Hook(t testing.TB, p *Project) vcsfake.Hook {
	t.Helper()
	hooks := f.GitHub.Hooks
	if p.VCS == Bitbucket {
		hooks = f.Bitbucket.Hooks
	}
	hs := hooks(p.FullName)
	if len(hs) != 1 || hs[0].Secret == "" {
		t.Fatalf("hooks of %s on the fake VCS = %+v; want one with a secret", p.Slug(), hs)
	}
	return hs[0]
}

// Configs serves every project's config at every revision the plan names.
func (f *Fakes) Configs(plan *Plan) {
	for _, p := range plan.Projects {
		cfg := p.Config()
		for _, rev := range plan.Revisions(p) {
			if p.VCS == GitHub {
				f.GitHub.SetFile(p.FullName, rev, ".circleci/config.yml", cfg)
			} else {
				f.Bitbucket.SetFile(p.FullName, rev, ".circleci/config.yml", cfg)
			}
		}
	}
}

// Posts returns every status post the fakes accepted for the projects,
// each repository's in the order they came.
func (f *Fakes) Posts(projects []*Project) []Post {
	var out []Post
	for _, p := range projects {
		if p.VCS == GitHub {
			for _, s := range f.GitHub.Statuses(p.FullName, "") {
				out = append(out, Post{Project: p.Slug(), Revision: s.SHA, Context: s.Context, State: s.State})
			}
			continue
		}
		for _, s := range f.Bitbucket.BuildStatuses(p.FullName, "") {
			out = append(out, Post{Project: p.Slug(), Revision: s.SHA, Context: s.Key, State: s.State})
		}
	}
	return out
}

// PostCount is how many status posts the fakes accepted.
func (f *Fakes) PostCount() int { return f.GitHub.StatusPosts() + f.Bitbucket.StatusPosts() }

// WaitPosts waits until the fakes accepted at least want posts, none came
// for a second and ready (if not nil) holds, or the deadline passed or no
// post came for two minutes (an error of the test), and returns how long
// the posts took.
func (f *Fakes) WaitPosts(t testing.TB, want int, deadline time.Time, ready func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	const settle, stall = time.Second, 2 * time.Minute
	last, since := -1, time.Now()
	for time.Now().Before(deadline) {
		n := f.PostCount()
		if n != last {
			last, since = n, time.Now()
		}
		if n < want && time.Since(since) > stall {
			break
		}
		if n >= want && time.Since(since) >= settle && (ready == nil || ready()) {
			return since.Sub(start)
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Errorf("after %v: the fake VCSs accepted %d status posts; want %d", time.Since(start).Round(time.Millisecond), f.PostCount(), want)
	return time.Since(start)
}

// Check fails the test with each problem, naming what was checked.
func Check(t testing.TB, what string, problems []string) {
	t.Helper()
	for _, p := range problems {
		t.Errorf("%s: %s", what, p)
	}
}
