package storetest

import (
	"encoding/base64"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/forgelink"
)

// RunPipelines runs the forgelink.PipelineStore contract against the stores
// newStore returns. Every subtest gets a new, empty store. The contract
// does not need the projects to exist, so newStore returns only the
// PipelineStore; a store implementing both interfaces runs Run and
// RunPipelines with the same constructor:
//
//	func TestPipelines(t *testing.T) {
//		storetest.RunPipelines(t, func(t *testing.T) forgelink.PipelineStore {
//			return open(t, filepath.Join(t.TempDir(), "forgelink.db"))
//		})
//	}
func RunPipelines(t *testing.T, newStore func(t *testing.T) forgelink.PipelineStore) {
	t.Run("PipelineNumbers", func(t *testing.T) { testPipelineNumbers(t, newStore) })
	t.Run("PipelineDuplicate", func(t *testing.T) { testPipelineDuplicate(t, newStore) })
	t.Run("PipelineRefs", func(t *testing.T) { testPipelineRefs(t, newStore) })
	t.Run("PipelineProjects", func(t *testing.T) { testPipelineProjects(t, newStore) })
	t.Run("PipelineRoundTrip", func(t *testing.T) { testPipelineRoundTrip(t, newStore) })
	t.Run("PipelineNotAliased", func(t *testing.T) { testPipelineNotAliased(t, newStore) })
	t.Run("PipelineInvalid", func(t *testing.T) { testPipelineInvalid(t, newStore) })
	t.Run("ListPipelines", func(t *testing.T) { testListPipelines(t, newStore) })
	t.Run("BadPageToken", func(t *testing.T) { testBadPageToken(t, newStore) })
	t.Run("DeliveryRecordRoundTrip", func(t *testing.T) { testDeliveryRecordRoundTrip(t, newStore) })
	t.Run("DeliveryRecordReplace", func(t *testing.T) { testDeliveryRecordReplace(t, newStore) })
	t.Run("DeliveryRecordInvalid", func(t *testing.T) { testDeliveryRecordInvalid(t, newStore) })
	t.Run("ListDeliveryRecords", func(t *testing.T) { testListDeliveryRecords(t, newStore) })
	t.Run("PageLimits", func(t *testing.T) { testPageLimits(t, newStore) })
	t.Run("OpenPRsUnknown", func(t *testing.T) { testOpenPRsUnknown(t, newStore) })
	t.Run("SetPROpen", func(t *testing.T) { testSetPROpen(t, newStore) })
	t.Run("SetOpenPRs", func(t *testing.T) { testSetOpenPRs(t, newStore) })
	t.Run("Concurrent", func(t *testing.T) {
		t.Run("CreatePipelineNumbers", func(t *testing.T) { testConcurrentPipelineNumbers(t, newStore) })
		t.Run("CreatePipelineSameRevision", func(t *testing.T) { testConcurrentPipelineSameRevision(t, newStore) })
		t.Run("SetPROpen", func(t *testing.T) { testConcurrentSetPROpen(t, newStore) })
	})
}

// pipelineSlug returns the slug of a test project named repo.
func pipelineSlug(repo string) forgelink.Slug {
	return forgelink.Slug{VCS: forgelink.GitHub, Org: "octo-org", Repo: repo}
}

// revision returns a distinct 40-hex-digit revision for each i.
func revision(i int) string { return fmt.Sprintf("%040x", 0xc0ffee000+i) }

// branchPipeline returns a push pipeline of project on branch at rev, with
// every field set but ID and Number.
func branchPipeline(project forgelink.Slug, branch, rev string) *forgelink.Pipeline {
	return &forgelink.Pipeline{
		Project:        project.String(),
		State:          forgelink.PipelineCreated,
		Trigger:        "push",
		Branch:         branch,
		Revision:       rev,
		PRNumber:       7,
		Fork:           true,
		SecretsExposed: true,
		Workflows:      []string{"build", "test"},
		Actor:          "octocat",
		Errors:         []string{"warning: unused job"},
		HookID:         "hook-" + project.Repo,
		DeliveryID:     "delivery-" + rev[len(rev)-6:],
		// A non-UTC location: stores must keep the instant, not the zone.
		CreatedAt: base.In(time.FixedZone("UTC-3", -3*3600)),
	}
}

// tagPipeline returns a tag pipeline of project at rev.
func tagPipeline(project forgelink.Slug, tag, rev string) *forgelink.Pipeline {
	p := branchPipeline(project, "", rev)
	p.Trigger, p.Tag, p.PRNumber = "tag", tag, 0
	return p
}

