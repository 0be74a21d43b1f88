package main

import (
	"bytes"
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// result is what one run of the program printed and returned.
type result struct {
	code           int
	stdout, stderr string
}

// env is the environment of a healthy run against gatewayURL.
func env(gatewayURL string) map[string]string {
	return map[string]string{
		"GATEWAY_URL":        gatewayURL,
		"EXPECTED_V1_COMMIT": commitV1,
		"EXPECTED_V2_COMMIT": commitV2,
		"ADMIN_USERNAME":     fakeAdmin,
		"ADMIN_PASSWORD":     fakeAdminPassword,
		"SMOKE_TIMEOUT":      "5s",
	}
}

func runSmoke(t *testing.T, vars map[string]string, args ...string) result {
	t.Helper()
	return runSmokeCtx(t, context.Background(), vars, args...)
}

func runSmokeCtx(t *testing.T, ctx context.Context, vars map[string]string, args ...string) result {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(ctx, args, func(k string) string { return vars[k] }, &stdout, &stderr)
	r := result{code, stdout.String(), stderr.String()}
	t.Logf("exit %d\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	return r
}

var allChecks = []string{
	"api health", "api ready", "x-version v1", "x-version v2", "frontend shell",
	"frontend asset", "monitor page", "monitor summary", "user register",
	"user login", "user profile", "admin login", "admin lists user",
	"user changes password", "user login with new password",
	"monitor v1 resets password", "monitor v2 resets password",
	"monitor deletes user", "second delete is 404",
}

// okLine matches the line of a passed check.
var okLine = regexp.MustCompile(`^ok   (.+) \((\d+)ms\)$`)

func passedChecks(stdout string) []string {
	var names []string
	for _, line := range strings.Split(stdout, "\n") {
		if m := okLine.FindStringSubmatch(line); m != nil {
			names = append(names, m[1])
		}
	}
	return names
}

// failedAt asserts a run failed with exit 1 at check, with a FAIL line
// containing reason, after every earlier check passed and before any later ran.
func failedAt(t *testing.T, r result, check, reason string) {
	t.Helper()
	if r.code != exitFailed {
		t.Errorf("exit code = %d, want %d", r.code, exitFailed)
	}
	i := indexOf(allChecks, check)
	if got := passedChecks(r.stdout); strings.Join(got, ",") != strings.Join(allChecks[:i], ",") {
		t.Errorf("passed checks = %q, want %q", got, allChecks[:i])
	}
	want := "\nFAIL " + check + ": "
	if !strings.Contains(r.stdout, want) {
		t.Fatalf("no %q line in output", strings.TrimSpace(want))
	}
	line := strings.SplitN(r.stdout[strings.Index(r.stdout, want)+1:], "\n", 2)[0]
	if !strings.Contains(line, reason) {
		t.Errorf("FAIL line = %q, want it to contain %q", line, reason)
	}
	if !strings.Contains(r.stdout, "\n  request:  ") || !strings.Contains(r.stdout, "\n  response: ") {
		t.Errorf("failure prints no request and response evidence")
	}
	if !strings.HasSuffix(r.stdout, "smoke: FAILED at "+check+" ("+strconv.Itoa(i)+" of "+strconv.Itoa(len(allChecks))+" checks passed)\n") {
		t.Errorf("output does not end with the failure summary")
	}
}

func indexOf(list []string, s string) int {
	for i, v := range list {
		if v == s {
			return i
		}
	}
	panic("unknown check " + s)
}

func TestHealthyStackPassesEveryCheckAndLeavesNoUser(t *testing.T) {
	f := newFakeStack(t)

	r := runSmoke(t, env(f.URL))

	if r.code != exitPassed {
		t.Fatalf("exit code = %d, want 0", r.code)
	}
	if got := passedChecks(r.stdout); strings.Join(got, ",") != strings.Join(allChecks, ",") {
		t.Errorf("passed checks = %q, want %q in that order", got, allChecks)
	}
	if !strings.HasSuffix(r.stdout, "\nsmoke: "+strconv.Itoa(len(allChecks))+" checks passed\n") {
		t.Errorf("output does not end with the summary line")
	}
	if strings.Contains(r.stdout, "FAIL") || r.stderr != "" {
		t.Errorf("a passing run printed a failure or to stderr")
	}
	if left := f.smokeUsers(); len(left) != 0 {
		t.Errorf("users left behind: %v", left)
	}
	for _, v := range variants {
		if !f.saw("GET /api/version " + v) {
			t.Errorf("no GET /api/version pinned with x-version: %s", v)
		}
	}
	if !f.saw("GET " + fakeAsset) {
		t.Errorf("the JS asset referenced by the shell was not fetched")
	}
	for _, v := range variants { // the monitor's admin page, through each variant
		if !f.saw("POST /status/login " + v) {
			t.Errorf("no admin login on the monitor pinned to %s", v)
		}
	}
	if !f.saw("POST /status/users/smoke-") {
		t.Errorf("the monitor's admin forms were not used")
	}
}

func TestTestUserIsNamedSmokeAndRandomHex(t *testing.T) {
	f := newFakeStack(t)

	runSmoke(t, env(f.URL))
	runSmoke(t, env(f.URL))

	if len(f.registered) != 2 || f.registered[0] == f.registered[1] {
		t.Fatalf("registered = %q, want two different users", f.registered)
	}
	for _, name := range f.registered {
		if !regexp.MustCompile(`^smoke-[0-9a-f]{16}$`).MatchString(name) {
			t.Errorf("test user %q is not smoke-<16 hex>", name)
		}
	}
}

func TestWrongV2CommitFailsNamingV2(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.commits["v2"] = "3333333333333333333333333333333333333333" })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "x-version v2", "variant v2: expected commit "+commitV2+", got 3333333333333333333333333333333333333333")
	if !strings.Contains(r.stdout, "  request:  GET "+f.URL+"/api/version\n") ||
		!strings.Contains(r.stdout, "            X-Version: v2\n") {
		t.Errorf("evidence does not show the pinned request")
	}
	if !strings.Contains(r.stdout, "  response: 200 OK\n") || !strings.Contains(r.stdout, `"variant":"v2"`) {
		t.Errorf("evidence does not show the response status and body")
	}
}

