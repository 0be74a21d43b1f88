package main

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// FuzzDecodeCredentials feeds arbitrary bodies to the request decoding. It
// must never panic, must answer only 400 or 413 with a message, and when it
// accepts a body, that body must be a JSON object with no unknown fields.
// The seeds below run in every `go test`; `make fuzz` explores further.
// Oversized bodies are tested in TestBodiesOverLimitAre413: a 64 KiB seed
// makes the fuzzer spend its time minimizing.
func FuzzDecodeCredentials(f *testing.F) {
	for _, seed := range []string{
		``,
		`{}`,
		`null`,
		`[]`,
		`"text"`,
		`{"username": "alice", "password": "password1"}`,
		`{"username": "alice", "password": "password1"} {}`,
		`{"username": "alice", "password": "password1"}}`,
		`{"username": 1, "password": true}`,
		`{"username": "alice", "password": "password1", "role": "admin"}`,
		`{"username": "alice", "password": "password1", "Username": "bob"}`,
		`{"username": "\u0000\ud800", "password": "\\"}`,
		`{"username": "alice", "password": ` + strings.Repeat(`[`, 200),
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest(http.MethodPost, "/api/register", strings.NewReader(string(body)))
		req.Body = http.MaxBytesReader(rec, req.Body, maxBodyBytes)
		var c credentials
		e := decodeJSON(req, &c)
		if e != nil {
			if (e.status != http.StatusBadRequest && e.status != http.StatusRequestEntityTooLarge) || e.msg == "" {
				t.Fatalf("decode error %d %q", e.status, e.msg)
			}
			if e.status == http.StatusRequestEntityTooLarge && len(body) <= maxBodyBytes {
				t.Fatalf("413 for a %d-byte body", len(body))
			}
			return
		}
		if len(body) > maxBodyBytes {
			t.Fatalf("accepted a %d-byte body", len(body))
		}
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatalf("accepted %q, which is not one JSON object: %v", body, err)
		}
		for k := range fields {
			if !strings.EqualFold(k, "username") && !strings.EqualFold(k, "password") {
				t.Fatalf("accepted unknown field %q in %q", k, body)
			}
		}
	})
}
