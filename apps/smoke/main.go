// Command smoke checks a deployed lab environment through its gateway, the way
// a user reaches it: the backend API, each backend variant at its expected
// commit, the frontend, the monitor, and a user's whole life cycle.
//
// It prints one line per check, the request and response of the first
// failure, and exits 0 when every check passed, 1 when one failed and 2 on
// bad configuration. See README.md.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// Set at build time with -ldflags "-X main.version=... -X main.commit=...".
var (
	version = "dev"
	commit  = "unknown"
)

// Exit codes.
const (
	exitPassed      = 0
	exitFailed      = 1
	exitConfig      = 2
	exitInterrupted = 130
)

func main() {
	// SIGTERM is how Kubernetes ends a Job at its deadline: stop, clean up, exit.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the whole program, with its outside world passed in.
func run(ctx context.Context, args []string, getenv func(string) string, stdout, stderr io.Writer) int {
	cfg, err := loadConfig(args, getenv, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return exitPassed
	}
	var cerr *configError
	if errors.As(err, &cerr) {
		fmt.Fprintln(stderr, "smoke: bad configuration:")
		for _, p := range cerr.problems {
			fmt.Fprintf(stderr, "  - %s\n", p)
		}
		fmt.Fprintln(stderr, "Run smoke -h for the flags and environment variables.")
		return exitConfig
	}

	fmt.Fprintf(stdout, "smoke %s (%s): gateway %s, expecting v1 at %s and v2 at %s\n",
		version, commit, cfg.GatewayURL, cfg.ExpectedV1, cfg.ExpectedV2)
	s := &smoke{cfg: cfg, c: newClient(cfg, "lab-smoke/"+version)}
	return s.run(ctx, stdout)
}

// run runs the checks in order and stops at the first failure.
func (s *smoke) run(ctx context.Context, out io.Writer) int {
	checks := s.checks()
	for i, c := range checks {
		start := time.Now()
		err := c.run(ctx)
		if err == nil {
			fmt.Fprintf(out, "ok   %s (%dms)\n", c.name, time.Since(start).Milliseconds())
			continue
		}
		fmt.Fprintf(out, "FAIL %s: %s\n", c.name, err)
		var f *failure
		if errors.As(err, &f) && f.ex != nil {
			s.c.evidence(out, f.ex)
		}
		// Cleanup must run even when the run was interrupted: give it its own deadline.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 2*s.cfg.Timeout)
		if msg := s.cleanup(cctx); msg != "" {
			fmt.Fprintln(out, msg)
		}
		cancel()
		if ctx.Err() != nil {
			fmt.Fprintf(out, "smoke: interrupted at %s (%d of %d checks passed)\n", c.name, i, len(checks))
			return exitInterrupted
		}
		fmt.Fprintf(out, "smoke: FAILED at %s (%d of %d checks passed)\n", c.name, i, len(checks))
		return exitFailed
	}
	fmt.Fprintf(out, "smoke: %d checks passed\n", len(checks))
	return exitPassed
}
