package alertmanager

import (
	"testing"

	"github.com/stretchr/testify/require"
)

// TestConfigErrorsRedactPasswords: whatever is wrong with a URL, the error
// names it without the password it carries.
func TestConfigErrorsRedactPasswords(t *testing.T) {
	for _, tc := range []struct{ name, url, want string }{
		{"an unparsable URL", "http://am:pass word%zz@am:9093", `urls[0]: parse "http://am:xxxxx@am:9093"`},
		{"a bad scheme", "ftp://am:hunter22@am:9093", `"ftp://am:xxxxx@am:9093": scheme must be http or https`},
		{"a secret query parameter", "ftp://am/?token=hunter22", `"ftp://am/?token=xxxxx"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := New(Config{URLs: []string{tc.url}}, nil, nil)
			require.ErrorContains(t, err, tc.want)
			require.NotContains(t, err.Error(), "hunter22")
			require.NotContains(t, err.Error(), "pass word")
		})
	}
}
