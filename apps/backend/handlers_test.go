package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/crypto/bcrypt"
)

const (
	testSecret        = "0123456789abcdef0123456789abcdef-test"
	testAdmin         = "admin"
	testAdminPassword = "admin-password-1"
	testOrigin        = "http://app.example"
)

// syncBuffer is a log sink that the server writes while the test reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testEnv struct {
	t     testing.TB
	srv   *Server
	url   string
	log   *syncBuffer
	store *Store
}

func testConfig() Config {
	return Config{
		JWTSecret:      []byte(testSecret),
		JWTIssuer:      "lab-backend",
		TokenTTL:       time.Hour,
		AllowedOrigins: []string{testOrigin},
		Version:        "1.2.3",
		Variant:        "v2",
		Commit:         "0123456789abcdef0123456789abcdef01234567",
		BcryptCost:     bcrypt.MinCost,
	}
}

// newTestEnv serves the API over real HTTP on a free port, backed by the
// shared Redis (emptied), with the first admin created.
func newTestEnv(t testing.TB) *testEnv {
	t.Helper()
	return newTestEnvWith(t, testConfig(), newTestStore(t))
}

func newTestEnvWith(t testing.TB, cfg Config, store *Store) *testEnv {
	t.Helper()
	logs := &syncBuffer{}
	logger := slog.New(slog.NewJSONHandler(logs, nil)).With("variant", cfg.Variant)
	srv := NewServer(cfg, store, logger)
	hash, err := bcrypt.GenerateFromPassword([]byte(testAdminPassword), cfg.BcryptCost)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureAdmin(context.Background(), testAdmin, hash, "alpha"); err != nil {
		t.Fatalf("EnsureAdmin: %v", err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return &testEnv{t: t, srv: srv, url: hs.URL, log: logs, store: store}
}

// call sends a request and decodes the JSON answer; every answer must be JSON.
func (e *testEnv) call(method, path, token, body string) (int, map[string]any) {
	e.t.Helper()
	resp := e.raw(method, path, token, body, nil)
	defer resp.Body.Close()
	return resp.StatusCode, decodeBody(e.t, resp)
}

func (e *testEnv) raw(method, path, token, body string, header http.Header) *http.Response {
	e.t.Helper()
	req, err := http.NewRequest(method, e.url+path, strings.NewReader(body))
	if err != nil {
		e.t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatalf("%s %s: %v", method, path, err)
	}
	return resp
}

func decodeBody(t testing.TB, resp *http.Response) map[string]any {
	t.Helper()
	if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
		t.Fatalf("Content-Type = %q, want application/json", ct)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatalf("body is not a JSON object: %q", b)
	}
	return m
}

func (e *testEnv) register(username, password string) map[string]any {
	e.t.Helper()
	status, body := e.call("POST", "/api/register", "", credJSON(username, password))
	if status != http.StatusCreated {
		e.t.Fatalf("register %s: %d %v", username, status, body)
	}
	return body
}

func (e *testEnv) login(username, password string) string {
	e.t.Helper()
	status, body := e.call("POST", "/api/login", "", credJSON(username, password))
	if status != http.StatusOK {
		e.t.Fatalf("login %s: %d %v", username, status, body)
	}
	return body["token"].(string)
}

func credJSON(username, password string) string {
	b, _ := json.Marshal(credentials{Username: username, Password: password})
	return string(b)
}

// wantError checks a JSON error answer.
func wantError(t testing.TB, status int, body map[string]any, wantStatus int, wantMsg string) {
	t.Helper()
	msg, _ := body["error"].(string)
	if status != wantStatus || msg == "" || !strings.Contains(msg, wantMsg) {
		t.Fatalf("got %d %v, want %d with an error containing %q", status, body, wantStatus, wantMsg)
	}
}

func TestHealthHasNoDependencies(t *testing.T) {
	store := NewStore("127.0.0.1:1", "") // nothing listens there
	defer store.Close()
	srv := NewServer(testConfig(), store, slog.New(slog.NewJSONHandler(io.Discard, nil)))
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	e := &testEnv{t: t, url: hs.URL}

	status, body := e.call("GET", "/api/health", "", "")
	if status != http.StatusOK || body["status"] != "ok" {
		t.Fatalf("health: %d %v", status, body)
	}
	status, body = e.call("GET", "/api/ready", "", "")
	wantError(t, status, body, http.StatusServiceUnavailable, "redis")
}

func TestReadyWhenRedisAnswers(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.call("GET", "/api/ready", "", "")
	if status != http.StatusOK || body["redis"] != "ok" {
		t.Fatalf("ready: %d %v", status, body)
	}
}

func TestVersionReportsBuildAndVariant(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.call("GET", "/api/version", "", "")
	want := map[string]any{"version": "1.2.3", "commit": "0123456789abcdef0123456789abcdef01234567", "variant": "v2"}
	if status != http.StatusOK || len(body) != len(want) {
		t.Fatalf("version: %d %v", status, body)
	}
	for k, v := range want {
		if body[k] != v {
			t.Errorf("version[%q] = %v, want %v", k, body[k], v)
		}
	}
}

func TestRegisterCreatesUserInAGroup(t *testing.T) {
	e := newTestEnv(t)
	body := e.register("alice", "password1")
	if body["username"] != "alice" || (body["group"] != "alpha" && body["group"] != "beta") || len(body) != 2 {
		t.Fatalf("register: %v", body)
	}
	// The group is stored: the profile reports the same one.
	_, profile := e.call("GET", "/api/profile", e.login("alice", "password1"), "")
	if profile["group"] != body["group"] || profile["role"] != RoleUser || profile["username"] != "alice" {
		t.Fatalf("profile %v does not match registration %v", profile, body)
	}
}

func TestRegisterAssignsBothGroups(t *testing.T) {
	e := newTestEnv(t)
	seen := map[any]int{}
	for i := range 24 {
		seen[e.register("user"+strings.Repeat("x", i%3)+string(rune('a'+i)), "password1")["group"]]++
	}
	if seen["alpha"] == 0 || seen["beta"] == 0 || len(seen) != 2 {
		t.Fatalf("groups over 24 registrations: %v", seen)
	}
}

func TestRegisterRejectsExistingUser(t *testing.T) {
	e := newTestEnv(t)
	e.register("bob", "password1")
	status, body := e.call("POST", "/api/register", "", credJSON("bob", "another-password"))
	wantError(t, status, body, http.StatusConflict, "taken")
	status, body = e.call("POST", "/api/register", "", credJSON(testAdmin, "another-password"))
	wantError(t, status, body, http.StatusConflict, "taken")
}

func TestRegisterRejectsBadInput(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct {
		name, body string
		status     int
		msg        string
	}{
		{"malformed JSON", `{"username": "carol", "password": `, 400, "malformed JSON"},
		{"not JSON", `username=carol`, 400, "malformed JSON"},
		{"empty body", ``, 400, "empty"},
		{"JSON null", `null`, 400, "username is required"},
		{"array", `["carol", "password1"]`, 400, "JSON object"},
		{"unknown field", `{"username": "carol", "password": "password1", "role": "admin"}`, 400, `unknown field "role"`},
		{"wrong type", `{"username": 42, "password": "password1"}`, 400, `"username" must be a string`},
		{"trailing data", `{"username": "carol", "password": "password1"} {}`, 400, "single JSON object"},
		{"trailing garbage", `{"username": "carol", "password": "password1"}}`, 400, "single JSON object"},
		{"empty username", credJSON("", "password1"), 400, "username is required"},
		{"missing password", `{"username": "carol"}`, 400, "password is required"},
		{"short username", credJSON("ab", "password1"), 400, "username must be"},
		{"long username", credJSON(strings.Repeat("a", 33), "password1"), 400, "username must be"},
		{"upper case", credJSON("Carol", "password1"), 400, "username must be"},
		{"space", credJSON("car ol", "password1"), 400, "username must be"},
		{"slash", credJSON("car/ol", "password1"), 400, "username must be"},
		{"short password", credJSON("carol", "1234567"), 400, "at least 8"},
		{"long password", credJSON("carol", strings.Repeat("p", 73)), 400, "at most 72"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			status, body := e.call("POST", "/api/register", "", tc.body)
			wantError(t, status, body, tc.status, tc.msg)
		})
	}
	// None of them created a user.
	if _, err := e.store.Get(context.Background(), "carol"); err != ErrNotFound {
		t.Fatalf("carol exists after bad registrations: %v", err)
	}
}

