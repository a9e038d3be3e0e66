package replay

import (
	"bytes"
	"crypto/hmac"
	"crypto/sha1"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
)

// VCS names a version control system as forgelink's hook URLs do.
type VCS string

// The two VCSs of a replay.
const (
	GitHub    VCS = "github"
	Bitbucket VCS = "bitbucket"
)

// Project is one followed repository of a replay.
type Project struct {
	VCS      VCS
	FullName string // owner/repo
	// Workflows are the workflows of the project's config; each runs on
	// every branch and every tag.
	Workflows []string
	// HookURL and Secret are the webhook forgelink installed when it
	// followed the project: where deliveries go and what signs them.
	HookURL, Secret string
	// HookUUID is the Bitbucket webhook's X-Hook-UUID ("" is fine).
	HookUUID string
}

// Slug is the project's CircleCI-style slug, "gh/owner/repo" or
// "bb/owner/repo".
func (p *Project) Slug() string {
	if p.VCS == Bitbucket {
		return "bb/" + p.FullName
	}
	return "gh/" + p.FullName
}

// DefaultBranch is the branch the fake VCS must create the repository
// with: GitHub's "main", Bitbucket's "master".
func (p *Project) DefaultBranch() string {
	if p.VCS == Bitbucket {
		return "master"
	}
	return "main"
}

// Config is the project's .circleci/config.yml: one job, and each of the
// project's workflows running it on every branch and every tag.
func (p *Project) Config() []byte {
	var b strings.Builder
	b.WriteString("version: 2.1\njobs:\n  build:\n    docker: [{image: cimg/base:stable}]\n    steps: [checkout, {run: make test}]\nworkflows:\n")
	for _, w := range p.Workflows {
		fmt.Fprintf(&b, "  %s:\n    jobs:\n      - build:\n          filters: {tags: {only: /.*/}}\n", w)
	}
	return []byte(b.String())
}

// StatusContext names a workflow's commit status on the project's VCS:
// GitHub's context "ci/forgelink: <workflow>", Bitbucket's build status
// key "forgelink-<workflow>" (docs: README, commit statuses).
func (p *Project) StatusContext(workflow string) string {
	if p.VCS == Bitbucket {
		return "forgelink-" + workflow
	}
	return "ci/forgelink: " + workflow
}

// Projects returns a replay's projects: three on GitHub (two owners) and
// two on Bitbucket, with one to three workflows each. HookURL and Secret
// are for the caller to fill in once it followed them.
func Projects() []*Project {
	return []*Project{
		{VCS: GitHub, FullName: "replay-org/alpha", Workflows: []string{"build"}},
		{VCS: GitHub, FullName: "replay-org/beta", Workflows: []string{"build", "test"}},
		{VCS: GitHub, FullName: "other-org/gamma", Workflows: []string{"build", "test", "deploy"}},
		{VCS: Bitbucket, FullName: "replay-ws/delta", Workflows: []string{"build"}},
		{VCS: Bitbucket, FullName: "replay-ws/epsilon", Workflows: []string{"build", "lint"}},
	}
}

// Want is what one event of a delivery must come to.
type Want struct {
	// Branch or Tag is the ref the event names; Revision its full commit
	// hash ("" for a deletion).
	Branch, Tag, Revision string
	// Build is true when the event must make a pipeline (or name one
	// another event made); Rule says which rule decides.
	Build bool
	Rule  string
}

// Ref is the pipeline ref of a built event: "branch/<name>" or
// "tag/<name>".
func (w Want) Ref() string {
	if w.Tag != "" {
		return "tag/" + w.Tag
	}
	return "branch/" + w.Branch
}

// Delivery is one distinct delivery (one delivery id) of a replay.
type Delivery struct {
	Project *Project
	ID      string
	// Event is the X-GitHub-Event or X-Event-Key header.
	Event string
	// Kind says what happened in the repository, e.g. "pr-sync push".
	Kind  string
	Wants []Want
	// Bad says how the signature is wrong ("" for a good delivery):
	// wrong-secret, other-project-secret, corrupted, truncated, tampered,
	// unsigned, sha1-prefix.
	Bad string
	// Revisions are every revision the body names or named when it was
	// signed (a tampered body's original), for the fake VCS's configs.
	Revisions []string

	template map[string]any // decoded; never changed
	edit     func(d *doc)
	// tamper changes a "tampered" delivery's body after it was signed.
	tamper func(d *doc)
	// badSecret signs a wrong-secret or other-project-secret delivery.
	badSecret string
}

