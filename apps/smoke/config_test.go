package main

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestBadConfigurationExits2WithAClearMessage(t *testing.T) {
	tests := []struct {
		name   string
		change func(map[string]string)
		args   []string
		want   string
	}{
		{"missing gateway", func(e map[string]string) { delete(e, "GATEWAY_URL") }, nil,
			"GATEWAY_URL is required: the base URL of the gateway"},
		{"gateway without scheme", func(e map[string]string) { e["GATEWAY_URL"] = "127.0.0.1:8080" }, nil,
			`GATEWAY_URL "127.0.0.1:8080": must start with http:// or https://`},
		{"gateway without host", func(e map[string]string) { e["GATEWAY_URL"] = "http:///api" }, nil,
			`GATEWAY_URL "http:///api": has no host`},
		{"gateway with query", func(e map[string]string) { e["GATEWAY_URL"] = "http://gw?x=1" }, nil,
			"must have no query or fragment"},
		{"bad gateway flag", nil, []string{"-gateway-url", "ftp://gw"},
			`-gateway-url "ftp://gw": must start with http:// or https://`},
		{"missing v1 commit", func(e map[string]string) { delete(e, "EXPECTED_V1_COMMIT") }, nil,
			"EXPECTED_V1_COMMIT is required: the commit variant v1 must report"},
		{"blank v2 commit", func(e map[string]string) { e["EXPECTED_V2_COMMIT"] = "  " }, nil,
			"EXPECTED_V2_COMMIT is required: the commit variant v2 must report"},
		{"commit with a space", func(e map[string]string) { e["EXPECTED_V2_COMMIT"] = "abc def" }, nil,
			`EXPECTED_V2_COMMIT "abc def": a commit has no spaces`},
		{"missing admin password", func(e map[string]string) { delete(e, "ADMIN_PASSWORD") }, nil,
			"ADMIN_PASSWORD is required"},
		{"timeout not a duration", func(e map[string]string) { e["SMOKE_TIMEOUT"] = "soon" }, nil,
			`SMOKE_TIMEOUT "soon": want a duration such as 10s, or a number of seconds`},
		{"timeout zero", func(e map[string]string) { e["SMOKE_TIMEOUT"] = "0" }, nil,
			`SMOKE_TIMEOUT "0": must be more than 0 and at most 10m0s`},
		{"timeout NaN", func(e map[string]string) { e["SMOKE_TIMEOUT"] = "NaN" }, nil,
			`SMOKE_TIMEOUT "NaN": must be more than 0`},
		{"timeout too long", nil, []string{"-timeout", "1h"},
			`-timeout "1h": must be more than 0 and at most 10m0s`},
		{"unknown flag", nil, []string{"-admin-password", "x"},
			"flag provided but not defined: -admin-password"},
		{"stray argument", nil, []string{"http://gw"},
			`unexpected arguments: ["http://gw"]`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			vars := env("http://127.0.0.1:8080")
			if tt.change != nil {
				tt.change(vars)
			}

			r := runSmoke(t, vars, tt.args...)

			if r.code != exitConfig {
				t.Errorf("exit code = %d, want %d", r.code, exitConfig)
			}
			if !strings.HasPrefix(r.stderr, "smoke: bad configuration:\n") || !strings.Contains(r.stderr, tt.want) {
				t.Errorf("stderr = %q, want the bad configuration message with %q", r.stderr, tt.want)
			}
			if r.stdout != "" {
				t.Errorf("stdout = %q, want nothing: no check ran", r.stdout)
			}
		})
	}
}

func TestEveryConfigurationProblemIsListedAtOnce(t *testing.T) {
	r := runSmoke(t, map[string]string{})

	for _, name := range []string{"GATEWAY_URL", "EXPECTED_V1_COMMIT", "EXPECTED_V2_COMMIT", "ADMIN_PASSWORD"} {
		if !strings.Contains(r.stderr, "  - "+name+" is required") {
			t.Errorf("stderr does not list %s", name)
		}
	}
}

