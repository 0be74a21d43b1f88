package main

import (
	"context"
	"errors"
	"net/http"
	"sync"
	"time"

	"golang.org/x/crypto/bcrypt"
)

// credentials is the body of register and login.
type credentials struct {
	Username string `json:"username"`
	Password string `json:"password"`
}

// passwordChange is the body of PUT /api/users/{name}.
type passwordChange struct {
	Password string `json:"password"`
}

type userList struct {
	Total int    `json:"total"`
	Users []User `json:"users"`
}

// errInvalidLogin is the one answer for an unknown user and a wrong
// password, so that login does not reveal which names exist.
const errInvalidLogin = "invalid username or password"

// dummyHash is compared against when the user does not exist, so that an
// unknown name takes as long as a wrong password. It is made on first use,
// not at start-up (the -healthcheck process never needs it).
var dummyHash = sync.OnceValue(func() []byte {
	h, _ := bcrypt.GenerateFromPassword([]byte("not a real password"), bcrypt.DefaultCost)
	return h
})

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
}

func (s *Server) ready(w http.ResponseWriter, r *http.Request) {
	ctx, cancel := context.WithTimeout(r.Context(), time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("redis not ready", "error", err.Error())
		writeError(w, http.StatusServiceUnavailable, "redis unavailable")
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"status": "ready", "redis": "ok"})
}

func (s *Server) version(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]string{
		"version": s.cfg.Version,
		"commit":  s.cfg.Commit,
		"variant": s.cfg.Variant,
	})
}

func (s *Server) register(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeJSON(r, &c); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	if msg := validateCredentials(c.Username, c.Password); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), s.cfg.BcryptCost)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	u := User{Username: c.Username, Group: randomGroup(), Role: RoleUser, PasswordHash: hash}
	switch err := s.store.Create(r.Context(), u); {
	case errors.Is(err, ErrUserExists):
		writeError(w, http.StatusConflict, "username already taken")
	case err != nil:
		s.storeUnavailable(w, r, err)
	default:
		writeJSON(w, http.StatusCreated, map[string]string{"username": u.Username, "group": u.Group})
	}
}

func (s *Server) login(w http.ResponseWriter, r *http.Request) {
	var c credentials
	if e := decodeJSON(r, &c); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	if c.Username == "" || c.Password == "" {
		writeError(w, http.StatusBadRequest, "username and password are required")
		return
	}
	u, err := s.store.Get(r.Context(), c.Username)
	if err != nil && !errors.Is(err, ErrNotFound) {
		s.storeUnavailable(w, r, err)
		return
	}
	hash := u.PasswordHash
	if err != nil {
		hash = dummyHash()
	}
	if bcrypt.CompareHashAndPassword(hash, []byte(c.Password)) != nil || err != nil {
		writeError(w, http.StatusUnauthorized, errInvalidLogin)
		return
	}
	token, err := s.tokens.Issue(u.Username, time.Now())
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"token": token})
}

func (s *Server) profile(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, currentUser(r.Context()))
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	users, err := s.store.List(r.Context())
	if err != nil {
		s.storeUnavailable(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, userList{Total: len(users), Users: users})
}

func (s *Server) updateUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	me := currentUser(r.Context())
	if me.Username != name && me.Role != RoleAdmin {
		writeError(w, http.StatusForbidden, "only the user themself or an admin may change this password")
		return
	}
	var c passwordChange
	if e := decodeJSON(r, &c); e != nil {
		writeError(w, e.status, e.msg)
		return
	}
	if msg := validatePassword(c.Password); msg != "" {
		writeError(w, http.StatusBadRequest, msg)
		return
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(c.Password), s.cfg.BcryptCost)
	if err != nil {
		s.internalError(w, r, err)
		return
	}
	switch err := s.store.SetPassword(r.Context(), name, hash); {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "user not found")
	case err != nil:
		s.storeUnavailable(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"username": name, "status": "password updated"})
	}
}

func (s *Server) deleteUser(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	switch err := s.store.Delete(r.Context(), name); {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "user not found")
	case errors.Is(err, ErrLastAdmin):
		writeError(w, http.StatusConflict, "cannot delete the last admin")
	case err != nil:
		s.storeUnavailable(w, r, err)
	default:
		writeJSON(w, http.StatusOK, map[string]string{"username": name, "status": "deleted"})
	}
}

// storeUnavailable answers 503 when Redis fails; the cause goes to the log.
func (s *Server) storeUnavailable(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("redis error", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeError(w, http.StatusServiceUnavailable, "redis unavailable")
}

func (s *Server) internalError(w http.ResponseWriter, r *http.Request, err error) {
	s.log.Error("internal error", "method", r.Method, "path", r.URL.Path, "error", err.Error())
	writeError(w, http.StatusInternalServerError, "internal error")
}