func TestRegisterAcceptsBoundaryNames(t *testing.T) {
	e := newTestEnv(t)
	for _, name := range []string{"abc", strings.Repeat("z", 32), "a_b.c-d", "123"} {
		e.register(name, "12345678")
	}
}

func TestBodiesOverLimitAre413(t *testing.T) {
	e := newTestEnv(t)
	huge := `{"username": "dave", "password": "` + strings.Repeat("p", maxBodyBytes) + `"}`
	status, body := e.call("POST", "/api/register", "", huge)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "larger than 65536")

	// A valid object followed by a huge tail is just as oversized.
	tail := credJSON("dave", "password1") + strings.Repeat(" ", maxBodyBytes)
	status, body = e.call("POST", "/api/register", "", tail)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "larger than")

	status, body = e.call("POST", "/api/login", "", huge)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "larger than")
	token := e.login(testAdmin, testAdminPassword)
	status, body = e.call("PUT", "/api/users/"+testAdmin, token, `{"password": "`+strings.Repeat("p", 70<<10)+`"}`)
	wantError(t, status, body, http.StatusRequestEntityTooLarge, "larger than")
}

func TestLoginIssuesSignedToken(t *testing.T) {
	e := newTestEnv(t)
	e.register("erin", "password1")
	status, body := e.call("POST", "/api/login", "", credJSON("erin", "password1"))
	if status != http.StatusOK || len(body) != 1 {
		t.Fatalf("login: %d %v", status, body)
	}
	var claims jwt.RegisteredClaims
	tok, err := jwt.ParseWithClaims(body["token"].(string), &claims,
		func(*jwt.Token) (any, error) { return []byte(testSecret), nil })
	if err != nil {
		t.Fatalf("token does not verify: %v", err)
	}
	if tok.Method.Alg() != "HS256" || claims.Issuer != "lab-backend" || claims.Subject != "erin" {
		t.Fatalf("token: alg %s, claims %+v", tok.Method.Alg(), claims)
	}
	if claims.ExpiresAt == nil || time.Until(claims.ExpiresAt.Time) <= 0 || time.Until(claims.ExpiresAt.Time) > time.Hour {
		t.Fatalf("exp = %v, want within the next hour", claims.ExpiresAt)
	}
}