// clonePipeline returns a deep copy of p.
func clonePipeline(p *forgelink.Pipeline) *forgelink.Pipeline {
	c := *p
	c.Workflows = slices.Clone(p.Workflows)
	c.Errors = slices.Clone(p.Errors)
	c.WorkflowStatus = maps.Clone(p.WorkflowStatus)
	c.StatusErrors = slices.Clone(p.StatusErrors)
	return &c
}

// mustCreatePipeline creates p, checks that it got the number want and
// that the returned pipeline is p with its ID and Number, and returns it.
func mustCreatePipeline(t *testing.T, s forgelink.PipelineStore, p *forgelink.Pipeline, want int64) *forgelink.Pipeline {
	t.Helper()
	sent := clonePipeline(p)
	got, err := s.CreatePipeline(t.Context(), p)
	if err != nil {
		t.Fatalf("CreatePipeline(%s %s@%s): %v", p.Project, p.RefKey(), p.Revision, err)
	}
	if got.Number != want {
		t.Errorf("CreatePipeline(%s %s@%s) number = %d, want %d", p.Project, p.RefKey(), p.Revision, got.Number, want)
	}
	if got.ID == "" || (sent.ID != "" && got.ID != sent.ID) {
		t.Errorf("CreatePipeline(%s %s@%s) id = %q, want %q (or a new one if empty)", p.Project, p.RefKey(), p.Revision, got.ID, sent.ID)
	}
	sent.ID, sent.Number = got.ID, got.Number
	if diff := cmp.Diff(sent, got, cmpOpts...); diff != "" {
		t.Errorf("CreatePipeline(%s %s@%s) returned (-sent +returned):\n%s", p.Project, p.RefKey(), p.Revision, diff)
	}
	return got
}

// checkPipeline checks that GetPipeline returns want.
func checkPipeline(t *testing.T, s forgelink.PipelineStore, want *forgelink.Pipeline) {
	t.Helper()
	got, err := s.GetPipeline(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetPipeline(%s): %v", want.ID, err)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("GetPipeline(%s) mismatch (-want +got):\n%s", want.ID, diff)
	}
}

// listPipelinePages lists all of the project's pipelines limit at a time
// and returns the pages. It fails after a hundred pages.
func listPipelinePages(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, limit int) [][]*forgelink.Pipeline {
	t.Helper()
	var pages [][]*forgelink.Pipeline
	token := ""
	for range 100 {
		ps, next, err := s.ListPipelines(t.Context(), project, forgelink.Page{Token: token, Limit: limit})
		if err != nil {
			t.Fatalf("ListPipelines(%s, page %d): %v", project, len(pages)+1, err)
		}
		pages = append(pages, ps)
		if next == "" {
			return pages
		}
		token = next
	}
	t.Fatalf("ListPipelines(%s) did not end after 100 pages", project)
	return nil
}

// checkPipelines checks that the project lists exactly want, newest first
// (want is in creation order).
func checkPipelines(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, want []*forgelink.Pipeline) {
	t.Helper()
	var got []*forgelink.Pipeline
	for _, page := range listPipelinePages(t, s, project, 100) {
		got = append(got, page...)
	}
	want = slices.Clone(want)
	slices.Reverse(want)
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("ListPipelines(%s) mismatch (-want +got):\n%s", project, diff)
	}
}

func testPipelineNumbers(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("numbers")
	var created []*forgelink.Pipeline
	for i := range 5 {
		p := branchPipeline(slug, "main", revision(i))
		p.Number = 99 // the store numbers pipelines, whatever the caller had
		got := mustCreatePipeline(t, s, p, int64(i+1))
		if p.Number != got.Number || p.ID != got.ID {
			t.Errorf("after CreatePipeline, p has (id %q, number %d), want (%q, %d)", p.ID, p.Number, got.ID, got.Number)
		}
		created = append(created, got)
	}
	for _, p := range created {
		checkPipeline(t, s, p)
	}
	checkPipelines(t, s, slug, created)
}

