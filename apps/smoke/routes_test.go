package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestParseRoutesRefusesWhatIsNotPrefixEqualsURL(t *testing.T) {
	for _, raw := range []string{
		"api=http://backend:3000",           // no leading slash
		"/api",                              // no URL
		"/api=backend:3000",                 // no scheme
		"/api=http://backend:3000/api",      // a path
		"/api=http://backend:3000/?x=1",     // a query
		"/api=ftp://backend{-version}:3000", // not http
	} {
		if _, err := parseRoutes(raw); err == nil {
			t.Errorf("parseRoutes(%q) = nil error, want one", raw)
		}
	}
	routes, err := parseRoutes(" /api/=http://backend{-version}:3000 , /app=http://frontend:8080,")
	if err != nil || len(routes) != 2 {
		t.Fatalf("routes = %v, %v", routes, err)
	}
}

func TestResolvePicksTheLongestPrefixAndFillsTheVariant(t *testing.T) {
	routes, _ := parseRoutes("/api/=http://backend{-version}:3000,/api/admin=http://admin:1,/status=http://monitor{-version}:8000")
	cases := []struct{ path, version, want string }{
		{"/api/version", "v1", "http://backend-v1:3000"},
		{"/api/version", "", "http://backend:3000"},
		{"/api/admin/x", "v2", "http://admin:1"},
		{"/status/api/summary", "v2", "http://monitor-v2:8000"},
		{"/app/", "v1", ""}, // not routed: the gateway
	}
	for _, c := range cases {
		if got := resolve(routes, c.path, c.version); got != c.want {
			t.Errorf("resolve(%q, %q) = %q, want %q", c.path, c.version, got, c.want)
		}
	}
}

// A "Service" and a gateway that must not be called for routed paths.
func TestRoutedRequestsGoToTheServiceOfThePinnedVariant(t *testing.T) {
	var gateway, v1 []string
	serve := func(seen *[]string) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			*seen = append(*seen, r.URL.Path+" host="+r.Host)
			w.WriteHeader(http.StatusOK)
		}))
	}
	gw, s1 := serve(&gateway), serve(&v1)
	defer gw.Close()
	defer s1.Close()
	env := map[string]string{
		"GATEWAY_URL": gw.URL, "EXPECTED_V1_COMMIT": "a", "EXPECTED_V2_COMMIT": "b",
		"ADMIN_PASSWORD": "pw-secret-1", "APP_HOST": "dev.localhost",
		"SERVICE_ROUTES": "/api/=" + s1.URL,
	}
	cfg, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	c := newClient(cfg, "smoke-test")
	c.do(context.Background(), request{method: http.MethodGet, path: "/api/version", header: http.Header{"x-version": {"v1"}}})
	c.do(context.Background(), request{method: http.MethodGet, path: "/app/"})
	if len(v1) != 1 || !strings.HasPrefix(v1[0], "/api/version ") || strings.Contains(v1[0], "dev.localhost") {
		t.Errorf("service saw %q, want /api/version without the gateway's Host", v1)
	}
	if len(gateway) != 1 || gateway[0] != "/app/ host=dev.localhost" {
		t.Errorf("gateway saw %q, want only /app/ with Host dev.localhost", gateway)
	}
	env["SERVICE_ROUTES"] = "/api/=nonsense"
	if _, err := loadConfig(nil, func(k string) string { return env[k] }, io.Discard); err == nil {
		t.Fatal("a malformed SERVICE_ROUTES must be refused")
	}
}

// The checks pin a variant with a lower-case "x-version" key, as they send it.
func TestThePinnedVariantPicksItsService(t *testing.T) {
	var seen []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = append(seen, r.URL.Path)
	}))
	defer srv.Close()
	routes, err := parseRoutes("/api/=http://backend{-version}:3000")
	if err != nil {
		t.Fatal(err)
	}
	c := &client{base: srv.URL, routes: routes, http: &http.Client{Timeout: 2 * time.Second}}
	ex := c.do(context.Background(), request{method: http.MethodGet, path: "/api/version", header: http.Header{"x-version": {"v2"}}})
	if ex.url != "http://backend-v2:3000/api/version" {
		t.Fatalf("pinned v2 went to %q, want http://backend-v2:3000/api/version", ex.url)
	}
	ex = c.do(context.Background(), request{method: http.MethodGet, path: "/api/version"})
	if ex.url != "http://backend:3000/api/version" {
		t.Fatalf("unpinned went to %q, want the shared Service", ex.url)
	}
}
