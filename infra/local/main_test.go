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

// buildLocal builds the `make run` binary (./infra/local) for the test.
func buildLocal(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "forgelink-local")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// localProc is a running `make run` binary.
type localProc struct {
	cmd        *exec.Cmd
	url, token string // as it printed them
	stderr     string // file with its log
	done       chan struct{}
	err        error // of Wait, once done is closed
}

// startLocal starts bin with env added to this process's environment,
// reads the URL and API token it prints, and kills it when the test ends.
func startLocal(t *testing.T, bin string, env ...string) *localProc {
	t.Helper()
	p := &localProc{cmd: exec.Command(bin), stderr: filepath.Join(t.TempDir(), "stderr.log"), done: make(chan struct{})}
	p.cmd.Env = append(os.Environ(), env...)
	logf, err := os.Create(p.stderr)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close() // the child has its own descriptor
	p.cmd.Stderr = logf
	pr, pw := io.Pipe()
	p.cmd.Stdout = pw
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { p.err = p.cmd.Wait(); pw.Close(); close(p.done) }()
	t.Cleanup(func() {
		_ = p.cmd.Process.Kill()
		<-p.done
		if t.Failed() {
			b, _ := os.ReadFile(p.stderr)
			t.Logf("%s (pid %d) output:\n%s", bin, p.cmd.Process.Pid, b)
		}
	})

	sc := bufio.NewScanner(pr)
	for sc.Scan() && (p.url == "" || p.token == "") {
		line := strings.TrimSpace(sc.Text())
		if v, ok := strings.CutPrefix(line, "URL:"); ok {
			p.url = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "API token:"); ok {
			p.token = strings.TrimSpace(v)
		}
	}
	go io.Copy(io.Discard, pr)
	if p.url == "" || p.token == "" {
		_ = p.cmd.Process.Kill()
		<-p.done
		t.Fatalf("printed no URL and API token (exit: %v)", p.err)
	}
	return p
}

// waitReady waits until the server answers GET /healthz with 200.
func (p *localProc) waitReady(t *testing.T) {
	t.Helper()
	hc := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-p.done:
			t.Fatalf("exited at start-up: %v", p.err)
		default:
		}
		if resp, err := hc.Get(p.url + "/healthz"); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
	}
	t.Fatalf("%s/healthz did not answer 200 within 15s", p.url)
}

// TestMakeRun builds and starts the real `make run` binary against a fake
// GitHub, reads the URL and API token it prints, follows a repository
// through its API, and stops it with SIGTERM.
func TestMakeRun(t *testing.T) {
	bin := buildLocal(t)
	dir := t.TempDir()
	gh := vcsfake.NewGitHub(t)
	gh.AddRepo("octo-org/hello-world", "main", false)

	addr := freeAddr(t)
	p := startLocal(t, bin,
		"FORGELINK_ADDR="+addr,
		"FORGELINK_DATA="+filepath.Join(dir, "data"),
		"FORGELINK_API_TOKEN=",
		"GITHUB_API_URL="+gh.URL,
		"GITHUB_TOKEN="+gh.Token,
	)
	url, token := p.url, p.token
	if url != "http://"+addr || len(token) < 16 {
		t.Fatalf("printed URL %q and token %q; want http://%s and a token", url, token, addr)
	}
	p.waitReady(t)

	req, _ := http.NewRequest(http.MethodPost, url+"/api/v1.1/project/gh/octo-org/hello-world/follow", nil)
	req.Header.Set("Circle-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&body)
	if hookURL, _ := body["hook_url"].(string); resp.StatusCode != http.StatusCreated || !strings.HasPrefix(hookURL, url+"/hooks/github/hk_") {
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

	if err := p.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-p.done:
		if p.err != nil {
			t.Errorf("exit after SIGTERM: %v, want a clean exit", p.err)
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
