package main

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/crypto/bcrypt"
)

// The benchmarks call the full handler chain (middleware included) in
// process against the real Redis, at the production bcrypt cost.

func benchServer(b *testing.B) http.Handler {
	b.Helper()
	store := newTestStore(b)
	cfg := testConfig()
	cfg.BcryptCost = bcrypt.DefaultCost
	hash, err := bcrypt.GenerateFromPassword([]byte("bench-password"), cfg.BcryptCost)
	if err != nil {
		b.Fatal(err)
	}
	if err := store.Create(context.Background(), User{Username: "bench", Group: "alpha", Role: RoleUser, PasswordHash: hash}); err != nil {
		b.Fatal(err)
	}
	return NewServer(cfg, store, newLogger(io.Discard)).Handler()
}

func BenchmarkLogin(b *testing.B) {
	h := benchServer(b)
	body := credJSON("bench", "bench-password")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/login", strings.NewReader(body)))
		if rec.Code != http.StatusOK {
			b.Fatalf("login: %d %s", rec.Code, rec.Body)
		}
	}
}

func BenchmarkProfile(b *testing.B) {
	h := benchServer(b)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/api/login", strings.NewReader(credJSON("bench", "bench-password"))))
	token := strings.Split(rec.Body.String(), `"`)[3]
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodGet, "/api/profile", nil)
		req.Header.Set("Authorization", "Bearer "+token)
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("profile: %d %s", rec.Code, rec.Body)
		}
	}
}