func TestLoginFailsTheSameForUnknownUserAndWrongPassword(t *testing.T) {
	e := newTestEnv(t)
	e.register("frank", "password1")
	s1, unknown := e.call("POST", "/api/login", "", credJSON("nobody", "password1"))
	s2, wrong := e.call("POST", "/api/login", "", credJSON("frank", "password2"))
	s3, long := e.call("POST", "/api/login", "", credJSON("frank", strings.Repeat("p", 100)))
	wantError(t, s1, unknown, http.StatusUnauthorized, errInvalidLogin)
	wantError(t, s2, wrong, http.StatusUnauthorized, errInvalidLogin)
	wantError(t, s3, long, http.StatusUnauthorized, errInvalidLogin)
	if unknown["error"] != wrong["error"] {
		t.Fatalf("unknown user %v and wrong password %v differ", unknown, wrong)
	}
}

func TestLoginRejectsBadInput(t *testing.T) {
	e := newTestEnv(t)
	for _, tc := range []struct{ body, msg string }{
		{`{"username": "x"`, "malformed JSON"},
		{`{"username": "frank", "password": "password1", "otp": 1}`, "unknown field"},
		{`{"username": "frank", "password": ["password1"]}`, `"password" must be a string`},
		{`{"username": "frank"}`, "required"},
		{`{}`, "required"},
	} {
		status, body := e.call("POST", "/api/login", "", tc.body)
		wantError(t, status, body, http.StatusBadRequest, tc.msg)
	}
}

