package redact

import (
	"errors"
	"fmt"
	"net/url"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestURL(t *testing.T) {
	for _, tc := range []struct{ name, in, want string }{
		{"a URL without secrets is unchanged", "http://am:9093/prefix", "http://am:9093/prefix"},
		{"a password in the userinfo is masked, the user kept", "https://bob:s3cret@am:9093/", "https://bob:xxxxx@am:9093/"},
		{"a user without password is kept", "https://bob@am:9093/", "https://bob@am:9093/"},
		{"a DSN password and a password parameter are masked", "clickhouse://u:hunter22@ch:9000/db?password=other&dial_timeout=1s",
			"clickhouse://u:xxxxx@ch:9000/db?dial_timeout=1s&password=xxxxx"},
		{"a token parameter is masked", "http://h/hook?access_token=abc123", "http://h/hook?access_token=xxxxx"},
		{"an unparsable URL still has its password masked", "http://bob:pa ss%zz@am:9093", "http://bob:xxxxx@am:9093"},
		{"an unparsable query still has its secrets masked", "clickhouse://u@ch:9000/db?password=%zz&x=1", "clickhouse://u@ch:9000/db?password=xxxxx&x=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.Equal(t, tc.want, URL(tc.in))
		})
	}
}

func TestErrorHidesTheURLAndItsSecrets(t *testing.T) {
	raw := "http://bob:pa ss%zzword@am:9093"
	_, perr := url.Parse(raw)
	require.Error(t, perr)
	err := Error(fmt.Errorf("alertmanager: urls[0]: %w", perr), raw)
	require.NotContains(t, err.Error(), "pa ss")
	require.NotContains(t, err.Error(), "%zz", "the bad escape, part of the password, is not quoted")
	require.Contains(t, err.Error(), "bob:xxxxx@am:9093")
	var ue *url.Error
	require.True(t, errors.As(err, &ue), "errors.As still reaches the url.Error")

	dsn := "clickhouse://u:hunter22@ch:9000/db"
	err = Error(fmt.Errorf("dial: password hunter22 refused for %s", dsn), dsn)
	require.Equal(t, "dial: password xxxxx refused for clickhouse://u:xxxxx@ch:9000/db", err.Error())

	plain := errors.New("nothing secret")
	require.Same(t, plain, Error(plain, dsn), "an error without secrets is returned as is")
	require.NoError(t, Error(nil, dsn))
}

func FuzzURL(f *testing.F) {
	f.Add("http://bob:s3cret@am:9093/?token=abc")
	f.Add("clickhouse://u:p%zz@h")
	f.Fuzz(func(t *testing.T, raw string) {
		// Whatever the input, the redacted form has no secret left but the mask.
		out := URL(raw)
		for _, s := range Secrets(out) {
			require.Equal(t, Mask, s, "%q redacted as %q still has secret %q", raw, out, s)
		}
	})
}