// Send is one request of a replay: a delivery's first copy or a resend.
type Send struct {
	*Delivery
	// Copy counts the sends of the delivery before this one in the plan.
	Copy int
	// Moved is true when the send was taken out of its place in time.
	Moved bool
}

// Request is one request as it goes on the wire.
type Request struct {
	URL    string
	Header http.Header
	Body   []byte
}

// Request builds the send's request: the same body and delivery id for
// every copy (a redelivery), signed as the delivery's Bad says.
func (s *Send) Request() (*Request, error) {
	body, err := s.body(s.Bad == "tampered")
	if err != nil {
		return nil, err
	}
	p := s.Project
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	sigHeader := "X-Hub-Signature-256"
	if p.VCS == Bitbucket {
		sigHeader = "X-Hub-Signature"
		h.Set("User-Agent", "Bitbucket-Webhooks/2.0")
		h.Set("X-Event-Key", s.Event)
		h.Set("X-Request-UUID", s.ID)
		h.Set("X-Hook-UUID", p.HookUUID)
		h.Set("X-Attempt-Number", strconv.Itoa(s.Copy+1))
	} else {
		h.Set("User-Agent", "GitHub-Hookshot/044aadd")
		h.Set("X-GitHub-Event", s.Event)
		h.Set("X-GitHub-Delivery", s.ID)
		// The legacy SHA-1 signature GitHub sends too, which forgelink ignores.
		h.Set("X-Hub-Signature", "sha1="+hmacHex(sha1.New, p.Secret, body))
	}
	signed := body
	if s.Bad == "tampered" {
		// Signed as it was sent by the VCS, then changed on the way.
		if signed, err = s.body(false); err != nil {
			return nil, err
		}
	}
	sig := "sha256=" + hmacHex(sha256.New, p.Secret, signed)
	switch s.Bad {
	case "wrong-secret", "other-project-secret":
		sig = "sha256=" + hmacHex(sha256.New, s.badSecret, body)
	case "corrupted":
		i := len("sha256=") + int(s.ID[0])%64
		c := byte('0')
		if sig[i] == '0' {
			c = 'f'
		}
		sig = sig[:i] + string(c) + sig[i+1:]
	case "truncated":
		sig = sig[:len(sig)-8]
	case "sha1-prefix":
		sig = "sha1=" + hmacHex(sha1.New, p.Secret, body)
	}
	if s.Bad != "unsigned" {
		h.Set(sigHeader, sig)
	}
	return &Request{URL: p.HookURL, Header: h, Body: body}, nil
}

// body builds the delivery's body from its corpus template, tampered with
// when asked.
func (d *Delivery) body(tampered bool) ([]byte, error) {
	root := deepCopy(d.template).(map[string]any)
	doc := &doc{root: root}
	d.edit(doc)
	if tampered && d.tamper != nil {
		d.tamper(doc)
	}
	if doc.err != nil {
		return nil, fmt.Errorf("replay: %s %s: %w", d.Kind, d.Event, doc.err)
	}
	return json.Marshal(root)
}

func hmacHex(h func() hash.Hash, secret string, body []byte) string {
	m := hmac.New(h, []byte(secret))
	m.Write(body)
	return hex.EncodeToString(m.Sum(nil))
}

// Options shape a plan.
type Options struct {
	// Deliveries is how many requests to send in all, resends and bad ones
	// included (at least 20).
	Deliveries int
	// Projects are the followed projects, with their hook URLs and secrets.
	Projects []*Project
	// Testdata is the repository's testdata directory.
	Testdata string
	Seed     uint64
	// The shares of Deliveries that are resends of an earlier delivery id,
	// sends moved out of their place in time, and badly signed deliveries;
	// 0 means the defaults 0.30, 0.10 and 0.05.
	DuplicateShare, MovedShare, BadShare float64
}

// Plan is a replay: the distinct deliveries and the order they are sent in.
type Plan struct {
	Projects []*Project
	// Deliveries are the distinct deliveries, good and bad, in the order
	// of their first sends.
	Deliveries []*Delivery
	// Sends are the requests in the order they are sent.
	Sends []*Send
}