func signToken(t testing.TB, method jwt.SigningMethod, key any, claims jwt.MapClaims) string {
	t.Helper()
	s, err := jwt.NewWithClaims(method, claims).SignedString(key)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestProfileRejectsBadTokens(t *testing.T) {
	e := newTestEnv(t)
	e.register("grace", "password1")
	now := time.Now()
	valid := jwt.MapClaims{"sub": "grace", "iss": "lab-backend", "exp": now.Add(time.Hour).Unix()}
	with := func(k string, v any) jwt.MapClaims {
		c := jwt.MapClaims{}
		for key, val := range valid {
			c[key] = val
		}
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	// alg=none: an unsigned token, as an attacker would send it.
	none := signToken(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, valid)
	tampered := e.login("grace", "password1")
	tampered = tampered[:len(tampered)-2] + "xx"

	for _, tc := range []struct {
		name, header string
	}{
		{"missing", ""},
		{"not bearer", "Basic Z3JhY2U6cGFzc3dvcmQx"},
		{"empty bearer", "Bearer "},
		{"garbage", "Bearer not.a.token"},
		{"tampered signature", "Bearer " + tampered},
		{"expired", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", now.Add(-time.Minute).Unix()))},
		{"no exp", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte(testSecret), with("exp", nil))},
		{"forged with another secret", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte("another-secret-another-secret-xx"), valid)},
		{"alg none", "Bearer " + none},
		{"HS512", "Bearer " + signToken(t, jwt.SigningMethodHS512, []byte(testSecret), valid)},
		{"wrong issuer", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte(testSecret), with("iss", "someone-else"))},
		{"no subject", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte(testSecret), with("sub", nil))},
		{"unknown user", "Bearer " + signToken(t, jwt.SigningMethodHS256, []byte(testSecret), with("sub", "ghost"))},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp := e.raw("GET", "/api/profile", "", "", http.Header{"Authorization": {tc.header}})
			defer resp.Body.Close()
			wantError(t, resp.StatusCode, decodeBody(t, resp), http.StatusUnauthorized, "token")
			if resp.Header.Get("WWW-Authenticate") == "" && tc.name != "unknown user" {
				t.Error("no WWW-Authenticate header")
			}
		})
	}
}

func TestProfileForAdmin(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.call("GET", "/api/profile", e.login(testAdmin, testAdminPassword), "")
	if status != http.StatusOK || body["username"] != testAdmin || body["role"] != RoleAdmin || body["group"] != "alpha" || len(body) != 3 {
		t.Fatalf("admin profile: %d %v", status, body)
	}
}

func TestListUsersIsAdminOnlyAndSorted(t *testing.T) {
	e := newTestEnv(t)
	names := []string{"zed", "mallory", "bob", "alice", "trent"}
	for _, n := range names {
		e.register(n, "password1")
	}
	status, body := e.call("GET", "/api/users", e.login("bob", "password1"), "")
	wantError(t, status, body, http.StatusForbidden, "admin")
	status, body = e.call("GET", "/api/users", "", "")
	wantError(t, status, body, http.StatusUnauthorized, "token")

	resp := e.raw("GET", "/api/users", e.login(testAdmin, testAdminPassword), "", nil)
	defer resp.Body.Close()
	var list struct {
		Total int
		Users []map[string]string
	}
	if err := json.NewDecoder(resp.Body).Decode(&list); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("list: %d %v", resp.StatusCode, err)
	}
	want := append(slices.Clone(names), testAdmin)
	slices.Sort(want)
	var got []string
	for _, u := range list.Users {
		got = append(got, u["username"])
		if _, ok := u["password"]; ok || len(u) != 3 || u["group"] == "" || u["role"] == "" {
			t.Errorf("user entry %v", u)
		}
	}
	if list.Total != len(want) || !slices.Equal(got, want) {
		t.Fatalf("list: total %d, users %v; want %v", list.Total, got, want)
	}
}

