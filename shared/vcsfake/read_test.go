package vcsfake_test

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"forgelink/shared/vcsfake"
)

func TestReadGitBlobSHA(t *testing.T) {
	// As `git hash-object` computes them.
	tests := map[string]string{
		"":        "e69de29bb2d1d6434b8b29ae775ad8c2e48c5391",
		"hello\n": "ce013625030ba8dba906f756967f9e9ca394464a",
	}
	for content, want := range tests {
		if got := vcsfake.GitBlobSHA([]byte(content)); got != want {
			t.Errorf("GitBlobSHA(%q) = %s, want %s", content, got, want)
		}
	}
}

func TestReadGitHubContents(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	content := []byte(strings.Repeat("0123456789", 20))
	g.SetFile("o/r", "main", "dir/f.txt", content)
	g.SetFile("o/r", "main", "dir/sub/g.txt", []byte("g"))
	g.SetFile("o/r", "main", "big", make([]byte, 1<<20+1))

	resp, body := call(t, "GET", g.URL+"repos/o/r/contents/dir/f.txt?ref=main", g.Token, "", nil)
	var file struct {
		Type, Encoding, Content, SHA, Path, Name string
		Size                                     int
	}
	if err := json.Unmarshal(body, &file); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET file = %d %s", resp.StatusCode, body)
	}
	if file.Type != "file" || file.Encoding != "base64" || file.SHA != vcsfake.GitBlobSHA(content) ||
		file.Path != "dir/f.txt" || file.Name != "f.txt" || file.Size != len(content) {
		t.Errorf("file = %+v", file)
	}
	lines := strings.Split(strings.TrimSuffix(file.Content, "\n"), "\n")
	for i, l := range lines {
		if len(l) > 60 || (i < len(lines)-1 && len(l) != 60) {
			t.Errorf("content line %d has %d characters, want 60 (less on the last)", i, len(l))
		}
	}
	if !strings.HasSuffix(file.Content, "\n") || len(lines) < 2 {
		t.Errorf("content %q: want several lines, each ending with a newline", file.Content)
	}
	if got, err := base64.StdEncoding.DecodeString(strings.ReplaceAll(file.Content, "\n", "")); err != nil || string(got) != string(content) {
		t.Errorf("decoded content = %q, %v", got, err)
	}

	resp, body = call(t, "GET", g.URL+"repos/o/r/contents/dir", g.Token, "", nil)
	var dir []struct{ Type, Name, Path string }
	if err := json.Unmarshal(body, &dir); err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET dir = %d %s", resp.StatusCode, body)
	}
	want := []struct{ Type, Name, Path string }{{"file", "f.txt", "dir/f.txt"}, {"dir", "sub", "dir/sub"}}
	if diff := cmp.Diff(want, dir); diff != "" {
		t.Errorf("listing (-want +got):\n%s", diff)
	}

	tests := []struct {
		name, path string
		wantStatus int
		wantBody   string
	}{
		{"missing file", "repos/o/r/contents/nope?ref=main", 404, `"message":"Not Found"`},
		{"missing ref", "repos/o/r/contents/dir/f.txt?ref=abc", 404, "No commit found for the ref abc"},
		{"too large", "repos/o/r/contents/big", 403, `"code":"too_large"`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := call(t, "GET", g.URL+tc.path, g.Token, "", nil)
			if resp.StatusCode != tc.wantStatus || !strings.Contains(string(body), tc.wantBody) {
				t.Errorf("GET = %d %s, want %d with %s", resp.StatusCode, body, tc.wantStatus, tc.wantBody)
			}
		})
	}
	if n := g.CountRequests("GET", "/contents/dir/f.txt"); n != 2 {
		t.Errorf("CountRequests = %d, want 2", n)
	}
}

