package keysvc

import (
	"net/url"
	"strings"

	"forgelink/shared/forgelink"
)

// The SSH host keys that GitHub.com and Bitbucket Cloud publish, in
// known_hosts format, so that a build's git clone verifies the host it
// talks to instead of trusting the first key it is shown.
//
// Sources: https://docs.github.com/en/authentication/keeping-your-account-and-data-secure/githubs-ssh-key-fingerprints
// (also api.github.com/meta "ssh_keys") and https://bitbucket.org/site/ssh.
// TestKnownHostsFingerprints checks each against the SHA256 fingerprint
// the same pages publish. When a VCS rotates a key, update it here.
const (
	GitHubKnownHosts = "github.com ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl\n" +
		"github.com ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBEmKSENjQEezOmxkZMy7opKgwFB9nkt5YRrYMjNuG5N87uRgg6CLrbo5wAdT/y6v0mKV0U2w0WZ2YB/++Tpockg=\n" +
		"github.com ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQCj7ndNxQowgcQnjshcLrqPEiiphnt+VTTvDP6mHBL9j1aNUkY4Ue1gvwnGLVlOhGeYrnZaMgRK6+PKCUXaDbC7qtbW8gIkhL7aGCsOr/C56SJMy/BCZfxd1nWzAOxSDPgVsmerOBYfNqltV9/hWCqBywINIR+5dIg6JTJ72pcEpEjcYgXkE2YEFXV1JHnsKgbLWNlhScqb2UmyRkQyytRLtL+38TGxkxCflmO+5Z8CSSNY7GidjMIZ7Q4zMjA2n1nGrlTDkzwDCsw+wqFPGQA179cnfGWOWRVruj16z6XyvxvjJwbz0wQZ75XK5tKSb7FNyeIEs4TT4jk+S4dhPeAUC5y+bDYirYgM4GC7uEnztnZyaVWQ7B381AK4Qdrwt51ZqExKbQpTUNn+EjqoTwvqNj4kqx5QUCI0ThS/YkOxJCXmPUWZbhjpCg56i+2aB6CmK2JGhn57K5mj0MNdBXA4/WnwH6XoPWJzK5Nyu2zB3nAZp+S5hpQs+p1vN1/wsjk=\n"

	BitbucketKnownHosts = "bitbucket.org ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIIazEu89wgQZ4bqs3d63QSMzYVa0MuJ2e2gKTKqu+UUO\n" +
		"bitbucket.org ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBPIQmuzMBuKdWeF4+a2sjSSpBK0iqitSQ+5BM9KhpexuGt20JpTVM7u5BDZngncgrqDMbWdxMWWOGtZ9UgbqgZE=\n" +
		"bitbucket.org ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABgQDQeJzhupRu0u0cdegZIa8e86EG2qOCsIsD1Xw0xSeiPDlCr7kq97NLmMbpKTX6Esc30NuoqEEHCuc7yWtwp8dI76EEEB1VqY9QJq6vk+aySyboD5QF61I/1WeTwu+deCbgKMGbUijeXhtfbxSxm6JwGrXrhBdofTsbKRUsrN1WoNgUa8uqN1Vx6WAJw1JHPhglEGGHea6QICwJOAr/6mrui/oB7pkaWKHj3z7d1IC4KWLtY47elvjbaTlkN04Kc/5LFEirorGYVbt15kAUlqGM65pk6ZBxtaO3+30LVlORZkxOh+LKL/BvbZ/iRNhItLqNyieoQj/uh/7Iv4uyH/cV/0b4WDSd3DptigWq84lJubb9t/DnZlrJazxyDCulTmKdOR7vs9gMTo+uoIrPSb8ScTtvw65+odKAlBj59dhnVp9zd7QUojOpXlL62Aw56U4oO+FALuevvMjiWeavKhJqlR7i5n9srYcrNV7ttmDw7kf/97P5zauIhxcjX+xHv4M=\n"
)

// gitHost is where a build clones a project from over SSH, and what it
// should expect the host to present.
type gitHost struct {
	// Host is the SSH host name: github.com, bitbucket.org, or a GitHub
	// Enterprise Server's host.
	Host string
	// WebURL is the base of repository web URLs, with a trailing slash.
	WebURL string
	// KnownHosts is the host's keys in known_hosts format; "" when
	// forgelink does not know them (GitHub Enterprise Server).
	KnownHosts string
	// Note says why KnownHosts is empty and what to do.
	Note string
}

// hostOf returns the git host of a VCS. githubAPIURL is GITHUB_API_URL:
// "" or https://api.github.com/ means github.com; anything else is a GitHub
// Enterprise Server whose host is the API URL's.
func hostOf(vcs forgelink.VCS, githubAPIURL string) gitHost {
	if vcs == forgelink.Bitbucket {
		return gitHost{Host: "bitbucket.org", WebURL: "https://bitbucket.org/", KnownHosts: BitbucketKnownHosts}
	}
	u, err := url.Parse(strings.TrimSpace(githubAPIURL))
	if githubAPIURL == "" || err != nil || u.Host == "" || strings.EqualFold(u.Hostname(), "api.github.com") {
		return gitHost{Host: "github.com", WebURL: "https://github.com/", KnownHosts: GitHubKnownHosts}
	}
	host := u.Hostname()
	return gitHost{
		Host:   host,
		WebURL: "https://" + u.Host + "/",
		Note: "forgelink does not know the SSH host keys of the GitHub Enterprise Server " + host +
			"; add them to known_hosts before cloning (ssh-keyscan " + host +
			", checked against the fingerprints your GitHub Enterprise administrator publishes)",
	}
}
