package main

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

// The fake lab stack: one HTTP server answering as the gateway does, with the
// backend API under /api (both variants, chosen by x-version), the frontend
// under /app/ and the monitor under /status/. Its backend keeps the rules of
// apps/backend (status codes, bodies, admin-only routes); each test breaks
// one thing by changing a field before the first request.

const (
	fakeAdmin         = "admin"
	fakeAdminPassword = "admin-password-0123"
	commitV1          = "1111111111111111111111111111111111111111"
	commitV2          = "2222222222222222222222222222222222222222"
	fakeAsset         = "/app/assets/index-BRtNozx7.js"
)

const fakeShell = `<!doctype html>
<html lang="en">
  <head>
    <meta charset="UTF-8" />
    <title>Lab demo</title>
    <script type="module" crossorigin src="/app/assets/index-BRtNozx7.js"></script>
    <link rel="stylesheet" crossorigin href="/app/assets/index-hvBXkMni.css">
  </head>
  <body>
    <div id="root"></div>
  </body>
</html>
`

// validUsername is the backend's rule (apps/backend/auth.go).
var validUsername = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

type fakeUser struct {
	password, group, role string
}

type fakeStack struct {
	URL string

	mu sync.Mutex
	// What the stack answers; tests change these to break one thing.
	commits     map[string]string // variant → commit its /api/version reports
	answeredBy  map[string]string // variant pinned → variant that answers (routing)
	down        map[string]bool   // variant pinned → no ready pod behind the gateway
	readyStatus int
	shell       string
	assetType   string
	summary     func(s *fakeStack) any
	failRoute   map[string]int           // "METHOD /pattern" → status answered instead
	delayRoute  map[string]time.Duration // "METHOD /pattern" → delay before answering

	monitorDown    map[string]bool // variant pinned → its monitor cannot reach the backend
	monitorRefuses map[string]bool // "password" or "delete" → the backend refuses that action
	monitorLies    bool            // the monitor says it reset a password, and did not

	sessions   map[string]*fakeSession // the monitor's session cookie → session
	users      map[string]*fakeUser
	registered []string          // names registered, in order
	tokens     map[string]string // token → username
	requests   []string          // "METHOD /path x-version", in order
	authSeen   []string          // Authorization headers received
	nextID     int
}