func TestUnreachableV2FailsNamingV2(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.down["v2"] = true })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "x-version v2", "variant v2 unreachable: GET /api/version → 503 no healthy upstream")
	if !strings.Contains(r.stdout, "            Server: istio-envoy\n") {
		t.Errorf("evidence does not show who answered")
	}
}

func TestHeaderIgnoredByRoutingFailsNamingTheVariant(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.answeredBy["v2"] = "v1" })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "x-version v2", "variant v2: pinned with x-version: v2 but variant v1 answered")
}

func TestReady503NamesRedis(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.readyStatus = http.StatusServiceUnavailable })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "api ready", `backend not ready: redis unreachable (GET /api/ready → 503 {"error":"redis unavailable"})`)
	if len(f.smokeUsers()) != 0 || f.saw("POST /api/register") {
		t.Errorf("the user flow ran after a failed check")
	}
}

func TestHealthFailureStopsTheRun(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["GET /api/health"] = http.StatusBadGateway })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "api health", "backend not healthy through the gateway (GET /api/health → 502")
	if f.saw("GET /api/ready") {
		t.Errorf("checks ran after the first failure")
	}
}

func TestFrontendWithoutAppShellFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) {
		f.shell = "<!doctype html><title>Welcome to nginx!</title><h1>Welcome to nginx!</h1>"
	})

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "frontend shell", `GET /app/ is not the app shell: no <div id="root">`)
	if !strings.Contains(r.stdout, "Welcome to nginx!") {
		t.Errorf("evidence does not show the page that was served")
	}
}

func TestFrontendShellWithoutScriptFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.shell = `<html><body><div id="root"></div></body></html>` })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "frontend shell", "the app shell references no JS asset")
}

func TestMissingJSAssetServedAsHTMLFallbackFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.assetType = "text/html" })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "frontend asset", "JS asset "+f.URL+fakeAsset+" answered text/html, not JavaScript")
}

func TestMissingJSAssetFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.shell = strings.Replace(fakeShell, "index-BRtNozx7.js", "index-gone.js", 1) })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "frontend asset", "JS asset of the app shell does not load (GET "+f.URL+"/app/assets/index-gone.js → 404")
}

func TestMonitorPageFailureFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["GET /status/"] = http.StatusInternalServerError })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor page", "monitor page not served (GET /status/ → 500")
}

func TestMonitorReportingV1DownFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) {
		f.summary = func(f *fakeStack) any {
			s := healthySummary(f).(map[string]any)
			s["backend"].(map[string]any)["v1"] = map[string]any{
				"url": "http://backend:3000", "up": false, "healthy": false, "version": nil,
				"commit": nil, "variant": nil, "requested_variant": "v1",
				"error": "unreachable: connection refused",
			}
			return s
		}
	})

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor summary", "monitor reports backend v1 down: unreachable: connection refused")
}

func TestMonitorSummaryWithoutV2Fails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) {
		f.summary = func(f *fakeStack) any {
			s := healthySummary(f).(map[string]any)
			delete(s["backend"].(map[string]any), "v2")
			return s
		}
	})

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor summary", "monitor summary reports no backend v2")
}

func TestUserFlowFailureDeletesTheUser(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["PUT /api/users/{name}"] = http.StatusInternalServerError })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "user changes password", "cannot change its password (PUT /api/users/smoke-")
	if left := f.smokeUsers(); len(left) != 0 {
		t.Errorf("users left behind: %v", left)
	}
	if !regexp.MustCompile(`\ncleanup: deleted user smoke-[0-9a-f]{16}\n`).MatchString(r.stdout) {
		t.Errorf("output does not say the user was deleted")
	}
}

func TestUserFlowFailureBeforeAdminLoginStillDeletesTheUser(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["GET /api/profile"] = http.StatusServiceUnavailable })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "user profile", "profile of smoke-")
	if left := f.smokeUsers(); len(left) != 0 {
		t.Errorf("users left behind: %v", left)
	}
	if !strings.Contains(r.stdout, "\ncleanup: deleted user smoke-") {
		t.Errorf("output does not say the user was deleted")
	}
}

func TestFailedRegistrationTriesCleanupAndSaysNothingWasThere(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["POST /api/register"] = http.StatusServiceUnavailable })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "user register", "registration of smoke-")
	if !strings.Contains(r.stdout, "\ncleanup: user smoke-") || !strings.Contains(r.stdout, "does not exist; nothing to delete\n") {
		t.Errorf("output does not say there was nothing to clean up")
	}
}

func TestWrongAdminPasswordFailsAndCleanupSaysToDeleteByHand(t *testing.T) {
	f := newFakeStack(t)
	vars := env(f.URL)
	vars["ADMIN_PASSWORD"] = "not-the-admin-password"

	r := runSmoke(t, vars)

	failedAt(t, r, "admin login", "admin admin (ADMIN_USERNAME/ADMIN_PASSWORD) cannot log in (POST /api/login → 401")
	if !strings.Contains(r.stdout, "\ncleanup: could not delete user smoke-") || !strings.Contains(r.stdout, "delete it by hand\n") {
		t.Errorf("cleanup does not say the user is left behind")
	}
	if strings.Contains(r.stdout, "not-the-admin-password") {
		t.Errorf("the admin password is printed")
	}
}

