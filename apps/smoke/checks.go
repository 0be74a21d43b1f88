package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// groups are the A/B groups the backend puts users in.
var groups = []string{"alpha", "beta"}

// smoke is one run: the configuration, the client, and what the checks
// learn on the way (the app's JS asset, the test user and its tokens).
type smoke struct {
	cfg Config
	c   *client

	assetURL string

	user, password, newPassword, group string
	userToken, adminToken              string
	registerSent                       bool // the user may exist from here on
	deleted                            bool // the flow deleted it
}

// check is one line of output: a name and what must hold.
type check struct {
	name string
	run  func(context.Context) error
}

// checks is the smoke test, in order. The first failure stops the run.
func (s *smoke) checks() []check {
	return []check{
		{"api health", s.apiHealth},                           // GET /api/health answers 200
		{"api ready", s.apiReady},                             // GET /api/ready: the backend reaches redis
		{"x-version v1", s.variant("v1")},                     // x-version: v1 reaches v1 at its expected commit
		{"x-version v2", s.variant("v2")},                     // x-version: v2 reaches v2 at its expected commit
		{"frontend shell", s.frontendShell},                   // GET /app/ is the HTML app shell
		{"frontend asset", s.frontendAsset},                   // the JS bundle the shell references loads
		{"monitor page", s.monitorPage},                       // GET /status/ answers 200
		{"monitor summary", s.monitorSummary},                 // the monitor sees every backend variant up
		{"user register", s.register},                         // a new random user gets a group
		{"user login", s.login},                               // it logs in
		{"user profile", s.profile},                           // its profile shows its name, group and role
		{"admin login", s.adminLogin},                         // the admin logs in
		{"admin lists user", s.adminListsUser},                // the admin's user list holds the new user
		{"user changes password", s.changePassword},           // the user sets a new password
		{"user login with new password", s.loginAgain},        // the new password works, the old one no more
		{"monitor v1 resets password", s.monitorResets("v1")}, // the monitor's admin page, through v1
		{"monitor v2 resets password", s.monitorResets("v2")}, // ... and through v2
		{"monitor deletes user", s.monitorDeletes("v2")},      // the monitor deletes the user
		{"second delete is 404", s.secondDeleteNotFound},      // the user is gone
	}
}

// failure is a failed check: a reason, and the exchange that shows it.
type failure struct {
	reason string
	ex     *exchange
}

func (f *failure) Error() string { return f.reason }

func fail(ex *exchange, format string, a ...any) error {
	return &failure{reason: fmt.Sprintf(format, a...), ex: ex}
}

// expect fails unless the exchange got status; what says what the status means.
func (s *smoke) expect(ex *exchange, status int, what string) error {
	if ex.ok(status) {
		return nil
	}
	return fail(ex, "%s (%s)", what, s.c.brief(ex))
}

func (s *smoke) apiHealth(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/api/health"})
	if ex.err != nil {
		return fail(ex, "gateway did not answer (%s)", s.c.brief(ex))
	}
	return s.expect(ex, http.StatusOK, "backend not healthy through the gateway")
}

func (s *smoke) apiReady(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/api/ready"})
	if ex.err == nil && ex.status == http.StatusServiceUnavailable {
		// The backend's readiness is its Redis connection; health just passed,
		// so a 503 here is the backend saying it cannot reach Redis.
		return fail(ex, "backend not ready: redis unreachable (%s)", s.c.brief(ex))
	}
	return s.expect(ex, http.StatusOK, "backend not ready")
}

// variant pins one backend variant and checks the commit it reports.
func (s *smoke) variant(v string) func(context.Context) error {
	return func(ctx context.Context) error {
		ex := s.c.do(ctx, request{
			method: http.MethodGet,
			path:   "/api/version",
			header: http.Header{"x-version": {v}},
		})
		if !ex.ok(http.StatusOK) {
			return fail(ex, "variant %s unreachable: %s", v, s.c.brief(ex))
		}
		var got struct {
			Version string `json:"version"`
			Commit  string `json:"commit"`
			Variant string `json:"variant"`
		}
		if err := ex.decode(&got); err != nil {
			return fail(ex, "variant %s: %v", v, err)
		}
		if got.Variant != v {
			return fail(ex, "variant %s: pinned with x-version: %s but variant %s answered (is the header routed?)",
				v, v, orNone(got.Variant))
		}
		if want := s.cfg.expected(v); got.Commit != want {
			return fail(ex, "variant %s: expected commit %s, got %s", v, want, orNone(got.Commit))
		}
		return nil
	}
}

var (
	appShell = regexp.MustCompile(`(?i)<div\s[^>]*\bid\s*=\s*["']?root["'\s/>]`)
	// scriptSrc finds the src of a <script> element; the standard library has
	// no HTML parser, and Vite writes this tag in one fixed form.
	scriptSrc = regexp.MustCompile(`(?is)<script\b[^>]*?\bsrc\s*=\s*(?:"([^"]*)"|'([^']*)'|([^\s>]+))`)
)