func newFakeStack(t *testing.T) *fakeStack {
	t.Helper()
	f := &fakeStack{
		commits:     map[string]string{"v1": commitV1, "v2": commitV2},
		answeredBy:  map[string]string{"v1": "v1", "v2": "v2"},
		down:        map[string]bool{},
		readyStatus: http.StatusOK,
		shell:       fakeShell,
		assetType:   "text/javascript; charset=utf-8",
		summary:     healthySummary,
		failRoute:   map[string]int{},
		delayRoute:  map[string]time.Duration{},
		users:       map[string]*fakeUser{fakeAdmin: {password: fakeAdminPassword, group: "alpha", role: "admin"}},
		tokens:      map[string]string{},
		monitorDown: map[string]bool{}, monitorRefuses: map[string]bool{},
		sessions: map[string]*fakeSession{},
	}
	mux := http.NewServeMux()
	route := func(pattern string, h func(http.ResponseWriter, *http.Request)) {
		mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
			f.mu.Lock()
			f.requests = append(f.requests, strings.TrimSpace(r.Method+" "+r.URL.Path+" "+r.Header.Get("x-version")))
			if a := r.Header.Get("Authorization"); a != "" {
				f.authSeen = append(f.authSeen, a)
			}
			status, broken := f.failRoute[pattern]
			delay := f.delayRoute[pattern]
			f.mu.Unlock()
			if delay > 0 {
				select {
				case <-time.After(delay):
				case <-r.Context().Done():
					return
				}
			}
			if broken {
				writeJSON(w, status, map[string]string{"error": "broken by the test"})
				return
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			h(w, r)
		})
	}
	route("GET /api/health", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	route("GET /api/ready", func(w http.ResponseWriter, r *http.Request) {
		if f.readyStatus == http.StatusServiceUnavailable {
			writeJSON(w, f.readyStatus, map[string]string{"error": "redis unavailable"})
			return
		}
		writeJSON(w, f.readyStatus, map[string]string{"status": "ready", "redis": "ok"})
	})
	route("GET /api/version", func(w http.ResponseWriter, r *http.Request) {
		pinned := r.Header.Get("x-version")
		if pinned == "" {
			pinned = "v1"
		}
		if f.down[pinned] { // Envoy's answer for a subset without a ready endpoint
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Server", "istio-envoy")
			w.WriteHeader(http.StatusServiceUnavailable)
			fmt.Fprint(w, "no healthy upstream")
			return
		}
		v := f.answeredBy[pinned]
		writeJSON(w, http.StatusOK, map[string]string{"version": "1.0.0", "commit": f.commits[v], "variant": v})
	})
	route("POST /api/register", f.register)
	route("POST /api/login", f.login)
	route("GET /api/profile", f.authenticated(false, func(w http.ResponseWriter, r *http.Request, me string) {
		u := f.users[me]
		writeJSON(w, http.StatusOK, map[string]string{"username": me, "group": u.group, "role": u.role})
	}))
	route("GET /api/users", f.authenticated(true, func(w http.ResponseWriter, r *http.Request, me string) {
		users := []map[string]string{}
		for name, u := range f.users {
			users = append(users, map[string]string{"username": name, "group": u.group, "role": u.role})
		}
		writeJSON(w, http.StatusOK, map[string]any{"total": len(users), "users": users})
	}))
	route("PUT /api/users/{name}", f.authenticated(false, func(w http.ResponseWriter, r *http.Request, me string) {
		name := r.PathValue("name")
		if me != name && f.users[me].role != "admin" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "only the user themself or an admin may change this password"})
			return
		}
		var body struct {
			Password string `json:"password"`
		}
		if json.NewDecoder(r.Body).Decode(&body) != nil || len(body.Password) < 8 {
			writeJSON(w, http.StatusBadRequest, map[string]string{"error": "password must be at least 8 characters"})
			return
		}
		u, ok := f.users[name]
		if !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "user not found"})
			return
		}
		u.password = body.Password
		writeJSON(w, http.StatusOK, map[string]string{"username": name, "status": "password updated"})
	}))
	route("DELETE /api/users/{name}", f.authenticated(true, func(w http.ResponseWriter, r *http.Request, me string) {
		name := r.PathValue("name")
		if _, ok := f.users[name]; !ok {
			writeJSON(w, http.StatusNotFound, map[string]string{"error": "user not found"})
			return
		}
		delete(f.users, name)
		writeJSON(w, http.StatusOK, map[string]string{"username": name, "status": "deleted"})
	}))
	route("/api/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "not found"})
	})
	route("GET /app/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == fakeAsset {
			w.Header().Set("Content-Type", f.assetType)
			if strings.Contains(f.assetType, "html") { // an SPA fallback
				fmt.Fprint(w, f.shell)
				return
			}
			fmt.Fprint(w, "import{a as b}from'./vendor.js';console.log(b);")
			return
		}
		if strings.HasPrefix(r.URL.Path, "/app/assets/") {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprint(w, f.shell)
	})
	route("GET /status/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/status/" {
			http.NotFound(w, r)
			return
		}
		f.dashboard(w, f.session(w, r))
	})
	// The monitor's admin forms (apps/monitor/monitor/views.py): each checks the
	// session's CSRF token, calls the backend's rules, flashes and answers 303.
	route("POST /status/login", f.monitorForm(false, func(m *fakeSession, r *http.Request) string {
		u, ok := f.users[r.PostFormValue("username")]
		if !ok || u.password != r.PostFormValue("password") || u.role != "admin" {
			return "Login failed: invalid username or password"
		}
		m.admin, m.csrf = r.PostFormValue("username"), fmt.Sprintf("csrf-%d", len(f.sessions))
		return "Logged in as " + m.admin + "."
	}))
	route("POST /status/users/{name}/password", f.monitorForm(true, func(m *fakeSession, r *http.Request) string {
		name := r.PathValue("name")
		u, ok := f.users[name]
		if !ok || len(r.PostFormValue("password")) < 8 || f.monitorRefuses["password"] {
			return "Could not reset the password of " + name + ": user not found"
		}
		if !f.monitorLies {
			u.password = r.PostFormValue("password")
		}
		return "Password of " + name + " reset."
	}))
	route("POST /status/users/{name}/delete", f.monitorForm(true, func(m *fakeSession, r *http.Request) string {
		name := r.PathValue("name")
		if _, ok := f.users[name]; !ok || f.monitorRefuses["delete"] {
			return "Could not delete " + name + ": user not found"
		}
		delete(f.users, name)
		return "Deleted user " + name + "."
	}))
	route("POST /status/logout", f.monitorForm(false, func(m *fakeSession, r *http.Request) string {
		m.admin = ""
		return "Logged out."
	}))
	route("GET /status/api/summary", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, f.summary(f))
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// healthySummary is the monitor's /status/api/summary with both variants up, in
// the format of apps/monitor/monitor (views._summary, VariantStatus.as_summary).
func healthySummary(f *fakeStack) any {
	backend := map[string]any{}
	for _, v := range variants {
		backend[v] = map[string]any{
			"url": "http://backend:3000", "up": true, "healthy": true,
			"version": "1.0.0", "commit": f.commits[v], "variant": v,
			"requested_variant": v, "error": nil,
		}
	}
	return map[string]any{
		"monitor": map[string]any{"version": "1.0.0", "variant": "v1", "commit": commitV1},
		"backend": backend,
	}
}