func testPipelineDuplicate(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	tests := []struct {
		name  string
		first *forgelink.Pipeline
		edit  func(p *forgelink.Pipeline) // turns a copy of first into the duplicate
	}{
		{"same everything", branchPipeline(pipelineSlug("dup"), "main", revision(1)), func(*forgelink.Pipeline) {}},
		{"other delivery and event", branchPipeline(pipelineSlug("dup"), "main", revision(1)), func(p *forgelink.Pipeline) {
			p.ID = ""
			p.Trigger, p.PRNumber = "pull_request", 42
			p.State = forgelink.PipelineErrored
			p.HookID, p.DeliveryID, p.Actor = "hook-other", "delivery-other", "hubot"
			p.Workflows = []string{"other"}
			p.CreatedAt = base.Add(time.Minute)
		}},
		{"same tag", tagPipeline(pipelineSlug("dup"), "v1.0.0", revision(1)), func(p *forgelink.Pipeline) {
			p.DeliveryID = "redelivery"
		}},
		{"other caller id", branchPipeline(pipelineSlug("dup"), "main", revision(1)), func(p *forgelink.Pipeline) {
			p.ID = "7c8d2a4e-9b1f-4c3a-8e5d-000000000002"
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			slug := pipelineSlug("dup")
			first := mustCreatePipeline(t, s, tc.first, 1)

			dup := clonePipeline(tc.first)
			dup.Number = 0
			tc.edit(dup)
			sent := clonePipeline(dup)
			got, err := s.CreatePipeline(t.Context(), dup)
			wantKind(t, "CreatePipeline(duplicate)", err, forgelink.Conflict)
			if got == nil {
				t.Fatalf("CreatePipeline(duplicate) returned no pipeline with its Conflict, want the first (%s)", first.ID)
			}
			if diff := cmp.Diff(first, got, cmpOpts...); diff != "" {
				t.Errorf("CreatePipeline(duplicate) returned (-first +got):\n%s", diff)
			}
			if diff := cmp.Diff(sent, dup, cmpOpts...); diff != "" {
				t.Errorf("a failed CreatePipeline changed p (-before +after):\n%s", diff)
			}

			// Nothing was written, and the failed create left no gap.
			checkPipeline(t, s, first)
			if sent.ID != "" && sent.ID != first.ID {
				_, err := s.GetPipeline(t.Context(), sent.ID)
				wantKind(t, "GetPipeline(the duplicate's id)", err, forgelink.NotFound)
			}
			second := mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(2)), 2)
			checkPipelines(t, s, slug, []*forgelink.Pipeline{first, second})
		})
	}
}

// testPipelineRefs checks that a pipeline is unique per (ref, revision),
// not per revision.
func testPipelineRefs(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("refs")
	rev := revision(7)
	var created []*forgelink.Pipeline
	for i, p := range []*forgelink.Pipeline{
		branchPipeline(slug, "main", rev),
		branchPipeline(slug, "feature/a", rev),
		tagPipeline(slug, "v1.0.0", rev),
		// A tag named like a branch is another ref.
		tagPipeline(slug, "main", rev),
		tagPipeline(slug, "feature/a", rev),
		// Names that would meet if a store joined the key parts carelessly.
		branchPipeline(slug, "x#y", rev),
		branchPipeline(slug, "x", "y#"+rev),
		branchPipeline(slug, "main", revision(8)),
	} {
		created = append(created, mustCreatePipeline(t, s, p, int64(i+1)))
	}
	for _, p := range created {
		dup := clonePipeline(p)
		dup.ID, dup.Number = "", 0
		got, err := s.CreatePipeline(t.Context(), dup)
		wantKind(t, fmt.Sprintf("CreatePipeline(%s@%s again)", p.RefKey(), p.Revision), err, forgelink.Conflict)
		if got == nil || got.ID != p.ID || got.Number != p.Number {
			t.Errorf("CreatePipeline(%s@%s again) returned %+v, want pipeline %d (%s)", p.RefKey(), p.Revision, got, p.Number, p.ID)
		}
	}
	checkPipelines(t, s, slug, created)
}

func testPipelineProjects(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	a, b := pipelineSlug("a"), pipelineSlug("b")
	bb := forgelink.Slug{VCS: forgelink.Bitbucket, Org: "octo-org", Repo: "a"}
	var inA, inB, inBB []*forgelink.Pipeline
	inA = append(inA, mustCreatePipeline(t, s, branchPipeline(a, "main", revision(1)), 1))
	inA = append(inA, mustCreatePipeline(t, s, branchPipeline(a, "main", revision(2)), 2))
	// The same ref and revision in another project is another pipeline.
	inB = append(inB, mustCreatePipeline(t, s, branchPipeline(b, "main", revision(1)), 1))
	inBB = append(inBB, mustCreatePipeline(t, s, branchPipeline(bb, "main", revision(1)), 1))
	inA = append(inA, mustCreatePipeline(t, s, branchPipeline(a, "main", revision(3)), 3))
	inB = append(inB, mustCreatePipeline(t, s, branchPipeline(b, "main", revision(3)), 2))

	checkPipelines(t, s, a, inA)
	checkPipelines(t, s, b, inB)
	checkPipelines(t, s, bb, inBB)
	checkPipelines(t, s, pipelineSlug("none"), nil)
	ids := map[string]bool{}
	for _, p := range slices.Concat(inA, inB, inBB) {
		if ids[p.ID] {
			t.Errorf("pipeline id %s was given twice", p.ID)
		}
		ids[p.ID] = true
	}
}

func testPipelineRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	slug := pipelineSlug("round-trip")
	tests := []struct {
		name string
		p    *forgelink.Pipeline
	}{
		{"full", branchPipeline(slug, "main", revision(1))},
		{"caller id", func() *forgelink.Pipeline {
			p := branchPipeline(slug, "main", revision(1))
			p.ID = "5034460f-c7c4-4c43-9457-de07e2029e7b"
			return p
		}()},
		{"errored tag", func() *forgelink.Pipeline {
			p := tagPipeline(slug, "v2.0.0", revision(2))
			p.State = forgelink.PipelineErrored
			p.Workflows = nil
			p.Errors = []string{"config: line 3: mapping values are not allowed here", "second error"}
			return p
		}()},
		{"minimal", &forgelink.Pipeline{Project: slug.String(), Branch: "b", Revision: revision(3)}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			got := mustCreatePipeline(t, s, tc.p, 1)
			checkPipeline(t, s, got)
		})
	}

	t.Run("NotFound", func(t *testing.T) {
		s := newStore(t)
		p := mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(1)), 1)
		for _, id := range []string{"", "00000000-0000-4000-8000-000000000000", p.ID + "x", p.Project} {
			_, err := s.GetPipeline(t.Context(), id)
			wantKind(t, fmt.Sprintf("GetPipeline(%q)", id), err, forgelink.NotFound)
		}
	})
}

// testPipelineNotAliased checks that the store keeps no reference to the
// caller's pipeline and hands out copies.
func testPipelineNotAliased(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	p := branchPipeline(pipelineSlug("alias"), "main", revision(1))
	got := mustCreatePipeline(t, s, p, 1)
	want := clonePipeline(got)

	p.Workflows[0] = "changed"
	p.Errors[0] = "changed"
	got.Workflows[1] = "changed too"
	read, err := s.GetPipeline(t.Context(), want.ID)
	if err != nil {
		t.Fatalf("GetPipeline: %v", err)
	}
	read.Workflows[0] = "changed as well"

	checkPipeline(t, s, want)
}

func testPipelineInvalid(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	tests := []struct {
		name string
		edit func(p *forgelink.Pipeline)
	}{
		{"empty project", func(p *forgelink.Pipeline) { p.Project = "" }},
		{"bad project", func(p *forgelink.Pipeline) { p.Project = "gh/octo-org" }},
		{"empty revision", func(p *forgelink.Pipeline) { p.Revision = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			p := branchPipeline(pipelineSlug("invalid"), "main", revision(1))
			tc.edit(p)
			got, err := s.CreatePipeline(t.Context(), p)
			wantKind(t, "CreatePipeline", err, forgelink.Invalid)
			if got != nil {
				t.Errorf("CreatePipeline returned %+v with its error, want nil", got)
			}
			checkPipelines(t, s, pipelineSlug("invalid"), nil)
		})
	}
}

func testListPipelines(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("list")
	var created []*forgelink.Pipeline
	for i := range 6 {
		created = append(created, mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(i)), int64(i+1)))
	}
	// Another project's pipelines are not listed.
	mustCreatePipeline(t, s, branchPipeline(pipelineSlug("list-other"), "main", revision(0)), 1)

	pages := listPipelinePages(t, s, slug, 2)
	want := [][]*forgelink.Pipeline{
		{created[5], created[4]},
		{created[3], created[2]},
		{created[1], created[0]},
	}
	if diff := cmp.Diff(want, pages, cmpOpts...); diff != "" {
		t.Errorf("ListPipelines pages of 2 mismatch (-want +got):\n%s", diff)
	}

	// A token stays valid while pipelines are added.
	first, next, err := s.ListPipelines(t.Context(), slug, forgelink.Page{Limit: 3})
	if err != nil || len(first) != 3 || next == "" {
		t.Fatalf("ListPipelines(limit 3) = %d pipelines, next %q, %v; want 3 and a token", len(first), next, err)
	}
	mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(6)), 7)
	rest, next, err := s.ListPipelines(t.Context(), slug, forgelink.Page{Token: next, Limit: 3})
	if err != nil {
		t.Fatalf("ListPipelines(second page): %v", err)
	}
	if diff := cmp.Diff([]*forgelink.Pipeline{created[2], created[1], created[0]}, rest, cmpOpts...); diff != "" || next != "" {
		t.Errorf("ListPipelines(second page of 3) next %q, mismatch (-want +got):\n%s", next, diff)
	}

	// No pipelines: an empty page and no token.
	ps, next, err := s.ListPipelines(t.Context(), pipelineSlug("empty"), forgelink.Page{})
	if err != nil || len(ps) != 0 || next != "" {
		t.Errorf("ListPipelines(no pipelines) = %v, %q, %v; want none, \"\", nil", ps, next, err)
	}
}