func TestMonitorThatCannotDeleteFailsAndCleanupDeletesThroughTheBackend(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.monitorRefuses["delete"] = true })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor deletes user", "monitor v2 could not delete smoke-")
	if !strings.Contains(r.stdout, "user not found") {
		t.Errorf("the monitor's own message is not shown")
	}
	if !strings.Contains(r.stdout, "\ncleanup: deleted user smoke-") || len(f.smokeUsers()) != 0 {
		t.Errorf("cleanup did not delete the user: %v", f.smokeUsers())
	}
}

func TestAMonitorVariantThatCannotReachTheBackendFails(t *testing.T) {
	for _, v := range variants {
		t.Run(v, func(t *testing.T) {
			f := newFakeStack(t)
			f.set(func(f *fakeStack) { f.monitorDown[v] = true })

			r := runSmoke(t, env(f.URL))

			failedAt(t, r, "monitor "+v+" resets password",
				"monitor "+v+": admin login did not succeed: info: Could not reach the backend")
			if len(f.smokeUsers()) != 0 {
				t.Errorf("users left behind: %v", f.smokeUsers())
			}
		})
	}
}

func TestAPasswordTheMonitorCouldNotResetFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.monitorRefuses["password"] = true })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor v1 resets password", "monitor v1 could not reset the password of smoke-")
}

func TestAResetTheMonitorReportsButTheBackendNeverGotFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.monitorLies = true }) // says "reset", changes nothing

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor v1 resets password", "(password set by monitor v1) cannot log in (POST /api/login → 401")
}

func TestAnAdminPasswordAFormEncodesIsRedactedToo(t *testing.T) {
	f := newFakeStack(t)
	const password = "a+b/c=d e@f%g"
	f.set(func(f *fakeStack) {
		f.users[fakeAdmin].password = password
		f.failRoute["POST /status/login"] = http.StatusBadRequest
	})
	vars := env(f.URL)
	vars["ADMIN_PASSWORD"] = password

	r := runSmoke(t, vars)

	failedAt(t, r, "monitor v1 resets password", "monitor v1: admin login")
	if strings.Contains(r.stdout, url.QueryEscape(password)) || strings.Contains(r.stdout, password) {
		t.Errorf("the admin password is printed:\n%s", r.stdout)
	}
}

func TestMonitorThatRefusesTheAdminLoginFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["POST /status/login"] = http.StatusBadRequest })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "monitor v1 resets password", "monitor v1: admin login (POST /status/login → 400")
	if strings.Contains(r.stdout, fakeAdminPassword) || strings.Contains(r.stdout, "session-1") {
		t.Errorf("the admin password or the monitor's session cookie is printed:\n%s", r.stdout)
	}
}

func TestSecondDeleteThatSucceedsFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["DELETE /api/users/{name}"] = http.StatusOK })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "second delete is 404", "a second delete of smoke-")
}

func TestOldPasswordStillAcceptedFails(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["PUT /api/users/{name}"] = http.StatusOK }) // answers, changes nothing

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "user login with new password", "cannot log in (POST /api/login → 401")
	if len(f.smokeUsers()) != 0 {
		t.Errorf("users left behind")
	}
}

func TestEvidenceRedactsTokensAndPasswords(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["GET /api/users"] = http.StatusForbidden })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "admin lists user", "admin cannot list users (GET /api/users → 403")
	if !strings.Contains(r.stdout, "            Authorization: Bearer [redacted]\n") {
		t.Errorf("evidence does not show the redacted Authorization header")
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if len(f.authSeen) == 0 {
		t.Fatal("no bearer token was sent")
	}
	for _, auth := range f.authSeen {
		token := strings.TrimPrefix(auth, "Bearer ")
		if strings.Contains(r.stdout, token) {
			t.Errorf("a token is printed")
		}
	}
	for _, u := range f.users {
		if strings.Contains(r.stdout, u.password) {
			t.Errorf("a password is printed")
		}
	}
}