// templates are the corpus files the deliveries are made from.
var templates = []string{
	"corpus/github/push.json",
	"corpus/github/push.created.json",
	"corpus/github/push.forced.json",
	"corpus/github/push.delete.json",
	"corpus/github/push.tag.json",
	"corpus/github/push.tag.delete.json",
	"corpus/github/pull_request.opened.json",
	"corpus/github/pull_request.opened.fork.json",
	"corpus/github/pull_request.synchronize.json",
	"corpus/github/pull_request.closed.json",
	"corpus/github/pull_request.closed.merged.json",
	"events/github/pull_request.json",
	"corpus/bitbucket/repo-push.json",
	"corpus/bitbucket/repo-push.branch-create.json",
	"corpus/bitbucket/repo-push.branch-delete.json",
	"corpus/bitbucket/repo-push.tag-create.json",
	"corpus/bitbucket/pullrequest-created.json",
	"corpus/bitbucket/pullrequest-updated.json",
	"corpus/bitbucket/pullrequest-fulfilled.json",
	"events/bitbucket/pullrequest-rejected.json",
}

// NewPlan makes a plan: Deliveries requests, of which DuplicateShare are
// resends of an earlier good delivery (sent after it, by up to a few
// hundred requests), BadShare badly signed deliveries of their own, and
// MovedShare moved up to 50 places earlier; the rest are distinct good
// deliveries telling each project's story (pushes, new branches, pull
// requests opened, synchronized, closed and merged, forks, tags, deletions,
// "[ci skip]"). The same Options give the same plan.
func NewPlan(opts Options) (*Plan, error) {
	if opts.Deliveries < 20 {
		return nil, fmt.Errorf("replay: %d deliveries; want at least 20", opts.Deliveries)
	}
	if len(opts.Projects) == 0 {
		return nil, fmt.Errorf("replay: no projects")
	}
	for _, p := range opts.Projects {
		if p.Secret == "" || len(p.Workflows) == 0 || (p.VCS != GitHub && p.VCS != Bitbucket) {
			return nil, fmt.Errorf("replay: project %s: want a VCS, a webhook secret and workflows", p.FullName)
		}
	}
	share := func(v, def float64) float64 {
		if v == 0 {
			return def
		}
		return v
	}
	dupShare, movedShare, badShare := share(opts.DuplicateShare, 0.30), share(opts.MovedShare, 0.10), share(opts.BadShare, 0.05)
	tmpl := map[string]map[string]any{}
	for _, name := range templates {
		b, err := os.ReadFile(filepath.Join(opts.Testdata, name))
		if err != nil {
			return nil, fmt.Errorf("replay: %w", err)
		}
		if tmpl[name], err = decodeAny(b); err != nil {
			return nil, fmt.Errorf("replay: %s: %w", name, err)
		}
	}
	g := &gen{r: rand.New(rand.NewPCG(opts.Seed, 0x5eed_7e1a)), tmpl: tmpl, seed: opts.Seed}
	for _, p := range opts.Projects {
		g.repos = append(g.repos, &repoState{p: p, heads: map[string]string{p.DefaultBranch(): g.rev()}})
	}

	n := opts.Deliveries
	nBad := int(math.Round(float64(n) * badShare))
	nDup := int(math.Round(float64(n) * dupShare))
	nGood := n - nBad - nDup
	if nGood < 1 {
		return nil, fmt.Errorf("replay: shares leave no distinct good deliveries")
	}
	var good []*Delivery
	for len(good) < nGood {
		good = append(good, g.step()...)
	}
	good = good[:nGood]
	bad := make([]*Delivery, nBad)
	for i := range bad {
		bad[i] = g.bad(i)
	}

	// Place every send in time: good deliveries one after another, bad
	// ones anywhere, resends after their delivery.
	type timed struct {
		s *Send
		t float64
	}
	var all []timed
	for i, d := range good {
		all = append(all, timed{&Send{Delivery: d}, float64(i)})
	}
	for _, d := range bad {
		all = append(all, timed{&Send{Delivery: d}, g.r.Float64() * float64(nGood)})
	}
	for range nDup {
		i := g.r.IntN(len(good))
		all = append(all, timed{&Send{Delivery: good[i]}, float64(i) + 0.5 + g.r.Float64()*300})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].t < all[j].t })
	plan := &Plan{Projects: opts.Projects}
	copies := map[*Delivery]int{}
	for _, x := range all {
		x.s.Copy = copies[x.s.Delivery]
		copies[x.s.Delivery]++
		plan.Sends = append(plan.Sends, x.s)
	}
	// Take some sends out of their place: each arrives up to 50 places early.
	for _, i := range g.r.Perm(len(plan.Sends))[:int(math.Round(float64(n)*movedShare))] {
		s := plan.Sends[i]
		j := i - 1 - g.r.IntN(min(i, 50)+1)
		if i == 0 {
			j = 1 + g.r.IntN(50)
		}
		j = max(0, min(j, len(plan.Sends)-1))
		plan.Sends = slices.Delete(plan.Sends, i, i+1)
		plan.Sends = slices.Insert(plan.Sends, j, s)
		s.Moved = true
	}
	seen := map[*Delivery]bool{}
	for _, s := range plan.Sends {
		if !seen[s.Delivery] {
			seen[s.Delivery] = true
			plan.Deliveries = append(plan.Deliveries, s.Delivery)
		}
	}
	return plan, nil
}