func testBadPageToken(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("tokens")
	for i := range 3 {
		mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(i)), int64(i+1))
		mustPutRecord(t, s, deliveryRecord(slug, "hook", fmt.Sprint(i), base.Add(time.Duration(i)*time.Minute)))
	}
	_, pipelineToken, err := s.ListPipelines(t.Context(), slug, forgelink.Page{Limit: 1})
	if err != nil || pipelineToken == "" {
		t.Fatalf("ListPipelines(limit 1) next %q, %v; want a token", pipelineToken, err)
	}
	_, recordToken, err := s.ListDeliveryRecords(t.Context(), slug, forgelink.Page{Limit: 1})
	if err != nil || recordToken == "" {
		t.Fatalf("ListDeliveryRecords(limit 1) next %q, %v; want a token", recordToken, err)
	}
	bad := []struct {
		name  string
		token string
	}{
		{"not base64", "!!!not a token!!!"},
		{"garbage", base64.RawURLEncoding.EncodeToString([]byte("garbage"))},
		{"garbage, std encoding", base64.StdEncoding.EncodeToString([]byte("garbage\xff\xfe"))},
		{"corrupted", pipelineToken[:len(pipelineToken)/2] + "!"},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			_, _, err := s.ListPipelines(t.Context(), slug, forgelink.Page{Token: tc.token, Limit: 1})
			wantKind(t, "ListPipelines", err, forgelink.Invalid)
			if got := forgelink.MessageOf(err); got != "invalid page token" {
				t.Errorf("ListPipelines error message %q, want %q", got, "invalid page token")
			}
			_, _, err = s.ListDeliveryRecords(t.Context(), slug, forgelink.Page{Token: tc.token, Limit: 1})
			wantKind(t, "ListDeliveryRecords", err, forgelink.Invalid)
		})
	}
	t.Run("other listing's token", func(t *testing.T) {
		_, _, err := s.ListPipelines(t.Context(), slug, forgelink.Page{Token: recordToken, Limit: 1})
		wantKind(t, "ListPipelines(a delivery records token)", err, forgelink.Invalid)
		_, _, err = s.ListDeliveryRecords(t.Context(), slug, forgelink.Page{Token: pipelineToken, Limit: 1})
		wantKind(t, "ListDeliveryRecords(a pipelines token)", err, forgelink.Invalid)
	})
}

// deliveryRecord returns a record with every field set.
func deliveryRecord(project forgelink.Slug, hookID, deliveryID string, received time.Time) *forgelink.DeliveryRecord {
	return &forgelink.DeliveryRecord{
		Project:     project.String(),
		HookID:      hookID,
		DeliveryID:  deliveryID,
		Event:       "push",
		ReceivedAt:  received,
		ProcessedAt: received.Add(1500 * time.Millisecond),
		Decisions: []forgelink.EventDecision{
			{
				Type:           forgelink.BranchPush,
				Branch:         "main",
				Revision:       revision(1),
				Build:          true,
				PipelineID:     "5034460f-c7c4-4c43-9457-de07e2029e7b",
				PipelineNumber: 12,
				Duplicate:      true,
			},
			{
				Type:     forgelink.PullRequest,
				Branch:   "feature",
				Tag:      "",
				Revision: revision(2),
				PRNumber: 42,
				Reason:   "builds of forked pull requests are off",
			},
		},
	}
}

func mustPutRecord(t *testing.T, s forgelink.PipelineStore, r *forgelink.DeliveryRecord) {
	t.Helper()
	if err := s.PutDeliveryRecord(t.Context(), r); err != nil {
		t.Fatalf("PutDeliveryRecord(%s %s/%s): %v", r.Project, r.HookID, r.DeliveryID, err)
	}
}

// listRecordPages lists all of the project's delivery records limit at a
// time and returns the pages.
func listRecordPages(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, limit int) [][]*forgelink.DeliveryRecord {
	t.Helper()
	var pages [][]*forgelink.DeliveryRecord
	token := ""
	for range 100 {
		rs, next, err := s.ListDeliveryRecords(t.Context(), project, forgelink.Page{Token: token, Limit: limit})
		if err != nil {
			t.Fatalf("ListDeliveryRecords(%s, page %d): %v", project, len(pages)+1, err)
		}
		pages = append(pages, rs)
		if next == "" {
			return pages
		}
		token = next
	}
	t.Fatalf("ListDeliveryRecords(%s) did not end after 100 pages", project)
	return nil
}

