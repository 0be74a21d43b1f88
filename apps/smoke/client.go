package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"
)

const (
	// maxBody caps what is read of any answer; the rest is discarded.
	maxBody = 8 << 20
	// evidenceBody is how much of a failed answer's body is printed.
	evidenceBody = 500
	// briefBody is how much of a body a one-line reason quotes.
	briefBody = 200
	redacted  = "[redacted]"
)

// client sends requests to the gateway and records each one as an exchange,
// so that a failed check can show exactly what it sent and what came back.
type client struct {
	base      string // gateway URL without a trailing slash
	host      string // Host header override (the environment's host name)
	routes    []route
	http      *http.Client
	userAgent string
	timeout   time.Duration
	secrets   []string // passwords and tokens, never printed
}

func newClient(cfg Config, userAgent string) *client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	c := &client{
		base:      cfg.GatewayURL.String(),
		host:      cfg.Host,
		routes:    cfg.Routes,
		userAgent: userAgent,
		timeout:   cfg.Timeout,
		http: &http.Client{
			Transport: transport,
			Timeout:   cfg.Timeout,
			// A redirect is an answer to report, not to follow: the checks ask
			// for exact paths, and a redirect to a login page is a failure.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}
	c.keep(cfg.AdminPassword)
	return c
}

// keep marks a value as secret from now on, also as an HTML form encodes it.
func (c *client) keep(secret string) {
	if secret != "" {
		c.secrets = append(c.secrets, secret)
		if encoded := url.QueryEscape(secret); encoded != secret {
			c.secrets = append(c.secrets, encoded)
		}
	}
}

// request is one HTTP call.
type request struct {
	method string
	path   string      // below the gateway URL, or an absolute URL
	token  string      // bearer token, if any
	body   any         // sent as JSON when not nil
	form   url.Values  // sent as an HTML form when not nil (the monitor's pages)
	header http.Header // more headers, e.g. x-version
	accept string      // default application/json
}

// exchange is a request and what came of it: a response or a transport error.
type exchange struct {
	method     string
	url        string
	path       string // as the check named it, for one-line reasons
	reqHeader  http.Header
	reqBody    []byte
	status     int
	statusText string
	respHeader http.Header
	body       []byte
	err        error
	timeout    time.Duration
}

func (c *client) do(ctx context.Context, r request) *exchange {
	target := r.path
	direct := ""
	if !strings.HasPrefix(target, "http://") && !strings.HasPrefix(target, "https://") {
		direct = resolve(c.routes, r.path, headerValue(r.header, "x-version"))
		if direct != "" {
			target = direct + r.path
		} else {
			target = c.base + r.path
		}
	}
	ex := &exchange{method: r.method, url: target, path: r.path, reqHeader: http.Header{}, timeout: c.timeout}
	var body io.Reader
	if r.form != nil {
		ex.reqBody = []byte(r.form.Encode())
		body = bytes.NewReader(ex.reqBody)
	}
	if r.body != nil {
		b, err := json.Marshal(r.body)
		if err != nil {
			ex.err = err
			return ex
		}
		ex.reqBody = b
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, target, body)
	if err != nil {
		ex.err = err
		return ex
	}
	accept := r.accept
	if accept == "" {
		accept = "application/json"
	}
	req.Header.Set("Accept", accept)
	req.Header.Set("User-Agent", c.userAgent)
	if c.host != "" && direct == "" {
		req.Host = c.host // the gateway routes each environment by host name
	}
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if r.form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if r.token != "" {
		req.Header.Set("Authorization", "Bearer "+r.token)
	}
	for k, vs := range r.header {
		req.Header[http.CanonicalHeaderKey(k)] = vs
	}
	ex.reqHeader = req.Header.Clone()

	resp, err := c.http.Do(req)
	if err != nil {
		ex.err = err
		return ex
	}
	defer resp.Body.Close()
	ex.status, ex.statusText = resp.StatusCode, resp.Status
	ex.respHeader = resp.Header
	ex.body, ex.err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	if ex.err != nil {
		ex.status = 0 // a half-read answer is no answer
	}
	return ex
}

// ok reports whether the exchange got an answer with the status.
func (ex *exchange) ok(status int) bool { return ex.err == nil && ex.status == status }

// contentType is the media type of the answer, lower case, without parameters.
func (ex *exchange) contentType() string {
	ct, _, _ := strings.Cut(ex.respHeader.Get("Content-Type"), ";")
	return strings.ToLower(strings.TrimSpace(ct))
}

// decode reads the JSON answer into v.
func (ex *exchange) decode(v any) error {
	if err := json.Unmarshal(ex.body, v); err != nil {
		return fmt.Errorf("%s %s answered %d with a body that is not the expected JSON (%s)",
			ex.method, ex.path, ex.status, describeJSONError(err))
	}
	return nil
}

func describeJSONError(err error) string {
	var typeErr *json.UnmarshalTypeError
	if errors.As(err, &typeErr) && typeErr.Field != "" {
		return fmt.Sprintf("field %q is not a %s", typeErr.Field, typeErr.Type)
	}
	return err.Error()
}

// brief is the exchange in one line, for a failure reason:
// `GET /api/ready → 503 {"error":"redis unavailable"}` or
// `GET /api/ready: no answer within 10s`.
func (c *client) brief(ex *exchange) string {
	if ex.err != nil {
		return fmt.Sprintf("%s %s: %s", ex.method, ex.path, describeError(ex.err, ex.timeout))
	}
	s := fmt.Sprintf("%s %s → %d", ex.method, ex.path, ex.status)
	body := strings.Join(strings.Fields(c.redact(string(ex.body))), " ")
	if body == "" {
		return s
	}
	return s + " " + printable(truncate(body, briefBody))
}

// describeError turns a transport error into a short reason.
func describeError(err error, timeout time.Duration) string {
	var netErr net.Error
	switch {
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, context.DeadlineExceeded), errors.As(err, &netErr) && netErr.Timeout():
		return fmt.Sprintf("no answer within %s", timeout)
	}
	var urlErr *url.Error
	if errors.As(err, &urlErr) {
		err = urlErr.Err
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		var sysErr *os.SyscallError
		if errors.As(opErr.Err, &sysErr) {
			return "cannot connect: " + sysErr.Err.Error() // "connection refused", not "connect: connection refused"
		}
		return fmt.Sprintf("cannot connect: %v", opErr.Err)
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return "connection closed without a complete answer"
	}
	return err.Error()
}