// findScript returns the first script src in an HTML page, or "".
func findScript(html string) string {
	for _, m := range scriptSrc.FindAllStringSubmatch(html, -1) {
		for _, src := range m[1:] {
			if src = strings.TrimSpace(src); src != "" {
				return src
			}
		}
	}
	return ""
}

func (s *smoke) frontendShell(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/app/", accept: "text/html"})
	if err := s.expect(ex, http.StatusOK, "frontend not served"); err != nil {
		return err
	}
	if ct := ex.contentType(); ct != "text/html" {
		return fail(ex, "GET /app/ answered %s, not text/html", orNone(ct))
	}
	page := string(ex.body)
	if !appShell.MatchString(page) {
		return fail(ex, `GET /app/ is not the app shell: no <div id="root">`)
	}
	src := findScript(page)
	if src == "" {
		return fail(ex, "the app shell references no JS asset (no <script src>)")
	}
	ref, err := url.Parse(src)
	if err != nil {
		return fail(ex, "the app shell references an invalid JS asset URL %q", src)
	}
	pageURL, _ := url.Parse(ex.url) // it was requested, so it parses
	s.assetURL = pageURL.ResolveReference(ref).String()
	return nil
}

func (s *smoke) frontendAsset(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: s.assetURL, accept: "*/*"})
	if err := s.expect(ex, http.StatusOK, "JS asset of the app shell does not load"); err != nil {
		return err
	}
	// An SPA fallback answers a missing file with index.html and 200; only the
	// content type tells that the bundle itself is missing.
	if ct := ex.contentType(); !strings.Contains(ct, "javascript") && !strings.Contains(ct, "ecmascript") {
		return fail(ex, "JS asset %s answered %s, not JavaScript (a fallback page for a missing file?)", ex.url, orNone(ct))
	}
	if len(ex.body) == 0 {
		return fail(ex, "JS asset %s is empty", ex.url)
	}
	return nil
}

func (s *smoke) monitorPage(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/status/", accept: "text/html"})
	if err := s.expect(ex, http.StatusOK, "monitor page not served"); err != nil {
		return err
	}
	if ct := ex.contentType(); ct != "text/html" {
		return fail(ex, "GET /status/ answered %s, not text/html", orNone(ct))
	}
	return nil
}

// monitorSummary reads the format of apps/monitor/monitor/views.py (_summary)
// and backend.py (VariantStatus.as_summary):
// {"monitor": {...}, "backend": {"v1": {"up": true, "error": null, ...}, "v2": {...}}}.
func (s *smoke) monitorSummary(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/status/api/summary"})
	if err := s.expect(ex, http.StatusOK, "monitor summary not served"); err != nil {
		return err
	}
	var summary struct {
		Backend map[string]struct {
			Up    *bool  `json:"up"`
			Error string `json:"error"`
		} `json:"backend"`
	}
	if err := ex.decode(&summary); err != nil {
		return fail(ex, "%v", err)
	}
	for _, v := range variants {
		b, found := summary.Backend[v]
		switch {
		case !found:
			return fail(ex, "monitor summary reports no backend %s", v)
		case b.Up == nil:
			return fail(ex, `monitor summary for backend %s has no "up" field`, v)
		case !*b.Up:
			return fail(ex, "monitor reports backend %s down: %s", v, orNone(b.Error))
		}
	}
	return nil
}

// randomHex returns n random bytes in hex.
func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b) // crypto/rand.Read never fails (Go ≥ 1.24)
	return hex.EncodeToString(b)
}

type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

func (s *smoke) register(ctx context.Context) error {
	s.user = "smoke-" + randomHex(8) // 22 characters of [a-z0-9-]
	s.password = randomHex(16)
	s.c.keep(s.password)
	s.registerSent = true
	ex := s.c.do(ctx, request{method: http.MethodPost, path: "/api/register", body: credentials{s.user, s.password}})
	if err := s.expect(ex, http.StatusCreated, "registration of "+s.user+" failed"); err != nil {
		return err
	}
	var got struct {
		Username string `json:"username"`
		Group    string `json:"group"`
	}
	if err := ex.decode(&got); err != nil {
		return fail(ex, "%v", err)
	}
	if got.Username != s.user {
		return fail(ex, "registered %s but the answer names %s", s.user, orNone(got.Username))
	}
	if !slices.Contains(groups, got.Group) {
		return fail(ex, "registered %s in group %s, want one of %s", s.user, orNone(got.Group), strings.Join(groups, ", "))
	}
	s.group = got.Group
	return nil
}