// checkRecords checks that the project lists exactly want, in that order.
func checkRecords(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, want []*forgelink.DeliveryRecord) {
	t.Helper()
	var got []*forgelink.DeliveryRecord
	for _, page := range listRecordPages(t, s, project, 100) {
		got = append(got, page...)
	}
	if diff := cmp.Diff(want, got, cmpOpts...); diff != "" {
		t.Errorf("ListDeliveryRecords(%s) mismatch (-want +got):\n%s", project, diff)
	}
}

func testDeliveryRecordRoundTrip(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	slug := pipelineSlug("records")
	tests := []struct {
		name string
		r    *forgelink.DeliveryRecord
	}{
		{"full", deliveryRecord(slug, "hook-1", "72d3162e-cc78-11e3-81ab-4c9367dc0958", base)},
		{"no decisions", func() *forgelink.DeliveryRecord {
			r := deliveryRecord(slug, "hook-1", "ping", base.In(time.FixedZone("UTC+9", 9*3600)))
			r.Event, r.Decisions = "ping", nil
			return r
		}()},
		{"odd ids", deliveryRecord(slug, "hook#1/%23", "{5a1b2c3d-bitbucket-uuid}#x", base)},
		{"zero time", deliveryRecord(slug, "hook-1", "old", time.Time{})},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			want := *tc.r
			mustPutRecord(t, s, tc.r)
			checkRecords(t, s, slug, []*forgelink.DeliveryRecord{&want})
		})
	}
}

func testDeliveryRecordReplace(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("replace")
	first := deliveryRecord(slug, "hook", "d1", base)
	mustPutRecord(t, s, first)
	between := deliveryRecord(slug, "hook", "d2", base.Add(time.Minute))
	mustPutRecord(t, s, between)
	// The same delivery id under another hook or project is another record.
	otherHook := deliveryRecord(slug, "hook-2", "d1", base.Add(-time.Minute))
	mustPutRecord(t, s, otherHook)
	otherProject := deliveryRecord(pipelineSlug("replace-other"), "hook", "d1", base)
	mustPutRecord(t, s, otherProject)

	// Re-processing the message: same record, new decisions.
	again := deliveryRecord(slug, "hook", "d1", base)
	again.ProcessedAt = base.Add(time.Hour)
	again.Decisions = again.Decisions[1:]
	mustPutRecord(t, s, again)
	checkRecords(t, s, slug, []*forgelink.DeliveryRecord{between, again, otherHook})

	// A replacement received at another time moves.
	later := deliveryRecord(slug, "hook", "d1", base.Add(2*time.Minute))
	later.Event = "redelivered"
	mustPutRecord(t, s, later)
	checkRecords(t, s, slug, []*forgelink.DeliveryRecord{later, between, otherHook})
	checkRecords(t, s, pipelineSlug("replace-other"), []*forgelink.DeliveryRecord{otherProject})
}

func testDeliveryRecordInvalid(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	tests := []struct {
		name string
		edit func(r *forgelink.DeliveryRecord)
	}{
		{"bad project", func(r *forgelink.DeliveryRecord) { r.Project = "octo-org/hello" }},
		{"empty hook id", func(r *forgelink.DeliveryRecord) { r.HookID = "" }},
		{"empty delivery id", func(r *forgelink.DeliveryRecord) { r.DeliveryID = "" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			slug := pipelineSlug("invalid")
			r := deliveryRecord(slug, "hook", "d", base)
			tc.edit(r)
			wantKind(t, "PutDeliveryRecord", s.PutDeliveryRecord(t.Context(), r), forgelink.Invalid)
			checkRecords(t, s, slug, nil)
		})
	}
}

func testListDeliveryRecords(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("history")
	// Put out of order: the listing is by ReceivedAt, not by insertion.
	offsets := []time.Duration{3 * time.Second, 0, 4 * time.Hour, time.Millisecond, 2 * time.Second}
	var rs []*forgelink.DeliveryRecord
	for i, d := range offsets {
		r := deliveryRecord(slug, "hook", fmt.Sprintf("d%d", i), base.Add(d))
		mustPutRecord(t, s, r)
		rs = append(rs, r)
	}
	mustPutRecord(t, s, deliveryRecord(pipelineSlug("history-other"), "hook", "x", base.Add(time.Hour)))

	pages := listRecordPages(t, s, slug, 2)
	want := [][]*forgelink.DeliveryRecord{{rs[2], rs[0]}, {rs[4], rs[3]}, {rs[1]}}
	if diff := cmp.Diff(want, pages, cmpOpts...); diff != "" {
		t.Errorf("ListDeliveryRecords pages of 2 mismatch (-want +got):\n%s", diff)
	}

	rs, next, err := s.ListDeliveryRecords(t.Context(), pipelineSlug("empty"), forgelink.Page{})
	if err != nil || len(rs) != 0 || next != "" {
		t.Errorf("ListDeliveryRecords(no records) = %v, %q, %v; want none, \"\", nil", rs, next, err)
	}
}