// Revisions returns every revision the plan's deliveries to p name, good
// and bad: the fake VCS must serve p's config at each.
func (p *Plan) Revisions(proj *Project) []string {
	var out []string
	for _, d := range p.Deliveries {
		if d.Project == proj {
			out = append(out, d.Revisions...)
		}
	}
	return out
}

// gen makes deliveries.
type gen struct {
	r     *rand.Rand
	tmpl  map[string]map[string]any
	seed  uint64
	repos []*repoState
	revs  int
}

// repoState is what the generator knows of one repository's refs.
type repoState struct {
	p        *Project
	heads    map[string]string // live branch → head revision
	branches []string          // live branches but the default, oldest first
	tags     []string
	prs      []*openPR
	nextPR   int
	names    int
}

type openPR struct {
	number       int
	branch, head string
}

// rev returns a new, unique commit hash.
func (g *gen) rev() string {
	g.revs++
	sum := sha1.Sum(fmt.Appendf(nil, "forgelink replay %d %d", g.seed, g.revs))
	return hex.EncodeToString(sum[:])
}

// uuid returns a new random UUID.
func (g *gen) uuid() string {
	a, b := g.r.Uint64(), g.r.Uint64()
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x", a>>32, a>>16&0xffff, a&0xfff, 0x8000|b>>48&0x3fff, b&0xffffffffffff)
}

func (st *repoState) name(prefix string) string {
	st.names++
	return fmt.Sprintf("%s%d", prefix, st.names)
}

// step makes the next thing to happen in a random repository: one or two
// deliveries.
func (g *gen) step() []*Delivery {
	st := g.repos[g.r.IntN(len(g.repos))]
	const (
		push = iota
		branchCreate
		prOpen
		prSync
		prClose
		forkPR
		branchDelete
		tag
		tagDelete
		ciSkip
		multi
	)
	weights := []int{push: 28, branchCreate: 8, prOpen: 12, prSync: 14, prClose: 6, forkPR: 3, branchDelete: 5, tag: 6, tagDelete: 2, ciSkip: 4, multi: 5}
	total := 0
	for _, w := range weights {
		total += w
	}
	pick := g.r.IntN(total)
	action := 0
	for pick >= weights[action] {
		pick -= weights[action]
		action++
	}
	def := st.p.DefaultBranch()
	switch action {
	case branchCreate:
		b := st.name("topic-")
		return []*Delivery{g.push(st, b, g.rev(), "branch-create")}
	case prOpen:
		b, r := st.name("feature/f"), g.rev()
		st.nextPR++
		pr := &openPR{number: st.nextPR, branch: b}
		st.prs = append(st.prs, pr)
		push := g.push(st, b, r, "pr-open push")
		pr.head = r
		return []*Delivery{push, g.pr(st, pr, "opened", false)}
	case prSync:
		if len(st.prs) == 0 {
			break
		}
		pr := st.prs[g.r.IntN(len(st.prs))]
		r := g.rev()
		push := g.push(st, pr.branch, r, "pr-sync push")
		pr.head = r
		return []*Delivery{push, g.pr(st, pr, "synchronize", false)}
	case prClose:
		if len(st.prs) == 0 {
			break
		}
		i := g.r.IntN(len(st.prs))
		pr := st.prs[i]
		st.prs = slices.Delete(st.prs, i, i+1)
		if g.r.IntN(2) == 0 {
			return []*Delivery{g.pr(st, pr, "closed", false)}
		}
		// Merged: the pull request closes and the default branch gets the merge commit.
		return []*Delivery{g.pr(st, pr, "merged", false), g.push(st, def, g.rev(), "merge push")}
	case forkPR:
		st.nextPR++
		pr := &openPR{number: st.nextPR, branch: st.name("patch-"), head: g.rev()}
		return []*Delivery{g.pr(st, pr, "opened", true)}
	case branchDelete:
		if len(st.branches) == 0 {
			break
		}
		return []*Delivery{g.deleteRef(st, st.branches[g.r.IntN(len(st.branches))], false)}
	case tag:
		return []*Delivery{g.tag(st, st.name("v1.")+".0", g.rev())}
	case tagDelete:
		if len(st.tags) == 0 {
			break
		}
		return []*Delivery{g.deleteRef(st, st.tags[g.r.IntN(len(st.tags))], true)}
	case ciSkip:
		return []*Delivery{g.push(st, g.liveBranch(st), g.rev(), "ci-skip push")}
	case multi:
		if st.p.VCS == Bitbucket && len(st.branches) > 0 {
			return []*Delivery{g.bbMulti(st)}
		}
	}
	return []*Delivery{g.push(st, g.liveBranch(st), g.rev(), "push")}
}

