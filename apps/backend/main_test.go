package main

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

func envFrom(m map[string]string) func(string) string {
	return func(k string) string { return m[k] }
}

func TestLoadConfigDefaults(t *testing.T) {
	cfg, err := loadConfig(envFrom(map[string]string{
		"JWT_SECRET":      strings.Repeat("s", 32),
		"ALLOWED_ORIGINS": " http://a.example , ,http://b.example",
	}))
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Port != "3000" || cfg.RedisAddr != "redis:6379" || cfg.JWTIssuer != "lab-backend" ||
		cfg.Version != "dev" || cfg.Variant != "unknown" || cfg.Commit != commit || cfg.TokenTTL != time.Hour {
		t.Fatalf("defaults: %+v", cfg)
	}
	if !slices.Equal(cfg.AllowedOrigins, []string{"http://a.example", "http://b.example"}) {
		t.Fatalf("origins: %q", cfg.AllowedOrigins)
	}
}

func TestLoadConfigRefusesBadEnvironment(t *testing.T) {
	secret := strings.Repeat("s", 32)
	for _, tc := range []struct {
		name string
		env  map[string]string
		want string
	}{
		{"no secret", map[string]string{}, "JWT_SECRET is not set"},
		{"short secret", map[string]string{"JWT_SECRET": strings.Repeat("s", 31)}, "at least 32"},
		{"bad port", map[string]string{"JWT_SECRET": secret, "PORT": "http"}, "PORT"},
		{"port out of range", map[string]string{"JWT_SECRET": secret, "PORT": "70000"}, "PORT"},
		{"admin without password", map[string]string{"JWT_SECRET": secret, "ADMIN_USERNAME": "admin"}, "both"},
		{"password without admin", map[string]string{"JWT_SECRET": secret, "ADMIN_PASSWORD": "password1"}, "both"},
		{"bad admin name", map[string]string{"JWT_SECRET": secret, "ADMIN_USERNAME": "Admin!", "ADMIN_PASSWORD": "password1"}, "username must be"},
		{"short admin password", map[string]string{"JWT_SECRET": secret, "ADMIN_USERNAME": "admin", "ADMIN_PASSWORD": "short"}, "at least 8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := loadConfig(envFrom(tc.env))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

// TestRunServesCreatesAdminAndShutsDown drives run as main does: real
// listener, real Redis, admin from the environment, stop by cancellation
// (SIGTERM in production).
func TestRunServesCreatesAdminAndShutsDown(t *testing.T) {
	newTestStore(t) // empties the shared Redis
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"PORT":           strconv.Itoa(port),
		"REDIS_ADDR":     testRedisAddr,
		"JWT_SECRET":     testSecret,
		"ADMIN_USERNAME": "root",
		"ADMIN_PASSWORD": "root-password",
		"VERSION":        "9.9.9",
		"VARIANT":        "v1",
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	logs := &syncBuffer{}
	done := make(chan error, 1)
	go func() { done <- run(ctx, envFrom(env), logs) }()

	url := healthURL(env["PORT"])
	e := &testEnv{t: t, url: strings.TrimSuffix(url, "/api/health")}
	deadline := time.Now().Add(10 * time.Second)
	for checkHealth(url, time.Second) != nil {
		if time.Now().After(deadline) {
			t.Fatalf("run did not serve within 10s; log:\n%s", logs.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	// The admin is created in the background at the production bcrypt cost.
	for {
		status, body := e.call("POST", "/api/login", "", credJSON("root", "root-password"))
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("admin login: %d %v; log:\n%s", status, body, logs.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if _, body := e.call("GET", "/api/version", "", ""); body["version"] != "9.9.9" || body["variant"] != "v1" {
		t.Fatalf("version: %v", body)
	}

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run returned %v after shutdown", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("run did not return after cancellation")
	}
	if checkHealth(url, time.Second) == nil {
		t.Fatal("still serving after shutdown")
	}
	if !strings.Contains(logs.String(), `"msg":"admin ready"`) || strings.Contains(logs.String(), "root-password") {
		t.Fatalf("log:\n%s", logs.String())
	}
}

func TestRunFailsOnBadConfigAndBusyPort(t *testing.T) {
	if err := run(context.Background(), envFrom(map[string]string{}), &syncBuffer{}); err == nil || !strings.Contains(err.Error(), "JWT_SECRET") {
		t.Fatalf("run without JWT_SECRET: %v", err)
	}
	ln, err := net.Listen("tcp", ":0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	env := map[string]string{"JWT_SECRET": testSecret, "PORT": strconv.Itoa(ln.Addr().(*net.TCPAddr).Port)}
	if err := run(context.Background(), envFrom(env), &syncBuffer{}); err == nil {
		t.Fatal("run on a busy port returned nil")
	}
}

func TestEnsureAdminWithRetryWaitsForRedis(t *testing.T) {
	dir := t.TempDir()
	port, err := freePort()
	if err != nil {
		t.Fatal(err)
	}
	store := NewStore("127.0.0.1:"+strconv.Itoa(port), "")
	defer store.Close()
	cfg := testConfig()
	cfg.AdminUsername, cfg.AdminPassword = "late", "late-password"
	logs := &syncBuffer{}
	done := make(chan struct{})
	go func() {
		ensureAdminWithRetry(context.Background(), store, cfg, newLogger(logs))
		close(done)
	}()
	for deadline := time.Now().Add(10 * time.Second); !strings.Contains(logs.String(), "retrying"); {
		if time.Now().After(deadline) {
			t.Fatalf("no failed attempt logged while redis is down:\n%s", logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	r, err := startRedis(dir, port)
	if err != nil {
		t.Fatal(err)
	}
	defer r.stop()
	select {
	case <-done:
	case <-time.After(15 * time.Second):
		t.Fatalf("admin not created after redis came up; log:\n%s", logs.String())
	}
	if u, err := store.Get(context.Background(), "late"); err != nil || u.Role != RoleAdmin {
		t.Fatalf("late admin: %+v %v", u, err)
	}
}

func TestEnsureAdminWithRetryStopsOnContextAndOnNonAdmin(t *testing.T) {
	store := newTestStore(t)
	cfg := testConfig()
	cfg.AdminUsername, cfg.AdminPassword = "mallory", "mallory-password"
	if err := store.Create(context.Background(), User{Username: "mallory", Group: "beta", Role: RoleUser, PasswordHash: []byte("x")}); err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	ensureAdminWithRetry(context.Background(), store, cfg, newLogger(logs))
	if !strings.Contains(logs.String(), "not an admin") {
		t.Fatalf("log:\n%s", logs.String())
	}

	down := NewStore("127.0.0.1:1", "")
	defer down.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	ensureAdminWithRetry(ctx, down, cfg, newLogger(logs)) // returns once ctx ends
}

func TestCheckHealth(t *testing.T) {
	ok := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/api/health" {
			http.NotFound(w, r)
		}
	}))
	defer ok.Close()
	if err := checkHealth(ok.URL+"/api/health", time.Second); err != nil {
		t.Fatalf("healthy server: %v", err)
	}
	if err := checkHealth(ok.URL+"/elsewhere", time.Second); err == nil {
		t.Fatal("404 counted as healthy")
	}
	port, _ := freePort()
	if err := checkHealth(healthURL(strconv.Itoa(port)), time.Second); err == nil {
		t.Fatal("nothing listening counted as healthy")
	}
	if got := healthURL(""); got != "http://127.0.0.1:3000/api/health" {
		t.Fatalf("healthURL default: %s", got)
	}
}