// testPageLimits checks the default and the cap of Page.Limit.
func testPageLimits(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("limits")
	for i := range 101 {
		mustPutRecord(t, s, deliveryRecord(slug, "hook", fmt.Sprintf("d%03d", i), base.Add(time.Duration(i)*time.Second)))
	}
	tests := []struct {
		limit, want int
	}{
		{0, 20},
		{-1, 20},
		{7, 7},
		{100, 100},
		{101, 100},
		{1 << 30, 100},
	}
	for _, tc := range tests {
		t.Run(fmt.Sprint(tc.limit), func(t *testing.T) {
			rs, next, err := s.ListDeliveryRecords(t.Context(), slug, forgelink.Page{Limit: tc.limit})
			if err != nil {
				t.Fatalf("ListDeliveryRecords(limit %d): %v", tc.limit, err)
			}
			if len(rs) != tc.want || next == "" {
				t.Errorf("ListDeliveryRecords(limit %d) = %d records, next %q; want %d and a token", tc.limit, len(rs), next, tc.want)
			}
		})
	}
}

// checkOpenPRs checks what OpenPRs says of the branch. The order of the
// numbers is not part of the contract.
func checkOpenPRs(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, branch string, want []int, wantKnown bool) {
	t.Helper()
	got, known, err := s.OpenPRs(t.Context(), project, branch)
	if err != nil {
		t.Fatalf("OpenPRs(%s, %q): %v", project, branch, err)
	}
	got = slices.Sorted(slices.Values(got))
	if known != wantKnown || !slices.Equal(got, want) {
		t.Errorf("OpenPRs(%s, %q) = %v, known %t; want %v, known %t", project, branch, got, known, want, wantKnown)
	}
}

func setPROpen(t *testing.T, s forgelink.PipelineStore, project forgelink.Slug, branch string, pr int, open bool) {
	t.Helper()
	if err := s.SetPROpen(t.Context(), project, branch, pr, open); err != nil {
		t.Fatalf("SetPROpen(%s, %q, %d, %t): %v", project, branch, pr, open, err)
	}
}

func testOpenPRsUnknown(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("prs")
	checkOpenPRs(t, s, slug, "feature", nil, false)
	setPROpen(t, s, slug, "feature", 1, true)
	// Knowing one branch says nothing of the others, or of other projects.
	checkOpenPRs(t, s, slug, "feature-2", nil, false)
	checkOpenPRs(t, s, slug, "featur", nil, false)
	checkOpenPRs(t, s, pipelineSlug("prs-other"), "feature", nil, false)
}

func testSetPROpen(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("prs")
	for _, branch := range []string{"feature", "fix/issue#12"} {
		t.Run(branch, func(t *testing.T) {
			setPROpen(t, s, slug, branch, 42, true)
			checkOpenPRs(t, s, slug, branch, []int{42}, true)
			setPROpen(t, s, slug, branch, 42, true) // again: no duplicate
			checkOpenPRs(t, s, slug, branch, []int{42}, true)
			setPROpen(t, s, slug, branch, 43, true)
			checkOpenPRs(t, s, slug, branch, []int{42, 43}, true)
			setPROpen(t, s, slug, branch, 42, false)
			checkOpenPRs(t, s, slug, branch, []int{43}, true)
			setPROpen(t, s, slug, branch, 42, false) // again: no change
			checkOpenPRs(t, s, slug, branch, []int{43}, true)
			setPROpen(t, s, slug, branch, 43, false)
			checkOpenPRs(t, s, slug, branch, nil, true)
			setPROpen(t, s, slug, branch, 44, true)
			checkOpenPRs(t, s, slug, branch, []int{44}, true)
		})
	}
	// Closing a PR of a branch never heard of makes it known, with none open.
	setPROpen(t, s, slug, "closed-first", 5, false)
	checkOpenPRs(t, s, slug, "closed-first", nil, true)
	// The branches did not disturb each other.
	checkOpenPRs(t, s, slug, "feature", []int{44}, true)

	for _, tc := range []struct {
		name   string
		branch string
		pr     int
	}{
		{"empty branch", "", 1},
		{"zero pr", "feature", 0},
		{"negative pr", "feature", -3},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantKind(t, "SetPROpen", s.SetPROpen(t.Context(), slug, tc.branch, tc.pr, true), forgelink.Invalid)
		})
	}
	checkOpenPRs(t, s, slug, "feature", []int{44}, true)
}