// liveBranch picks a live branch, the default one half the time.
func (g *gen) liveBranch(st *repoState) string {
	if len(st.branches) == 0 || g.r.IntN(2) == 0 {
		return st.p.DefaultBranch()
	}
	return st.branches[g.r.IntN(len(st.branches))]
}

// moveHead records a push of rev to branch and returns the previous head
// ("" for a new branch).
func (st *repoState) moveHead(branch, rev string) string {
	before, ok := st.heads[branch]
	if !ok {
		st.branches = append(st.branches, branch)
	}
	st.heads[branch] = rev
	return before
}

// ghRepo sets the repository of a GitHub payload.
func ghRepo(d *doc, p *Project, prefix string) {
	owner, name, _ := strings.Cut(p.FullName, "/")
	d.set(prefix+"full_name", p.FullName)
	d.set(prefix+"name", name)
	d.set(prefix+"owner.login", owner)
	d.setIfPresent(prefix+"owner.name", owner)
	d.set(prefix+"default_branch", p.DefaultBranch())
	d.setIfPresent(prefix+"master_branch", p.DefaultBranch())
}

const zeroSHA = "0000000000000000000000000000000000000000"

// push is a branch push of rev ("ci-skip ..." kinds carry [ci skip]).
func (g *gen) push(st *repoState, branch, rev, kind string) *Delivery {
	before := st.moveHead(branch, rev)
	skip := strings.HasPrefix(kind, "ci-skip")
	msg := fmt.Sprintf("Change %s on %s\n\nPart of the forgelink replay.", rev[:7], branch)
	if skip {
		msg = []string{"Update docs [ci skip]", "Bump version [SKIP CI]", "wip\n\n[Skip CI]"}[g.r.IntN(3)]
	}
	want := Want{Branch: branch, Revision: rev, Build: !skip, Rule: "branch push"}
	if skip {
		want.Rule = "[ci skip]"
	}
	d := &Delivery{Project: st.p, ID: g.uuid(), Kind: kind, Wants: []Want{want}, Revisions: []string{rev}}
	if st.p.VCS == Bitbucket {
		d.Event = "repo:push"
		c := bbChange{typ: "branch", name: branch, rev: rev, old: before, msg: msg}
		g.bbPush(d, c)
		return d
	}
	d.Event = "push"
	name := "corpus/github/push.json"
	forced := false
	switch {
	case before == "":
		name = "corpus/github/push.created.json"
	case g.r.IntN(10) == 0:
		name, forced = "corpus/github/push.forced.json", true
	}
	d.template = g.tmpl[name]
	actor := g.actor()
	d.edit = func(d *doc) {
		d.set("ref", "refs/heads/"+branch)
		d.set("before", cmpOr(before, zeroSHA))
		d.set("after", rev)
		d.set("created", before == "")
		d.set("deleted", false)
		d.set("forced", forced)
		d.set("head_commit.id", rev)
		d.set("head_commit.message", msg)
		d.set("sender.login", actor)
		d.set("pusher.name", actor)
		ghRepo(d, st.p, "repository.")
	}
	return d
}