func TestReadGitHubScopes(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	resp, _ := call(t, "GET", g.URL+"user", g.Token, "", nil)
	if got := resp.Header.Get("X-OAuth-Scopes"); got != strings.Join(vcsfake.GitHubDefaultScopes, ", ") {
		t.Errorf("X-OAuth-Scopes = %q, want the defaults", got)
	}
	g.SetScopes("repo", "read:public_key")
	key := `{"title":"t","key":"` + vcsfake.NewPublicKey("") + `"}`
	tests := []struct {
		name, method, path, body string
		wantStatus               int
	}{
		{"list keys with read", "GET", "user/keys", "", 200},
		{"add key without write", "POST", "user/keys", key, 404},
		{"emails without user:email", "GET", "user/emails", "", 404},
		{"a repository call", "GET", "repos/o/nope", "", 404},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, _ := call(t, tc.method, g.URL+tc.path, g.Token, tc.body, nil)
			if resp.StatusCode != tc.wantStatus {
				t.Errorf("%s %s = %d, want %d", tc.method, tc.path, resp.StatusCode, tc.wantStatus)
			}
			if got := resp.Header.Get("X-OAuth-Scopes"); got != "repo, read:public_key" {
				t.Errorf("X-OAuth-Scopes = %q", got)
			}
		})
	}
	if n := len(g.UserKeys()); n != 0 {
		t.Errorf("%d user keys after a refused add", n)
	}
	g.SetScopes("write:public_key", "user")
	if resp, _ := call(t, "POST", g.URL+"user/keys", g.Token, key, nil); resp.StatusCode != 201 {
		t.Errorf("POST with write:public_key = %d, want 201", resp.StatusCode)
	}
	id := g.UserKeys()[0].ID
	if resp, _ := call(t, "DELETE", g.URL+"user/keys/"+id, g.Token, "", nil); resp.StatusCode != 404 {
		t.Errorf("DELETE without admin:public_key = %d, want 404", resp.StatusCode)
	}
	g.SetEmails(vcsfake.Email{Address: "a@example.com", Primary: true, Verified: true})
	_, body := call(t, "GET", g.URL+"user/emails", g.Token, "", nil)
	var emails []struct {
		Email             string
		Primary, Verified bool
	}
	if err := json.Unmarshal(body, &emails); err != nil || len(emails) != 1 || emails[0].Email != "a@example.com" || !emails[0].Primary || !emails[0].Verified {
		t.Errorf("emails = %s", body)
	}
}