func testSetOpenPRs(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("prs")
	set := func(branch string, prs []int) {
		t.Helper()
		if err := s.SetOpenPRs(t.Context(), slug, branch, prs); err != nil {
			t.Fatalf("SetOpenPRs(%q, %v): %v", branch, prs, err)
		}
	}
	set("none", nil)
	checkOpenPRs(t, s, slug, "none", nil, true)
	set("empty", []int{})
	checkOpenPRs(t, s, slug, "empty", nil, true)

	set("feature", []int{9, 3, 9})
	checkOpenPRs(t, s, slug, "feature", []int{3, 9}, true)
	set("feature", []int{11})
	checkOpenPRs(t, s, slug, "feature", []int{11}, true)
	setPROpen(t, s, slug, "feature", 12, true)
	checkOpenPRs(t, s, slug, "feature", []int{11, 12}, true)
	set("feature", nil)
	checkOpenPRs(t, s, slug, "feature", nil, true)
	checkOpenPRs(t, s, slug, "none", nil, true)

	wantKind(t, "SetOpenPRs(empty branch)", s.SetOpenPRs(t.Context(), slug, "", []int{1}), forgelink.Invalid)
	wantKind(t, "SetOpenPRs(zero pr)", s.SetOpenPRs(t.Context(), slug, "bad", []int{1, 0}), forgelink.Invalid)
	checkOpenPRs(t, s, slug, "bad", nil, false)
}

func testConcurrentPipelineNumbers(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("race")
	got := make([]*forgelink.Pipeline, writers)
	errs := race(writers, func(i int) error {
		var err error
		got[i], err = s.CreatePipeline(t.Context(), branchPipeline(slug, "main", revision(i)))
		return err
	})
	byNumber := make([]*forgelink.Pipeline, writers)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: CreatePipeline: %v", i, err)
		}
		n := got[i].Number
		switch {
		case n < 1 || n > writers:
			t.Errorf("writer %d got number %d, want 1..%d", i, n, writers)
		case byNumber[n-1] != nil:
			t.Errorf("writers of %s and %s both got number %d", byNumber[n-1].Revision, got[i].Revision, n)
		default:
			byNumber[n-1] = got[i]
		}
	}
	if t.Failed() {
		return
	}
	for _, p := range byNumber {
		checkPipeline(t, s, p)
	}
	checkPipelines(t, s, slug, byNumber)
	mustCreatePipeline(t, s, branchPipeline(slug, "main", revision(writers)), writers+1)
}

func testConcurrentPipelineSameRevision(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("race")
	got := make([]*forgelink.Pipeline, writers)
	errs := race(writers, func(i int) error {
		p := branchPipeline(slug, "main", revision(1))
		p.DeliveryID = fmt.Sprintf("writer-%d", i)
		var err error
		got[i], err = s.CreatePipeline(t.Context(), p)
		return err
	})
	w := oneWinner(t, errs, forgelink.Conflict)
	if got[w] == nil || got[w].Number != 1 || got[w].DeliveryID != fmt.Sprintf("writer-%d", w) {
		t.Fatalf("the winner, writer %d, got %+v; want its own pipeline, number 1", w, got[w])
	}
	for i, p := range got {
		if diff := cmp.Diff(got[w], p, cmpOpts...); i != w && diff != "" {
			t.Errorf("writer %d returned (-winner's +got):\n%s", i, diff)
		}
	}
	checkPipeline(t, s, got[w])
	checkPipelines(t, s, slug, got[w:w+1])
}

func testConcurrentSetPROpen(t *testing.T, newStore func(*testing.T) forgelink.PipelineStore) {
	s := newStore(t)
	slug := pipelineSlug("race")
	errs := race(writers, func(i int) error { return s.SetPROpen(t.Context(), slug, "feature", i+1, true) })
	var want []int
	for i, err := range errs {
		if err != nil {
			t.Errorf("writer %d: SetPROpen: %v", i, err)
		}
		want = append(want, i+1)
	}
	checkOpenPRs(t, s, slug, "feature", want, true)

	// Closing them all at once leaves none, and the branch known.
	errs = race(writers, func(i int) error { return s.SetPROpen(t.Context(), slug, "feature", i+1, false) })
	for i, err := range errs {
		if err != nil {
			t.Errorf("closer %d: SetPROpen: %v", i, err)
		}
	}
	checkOpenPRs(t, s, slug, "feature", nil, true)
}