func TestListUsersWalksManyKeys(t *testing.T) {
	// More users than one SCAN batch returns.
	store := newTestStore(t)
	ctx := context.Background()
	for i := range 1200 {
		u := User{Username: fmt.Sprintf("u%04d", i), Group: "beta", Role: RoleUser, PasswordHash: []byte("x")}
		if err := store.Create(ctx, u); err != nil {
			t.Fatal(err)
		}
	}
	users, err := store.List(ctx)
	if err != nil || len(users) != 1200 || users[0].Username != "u0000" || users[1199].Username != "u1199" {
		t.Fatalf("List: %d users, err %v", len(users), err)
	}
}

func TestUpdatePasswordBySelf(t *testing.T) {
	e := newTestEnv(t)
	e.register("heidi", "password1")
	token := e.login("heidi", "password1")
	status, body := e.call("PUT", "/api/users/heidi", token, `{"password": "password2"}`)
	if status != http.StatusOK || body["username"] != "heidi" {
		t.Fatalf("update: %d %v", status, body)
	}
	status, body = e.call("POST", "/api/login", "", credJSON("heidi", "password1"))
	wantError(t, status, body, http.StatusUnauthorized, errInvalidLogin)
	e.login("heidi", "password2")
}

func TestUpdatePasswordByAdminAndNotByOthers(t *testing.T) {
	e := newTestEnv(t)
	e.register("ivan", "password1")
	e.register("judy", "password1")
	judy := e.login("judy", "password1")
	admin := e.login(testAdmin, testAdminPassword)

	status, body := e.call("PUT", "/api/users/ivan", judy, `{"password": "hijacked1"}`)
	wantError(t, status, body, http.StatusForbidden, "admin")
	status, body = e.call("PUT", "/api/users/"+testAdmin, judy, `{"password": "hijacked1"}`)
	wantError(t, status, body, http.StatusForbidden, "admin")
	status, body = e.call("PUT", "/api/users/ivan", "", `{"password": "hijacked1"}`)
	wantError(t, status, body, http.StatusUnauthorized, "token")

	if status, body = e.call("PUT", "/api/users/ivan", admin, `{"password": "reset-by-admin"}`); status != http.StatusOK {
		t.Fatalf("admin update: %d %v", status, body)
	}
	e.login("ivan", "reset-by-admin")

	status, body = e.call("PUT", "/api/users/nobody", admin, `{"password": "password1"}`)
	wantError(t, status, body, http.StatusNotFound, "not found")
	for _, tc := range []struct{ body, msg string }{
		{`{"password": "short"}`, "at least 8"},
		{`{"password": ""}`, "required"},
		{`{}`, "required"},
		{`{"password": 12345678}`, "must be a string"},
		{`{"password": "password1", "role": "admin"}`, "unknown field"},
		{`{"password": `, "malformed"},
	} {
		status, body := e.call("PUT", "/api/users/ivan", admin, tc.body)
		wantError(t, status, body, http.StatusBadRequest, tc.msg)
	}
}

func TestDeleteUser(t *testing.T) {
	e := newTestEnv(t)
	e.register("ken", "password1")
	e.register("leo", "password1")
	ken := e.login("ken", "password1")
	admin := e.login(testAdmin, testAdminPassword)

	status, body := e.call("DELETE", "/api/users/leo", ken, "")
	wantError(t, status, body, http.StatusForbidden, "admin")
	status, body = e.call("DELETE", "/api/users/ken", ken, "")
	wantError(t, status, body, http.StatusForbidden, "admin")
	status, body = e.call("DELETE", "/api/users/leo", "", "")
	wantError(t, status, body, http.StatusUnauthorized, "token")

	if status, body = e.call("DELETE", "/api/users/ken", admin, ""); status != http.StatusOK || body["username"] != "ken" {
		t.Fatalf("delete ken: %d %v", status, body)
	}
	// Ken's token dies with ken.
	status, body = e.call("GET", "/api/profile", ken, "")
	wantError(t, status, body, http.StatusUnauthorized, "token")
	status, body = e.call("POST", "/api/login", "", credJSON("ken", "password1"))
	wantError(t, status, body, http.StatusUnauthorized, errInvalidLogin)
	status, body = e.call("DELETE", "/api/users/ken", admin, "")
	wantError(t, status, body, http.StatusNotFound, "not found")
}

