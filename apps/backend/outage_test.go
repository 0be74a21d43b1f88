package main

import (
	"net/http"
	"testing"
	"time"
)

// TestRedisOutageAndRecovery stops a real redis-server mid-run and starts it
// again on the same port: the service answers JSON 503s meanwhile and
// recovers without a restart.
func TestRedisOutageAndRecovery(t *testing.T) {
	dir := t.TempDir()
	r, err := startRedis(dir, 0)
	if err != nil {
		t.Fatalf("starting redis-server: %v", err)
	}
	t.Cleanup(func() { r.stop() })
	store := NewStore(r.addr, "")
	t.Cleanup(func() { store.Close() })
	e := newTestEnvWith(t, testConfig(), store)

	e.register("pat", "password1")
	token := e.login("pat", "password1")
	if status, body := e.call("GET", "/api/ready", "", ""); status != http.StatusOK {
		t.Fatalf("ready before the outage: %d %v", status, body)
	}

	r.stop()

	status, body := e.call("GET", "/api/ready", "", "")
	wantError(t, status, body, http.StatusServiceUnavailable, "redis")
	status, body = e.call("POST", "/api/register", "", credJSON("quinn", "password1"))
	wantError(t, status, body, http.StatusServiceUnavailable, "redis")
	status, body = e.call("POST", "/api/login", "", credJSON("pat", "password1"))
	wantError(t, status, body, http.StatusServiceUnavailable, "redis")
	status, body = e.call("GET", "/api/profile", token, "")
	wantError(t, status, body, http.StatusServiceUnavailable, "redis")
	if status, body := e.call("GET", "/api/health", "", ""); status != http.StatusOK {
		t.Fatalf("health during the outage: %d %v", status, body)
	}

	r2, err := startRedis(dir, r.port)
	if err != nil {
		t.Fatalf("restarting redis-server on port %d: %v", r.port, err)
	}
	t.Cleanup(func() { r2.stop() })

	deadline := time.Now().Add(10 * time.Second)
	for {
		status, body = e.call("GET", "/api/ready", "", "")
		if status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not ready 10s after redis came back: %d %v", status, body)
		}
		time.Sleep(100 * time.Millisecond)
	}
	// The new Redis is empty (no persistence in tests): the service works again.
	e.register("quinn", "password1")
	e.login("quinn", "password1")
}
