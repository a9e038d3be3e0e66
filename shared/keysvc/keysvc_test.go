package keysvc

import (
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/ssh"

	"forgelink/shared/forgelink"
)

// TestKnownHostsFingerprints checks the embedded host keys against the
// SHA256 fingerprints GitHub and Bitbucket publish on their documentation
// pages, so that a typo in a key cannot pass unnoticed.
func TestKnownHostsFingerprints(t *testing.T) {
	published := map[string]map[string]string{
		"github.com": {
			ssh.KeyAlgoED25519:  "SHA256:+DiY3wvvV6TuJJhbpZisF/zLDA0zPMSvHdkr4UvCOqU",
			ssh.KeyAlgoECDSA256: "SHA256:p2QAMXNIC1TJYWeIOttrVc98/R1BUFWu3/LiyKgUfQM",
			ssh.KeyAlgoRSA:      "SHA256:uNiVztksCsDhcc0u9e8BujQXVUpKZIDTMczCvj3tD2s",
		},
		"bitbucket.org": {
			ssh.KeyAlgoED25519:  "SHA256:ybgmFkzwOSotHTHLJgHO0QN8L0xErw6vd0VhFA9m3SM",
			ssh.KeyAlgoECDSA256: "SHA256:FC73VB6C4OQLSCrjEayhMp9UMxS97caD/Yyi2bhW/J0",
			ssh.KeyAlgoRSA:      "SHA256:46OSHA1Rmj8E8ERTC6xkNcmGOw9oFxYr0WF6zWW8l1E",
		},
	}
	for host, text := range map[string]string{"github.com": GitHubKnownHosts, "bitbucket.org": BitbucketKnownHosts} {
		seen := map[string]bool{}
		rest := []byte(text)
		for len(rest) > 0 {
			_, hosts, key, _, r, err := ssh.ParseKnownHosts(rest)
			if err != nil {
				t.Fatalf("%s known_hosts: %v", host, err)
			}
			rest = r
			if len(hosts) != 1 || hosts[0] != host {
				t.Errorf("%s known_hosts line for hosts %v", host, hosts)
			}
			want, ok := published[host][key.Type()]
			if !ok {
				t.Errorf("%s: unexpected key type %s", host, key.Type())
				continue
			}
			if got := ssh.FingerprintSHA256(key); got != want {
				t.Errorf("%s %s key fingerprint %s, published %s", host, key.Type(), got, want)
			}
			seen[key.Type()] = true
		}
		if len(seen) != 3 {
			t.Errorf("%s: %d key types, want ed25519, ECDSA and RSA", host, len(seen))
		}
	}
}

func TestHostOf(t *testing.T) {
	tests := []struct {
		vcs       forgelink.VCS
		apiURL    string
		wantHost  string
		wantWeb   string
		wantKnown string
	}{
		{forgelink.GitHub, "", "github.com", "https://github.com/", GitHubKnownHosts},
		{forgelink.GitHub, "https://api.github.com/", "github.com", "https://github.com/", GitHubKnownHosts},
		{forgelink.GitHub, "https://ghe.example.com/api/v3/", "ghe.example.com", "https://ghe.example.com/", ""},
		{forgelink.GitHub, "https://ghe.example.com:8443/api/v3/", "ghe.example.com", "https://ghe.example.com:8443/", ""},
		{forgelink.Bitbucket, "https://ghe.example.com/api/v3/", "bitbucket.org", "https://bitbucket.org/", BitbucketKnownHosts},
	}
	for _, tc := range tests {
		h := hostOf(tc.vcs, tc.apiURL)
		if h.Host != tc.wantHost || h.WebURL != tc.wantWeb || h.KnownHosts != tc.wantKnown {
			t.Errorf("hostOf(%s, %q) = %+v, want host %s, web %s", tc.vcs, tc.apiURL, h, tc.wantHost, tc.wantWeb)
		}
		if (h.KnownHosts == "") != (h.Note != "") {
			t.Errorf("hostOf(%s, %q): known_hosts %q with note %q; want a note exactly when known_hosts is empty", tc.vcs, tc.apiURL, h.KnownHosts, h.Note)
		}
	}
}

func TestMarkPreferred(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	deploy := func(min int) Key {
		return Key{Type: forgelink.CheckoutDeployKey, CreatedAt: t0.Add(time.Duration(min) * time.Minute)}
	}
	user := func(min int) Key {
		return Key{Type: forgelink.CheckoutUserKey, CreatedAt: t0.Add(time.Duration(min) * time.Minute)}
	}
	tests := []struct {
		name string
		keys []Key
		want int // index of the preferred key, -1 for none
	}{
		{"none", nil, -1},
		{"one deploy key", []Key{deploy(0)}, 0},
		{"newest deploy key", []Key{deploy(0), deploy(2), deploy(1)}, 1},
		{"a user key over a newer deploy key", []Key{deploy(0), user(1), deploy(5)}, 1},
		{"newest user key", []Key{user(3), deploy(9), user(4), user(1)}, 2},
		{"a tie goes to the later one", []Key{deploy(1), deploy(1)}, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			keys := append([]Key(nil), tc.keys...)
			if len(keys) > 0 {
				keys[0].Preferred = true // stale flags are cleared
			}
			markPreferred(keys)
			n := 0
			for i, k := range keys {
				if k.Preferred {
					n++
					if i != tc.want {
						t.Errorf("key %d preferred, want %d", i, tc.want)
					}
				}
			}
			if want := min(len(keys), 1); n != want {
				t.Errorf("%d keys preferred, want %d", n, want)
			}
		})
	}
}