func TestAdminCannotDeleteTheLastAdmin(t *testing.T) {
	e := newTestEnv(t)
	admin := e.login(testAdmin, testAdminPassword)
	status, body := e.call("DELETE", "/api/users/"+testAdmin, admin, "")
	wantError(t, status, body, http.StatusConflict, "last admin")

	// With a second admin, one of them may go, but not both.
	hash, _ := bcrypt.GenerateFromPassword([]byte("second-admin-pw"), bcrypt.MinCost)
	if _, err := e.store.EnsureAdmin(context.Background(), "root", hash, "beta"); err != nil {
		t.Fatal(err)
	}
	if status, body = e.call("DELETE", "/api/users/root", admin, ""); status != http.StatusOK {
		t.Fatalf("delete second admin: %d %v", status, body)
	}
	status, body = e.call("DELETE", "/api/users/"+testAdmin, admin, "")
	wantError(t, status, body, http.StatusConflict, "last admin")
}

func TestEnsureAdminIsIdempotent(t *testing.T) {
	store := newTestStore(t)
	ctx := context.Background()
	hash, _ := bcrypt.GenerateFromPassword([]byte("first-password"), bcrypt.MinCost)
	created, err := store.EnsureAdmin(ctx, "boss", hash, "beta")
	if err != nil || !created {
		t.Fatalf("first EnsureAdmin: created %v, err %v", created, err)
	}
	// A restart with another password keeps the stored one (it may have
	// been changed through the API since).
	other, _ := bcrypt.GenerateFromPassword([]byte("second-password"), bcrypt.MinCost)
	created, err = store.EnsureAdmin(ctx, "boss", other, "alpha")
	if err != nil || created {
		t.Fatalf("second EnsureAdmin: created %v, err %v", created, err)
	}
	u, _ := store.Get(ctx, "boss")
	if u.Role != RoleAdmin || u.Group != "beta" || bcrypt.CompareHashAndPassword(u.PasswordHash, []byte("first-password")) != nil {
		t.Fatalf("admin changed by second EnsureAdmin: %+v", u)
	}
	// A plain user of that name is never promoted.
	if err := store.Create(ctx, User{Username: "mallory", Group: "alpha", Role: RoleUser, PasswordHash: hash}); err != nil {
		t.Fatal(err)
	}
	if _, err := store.EnsureAdmin(ctx, "mallory", hash, "alpha"); err != ErrNotAdmin {
		t.Fatalf("EnsureAdmin over a user: %v, want ErrNotAdmin", err)
	}
}

func TestUnknownRoutesAndMethodsAnswerJSON(t *testing.T) {
	e := newTestEnv(t)
	status, body := e.call("GET", "/nope", "", "")
	wantError(t, status, body, http.StatusNotFound, "not found")
	status, body = e.call("GET", "/api/users/x/y", "", "")
	wantError(t, status, body, http.StatusNotFound, "not found")

	for _, tc := range []struct{ method, path, allow string }{
		{"POST", "/api/health", "GET, HEAD"},
		{"DELETE", "/api/version", "GET, HEAD"},
		{"GET", "/api/register", "POST"},
		{"GET", "/api/login", "POST"},
		{"POST", "/api/users", "GET, HEAD"},
		{"GET", "/api/users/alice", "PUT, DELETE"},
		{"PUT", "/api/profile", "GET, HEAD"},
		{"PUT", "/api/ready", "GET, HEAD"},
	} {
		resp := e.raw(tc.method, tc.path, "", "", nil)
		wantError(t, resp.StatusCode, decodeBody(t, resp), http.StatusMethodNotAllowed, "method not allowed")
		if got := resp.Header.Get("Allow"); got != tc.allow {
			t.Errorf("%s %s: Allow %q, want %q", tc.method, tc.path, got, tc.allow)
		}
		resp.Body.Close()
	}
}

