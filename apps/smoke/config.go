package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// variants are the backend variants the gateway routes to on the x-version header.
var variants = [...]string{"v1", "v2"}

const (
	defaultTimeout       = 10 * time.Second
	maxTimeout           = 10 * time.Minute
	defaultAdminUsername = "admin" // docs/CONTRACTS.md: ADMIN_USERNAME is plain config, "admin"
)

// Config is what one smoke run needs; see README.md.
type Config struct {
	GatewayURL    *url.URL
	ExpectedV1    string
	ExpectedV2    string
	AdminUsername string
	AdminPassword string
	Timeout       time.Duration // per request
	Host          string        // Host header the gateway routes on (empty: the URL's host)
	Routes        []route       // paths sent to a Service directly, not to the gateway
}

// expected returns the commit variant must report.
func (c Config) expected(variant string) string {
	if variant == "v1" {
		return c.ExpectedV1
	}
	return c.ExpectedV2
}

// configError is a configuration that cannot be run; it exits 2.
type configError struct{ problems []string }

func (e *configError) Error() string { return strings.Join(e.problems, "; ") }

// setting is one configuration value: a flag that, when given, wins over its
// environment variable.
type setting struct {
	flag, env, usage string
	value            string
}

// loadConfig reads flags, falling back to the environment for each flag not
// given. The admin password is read from the environment only, so that it
// never shows in a process listing. It returns flag.ErrHelp for -h.
func loadConfig(args []string, getenv func(string) string, usage io.Writer) (Config, error) {
	settings := []*setting{
		{flag: "gateway-url", env: "GATEWAY_URL", usage: "base URL of the gateway, e.g. http://127.0.0.1:8080"},
		{flag: "expected-v1-commit", env: "EXPECTED_V1_COMMIT", usage: "commit variant v1 must report"},
		{flag: "expected-v2-commit", env: "EXPECTED_V2_COMMIT", usage: "commit variant v2 must report"},
		{flag: "admin-username", env: "ADMIN_USERNAME", usage: "backend admin user (default " + defaultAdminUsername + ")"},
		{flag: "timeout", env: "SMOKE_TIMEOUT", usage: "timeout of each request, e.g. 10s or 10 (seconds; default 10s)"},
		{flag: "host", env: "APP_HOST", usage: "Host header the gateway routes on, e.g. dev.localhost (default: the URL's host)"},
		{flag: "service-routes", env: "SERVICE_ROUTES", usage: "send paths to Services, not the gateway: /api/=http://backend{-version}:3000,... (no data plane)"},
	}
	fs := flag.NewFlagSet("smoke", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // a bad flag is reported with the other problems
	for _, s := range settings {
		fs.StringVar(&s.value, s.flag, "", s.usage+" [$"+s.env+"]")
	}
	fs.Usage = func() {} // printed below for -h only
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			printUsage(fs, usage)
			return Config{}, err
		}
		return Config{}, &configError{[]string{err.Error()}}
	}
	if fs.NArg() > 0 {
		return Config{}, &configError{[]string{fmt.Sprintf("unexpected arguments: %q", fs.Args())}}
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	value := func(i int) (name, v string) {
		s := settings[i]
		if given[s.flag] {
			return "-" + s.flag, strings.TrimSpace(s.value)
		}
		return s.env, strings.TrimSpace(getenv(s.env))
	}

	var cfg Config
	var problems []string
	problem := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }

	name, raw := value(0)
	switch u, err := parseGatewayURL(raw); {
	case raw == "":
		problem("GATEWAY_URL is required: the base URL of the gateway, e.g. http://127.0.0.1:8080")
	case err != nil:
		problem("%s %q: %v", name, raw, err)
	default:
		cfg.GatewayURL = u
	}
	for i, dst := range []*string{&cfg.ExpectedV1, &cfg.ExpectedV2} {
		name, raw := value(1 + i)
		switch {
		case raw == "":
			problem("%s is required: the commit variant %s must report", settings[1+i].env, variants[i])
		case strings.ContainsAny(raw, " \t\r\n"):
			problem("%s %q: a commit has no spaces", name, raw)
		default:
			*dst = raw
		}
	}
	if _, raw := value(3); raw != "" {
		cfg.AdminUsername = raw
	} else {
		cfg.AdminUsername = defaultAdminUsername
	}
	if cfg.AdminPassword = getenv("ADMIN_PASSWORD"); cfg.AdminPassword == "" {
		problem("ADMIN_PASSWORD is required: the backend admin's password (environment only)")
	}
	cfg.Timeout = defaultTimeout
	if name, raw := value(4); raw != "" {
		d, err := parseTimeout(raw)
		if err != nil {
			problem("%s %q: %v", name, raw, err)
		} else {
			cfg.Timeout = d
		}
	}
	if name, raw := value(5); raw != "" {
		if strings.ContainsAny(raw, " \t\r\n/") {
			problem("%s %q: a host name has no spaces or slashes", name, raw)
		} else {
			cfg.Host = raw
		}
	}
	if name, raw := value(6); raw != "" {
		routes, err := parseRoutes(raw)
		if err != nil {
			problem("%s: %v", name, err)
		} else {
			cfg.Routes = routes
		}
	}
	if len(problems) > 0 {
		return Config{}, &configError{problems}
	}
	return cfg, nil
}

func printUsage(fs *flag.FlagSet, w io.Writer) {
	fmt.Fprint(w, "Usage: smoke [flags]\n\n"+
		"Smoke-tests a lab environment through its gateway. Each flag falls back to\n"+
		"the environment variable in brackets; ADMIN_PASSWORD is read from the\n"+
		"environment only. Exit 0: all checks passed; 1: a check failed; 2: bad\n"+
		"configuration.\n\nFlags:\n")
	fs.SetOutput(w)
	fs.PrintDefaults()
}

func parseGatewayURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil, u.Scheme != "http" && u.Scheme != "https":
		return nil, errors.New("must start with http:// or https://")
	case u.Host == "":
		return nil, errors.New("has no host")
	case u.User != nil:
		return nil, errors.New("must not hold credentials")
	case u.RawQuery != "" || u.Fragment != "":
		return nil, errors.New("must have no query or fragment")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	return u, nil
}

// parseTimeout accepts a Go duration ("10s", "1m30s") or plain seconds ("10", "2.5").
func parseTimeout(raw string) (time.Duration, error) {
	d, err := time.ParseDuration(raw)
	if err != nil {
		secs, ferr := strconv.ParseFloat(raw, 64)
		if ferr != nil {
			return 0, errors.New("want a duration such as 10s, or a number of seconds")
		}
		if !(secs > 0 && secs <= maxTimeout.Seconds()) { // also refuses NaN
			return 0, fmt.Errorf("must be more than 0 and at most %s", maxTimeout)
		}
		d = time.Duration(secs * float64(time.Second))
	}
	if d <= 0 || d > maxTimeout {
		return 0, fmt.Errorf("must be more than 0 and at most %s", maxTimeout)
	}
	return d, nil
}
