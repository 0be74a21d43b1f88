// Command backend is the lab's API service: registration, login, profiles,
// user administration and A/B groups, stored in Redis.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
)

// commit is set at build time: -ldflags "-X main.commit=<sha>".
var commit = "unknown"

const (
	minSecretLen    = 32
	shutdownTimeout = 10 * time.Second
)

// Config is everything the service reads from its environment.
type Config struct {
	Port           string
	RedisAddr      string
	RedisPassword  string
	JWTSecret      []byte
	JWTIssuer      string
	TokenTTL       time.Duration
	AdminUsername  string
	AdminPassword  string
	AllowedOrigins []string
	Version        string
	Variant        string
	Commit         string
	BcryptCost     int
}

func main() {
	healthcheck := flag.Bool("healthcheck", false, "GET http://127.0.0.1:$PORT/api/health and exit 0 when healthy, 1 otherwise")
	flag.Parse()

	if *healthcheck {
		if err := checkHealth(healthURL(os.Getenv("PORT")), 3*time.Second); err != nil {
			fmt.Fprintln(os.Stderr, "unhealthy:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}

	redis.SetLogger(redisLogger{newLogger(os.Stdout).With("variant", os.Getenv("VARIANT"))})
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, os.Getenv, os.Stdout); err != nil {
		newLogger(os.Stderr).Error("backend stopped", "error", err.Error())
		os.Exit(1)
	}
}

// loadConfig reads and validates the environment. It refuses a missing or
// short JWT_SECRET so that a misconfigured deployment fails at start-up.
func loadConfig(getenv func(string) string) (Config, error) {
	cfg := Config{
		Port:          envOr(getenv, "PORT", "3000"),
		RedisAddr:     envOr(getenv, "REDIS_ADDR", "redis:6379"),
		RedisPassword: getenv("REDIS_PASSWORD"),
		JWTSecret:     []byte(getenv("JWT_SECRET")),
		JWTIssuer:     envOr(getenv, "JWT_ISSUER", "lab-backend"),
		TokenTTL:      time.Hour,
		AdminUsername: getenv("ADMIN_USERNAME"),
		AdminPassword: getenv("ADMIN_PASSWORD"),
		Version:       envOr(getenv, "VERSION", "dev"),
		Variant:       envOr(getenv, "VARIANT", "unknown"),
		Commit:        commit,
		BcryptCost:    bcrypt.DefaultCost,
	}
	for _, o := range strings.Split(getenv("ALLOWED_ORIGINS"), ",") {
		if o = strings.TrimSpace(o); o != "" {
			cfg.AllowedOrigins = append(cfg.AllowedOrigins, o)
		}
	}

	if len(cfg.JWTSecret) == 0 {
		return cfg, errors.New("JWT_SECRET is not set (it must be at least 32 bytes)")
	}
	if len(cfg.JWTSecret) < minSecretLen {
		return cfg, fmt.Errorf("JWT_SECRET is %d bytes; it must be at least %d", len(cfg.JWTSecret), minSecretLen)
	}
	if p, err := strconv.Atoi(cfg.Port); err != nil || p < 1 || p > 65535 {
		return cfg, fmt.Errorf("PORT %q is not a TCP port number", cfg.Port)
	}
	if (cfg.AdminUsername == "") != (cfg.AdminPassword == "") {
		return cfg, errors.New("set both ADMIN_USERNAME and ADMIN_PASSWORD, or neither")
	}
	if cfg.AdminUsername != "" {
		if msg := validateCredentials(cfg.AdminUsername, cfg.AdminPassword); msg != "" {
			return cfg, fmt.Errorf("ADMIN_USERNAME/ADMIN_PASSWORD: %s", msg)
		}
	}
	return cfg, nil
}

// newLogger writes one JSON object per line.
func newLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, nil))
}

func envOr(getenv func(string) string, key, fallback string) string {
	if v := getenv(key); v != "" {
		return v
	}
	return fallback
}

// run starts the service and blocks until ctx is cancelled (SIGTERM), then
// drains in-flight requests.
func run(ctx context.Context, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(getenv)
	if err != nil {
		return err
	}
	logger := newLogger(logOut).With("variant", cfg.Variant)

	store := NewStore(cfg.RedisAddr, cfg.RedisPassword)
	defer store.Close()

	srv := &http.Server{
		Addr:              net.JoinHostPort("", cfg.Port),
		Handler:           NewServer(cfg, store, logger).Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      15 * time.Second,
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", srv.Addr)
	if err != nil {
		return err
	}

	// Redis may come up after us (it does in Kubernetes): create the first
	// admin in the background and keep serving; /api/ready reports Redis.
	if cfg.AdminUsername != "" {
		go ensureAdminWithRetry(ctx, store, cfg, logger)
	}

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	logger.Info("listening", "addr", ln.Addr().String(), "version", cfg.Version, "commit", cfg.Commit)

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	sctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	return srv.Shutdown(sctx)
}

func ensureAdminWithRetry(ctx context.Context, store *Store, cfg Config, logger *slog.Logger) {
	hash, err := bcrypt.GenerateFromPassword([]byte(cfg.AdminPassword), cfg.BcryptCost)
	if err != nil {
		logger.Error("admin password", "error", err.Error())
		return
	}
	for delay := 500 * time.Millisecond; ; delay = min(2*delay, 10*time.Second) {
		created, err := store.EnsureAdmin(ctx, cfg.AdminUsername, hash, randomGroup())
		switch {
		case err == nil:
			logger.Info("admin ready", "username", cfg.AdminUsername, "created", created)
			return
		case errors.Is(err, ErrNotAdmin):
			logger.Error("admin not created", "username", cfg.AdminUsername, "error", err.Error())
			return
		}
		logger.Warn("admin not created yet, retrying", "error", err.Error(), "retry_in", delay.String())
		select {
		case <-ctx.Done():
			return
		case <-time.After(delay):
		}
	}
}

func healthURL(port string) string {
	if port == "" {
		port = "3000"
	}
	return "http://" + net.JoinHostPort("127.0.0.1", port) + "/api/health"
}

// checkHealth backs the -healthcheck flag: the final image has no shell or
// curl, so the binary checks itself for Docker's HEALTHCHECK.
func checkHealth(url string, timeout time.Duration) error {
	client := &http.Client{Timeout: timeout}
	resp, err := client.Get(url)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	return nil
}