func TestRequestBodyEvidenceRedactsThePassword(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.failRoute["POST /api/register"] = http.StatusBadRequest })

	r := runSmoke(t, env(f.URL))

	failedAt(t, r, "user register", "registration of smoke-")
	if !regexp.MustCompile(`\n            body: \{"username":"smoke-[0-9a-f]{16}","password":"\[redacted\]"\}\n`).MatchString(r.stdout) {
		t.Errorf("evidence does not show the request body with the password redacted")
	}
}

func TestSlowAnswerFailsWithinTheRequestTimeout(t *testing.T) {
	f := newFakeStack(t)
	f.set(func(f *fakeStack) { f.delayRoute["GET /api/ready"] = 5 * time.Second })
	vars := env(f.URL)
	vars["SMOKE_TIMEOUT"] = "200ms"

	start := time.Now()
	r := runSmoke(t, vars)

	failedAt(t, r, "api ready", "backend not ready (GET /api/ready: no answer within 200ms)")
	if !strings.Contains(r.stdout, "  response: none: no answer within 200ms\n") {
		t.Errorf("evidence does not say there was no response")
	}
	if elapsed := time.Since(start); elapsed > 3*time.Second {
		t.Errorf("run took %s; the request timeout is 200ms", elapsed)
	}
}

func TestUnreachableGatewayFailsAtTheFirstCheck(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now

	r := runSmoke(t, env("http://"+addr))

	failedAt(t, r, "api health", "gateway did not answer (GET /api/health: cannot connect: connection refused)")
	if !strings.Contains(r.stdout, "  response: none: cannot connect: connection refused\n") {
		t.Errorf("evidence does not say there was no response")
	}
}

func TestRedirectIsReportedNotFollowed(t *testing.T) {
	f := newFakeStack(t)
	redirect := httptest.NewServer(http.RedirectHandler(f.URL+"/somewhere-else/", http.StatusFound))
	defer redirect.Close()

	r := runSmoke(t, env(redirect.URL))

	failedAt(t, r, "api health", "GET /api/health → 302")
	if !strings.Contains(r.stdout, "            Location: "+f.URL+"/somewhere-else/\n") {
		t.Errorf("evidence does not show where the redirect points")
	}
}

func TestGatewayURLWithTrailingSlashAndFlagsWork(t *testing.T) {
	f := newFakeStack(t)
	vars := env("http://127.0.0.1:1") // overridden by the flag
	delete(vars, "EXPECTED_V2_COMMIT")

	r := runSmoke(t, vars, "-gateway-url", f.URL+"/", "-expected-v2-commit", commitV2, "-timeout", "3")

	if r.code != exitPassed {
		t.Fatalf("exit code = %d, want 0", r.code)
	}
	if f.saw("GET //") {
		t.Errorf("a request path has a double slash")
	}
}

func TestInterruptStopsAndCleansUp(t *testing.T) {
	f := newFakeStack(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	f.set(func(f *fakeStack) { f.delayRoute["GET /api/profile"] = 10 * time.Second })
	go func() {
		for !f.saw("GET /api/profile") {
			time.Sleep(5 * time.Millisecond)
		}
		cancel() // as SIGTERM at the Job's deadline does
	}()

	r := runSmokeCtx(t, ctx, env(f.URL))

	if r.code != exitInterrupted {
		t.Errorf("exit code = %d, want %d", r.code, exitInterrupted)
	}
	if !strings.Contains(r.stdout, "FAIL user profile: profile of smoke-") || !strings.Contains(r.stdout, "interrupted") {
		t.Errorf("output does not say the run was interrupted")
	}
	if left := f.smokeUsers(); len(left) != 0 {
		t.Errorf("users left behind: %v", left)
	}
}

func TestConnectionClosedWithoutAnswerFails(t *testing.T) {
	hangUp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	}))
	defer hangUp.Close()

	r := runSmoke(t, env(hangUp.URL))

	failedAt(t, r, "api health", "gateway did not answer (GET /api/health: connection closed without a complete answer)")
}