// evidence prints the request and the response of a failed check.
// Authorization values and every known password and token are redacted.
func (c *client) evidence(w io.Writer, ex *exchange) {
	fmt.Fprintf(w, "  request:  %s %s\n", ex.method, ex.url)
	keys := make([]string, 0, len(ex.reqHeader))
	for k := range ex.reqHeader {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		v := strings.Join(ex.reqHeader[k], ", ")
		if k == "Authorization" {
			scheme, _, _ := strings.Cut(v, " ")
			v = scheme + " " + redacted
		}
		fmt.Fprintf(w, "            %s: %s\n", k, c.redact(v))
	}
	if len(ex.reqBody) > 0 {
		fmt.Fprintf(w, "            body: %s\n", c.redact(string(ex.reqBody)))
	}
	if ex.err != nil {
		fmt.Fprintf(w, "  response: none: %s\n", describeError(ex.err, ex.timeout))
		return
	}
	fmt.Fprintf(w, "  response: %s\n", ex.statusText)
	for _, k := range []string{"Content-Type", "Location", "Server"} {
		if v := ex.respHeader.Get(k); v != "" {
			fmt.Fprintf(w, "            %s: %s\n", k, c.redact(v))
		}
	}
	body := c.redact(string(ex.body))
	switch {
	case body == "":
		fmt.Fprintf(w, "            (empty body)\n")
	case len(body) > evidenceBody:
		fmt.Fprintf(w, "            body (first %d of %d bytes): %s\n", evidenceBody, len(body), printable(truncate(body, evidenceBody)))
	default:
		fmt.Fprintf(w, "            body: %s\n", printable(body))
	}
}

// redact replaces every known secret in s.
func (c *client) redact(s string) string {
	for _, secret := range c.secrets {
		s = strings.ReplaceAll(s, secret, redacted)
	}
	return s
}

// truncate cuts s to at most n bytes without splitting a UTF-8 sequence.
func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// printable keeps text readable on one terminal: newlines are indented, and a
// binary body is quoted.
func printable(s string) string {
	if !utf8.ValidString(s) || strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\n' && r != '\t' && r != '\r' }) {
		return fmt.Sprintf("%q", s)
	}
	s = strings.TrimRight(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	return strings.ReplaceAll(s, "\n", "\n            ")
}
