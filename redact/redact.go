// Package redact hides the secrets that URLs and DSNs carry (a password in
// the userinfo, a token or password in the query) before they are printed,
// logged, used as a metric label or wrapped in an error. Every place that
// formats a configured URL or DSN goes through URL or Error, so there is one
// definition of what is secret.
package redact

import (
	"net/url"
	"regexp"
	"strings"
)

// Mask replaces every secret value.
const Mask = "xxxxx"

// secretParams are query parameters whose values are secrets, compared
// case-insensitively: what ClickHouse, Kafka and HTTP APIs commonly take.
var secretParams = []string{"password", "passwd", "pass", "pwd", "secret", "token", "key", "sig",
	"signature", "access_token", "api_key", "apikey", "auth", "credential", "credentials"}

func isSecretParam(k string) bool {
	k = strings.ToLower(k)
	for _, s := range secretParams {
		if k == s || strings.HasSuffix(k, "_"+s) || strings.HasSuffix(k, "-"+s) {
			return true
		}
	}
	return false
}

// URL returns raw with its password and secret query values replaced by
// Mask. It never fails: a string that does not parse as a URL has whatever
// looks like user:password@ and password=... masked instead.
func URL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Opaque != "" {
		return scrub(raw)
	}
	if u.User != nil {
		if _, ok := u.User.Password(); ok {
			u.User = url.UserPassword(u.User.Username(), Mask)
		}
	}
	if u.RawQuery != "" {
		q, err := url.ParseQuery(u.RawQuery)
		if err != nil {
			u.RawQuery = scrubQuery(u.RawQuery)
		} else {
			changed := false
			for k, vs := range q {
				if isSecretParam(k) {
					for i := range vs {
						vs[i] = Mask
					}
					changed = true
				}
			}
			if changed {
				u.RawQuery = q.Encode()
			}
		}
	}
	// Keep the mask readable rather than percent-encoded.
	return strings.ReplaceAll(u.String(), url.QueryEscape(Mask), Mask)
}

// userinfo is "scheme://user:password@" in text that is not a valid URL.
// The password runs to the last '@' of the authority, as net/url reads it
// ("//u:p@x@host" has the password "p@x"), so no part of it is left.
var userinfo = regexp.MustCompile(`(//[^/@:\s"]*):[^/?#"]*@`)

func scrub(s string) string {
	s = userinfo.ReplaceAllString(s, "${1}:"+Mask+"@")
	if i := strings.IndexByte(s, '?'); i >= 0 {
		s = s[:i+1] + scrubQuery(s[i+1:])
	}
	return s
}

func scrubQuery(q string) string {
	parts := strings.Split(q, "&")
	for i, p := range parts {
		if k, _, ok := strings.Cut(p, "="); ok && isSecretParam(k) {
			parts[i] = k + "=" + Mask
		}
	}
	return strings.Join(parts, "&")
}

// Error returns err with every occurrence of the URLs or DSNs raw (and of
// their passwords and secret query values) replaced by their redacted
// forms, keeping errors.Is/As working through the wrapper. It is for
// errors of libraries that quote the URL they were given (net/url,
// clickhouse-go, net/http).
func Error(err error, raw ...string) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	out := String(msg, raw...)
	if out != msg {
		// net/url quotes the bad escape, which may be part of a password.
		out = badEscape.ReplaceAllString(out, "invalid URL escape")
	}
	if out == msg {
		return err
	}
	return &redacted{msg: out, err: err}
}

// String returns s with every occurrence of the URLs or DSNs raw, and of
// the secrets inside them, replaced as in Error.
func String(s string, raw ...string) string {
	for _, r := range raw {
		if r == "" {
			continue
		}
		s = strings.ReplaceAll(s, r, URL(r))
		for _, sec := range Secrets(r) {
			s = strings.ReplaceAll(s, sec, Mask)
		}
	}
	return s
}

// Secrets returns the secret parts of the URL or DSN raw: its password
// (raw and percent-decoded) and secret query values. Values shorter than
// 3 bytes are left out: masking them would mangle unrelated text.
func Secrets(raw string) []string {
	var out []string
	add := func(v string) {
		if len(v) >= 3 {
			out = append(out, v)
		}
	}
	if u, err := url.Parse(raw); err == nil {
		if p, ok := u.User.Password(); ok {
			add(p)
			if esc := url.QueryEscape(p); esc != p {
				add(esc)
			}
		}
		if q, err := url.ParseQuery(u.RawQuery); err == nil {
			for k, vs := range q {
				if isSecretParam(k) {
					for _, v := range vs {
						add(v)
					}
				}
			}
		}
	} else if m := userinfo.FindStringSubmatchIndex(raw); m != nil {
		// "//user:" ends at m[3]; the password runs to the '@'.
		add(raw[m[3]+1 : m[1]-1])
	}
	return out
}

var badEscape = regexp.MustCompile(`invalid URL escape "[^"]*"`)

type redacted struct {
	msg string
	err error
}

func (e *redacted) Error() string { return e.msg }

// Unwrap keeps errors.Is and errors.As working on the original error; its
// text is not redacted, so callers print this error, not what it wraps.
func (e *redacted) Unwrap() error { return e.err }
