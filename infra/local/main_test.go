package main

import (
	"bufio"
	"encoding/json"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"forgelink/shared/vcsfake"
)

// TestMakeRun builds and starts the real `make run` binary against a fake
// GitHub, reads the URL and API token it prints, follows a repository
// through its API, and stops it with SIGTERM.
func TestMakeRun(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "forgelink-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo("octo-org/hello-world", "main", false)

	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()

	cmd := exec.Command(bin)
	cmd.Env = append(os.Environ(),
		"FORGELINK_ADDR="+addr,
		"FORGELINK_DATA="+filepath.Join(dir, "data"),
		"FORGELINK_API_TOKEN=",
		"GITHUB_API_URL="+gh.URL,
		"GITHUB_TOKEN="+gh.Token,
	)
	stdout, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	var url, token string
	sc := bufio.NewScanner(stdout)
	for sc.Scan() && (url == "" || token == "") {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "URL:"); ok {
			url = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "API token:"); ok {
			token = strings.TrimSpace(v)
		}
	}
	if url != "http://"+addr || len(token) < 16 {
		t.Fatalf("printed URL %q and token %q; want http://%s and a token", url, token, addr)
	}
	go io.Copy(io.Discard, stdout)

	var resp *http.Response
	for i := 0; i < 50; i++ {
		req, _ := http.NewRequest(http.MethodPost, url+"/api/v1.1/project/gh/octo-org/hello-world/follow", nil)
		req.Header.Set("Circle-Token", token)
		if resp, err = http.DefaultClient.Do(req); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if resp.StatusCode != http.StatusCreated || !strings.HasPrefix(body["hook_url"].(string), url+"/hooks/github/hk_") {
		t.Fatalf("follow: %d %v", resp.StatusCode, body)
	}
	if hooks := gh.Hooks("octo-org/hello-world"); len(hooks) != 1 || hooks[0].URL != body["hook_url"] {
		t.Fatalf("hooks on the fake GitHub = %+v", hooks)
	}
	// The generated token is kept for the next run, readable only by its owner.
	fi, err := os.Stat(filepath.Join(dir, "data", "api-token"))
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("api-token file: %v, mode %v; want 0600", err, fi.Mode().Perm())
	}

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("exit after SIGTERM: %v, want a clean exit", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("did not stop within 15s of SIGTERM")
	}
}

// TestBadConfigStopsStartup: one line naming the variable.
func TestBadConfigStopsStartup(t *testing.T) {
	cmd := exec.Command("go", "run", ".")
	cmd.Env = append(os.Environ(), "FORGELINK_PUBLIC_URL=ci.example.com", "FORGELINK_DATA="+t.TempDir())
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatal("started with a bad FORGELINK_PUBLIC_URL")
	}
	// go run adds its own "exit status 2" line after the program's one.
	first := strings.Split(strings.TrimSpace(string(out)), "\n")[0]
	if !strings.HasPrefix(first, "forgelink: config: FORGELINK_PUBLIC_URL:") {
		t.Errorf("output %q: want a line naming FORGELINK_PUBLIC_URL", out)
	}
}