func TestConfigDefaultsAndFlagsOverEnvironment(t *testing.T) {
	vars := env("http://gw.example:8080/")
	delete(vars, "ADMIN_USERNAME")
	delete(vars, "SMOKE_TIMEOUT")

	cfg, err := loadConfig(nil, func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.GatewayURL.String() != "http://gw.example:8080" || cfg.AdminUsername != "admin" || cfg.Timeout != 10*time.Second {
		t.Errorf("defaults: gateway %s, admin %q, timeout %s", cfg.GatewayURL, cfg.AdminUsername, cfg.Timeout)
	}

	cfg, err = loadConfig([]string{"-admin-username", "root", "-expected-v1-commit", "aaa", "-timeout", "2.5"},
		func(k string) string { return vars[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.AdminUsername != "root" || cfg.ExpectedV1 != "aaa" || cfg.ExpectedV2 != commitV2 || cfg.Timeout != 2500*time.Millisecond {
		t.Errorf("flags: admin %q, v1 %q, v2 %q, timeout %s", cfg.AdminUsername, cfg.ExpectedV1, cfg.ExpectedV2, cfg.Timeout)
	}
}

func TestHelpExits0(t *testing.T) {
	r := runSmoke(t, nil, "-h")

	if r.code != exitPassed || !strings.Contains(r.stderr, "GATEWAY_URL") || !strings.Contains(r.stderr, "ADMIN_PASSWORD") {
		t.Errorf("exit %d, usage %q", r.code, r.stderr)
	}
}

func TestParseTimeout(t *testing.T) {
	for raw, want := range map[string]time.Duration{
		"10s": 10 * time.Second, "1m30s": 90 * time.Second, "10": 10 * time.Second,
		"0.5": 500 * time.Millisecond, "250ms": 250 * time.Millisecond, "10m": 10 * time.Minute,
	} {
		if got, err := parseTimeout(raw); err != nil || got != want {
			t.Errorf("parseTimeout(%q) = %s, %v; want %s", raw, got, err, want)
		}
	}
	for _, raw := range []string{"", "-1s", "0", "11m", "Inf", "NaN", "1e300", "ten"} {
		if _, err := parseTimeout(raw); err == nil {
			t.Errorf("parseTimeout(%q) accepted", raw)
		}
	}
}

func TestFindScript(t *testing.T) {
	tests := map[string]string{
		fakeShell: "/app/assets/index-BRtNozx7.js",
		`<script src='/app/a.js' type=module></script>`: "/app/a.js",
		`<SCRIPT type="module"
		   src="assets/b.js"></SCRIPT>`: "assets/b.js",
		`<script src=/app/c.js></script>`:                          "/app/c.js",
		`<script>inline()</script><script src="/app/d.js">`:        "/app/d.js",
		`<link href="/app/x.css"><script>var src="no.js"</script>`: "",
		`<img src="/app/e.png">`:                                   "",
	}
	for html, want := range tests {
		if got := findScript(html); got != want {
			t.Errorf("findScript(%q) = %q, want %q", html, got, want)
		}
	}
}

func TestTruncateKeepsUTF8Whole(t *testing.T) {
	if got := truncate("aé", 2); got != "a" {
		t.Errorf("truncate = %q, want %q", got, "a")
	}
	if got := printable("\x00\x01binary"); got != `"\x00\x01binary"` {
		t.Errorf("printable = %s", got)
	}
}

// TestMain lets a test run the real program as a child process: with
// SMOKE_TEST_MAIN=1 the test binary is the smoke binary.
func TestMain(m *testing.M) {
	if os.Getenv("SMOKE_TEST_MAIN") == "1" {
		main()
	}
	os.Exit(m.Run())
}

func TestProcessExitCodes(t *testing.T) {
	f := newFakeStack(t)
	tests := []struct {
		name string
		env  map[string]string
		code int
	}{
		{"all pass", env(f.URL), exitPassed},
		{"check fails", func() map[string]string { e := env(f.URL); e["EXPECTED_V1_COMMIT"] = "abc"; return e }(), exitFailed},
		{"bad configuration", map[string]string{}, exitConfig},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0])
			cmd.Env = []string{"SMOKE_TEST_MAIN=1"}
			for k, v := range tt.env {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			out, err := cmd.CombinedOutput()
			code := 0
			var exitErr *exec.ExitError
			if errors.As(err, &exitErr) {
				code = exitErr.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			if code != tt.code {
				t.Errorf("exit code = %d, want %d; output:\n%s", code, tt.code, out)
			}
		})
	}
}

func TestAppHostSetsTheHostHeader(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.Host)
		http.Error(w, `{"error":"nope"}`, http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	env := map[string]string{
		"GATEWAY_URL": srv.URL, "EXPECTED_V1_COMMIT": "a", "EXPECTED_V2_COMMIT": "b",
		"ADMIN_PASSWORD": "pw-secret-1", "APP_HOST": "dev.localhost",
	}
	cfg, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Host != "dev.localhost" {
		t.Fatalf("Host = %q", cfg.Host)
	}
	c := newClient(cfg, "smoke-test")
	c.do(context.Background(), request{method: http.MethodGet, path: "/api/health"})
	if len(seen) != 1 || seen[0] != "dev.localhost" {
		t.Fatalf("gateway saw hosts %q, want dev.localhost", seen)
	}
	env["APP_HOST"] = "bad host/x"
	if _, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Fatal("a host with a space and a slash must be refused")
	}
}