func TestValidHostname(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"  ", "", true},
		{"deploy.example.com", "deploy.example.com", true},
		{"Deploy.Example.COM.", "deploy.example.com", true},
		{"localhost", "localhost", true},
		{"10.0.0.7", "10.0.0.7", true},
		{"2001:db8::1", "2001:db8::1", true},
		{"xn--bcher-kva.example", "xn--bcher-kva.example", true},
		{"-bad.example.com", "", false},
		{"bad-.example.com", "", false},
		{"a..b", "", false},
		{"under_score.example.com", "", false},
		{"user@host", "", false},
		{"host:22", "", false},
		{"host/path", "", false},
		{"has space", "", false},
		{strings.Repeat("a", 64) + ".com", "", false},
		{strings.Repeat("a.", 127) + "com", "", false},
		{"-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAAA\n-----END OPENSSH PRIVATE KEY-----", "", false},
	}
	for _, tc := range tests {
		got, err := ValidHostname(tc.in)
		switch {
		case tc.ok && (err != nil || got != tc.want):
			t.Errorf("ValidHostname(%.30q) = %q, %v; want %q", tc.in, got, err, tc.want)
		case !tc.ok && err == nil:
			t.Errorf("ValidHostname(%.30q) = %q, want an error", tc.in, got)
		case !tc.ok:
			if forgelink.KindOf(err) != forgelink.Invalid {
				t.Errorf("ValidHostname(%.30q): kind %v, want Invalid", tc.in, forgelink.KindOf(err))
			}
			if strings.Contains(err.Error(), strings.TrimSpace(tc.in)) {
				t.Errorf("ValidHostname(%.30q): error %q quotes the input", tc.in, err)
			}
		}
	}
}

func TestMatchFingerprint(t *testing.T) {
	const md5, sha = "16:27:ac:a5:76:28:2d:36:63:1b:56:4d:eb:df:a6:48", "SHA256:nThbg6kXUpJWGl7E1IGOCspRomTxdCARLviKw6E5SY8"
	for _, fp := range []string{md5, strings.ToUpper(md5), "MD5:" + md5, " " + md5, sha} {
		if !matchFingerprint(fp, md5, sha) {
			t.Errorf("%q does not match", fp)
		}
	}
	for _, fp := range []string{"", "16:27", "SHA256:nope", strings.TrimPrefix(sha, "SHA256:"), "sha256:" + strings.TrimPrefix(sha, "SHA256:")} {
		if matchFingerprint(fp, md5, sha) {
			t.Errorf("%q matches", fp)
		}
	}
}

func TestUnescapeNewlines(t *testing.T) {
	tests := map[string]string{
		"a\\nb":     "a\nb",
		"a\nb\\nc":  "a\nb\\nc", // real line breaks: left alone
		"no breaks": "no breaks",
	}
	for in, want := range tests {
		if got := string(unescapeNewlines([]byte(in))); got != want {
			t.Errorf("unescapeNewlines(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestFollower: the follower is recognised by user id where both sides
// have one, so a renamed follower keeps access and someone who took the
// old login does not get it; by login otherwise.
func TestFollower(t *testing.T) {
	p := &forgelink.Project{Slug: forgelink.Slug{VCS: forgelink.GitHub, Org: "acme", Repo: "widget"}, FollowedBy: "octocat", FollowerID: "gh-583231"}
	legacy := &forgelink.Project{Slug: p.Slug, FollowedBy: "octocat"}
	tests := []struct {
		name    string
		project *forgelink.Project
		actor   string
		login   string
		ok      bool
	}{
		{"same id and login", p, "gh-583231", "octocat", true},
		{"renamed follower", p, "gh-583231", "octocat-renamed", true},
		{"someone else took the login", p, "gh-999", "octocat", false},
		{"environment user by login", p, "", "octocat", true},
		{"environment user, other login", p, "", "hubot", false},
		{"project without follower id, by login", legacy, "gh-583231", "octocat", true},
		{"project without follower id, other login", legacy, "gh-583231", "hubot", false},
		{"no login at all", legacy, "", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ctx := t.Context()
			if tc.actor != "" {
				ctx = forgelink.WithActor(ctx, tc.actor)
			}
			err := follower(ctx, tc.project, tc.login, "manage its checkout keys")
			if tc.ok && err != nil {
				t.Errorf("follower = %v, want nil", err)
			}
			if !tc.ok && forgelink.KindOf(err) != forgelink.Forbidden {
				t.Errorf("follower = %v, want Forbidden", err)
			}
		})
	}
}
