package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// Roles a user can have.
const (
	RoleUser  = "user"
	RoleAdmin = "admin"
)

// Errors the store reports; anything else means Redis itself failed.
var (
	ErrUserExists = errors.New("user already exists")
	ErrNotFound   = errors.New("user not found")
	ErrLastAdmin  = errors.New("cannot delete the last admin")
	ErrNotAdmin   = errors.New("user exists but is not an admin")
)

// Redis layout: one hash per user, "user:<name>" with the fields password
// (bcrypt hash), group and role; and the set "admins" with the admins' names,
// so that the last-admin rule is one SCARD inside a script.
const (
	userPrefix = "user:"
	adminsKey  = "admins"
)

// User is a stored user.
type User struct {
	Username     string `json:"username"`
	Group        string `json:"group"`
	Role         string `json:"role"`
	PasswordHash []byte `json:"-"`
}

// Store keeps users in Redis.
type Store struct {
	rdb *redis.Client
}

// NewStore connects lazily: Redis may be down now and up later.
func NewStore(addr, password string) *Store {
	return &Store{rdb: redis.NewClient(&redis.Options{
		Addr:         addr,
		Password:     password,
		DialTimeout:  2 * time.Second,
		ReadTimeout:  2 * time.Second,
		WriteTimeout: 2 * time.Second,
		MaxRetries:   1,
		// Fail fast while Redis is down: callers answer 503 and retry later.
		DialerRetries: 2,
	})}
}

// redisLogger sends go-redis's own messages (failed dials and the like) to
// the JSON log instead of plain text on stderr.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.WarnContext(ctx, "redis client", "detail", fmt.Sprintf(format, v...))
}

// Close releases the connection pool.
func (s *Store) Close() error { return s.rdb.Close() }

// Ping reports whether Redis answers.
func (s *Store) Ping(ctx context.Context) error { return s.rdb.Ping(ctx).Err() }

// Scripts run atomically in Redis, so concurrent replicas (v1 and v2 share
// one Redis) cannot race between a check and a write.
var (
	createScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then return 0 end
redis.call('HSET', KEYS[1], 'password', ARGV[1], 'group', ARGV[2], 'role', ARGV[3])
if ARGV[3] == 'admin' then redis.call('SADD', KEYS[2], ARGV[4]) end
return 1`)

	ensureAdminScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 1 then
  if redis.call('HGET', KEYS[1], 'role') == 'admin' then return 0 end
  return -1
end
redis.call('HSET', KEYS[1], 'password', ARGV[1], 'group', ARGV[2], 'role', 'admin')
redis.call('SADD', KEYS[2], ARGV[3])
return 1`)

	setPasswordScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
redis.call('HSET', KEYS[1], 'password', ARGV[1])
return 1`)

	deleteScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if redis.call('HGET', KEYS[1], 'role') == 'admin' then
  if redis.call('SCARD', KEYS[2]) <= 1 then return -1 end
  redis.call('SREM', KEYS[2], ARGV[1])
end
redis.call('DEL', KEYS[1])
return 1`)
)

// Create stores a new user; ErrUserExists when the name is taken.
func (s *Store) Create(ctx context.Context, u User) error {
	n, err := createScript.Run(ctx, s.rdb, []string{userPrefix + u.Username, adminsKey},
		u.PasswordHash, u.Group, u.Role, u.Username).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrUserExists
	}
	return nil
}

// EnsureAdmin creates the admin when absent and reports whether it did. An
// existing admin is left alone (its password may have been changed since);
// an existing non-admin of that name is ErrNotAdmin, never promoted.
func (s *Store) EnsureAdmin(ctx context.Context, username string, hash []byte, group string) (bool, error) {
	n, err := ensureAdminScript.Run(ctx, s.rdb, []string{userPrefix + username, adminsKey},
		hash, group, username).Int()
	switch {
	case err != nil:
		return false, err
	case n < 0:
		return false, ErrNotAdmin
	}
	return n == 1, nil
}

// Get returns a user, or ErrNotFound.
func (s *Store) Get(ctx context.Context, username string) (User, error) {
	vals, err := s.rdb.HMGet(ctx, userPrefix+username, "password", "group", "role").Result()
	if err != nil {
		return User{}, err
	}
	hash, ok := vals[0].(string)
	if !ok {
		return User{}, ErrNotFound
	}
	group, _ := vals[1].(string)
	role, _ := vals[2].(string)
	return User{Username: username, Group: group, Role: role, PasswordHash: []byte(hash)}, nil
}

// SetPassword replaces a user's password hash, or returns ErrNotFound.
func (s *Store) SetPassword(ctx context.Context, username string, hash []byte) error {
	n, err := setPasswordScript.Run(ctx, s.rdb, []string{userPrefix + username}, hash).Int()
	if err != nil {
		return err
	}
	if n == 0 {
		return ErrNotFound
	}
	return nil
}

// Delete removes a user; ErrNotFound when absent, ErrLastAdmin when the user
// is the only admin left.
func (s *Store) Delete(ctx context.Context, username string) error {
	n, err := deleteScript.Run(ctx, s.rdb, []string{userPrefix + username, adminsKey}, username).Int()
	switch {
	case err != nil:
		return err
	case n == 0:
		return ErrNotFound
	case n < 0:
		return ErrLastAdmin
	}
	return nil
}

// List returns every user sorted by name. It walks the keys with SCAN, which
// never blocks Redis the way KEYS does.
func (s *Store) List(ctx context.Context) ([]User, error) {
	var names []string
	iter := s.rdb.Scan(ctx, 0, userPrefix+"*", 500).Iterator()
	for iter.Next(ctx) {
		names = append(names, strings.TrimPrefix(iter.Val(), userPrefix))
	}
	if err := iter.Err(); err != nil {
		return nil, err
	}
	slices.Sort(names)
	names = slices.Compact(names) // SCAN may return a key twice

	pipe := s.rdb.Pipeline()
	cmds := make([]*redis.SliceCmd, len(names))
	for i, name := range names {
		cmds[i] = pipe.HMGet(ctx, userPrefix+name, "group", "role")
	}
	if len(names) > 0 {
		if _, err := pipe.Exec(ctx); err != nil {
			return nil, fmt.Errorf("reading users: %w", err)
		}
	}
	users := make([]User, 0, len(names))
	for i, cmd := range cmds {
		vals := cmd.Val()
		group, _ := vals[0].(string)
		role, ok := vals[1].(string)
		if !ok {
			continue // deleted between SCAN and HMGET
		}
		users = append(users, User{Username: names[i], Group: group, Role: role})
	}
	return users, nil
}