func TestCORSAllowList(t *testing.T) {
	e := newTestEnv(t)
	preflight := func(origin string) *http.Response {
		return e.raw("OPTIONS", "/api/login", "", "", http.Header{
			"Origin":                         {origin},
			"Access-Control-Request-Method":  {"POST"},
			"Access-Control-Request-Headers": {"content-type"},
		})
	}
	resp := preflight(testOrigin)
	resp.Body.Close()
	if resp.StatusCode != http.StatusNoContent || resp.Header.Get("Access-Control-Allow-Origin") != testOrigin ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Methods"), "POST") ||
		!strings.Contains(resp.Header.Get("Access-Control-Allow-Headers"), "Authorization") {
		t.Fatalf("allowed preflight: %d %v", resp.StatusCode, resp.Header)
	}

	resp = preflight("http://evil.example")
	wantError(t, resp.StatusCode, decodeBody(t, resp), http.StatusForbidden, "origin")
	if resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatal("disallowed origin got Access-Control-Allow-Origin")
	}
	resp.Body.Close()

	resp = e.raw("GET", "/api/health", "", "", http.Header{"Origin": {testOrigin}})
	resp.Body.Close()
	if resp.Header.Get("Access-Control-Allow-Origin") != testOrigin || !slices.Contains(resp.Header.Values("Vary"), "Origin") {
		t.Fatalf("allowed simple request: %v", resp.Header)
	}
	resp = e.raw("GET", "/api/health", "", "", http.Header{"Origin": {"http://evil.example"}})
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Access-Control-Allow-Origin") != "" {
		t.Fatalf("disallowed simple request: %d %v", resp.StatusCode, resp.Header)
	}
	// OPTIONS without a CORS preflight is just a wrong method.
	resp = e.raw("OPTIONS", "/api/login", "", "", nil)
	wantError(t, resp.StatusCode, decodeBody(t, resp), http.StatusMethodNotAllowed, "method")
	resp.Body.Close()
}

func TestPanicsBecomeJSON500WithoutStack(t *testing.T) {
	logs := &syncBuffer{}
	srv := NewServer(testConfig(), nil, slog.New(slog.NewJSONHandler(logs, nil)))
	h := srv.logRequests(srv.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("boom")
	})))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/api/anything", nil))
	if rec.Code != http.StatusInternalServerError || strings.TrimSpace(rec.Body.String()) != `{"error":"internal error"}` {
		t.Fatalf("panic answer: %d %q", rec.Code, rec.Body.String())
	}
	if !strings.Contains(logs.String(), `"panic":"boom"`) || !strings.Contains(logs.String(), `"status":500`) {
		t.Fatalf("panic not logged: %s", logs.String())
	}

	// http.ErrAbortHandler keeps its meaning: abort the connection.
	abort := srv.recoverPanics(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic(http.ErrAbortHandler)
	}))
	defer func() {
		if v := recover(); v != http.ErrAbortHandler {
			t.Fatalf("recovered %v, want http.ErrAbortHandler", v)
		}
	}()
	abort.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", "/", nil))
}

func TestRequestLogHasOneLinePerRequestAndNoSecrets(t *testing.T) {
	e := newTestEnv(t)
	e.register("olivia", "secret-password-1")
	token := e.login("olivia", "secret-password-1")
	e.call("GET", "/api/profile?token="+token, token, "")
	e.call("PUT", "/api/users/olivia", token, `{"password": "secret-password-2"}`)
	e.call("POST", "/api/login", "", credJSON("olivia", "wrong-password-3"))

	lines := strings.Split(strings.TrimSpace(e.log.String()), "\n")
	if len(lines) != 5 {
		t.Fatalf("want 5 log lines, got %d:\n%s", len(lines), e.log.String())
	}
	for _, line := range lines {
		var entry map[string]any
		if err := json.Unmarshal([]byte(line), &entry); err != nil {
			t.Fatalf("log line is not JSON: %q", line)
		}
		for _, k := range []string{"method", "path", "status", "duration_ms", "variant"} {
			if _, ok := entry[k]; !ok {
				t.Errorf("log line lacks %q: %s", k, line)
			}
		}
		if entry["variant"] != "v2" {
			t.Errorf("variant %v in %s", entry["variant"], line)
		}
	}
	for _, secret := range []string{"secret-password", "wrong-password", token, strings.Split(token, ".")[2]} {
		if strings.Contains(e.log.String(), secret) {
			t.Fatalf("log contains a secret %q:\n%s", secret, e.log.String())
		}
	}
}
