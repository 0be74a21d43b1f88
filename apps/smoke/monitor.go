package main

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
)

// The monitor's admin actions, driven as an administrator drives them: its HTML pages,
// its session cookie and its CSRF token, one variant pinned with x-version. The monitor
// then calls the backend itself (through the mesh, with its own identity); each action
// is checked on the backend's side too.

const monitorCookie = "monitor_session"

var (
	csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	flashText = regexp.MustCompile(`(?s)<p class="flash (\w+)"[^>]*>(.*?)</p>`)
)

// monitorSession is one administrator's session on one monitor variant.
type monitorSession struct {
	variant, cookie, csrf string
}

func (m *monitorSession) header() http.Header {
	h := http.Header{"x-version": {m.variant}}
	if m.cookie != "" {
		h.Set("Cookie", monitorCookie+"="+m.cookie)
	}
	return h
}

// update keeps the session cookie the monitor set, and the page's CSRF token.
func (s *smoke) update(m *monitorSession, ex *exchange) {
	for _, c := range (&http.Response{Header: ex.respHeader}).Cookies() {
		if c.Name == monitorCookie {
			m.cookie = c.Value
			s.c.keep(c.Value)
		}
	}
	if found := csrfField.FindSubmatch(ex.body); found != nil {
		m.csrf = html.UnescapeString(string(found[1]))
		s.c.keep(m.csrf)
	}
}

// page is GET /status/ in the session: the dashboard and its messages.
func (s *smoke) page(ctx context.Context, m *monitorSession) (*exchange, error) {
	ex := s.c.do(ctx, request{method: http.MethodGet, path: "/status/", header: m.header(), accept: "text/html"})
	if err := s.expect(ex, http.StatusOK, "monitor "+m.variant+" page"); err != nil {
		return ex, err
	}
	s.update(m, ex)
	return ex, nil
}

// post sends one of the dashboard's forms; the monitor answers 303 to the dashboard,
// whose messages say what came of it.
func (s *smoke) post(ctx context.Context, m *monitorSession, path string, form url.Values, what string) (string, *exchange, error) {
	form.Set("csrf_token", m.csrf)
	ex := s.c.do(ctx, request{method: http.MethodPost, path: path, form: form, header: m.header(), accept: "text/html"})
	if err := s.expect(ex, http.StatusSeeOther, "monitor "+m.variant+": "+what); err != nil {
		return "", ex, err
	}
	s.update(m, ex)
	after, err := s.page(ctx, m)
	if err != nil {
		return "", after, err
	}
	return flashes(after.body), after, nil
}

// flashes is the page's messages, "category: text; ...".
func flashes(body []byte) string {
	var out []string
	for _, m := range flashText.FindAllSubmatch(body, -1) {
		out = append(out, string(m[1])+": "+strings.TrimSpace(html.UnescapeString(string(m[2]))))
	}
	return strings.Join(out, "; ")
}

// monitorLogin logs the admin into the monitor pinned to `variant`.
func (s *smoke) monitorLogin(ctx context.Context, variant string) (*monitorSession, error) {
	m := &monitorSession{variant: variant}
	ex, err := s.page(ctx, m)
	if err != nil {
		return nil, err
	}
	if m.csrf == "" {
		return nil, fail(ex, "monitor %s: GET /status/ has no csrf_token field (no login form?)", variant)
	}
	form := url.Values{"username": {s.cfg.AdminUsername}, "password": {s.cfg.AdminPassword}}
	said, page, err := s.post(ctx, m, "/status/login", form, "admin login")
	if err != nil {
		return nil, err
	}
	if !strings.Contains(said, "Logged in as "+s.cfg.AdminUsername) {
		return nil, fail(page, "monitor %s: admin login did not succeed: %s", variant, orNone(said))
	}
	return m, nil
}

func (s *smoke) monitorUserPath(action string) string {
	return "/status/users/" + url.PathEscape(s.user) + "/" + action
}

// monitorResets sets a new password for the test user from the monitor's admin page,
// then logs in with it at the backend.
func (s *smoke) monitorResets(variant string) func(context.Context) error {
	return func(ctx context.Context) error {
		m, err := s.monitorLogin(ctx, variant)
		if err != nil {
			return err
		}
		password := randomHex(16)
		s.c.keep(password)
		said, page, err := s.post(ctx, m, s.monitorUserPath("password"), url.Values{"password": {password}}, "reset password")
		if err != nil {
			return err
		}
		if !strings.Contains(said, "Password of "+s.user+" reset.") {
			return fail(page, "monitor %s could not reset the password of %s: %s", variant, s.user, orNone(said))
		}
		if _, err := s.logIn(ctx, s.user, password, s.user+" (password set by monitor "+variant+")"); err != nil {
			return err
		}
		s.newPassword = password
		return nil
	}
}

// monitorDeletes deletes the test user from the monitor's admin page; the next check
// sees it gone at the backend.
func (s *smoke) monitorDeletes(variant string) func(context.Context) error {
	return func(ctx context.Context) error {
		m, err := s.monitorLogin(ctx, variant)
		if err != nil {
			return err
		}
		said, page, err := s.post(ctx, m, s.monitorUserPath("delete"), url.Values{}, "delete user")
		if err != nil {
			return err
		}
		if !strings.Contains(said, "Deleted user "+s.user+".") {
			return fail(page, "monitor %s could not delete %s: %s", variant, s.user, orNone(said))
		}
		s.deleted = true
		_, _, err = s.post(ctx, m, "/status/logout", url.Values{}, "log out")
		return err
	}
}
