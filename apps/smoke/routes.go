package main

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
)

// versionSlot in a route's URL is replaced by "-v1" or "-v2" when a request pins a
// variant with x-version, and by nothing when it does not.
const versionSlot = "{-version}"

// route sends the requests whose path starts with prefix to a Service directly,
// instead of the gateway: for a cluster without Istio's data plane, where nothing
// routes by path or by x-version (see README.md, "Without a gateway").
type route struct {
	prefix   string
	template string // base URL, may hold versionSlot
}

// parseRoutes reads SERVICE_ROUTES: comma-separated prefix=URL entries, e.g.
// "/api/=http://backend{-version}:3000,/app=http://frontend:8080".
func parseRoutes(raw string) ([]route, error) {
	var routes []route
	for _, entry := range strings.Split(raw, ",") {
		entry = strings.TrimSpace(entry)
		if entry == "" {
			continue
		}
		prefix, target, ok := strings.Cut(entry, "=")
		if !ok || !strings.HasPrefix(prefix, "/") {
			return nil, fmt.Errorf("entry %q: want /prefix=http://service:port", entry)
		}
		probe, err := url.Parse(strings.ReplaceAll(target, versionSlot, ""))
		if err != nil || (probe.Scheme != "http" && probe.Scheme != "https") || probe.Host == "" {
			return nil, fmt.Errorf("entry %q: the URL must be http://host[:port]", entry)
		}
		if probe.Path != "" && probe.Path != "/" || probe.RawQuery != "" {
			return nil, errors.New("entry " + fmt.Sprintf("%q", entry) + ": the URL must have no path or query")
		}
		routes = append(routes, route{prefix: prefix, template: strings.TrimRight(target, "/")})
	}
	return routes, nil
}

// resolve returns the base URL a request goes to, or "" for the gateway.
func resolve(routes []route, path, version string) string {
	best := -1
	for i, r := range routes {
		if strings.HasPrefix(path, r.prefix) && (best < 0 || len(r.prefix) > len(routes[best].prefix)) {
			best = i
		}
	}
	if best < 0 {
		return ""
	}
	suffix := ""
	if version != "" {
		suffix = "-" + version
	}
	return strings.ReplaceAll(routes[best].template, versionSlot, suffix)
}

// headerValue reads a header from a request's own map, whose keys the checks write
// as they are sent ("x-version"), not in Go's canonical form.
func headerValue(h http.Header, name string) string {
	for key, values := range h {
		if strings.EqualFold(key, name) && len(values) > 0 {
			return values[0]
		}
	}
	return ""
}