// logIn returns the token for the credentials, or the failure.
func (s *smoke) logIn(ctx context.Context, username, password, who string) (string, error) {
	ex := s.c.do(ctx, request{method: http.MethodPost, path: "/api/login", body: credentials{username, password}})
	if err := s.expect(ex, http.StatusOK, who+" cannot log in"); err != nil {
		return "", err
	}
	var got struct {
		Token string `json:"token"`
	}
	if err := ex.decode(&got); err != nil {
		return "", fail(ex, "%v", err)
	}
	if got.Token == "" {
		return "", fail(ex, "POST /api/login answered 200 without a token")
	}
	s.c.keep(got.Token)
	return got.Token, nil
}

func (s *smoke) login(ctx context.Context) (err error) {
	s.userToken, err = s.logIn(ctx, s.user, s.password, s.user)
	return err
}

func (s *smoke) profile(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/api/profile", token: s.userToken})
	if err := s.expect(ex, http.StatusOK, "profile of "+s.user+" not served"); err != nil {
		return err
	}
	var got struct {
		Username string `json:"username"`
		Group    string `json:"group"`
		Role     string `json:"role"`
	}
	if err := ex.decode(&got); err != nil {
		return fail(ex, "%v", err)
	}
	switch {
	case got.Username != s.user:
		return fail(ex, "profile of %s names %s", s.user, orNone(got.Username))
	case got.Group != s.group:
		return fail(ex, "profile of %s shows group %s, registration gave %s", s.user, orNone(got.Group), s.group)
	case got.Role != "user":
		return fail(ex, "profile of %s shows role %s, want user", s.user, orNone(got.Role))
	}
	return nil
}

func (s *smoke) adminLogin(ctx context.Context) (err error) {
	s.adminToken, err = s.logIn(ctx, s.cfg.AdminUsername, s.cfg.AdminPassword,
		"admin "+s.cfg.AdminUsername+" (ADMIN_USERNAME/ADMIN_PASSWORD)")
	return err
}

func (s *smoke) adminListsUser(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/api/users", token: s.adminToken})
	if err := s.expect(ex, http.StatusOK, "admin cannot list users"); err != nil {
		return err
	}
	var got struct {
		Total int `json:"total"`
		Users []struct {
			Username string `json:"username"`
		} `json:"users"`
	}
	if err := ex.decode(&got); err != nil {
		return fail(ex, "%v", err)
	}
	for _, u := range got.Users {
		if u.Username == s.user {
			return nil
		}
	}
	return fail(ex, "GET /api/users lists %d users (total %d) but not %s", len(got.Users), got.Total, s.user)
}

func (s *smoke) userPath() string { return "/api/users/" + url.PathEscape(s.user) }

func (s *smoke) changePassword(ctx context.Context) error {
	s.newPassword = randomHex(16)
	s.c.keep(s.newPassword)
	ex := s.c.do(ctx, request{
		method: http.MethodPut,
		path:   s.userPath(),
		token:  s.userToken,
		body:   map[string]string{"password": s.newPassword},
	})
	return s.expect(ex, http.StatusOK, s.user+" cannot change its password")
}

func (s *smoke) loginAgain(ctx context.Context) error {
	if _, err := s.logIn(ctx, s.user, s.newPassword, s.user+" (new password)"); err != nil {
		return err
	}
	ex := s.c.do(ctx, request{method: http.MethodPost, path: "/api/login", body: credentials{s.user, s.password}})
	return s.expect(ex, http.StatusUnauthorized, "the old password of "+s.user+" should be refused with 401")
}

func (s *smoke) secondDeleteNotFound(ctx context.Context) error {
	ex := s.c.do(ctx, request{method: http.MethodDelete, path: s.userPath(), token: s.adminToken})
	return s.expect(ex, http.StatusNotFound, "a second delete of "+s.user+" should answer 404")
}

// cleanup deletes the test user when a check failed after registration, with
// the admin token, logging in as admin first if the flow had not yet. It is
// best effort: it says what it did, and never changes the exit code.
func (s *smoke) cleanup(ctx context.Context) string {
	if !s.registerSent || s.deleted {
		return ""
	}
	if s.adminToken == "" {
		token, err := s.logIn(ctx, s.cfg.AdminUsername, s.cfg.AdminPassword, "admin")
		if err != nil {
			return fmt.Sprintf("cleanup: could not delete user %s: admin login failed (%s); delete it by hand", s.user, err)
		}
		s.adminToken = token
	}
	ex := s.c.do(ctx, request{method: http.MethodDelete, path: s.userPath(), token: s.adminToken})
	switch {
	case ex.ok(http.StatusOK):
		s.deleted = true
		return "cleanup: deleted user " + s.user
	case ex.ok(http.StatusNotFound):
		return "cleanup: user " + s.user + " does not exist; nothing to delete"
	default:
		return fmt.Sprintf("cleanup: could not delete user %s (%s); delete it by hand", s.user, s.c.brief(ex))
	}
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}
