package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"runtime/debug"
	"slices"
	"strings"
	"time"
)

// maxBodyBytes caps every request body; larger bodies get 413.
const maxBodyBytes = 64 << 10

// Server holds the dependencies of the HTTP handlers.
type Server struct {
	cfg    Config
	store  *Store
	log    *slog.Logger
	tokens *Tokens
}

// NewServer wires the handlers to a store and a logger.
func NewServer(cfg Config, store *Store, logger *slog.Logger) *Server {
	return &Server{
		cfg:    cfg,
		store:  store,
		log:    logger,
		tokens: &Tokens{Secret: cfg.JWTSecret, Issuer: cfg.JWTIssuer, TTL: cfg.TokenTTL},
	}
}

// Handler returns the routes wrapped in the middleware chain.
// Order, outermost first: log every request, recover panics, CORS, body cap.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/health", s.health)
	mux.HandleFunc("GET /api/ready", s.ready)
	mux.HandleFunc("GET /api/version", s.version)
	mux.HandleFunc("POST /api/register", s.register)
	mux.HandleFunc("POST /api/login", s.login)
	mux.Handle("GET /api/profile", s.authenticated(s.profile))
	mux.Handle("GET /api/users", s.authenticated(s.adminOnly(s.listUsers)))
	mux.Handle("PUT /api/users/{name}", s.authenticated(s.updateUser))
	mux.Handle("DELETE /api/users/{name}", s.authenticated(s.adminOnly(s.deleteUser)))

	// The mux answers unknown paths and wrong methods in plain text; these
	// less specific patterns make those answers JSON too.
	for path, allow := range map[string]string{
		"/api/health":       "GET, HEAD",
		"/api/ready":        "GET, HEAD",
		"/api/version":      "GET, HEAD",
		"/api/register":     "POST",
		"/api/login":        "POST",
		"/api/profile":      "GET, HEAD",
		"/api/users":        "GET, HEAD",
		"/api/users/{name}": "PUT, DELETE",
	} {
		mux.Handle(path, methodNotAllowed(allow))
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "not found")
	})

	return s.logRequests(s.recoverPanics(s.cors(limitBody(mux))))
}

func methodNotAllowed(allow string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", allow)
		writeError(w, http.StatusMethodNotAllowed, "method not allowed")
	})
}

// statusRecorder remembers the status for the request log.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// logRequests writes one JSON line per request. It logs the path only, never
// the query string, headers or body, so no password or token reaches the log.
func (s *Server) logRequests(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		next.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.log.Info("request",
			"method", r.Method,
			"path", r.URL.Path,
			"status", rec.status,
			"duration_ms", float64(time.Since(start).Microseconds())/1000,
		)
	})
}

// recoverPanics turns a panic into a JSON 500; the stack goes to the server
// log, never to the client.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			v := recover()
			if v == nil {
				return
			}
			if v == http.ErrAbortHandler { // net/http's signal to abort the connection
				panic(v)
			}
			s.log.Error("panic", "method", r.Method, "path", r.URL.Path,
				"panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			writeError(w, http.StatusInternalServerError, "internal error")
		}()
		next.ServeHTTP(w, r)
	})
}

// cors allows the origins listed in ALLOWED_ORIGINS, exactly as written.
func (s *Server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if origin == "" {
			next.ServeHTTP(w, r)
			return
		}
		w.Header().Add("Vary", "Origin")
		allowed := slices.Contains(s.cfg.AllowedOrigins, origin)
		preflight := r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != ""
		if !allowed {
			if preflight {
				writeError(w, http.StatusForbidden, "origin not allowed")
				return
			}
			next.ServeHTTP(w, r) // no CORS headers: the browser keeps the answer from the page
			return
		}
		w.Header().Set("Access-Control-Allow-Origin", origin)
		if preflight {
			w.Header().Add("Vary", "Access-Control-Request-Method")
			w.Header().Add("Vary", "Access-Control-Request-Headers")
			w.Header().Set("Access-Control-Allow-Methods", "GET, POST, PUT, DELETE, OPTIONS")
			w.Header().Set("Access-Control-Allow-Headers", "Authorization, Content-Type")
			w.Header().Set("Access-Control-Max-Age", "600")
			w.WriteHeader(http.StatusNoContent)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func limitBody(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.Body = http.MaxBytesReader(w, r.Body, maxBodyBytes)
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v) // the client may be gone; nothing left to tell it
}

func writeError(w http.ResponseWriter, status int, msg string) {
	writeJSON(w, status, map[string]string{"error": msg})
}

// requestError is a client error found while reading a request.
type requestError struct {
	status int
	msg    string
}

// decodeJSON reads exactly one JSON object into dst, rejecting unknown
// fields, wrong types, trailing data and bodies over maxBodyBytes.
func decodeJSON(r *http.Request, dst any) *requestError {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		return decodeError(err)
	}
	// Anything after the object is an error; reading it also catches an
	// oversized tail, which must be 413 like any other oversized body.
	var extra json.RawMessage
	switch err := dec.Decode(&extra); {
	case errors.Is(err, io.EOF):
		return nil
	case err != nil && decodeError(err).status == http.StatusRequestEntityTooLarge:
		return decodeError(err)
	default:
		return &requestError{http.StatusBadRequest, "request body must hold a single JSON object"}
	}
}

func decodeError(err error) *requestError {
	var (
		maxErr    *http.MaxBytesError
		syntaxErr *json.SyntaxError
		typeErr   *json.UnmarshalTypeError
	)
	switch {
	case errors.As(err, &maxErr):
		return &requestError{http.StatusRequestEntityTooLarge, fmt.Sprintf("request body larger than %d bytes", maxErr.Limit)}
	case errors.Is(err, io.EOF):
		return &requestError{http.StatusBadRequest, "request body is empty"}
	case errors.Is(err, io.ErrUnexpectedEOF), errors.As(err, &syntaxErr):
		return &requestError{http.StatusBadRequest, "malformed JSON"}
	case errors.As(err, &typeErr):
		if typeErr.Field != "" {
			return &requestError{http.StatusBadRequest, fmt.Sprintf("field %q must be a %s", typeErr.Field, typeErr.Type)}
		}
		return &requestError{http.StatusBadRequest, "request body must be a JSON object"}
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		// encoding/json has no typed error for this; its message is stable.
		return &requestError{http.StatusBadRequest, "unknown field " + strings.TrimPrefix(err.Error(), "json: unknown field ")}
	default:
		return &requestError{http.StatusBadRequest, "malformed JSON"}
	}
}