func TestReadGitHubPulls(t *testing.T) {
	g := vcsfake.NewGitHub(t)
	g.AddRepo("o/r", "main", false)
	g.OpenPR("o/r", 1, "feature")
	g.OpenPR("o/r", 2, "feature")
	g.OpenPR("o/r", 3, "fork/r:feature")
	g.OpenPR("o/r", 4, "other")
	g.ClosePR("o/r", 2)
	tests := []struct {
		query string
		want  []int
	}{
		{"", []int{4, 3, 1}},
		{"state=open&head=o:feature", []int{1}},
		{"state=all&head=o:feature", []int{2, 1}},
		{"state=closed", []int{2}},
		{"head=fork:feature", []int{3}},
		{"head=feature", nil}, // GitHub wants owner:branch
	}
	for _, tc := range tests {
		t.Run(tc.query, func(t *testing.T) {
			resp, body := call(t, "GET", g.URL+"repos/o/r/pulls?"+tc.query, g.Token, "", nil)
			var pulls []struct {
				Number int
				Head   struct {
					Label, Ref string
					Repo       struct {
						FullName string `json:"full_name"`
					}
				}
			}
			if err := json.Unmarshal(body, &pulls); err != nil || resp.StatusCode != 200 {
				t.Fatalf("GET = %d %s", resp.StatusCode, body)
			}
			var got []int
			for _, p := range pulls {
				got = append(got, p.Number)
				if p.Number == 3 && (p.Head.Label != "fork:feature" || p.Head.Repo.FullName != "fork/r") {
					t.Errorf("fork pull request head = %+v", p.Head)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("numbers (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadBitbucketSrc(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	b.SetFile("ws/r", "main", "dir/f.txt", []byte("hello"))
	b.SetFile("ws/r", "feature/x", "dir/f.txt", []byte("slash"))

	resp, body := call(t, "GET", b.URL+"repositories/ws/r/src/main/dir/f.txt", b.Token, "", nil)
	if resp.StatusCode != 200 || string(body) != "hello" || resp.Header.Get("Content-Type") != "text/plain" {
		t.Errorf("GET file = %d %q %q", resp.StatusCode, resp.Header.Get("Content-Type"), body)
	}
	resp, body = call(t, "GET", b.URL+"repositories/ws/r/src/main/dir", b.Token, "", nil)
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"type":"commit_file"`) || !strings.Contains(string(body), `"path":"dir/f.txt"`) {
		t.Errorf("GET dir = %d %s", resp.StatusCode, body)
	}
	// A branch with a slash: not in /src, but through its head commit.
	if resp, body := call(t, "GET", b.URL+"repositories/ws/r/src/feature/x/dir/f.txt", b.Token, "", nil); resp.StatusCode != 404 || !strings.Contains(string(body), "Commit not found") {
		t.Errorf("GET src of a branch with a slash = %d %s, want Commit not found", resp.StatusCode, body)
	}
	resp, body = call(t, "GET", b.URL+"repositories/ws/r/refs/branches/feature/x", b.Token, "", nil)
	var br struct{ Target struct{ Hash string } }
	if err := json.Unmarshal(body, &br); err != nil || resp.StatusCode != 200 || len(br.Target.Hash) != 40 {
		t.Fatalf("GET branch = %d %s", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", b.URL+"repositories/ws/r/src/"+br.Target.Hash+"/dir/f.txt", b.Token, "", nil); resp.StatusCode != 200 || string(body) != "slash" {
		t.Errorf("GET at the branch's head = %d %q", resp.StatusCode, body)
	}
	if resp, body := call(t, "GET", b.URL+"repositories/ws/r/src/main/nope", b.Token, "", nil); resp.StatusCode != 404 || !strings.Contains(string(body), "No such file or directory") {
		t.Errorf("GET missing = %d %s", resp.StatusCode, body)
	}
}

func TestReadBitbucketPullRequests(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	b.AddRepo("ws/r", "main", false)
	b.OpenPR("ws/r", 1, "feature")
	b.OpenPR("ws/r", 2, "feature")
	b.OpenPR("ws/r", 3, "fork/r:feature")
	b.OpenPR("ws/r", 4, `a"b`)
	b.ClosePR("ws/r", 2)
	tests := []struct {
		query      url.Values
		want       []int
		wantStatus int
	}{
		{url.Values{}, []int{4, 3, 1}, 200},
		{url.Values{"q": {`source.branch.name="feature"`}}, []int{3, 1}, 200},
		{url.Values{"q": {`source.branch.name = "feature" AND source.repository.full_name = "ws/r"`}}, []int{1}, 200},
		{url.Values{"q": {`source.branch.name="a\"b"`}}, []int{4}, 200},
		{url.Values{"state": {"OPEN", "DECLINED"}, "q": {`source.branch.name="feature"`}}, []int{3, 2, 1}, 200},
		{url.Values{"q": {`source.branch.name~"feat"`}}, nil, 400},
		{url.Values{"q": {`title="x"`}}, nil, 400},
		{url.Values{"state": {"open"}}, nil, 400},
	}
	for _, tc := range tests {
		t.Run(tc.query.Encode(), func(t *testing.T) {
			resp, body := call(t, "GET", b.URL+"repositories/ws/r/pullrequests?"+tc.query.Encode(), b.Token, "", nil)
			if resp.StatusCode != tc.wantStatus {
				t.Fatalf("GET = %d %s, want %d", resp.StatusCode, body, tc.wantStatus)
			}
			if tc.wantStatus != 200 {
				return
			}
			var page struct {
				Values []struct {
					ID     int
					Source struct {
						Repository struct {
							FullName string `json:"full_name"`
						}
					}
				}
			}
			if err := json.Unmarshal(body, &page); err != nil {
				t.Fatal(err)
			}
			var got []int
			for _, v := range page.Values {
				got = append(got, v.ID)
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("ids (-want +got):\n%s", diff)
			}
		})
	}
}

func TestReadBitbucketEmails(t *testing.T) {
	b := vcsfake.NewBitbucket(t)
	_, body := call(t, "GET", b.URL+"user/emails", b.Token, "", nil)
	var page struct {
		Values []struct {
			Email       string
			IsPrimary   bool `json:"is_primary"`
			IsConfirmed bool `json:"is_confirmed"`
		}
	}
	if err := json.Unmarshal(body, &page); err != nil || len(page.Values) != 1 ||
		page.Values[0].Email != vcsfake.DefaultEmail || !page.Values[0].IsPrimary || !page.Values[0].IsConfirmed {
		t.Errorf("emails = %s", body)
	}
	b.SetEmails()
	if _, body := call(t, "GET", b.URL+"user/emails", b.Token, "", nil); !strings.Contains(string(body), `"values":[]`) {
		t.Errorf("emails after SetEmails() = %s, want none", body)
	}
	if n := b.CountRequests(http.MethodGet, "/user/emails"); n != 2 {
		t.Errorf("CountRequests = %d, want 2", n)
	}
}