func (g *gen) actor() string {
	return []string{"octocat", "hubot", "monalisa", "dependabot[bot]", "renovate-bot"}[g.r.IntN(5)]
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// tag is a tag push at rev.
func (g *gen) tag(st *repoState, name, rev string) *Delivery {
	st.tags = append(st.tags, name)
	d := &Delivery{Project: st.p, ID: g.uuid(), Kind: "tag", Wants: []Want{{Tag: name, Revision: rev, Build: true, Rule: "tag push, every workflow has a tag filter"}}, Revisions: []string{rev}}
	if st.p.VCS == Bitbucket {
		d.Event = "repo:push"
		g.bbPush(d, bbChange{typ: "tag", name: name, rev: rev, msg: "Release " + name})
		return d
	}
	d.Event = "push"
	d.template = g.tmpl["corpus/github/push.tag.json"]
	d.edit = func(d *doc) {
		d.set("ref", "refs/tags/"+name)
		d.set("before", zeroSHA)
		d.set("after", rev)
		d.set("head_commit.id", rev)
		d.set("head_commit.message", "Release "+name)
		ghRepo(d, st.p, "repository.")
	}
	return d
}

// deleteRef deletes a live branch or tag.
func (g *gen) deleteRef(st *repoState, name string, isTag bool) *Delivery {
	var before string
	want := Want{Build: false}
	if isTag {
		i := slices.Index(st.tags, name)
		st.tags = slices.Delete(st.tags, i, i+1)
		want.Tag, want.Rule = name, "tag deleted"
		before = g.rev() // a tag's commit is not tracked: any will do
	} else {
		i := slices.Index(st.branches, name)
		st.branches = slices.Delete(st.branches, i, i+1)
		before = st.heads[name]
		delete(st.heads, name)
		want.Branch, want.Rule = name, "branch deleted"
	}
	d := &Delivery{Project: st.p, ID: g.uuid(), Kind: "delete", Wants: []Want{want}}
	if st.p.VCS == Bitbucket {
		d.Event = "repo:push"
		typ := "branch"
		if isTag {
			typ = "tag"
		}
		g.bbPush(d, bbChange{typ: typ, name: name, old: before, deleted: true})
		return d
	}
	d.Event = "push"
	ref, name2 := "refs/heads/"+name, "corpus/github/push.delete.json"
	if isTag {
		ref, name2 = "refs/tags/"+name, "corpus/github/push.tag.delete.json"
	}
	d.template = g.tmpl[name2]
	d.edit = func(d *doc) {
		d.set("ref", ref)
		d.set("before", before)
		d.set("after", zeroSHA)
		d.set("deleted", true)
		ghRepo(d, st.p, "repository.")
	}
	return d
}

// pr is a pull request event: opened, synchronize, closed or merged.
func (g *gen) pr(st *repoState, open *openPR, action string, fork bool) *Delivery {
	p := st.p
	pr := *open // the pull request as it is now: the body is built later
	want := Want{Branch: pr.branch, Revision: pr.head, Build: true, Rule: "pull request " + action}
	switch {
	case fork:
		want.Build, want.Rule = false, "pull request from a fork (build_fork_prs off)"
	case action == "closed" || action == "merged":
		want.Build, want.Rule = false, "pull request "+action
	}
	_, repoName, _ := strings.Cut(p.FullName, "/")
	forkRepo := "forker-" + strconv.Itoa(pr.number) + "/" + repoName
	d := &Delivery{Project: p, ID: g.uuid(), Kind: "pr-" + action, Wants: []Want{want}, Revisions: []string{pr.head}}
	if fork {
		d.Kind = "fork-pr"
	}
	actor := g.actor()
	if p.VCS == Bitbucket {
		name, state := map[string][2]string{
			"opened":      {"corpus/bitbucket/pullrequest-created.json", "pullrequest:created"},
			"synchronize": {"corpus/bitbucket/pullrequest-updated.json", "pullrequest:updated"},
			"merged":      {"corpus/bitbucket/pullrequest-fulfilled.json", "pullrequest:fulfilled"},
			"closed":      {"events/bitbucket/pullrequest-rejected.json", "pullrequest:rejected"},
		}[action][0], map[string]string{"opened": "OPEN", "synchronize": "OPEN", "merged": "MERGED", "closed": "DECLINED"}[action]
		d.Event = map[string]string{"opened": "pullrequest:created", "synchronize": "pullrequest:updated", "merged": "pullrequest:fulfilled", "closed": "pullrequest:rejected"}[action]
		d.template = g.tmpl[name]
		source := p.FullName
		if fork {
			source = forkRepo
		}
		d.edit = func(d *doc) {
			d.set("pullrequest.id", pr.number)
			d.set("pullrequest.state", state)
			d.set("pullrequest.title", fmt.Sprintf("Change %d", pr.number))
			d.set("pullrequest.source.branch.name", pr.branch)
			// Bitbucket names the commit by a 12-digit abbreviation.
			d.set("pullrequest.source.commit.hash", pr.head[:12])
			d.set("pullrequest.source.repository.full_name", source)
			d.set("pullrequest.destination.branch.name", p.DefaultBranch())
			d.set("pullrequest.destination.repository.full_name", p.FullName)
			d.set("repository.full_name", p.FullName)
			d.setIfPresent("actor.nickname", actor)
		}
		return d
	}
	d.Event = "pull_request"
	name := map[string]string{
		"opened":      "corpus/github/pull_request.opened.json",
		"synchronize": "corpus/github/pull_request.synchronize.json",
		"closed":      "corpus/github/pull_request.closed.json",
		"merged":      "corpus/github/pull_request.closed.merged.json",
	}[action]
	if fork {
		name = "corpus/github/pull_request.opened.fork.json"
	} else if action == "opened" && g.r.IntN(3) == 0 {
		name = "events/github/pull_request.json" // GitHub's documented example of opened
	}
	d.template = g.tmpl[name]
	head := p.FullName
	if fork {
		head = forkRepo
	}
	d.edit = func(d *doc) {
		d.set("number", pr.number)
		d.set("pull_request.number", pr.number)
		d.set("pull_request.head.ref", pr.branch)
		d.set("pull_request.head.sha", pr.head)
		d.set("pull_request.head.repo.full_name", head)
		d.set("pull_request.base.ref", p.DefaultBranch())
		d.set("pull_request.base.repo.full_name", p.FullName)
		d.set("sender.login", actor)
		if action == "synchronize" {
			d.set("after", pr.head)
		}
		ghRepo(d, p, "repository.")
	}
	return d
}

// bbChange is one ref change of a Bitbucket repo:push.
type bbChange struct {
	typ, name string // "branch" or "tag", and its name
	rev, old  string // the new and the previous commit ("" for none)
	msg       string
	deleted   bool
}

// bbPush makes d a repo:push of the changes, each from the corpus
// payload of its kind.
func (g *gen) bbPush(dl *Delivery, changes ...bbChange) {
	p := dl.Project
	kindOf := func(c bbChange) string {
		switch {
		case c.deleted:
			return "corpus/bitbucket/repo-push.branch-delete.json"
		case c.typ == "tag":
			return "corpus/bitbucket/repo-push.tag-create.json"
		case c.old == "":
			return "corpus/bitbucket/repo-push.branch-create.json"
		}
		return "corpus/bitbucket/repo-push.json"
	}
	dl.template = g.tmpl[kindOf(changes[0])]
	// Each change starts as its own template's first change.
	var first []any
	for _, c := range changes {
		if push, ok := g.tmpl[kindOf(c)]["push"].(map[string]any); ok {
			if list, ok := push["changes"].([]any); ok && len(list) > 0 {
				first = append(first, list[0])
			}
		}
	}
	actor := g.actor()
	dl.edit = func(d *doc) {
		if len(first) != len(changes) {
			d.fail("template has no push.changes[0]")
			return
		}
		var list []any
		for i, c := range changes {
			ch, ok := deepCopy(first[i]).(map[string]any)
			if !ok {
				d.fail("push.changes[0] is not an object")
				return
			}
			sub := &doc{root: ch}
			if c.deleted {
				sub.set("new", nil)
				sub.set("closed", true)
				sub.set("old.type", c.typ)
				sub.set("old.name", c.name)
				sub.set("old.target.hash", c.old)
			} else {
				sub.set("new.type", c.typ)
				sub.set("new.name", c.name)
				sub.set("new.target.hash", c.rev)
				sub.set("new.target.message", c.msg)
				sub.set("created", c.old == "")
				if c.old == "" {
					sub.set("old", nil)
				} else {
					sub.set("old.type", c.typ)
					sub.set("old.name", c.name)
					sub.set("old.target.hash", c.old)
				}
			}
			if sub.err != nil {
				d.fail(fmt.Sprintf("change %d: %v", i, sub.err))
				return
			}
			list = append(list, ch)
		}
		d.set("push.changes", list)
		d.set("repository.full_name", p.FullName)
		d.setIfPresent("repository.name", p.FullName[strings.Index(p.FullName, "/")+1:])
		d.setIfPresent("actor.nickname", actor)
	}
}

// bbMulti is one Bitbucket push that moves two branches.
func (g *gen) bbMulti(st *repoState) *Delivery {
	other := st.branches[g.r.IntN(len(st.branches))]
	def := st.p.DefaultBranch()
	r1, r2 := g.rev(), g.rev()
	c1 := bbChange{typ: "branch", name: def, rev: r1, old: st.moveHead(def, r1), msg: "Merge work into " + def}
	c2 := bbChange{typ: "branch", name: other, rev: r2, old: st.moveHead(other, r2), msg: "Rebase " + other}
	d := &Delivery{Project: st.p, ID: g.uuid(), Event: "repo:push", Kind: "two-branch push", Revisions: []string{r1, r2},
		Wants: []Want{
			{Branch: def, Revision: r1, Build: true, Rule: "branch push"},
			{Branch: other, Revision: r2, Build: true, Rule: "branch push"},
		}}
	g.bbPush(d, c1, c2)
	return d
}

// badKinds are the ways a delivery's signature is wrong.
var badKinds = []string{"wrong-secret", "other-project-secret", "corrupted", "truncated", "tampered", "unsigned", "sha1-prefix"}

// bad makes the i-th badly signed delivery: a push to the default branch
// or a pull request, of a revision nothing else names, that forgelink must
// refuse and forget.
func (g *gen) bad(i int) *Delivery {
	real := g.repos[g.r.IntN(len(g.repos))]
	// A copy of the state, so that the repository's story is unchanged.
	st := &repoState{p: real.p, heads: map[string]string{}, nextPR: 100000 + i, names: 100000 + i}
	var d *Delivery
	if g.r.IntN(2) == 0 {
		d = g.push(st, st.p.DefaultBranch(), g.rev(), "push")
	} else {
		st.nextPR++
		d = g.pr(st, &openPR{number: st.nextPR, branch: st.name("sneaky/"), head: g.rev()}, "opened", false)
	}
	d.Bad = badKinds[i%len(badKinds)]
	d.Kind = "bad " + d.Kind
	for i := range d.Wants {
		d.Wants[i].Build, d.Wants[i].Rule = false, "bad signature: "+d.Bad
	}
	switch d.Bad {
	case "wrong-secret":
		d.badSecret = "not-" + real.p.Secret
	case "other-project-secret":
		d.badSecret = "not-" + real.p.Secret
		for _, o := range g.repos {
			if o.p != real.p {
				d.badSecret = o.p.Secret
				break
			}
		}
	case "tampered":
		// Signed for one revision, sent with another.
		sent := g.rev()
		signed := d.Revisions[0]
		d.Revisions = append(d.Revisions, sent)
		d.tamper = func(x *doc) {
			x.replaceString(signed, sent)
			x.replaceString(signed[:12], sent[:12])
		}
	}
	return d
}

// doc is a decoded JSON payload being rewritten.
type doc struct {
	root map[string]any
	err  error
}

func (d *doc) fail(msg string) {
	if d.err == nil {
		d.err = fmt.Errorf("%s", msg)
	}
}

// walk returns the container holding the last element of path and that
// element's key, failing when a parent is missing.
func (d *doc) walk(path string) (parent any, key string, ok bool) {
	parts := strings.Split(path, ".")
	var cur any = d.root
	for _, k := range parts[:len(parts)-1] {
		switch c := cur.(type) {
		case map[string]any:
			cur = c[k]
		case []any:
			i, err := strconv.Atoi(k)
			if err != nil || i < 0 || i >= len(c) {
				return nil, "", false
			}
			cur = c[i]
		default:
			return nil, "", false
		}
	}
	return cur, parts[len(parts)-1], true
}

// set replaces the value at path, which must exist in the template: a
// typo must not add a field the parser never reads.
func (d *doc) set(path string, v any) {
	if d.err != nil {
		return
	}
	parent, key, ok := d.walk(path)
	m, isMap := parent.(map[string]any)
	if !ok || !isMap {
		d.fail("no " + path + " in the template")
		return
	}
	if _, exists := m[key]; !exists {
		d.fail("no " + path + " in the template")
		return
	}
	m[key] = v
}

// setIfPresent is set for fields only some templates have.
func (d *doc) setIfPresent(path string, v any) {
	if d.err != nil {
		return
	}
	if parent, key, ok := d.walk(path); ok {
		if m, isMap := parent.(map[string]any); isMap {
			if _, exists := m[key]; exists {
				m[key] = v
			}
		}
	}
}

// replaceString replaces every string value equal to from.
func (d *doc) replaceString(from, to string) {
	var visit func(v any) any
	visit = func(v any) any {
		switch x := v.(type) {
		case map[string]any:
			for k, e := range x {
				x[k] = visit(e)
			}
		case []any:
			for i, e := range x {
				x[i] = visit(e)
			}
		case string:
			if x == from {
				return to
			}
		}
		return v
	}
	visit(d.root)
}

func decodeAny(b []byte) (map[string]any, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		return nil, err
	}
	return m, nil
}

// deepCopy copies a decoded JSON value.
func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		m := make(map[string]any, len(x))
		for k, e := range x {
			m[k] = deepCopy(e)
		}
		return m
	case []any:
		l := make([]any, len(x))
		for i, e := range x {
			l[i] = deepCopy(e)
		}
		return l
	}
	return v
}