func (f *fakeStack) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil || len(c.Password) < 8 {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "password must be at least 8 characters"})
		return
	}
	if !validUsername.MatchString(c.Username) {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "username must be 3 to 32 characters from a-z, 0-9, '_', '.', '-'"})
		return
	}
	f.registered = append(f.registered, c.Username)
	if _, ok := f.users[c.Username]; ok {
		writeJSON(w, http.StatusConflict, map[string]string{"error": "username already taken"})
		return
	}
	group := groups[len(f.users)%2]
	f.users[c.Username] = &fakeUser{password: c.Password, group: group, role: "user"}
	writeJSON(w, http.StatusCreated, map[string]string{"username": c.Username, "group": group})
}

func (f *fakeStack) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if err := json.NewDecoder(r.Body).Decode(&c); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": "malformed JSON"})
		return
	}
	u, ok := f.users[c.Username]
	if !ok || u.password != c.Password {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid username or password"})
		return
	}
	f.nextID++
	token := fmt.Sprintf("eyJhbGciOiJIUzI1NiJ9.token-%d-%s.c2lnbmF0dXJl", f.nextID, c.Username)
	f.tokens[token] = c.Username
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

// authenticated is the backend's bearer check, and its admin check when admin.
func (f *fakeStack) authenticated(admin bool, h func(http.ResponseWriter, *http.Request, string)) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		token, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		me := f.tokens[token]
		if _, exists := f.users[me]; !ok || !exists {
			writeJSON(w, http.StatusUnauthorized, map[string]string{"error": "invalid or expired token"})
			return
		}
		if admin && f.users[me].role != "admin" {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": "admin only"})
			return
		}
		h(w, r, me)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// smokeUsers lists the users the smoke test left behind.
func (f *fakeStack) smokeUsers() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var left []string
	for name := range f.users {
		if strings.HasPrefix(name, "smoke-") {
			left = append(left, name)
		}
	}
	return left
}

// saw reports whether a request "METHOD /path[ x-version]" reached the stack.
func (f *fakeStack) saw(prefix string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, r := range f.requests {
		if strings.HasPrefix(r, prefix) {
			return true
		}
	}
	return false
}

// set changes the stack under its lock.
func (f *fakeStack) set(change func(f *fakeStack)) {
	f.mu.Lock()
	defer f.mu.Unlock()
	change(f)
}

// fakeSession is one monitor session: its CSRF token, the admin logged in, messages.
type fakeSession struct {
	csrf, admin string
	flashes     []string
}

// session finds the request's monitor session, or starts one (setting the cookie).
func (f *fakeStack) session(w http.ResponseWriter, r *http.Request) *fakeSession {
	if c, err := r.Cookie("monitor_session"); err == nil && f.sessions[c.Value] != nil {
		return f.sessions[c.Value]
	}
	id := fmt.Sprintf("session-%d", len(f.sessions)+1)
	m := &fakeSession{csrf: "csrf-" + id}
	f.sessions[id] = m
	http.SetCookie(w, &http.Cookie{Name: "monitor_session", Value: id, Path: "/status", HttpOnly: true})
	return m
}

// dashboard is the monitor's page: its messages, its forms, and the users for an admin.
func (f *fakeStack) dashboard(w http.ResponseWriter, m *fakeSession) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	fmt.Fprint(w, "<!doctype html><title>lab monitor</title><h1>lab monitor</h1><main>")
	for _, msg := range m.flashes {
		fmt.Fprintf(w, "<p class=\"flash info\" role=\"status\">%s</p>", msg)
	}
	m.flashes = nil
	fmt.Fprintf(w, `<form method="post" action="/status/login"><input type="hidden" name="csrf_token" value="%s"></form>`, m.csrf)
	if m.admin != "" {
		for name := range f.users {
			fmt.Fprintf(w, `<form method="post" action="/status/users/%s/delete"><input type="hidden" name="csrf_token" value="%s"></form>`, name, m.csrf)
		}
	}
	fmt.Fprint(w, "</main>")
}

// monitorForm is one of the monitor's POST handlers: CSRF checked (400 without it, as
// csrf.protect), the admin session required when admin, the action's message flashed.
func (f *fakeStack) monitorForm(admin bool, action func(*fakeSession, *http.Request) string) func(http.ResponseWriter, *http.Request) {
	return func(w http.ResponseWriter, r *http.Request) {
		m := f.session(w, r)
		if r.PostFormValue("csrf_token") != m.csrf {
			http.Error(w, "CSRF token missing or invalid; reload the page and try again.", http.StatusBadRequest)
			return
		}
		switch {
		case admin && m.admin == "":
			m.flashes = append(m.flashes, "Log in as an administrator first.")
		case f.monitorDown[r.Header.Get("x-version")]:
			m.flashes = append(m.flashes, "Could not reach the backend: connection refused")
		default:
			m.flashes = append(m.flashes, action(m, r))
		}
		http.Redirect(w, r, "/status/", http.StatusSeeOther)
	}
}
