package main

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	minPasswordLen = 8
	// bcrypt only reads the first 72 bytes; refuse longer passwords rather
	// than silently ignoring their end.
	maxPasswordLen = 72
)

var usernameRE = regexp.MustCompile(`^[a-z0-9_.-]{3,32}$`)

// groups are the A/B groups; a user gets one at random on registration.
var groups = [...]string{"alpha", "beta"}

func randomGroup() string { return groups[rand.N(len(groups))] }

// validateCredentials returns what is wrong with a username and password, or "".
func validateCredentials(username, password string) string {
	switch {
	case username == "":
		return "username is required"
	case password == "":
		return "password is required"
	case !usernameRE.MatchString(username):
		return "username must be 3 to 32 characters from a-z, 0-9, '_', '.', '-'"
	}
	return validatePassword(password)
}

func validatePassword(password string) string {
	switch {
	case password == "":
		return "password is required"
	case len(password) < minPasswordLen:
		return fmt.Sprintf("password must be at least %d characters", minPasswordLen)
	case len(password) > maxPasswordLen:
		return fmt.Sprintf("password must be at most %d bytes", maxPasswordLen)
	}
	return ""
}

// Tokens issues and verifies HS256 JWTs.
type Tokens struct {
	Secret []byte
	Issuer string
	TTL    time.Duration
}

// Issue returns a signed token for username.
func (t *Tokens) Issue(username string, now time.Time) (string, error) {
	claims := jwt.RegisteredClaims{
		Subject:   username,
		Issuer:    t.Issuer,
		IssuedAt:  jwt.NewNumericDate(now),
		ExpiresAt: jwt.NewNumericDate(now.Add(t.TTL)),
	}
	return jwt.NewWithClaims(jwt.SigningMethodHS256, claims).SignedString(t.Secret)
}

// Verify checks signature, algorithm (HS256 only, so never "none"), issuer
// and expiry, and returns the token's subject.
func (t *Tokens) Verify(token string) (string, error) {
	var claims jwt.RegisteredClaims
	_, err := jwt.ParseWithClaims(token, &claims,
		func(*jwt.Token) (any, error) { return t.Secret, nil },
		jwt.WithValidMethods([]string{jwt.SigningMethodHS256.Alg()}),
		jwt.WithIssuer(t.Issuer),
		jwt.WithExpirationRequired(),
		jwt.WithLeeway(5*time.Second),
	)
	if err != nil {
		return "", err
	}
	if claims.Subject == "" {
		return "", errors.New("token has no subject")
	}
	return claims.Subject, nil
}

type ctxKey struct{}

// currentUser returns the user that authenticated placed in the context.
func currentUser(ctx context.Context) User {
	u, _ := ctx.Value(ctxKey{}).(User)
	return u
}

// authenticated requires a valid bearer token whose user still exists. The
// user is read from Redis on every request, so a deleted user's token stops
// working at once.
func (s *Server) authenticated(next http.HandlerFunc) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		scheme, token, ok := strings.Cut(r.Header.Get("Authorization"), " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || token == "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lab"`)
			writeError(w, http.StatusUnauthorized, "missing bearer token")
			return
		}
		username, err := s.tokens.Verify(strings.TrimSpace(token))
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="lab", error="invalid_token"`)
			writeError(w, http.StatusUnauthorized, "invalid or expired token")
			return
		}
		u, err := s.store.Get(r.Context(), username)
		if errors.Is(err, ErrNotFound) {
			writeError(w, http.StatusUnauthorized, "invalid or expired token")
			return
		}
		if err != nil {
			s.storeUnavailable(w, r, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), ctxKey{}, u)))
	})
}

// adminOnly must run inside authenticated.
func (s *Server) adminOnly(next http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if currentUser(r.Context()).Role != RoleAdmin {
			writeError(w, http.StatusForbidden, "admin only")
			return
		}
		next(w, r)
	}
}
