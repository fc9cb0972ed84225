package digests

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"mime"
	"mime/multipart"
	"net/textproto"
	"testing"

	"github.com/stretchr/testify/require"
	gomail "github.com/wneessen/go-mail"

	"github.com/crmpulse/crmpulse/record"
)

func smtpConfig() SMTPConfig {
	return SMTPConfig{Host: "127.0.0.1", Port: 2525, TLS: TLSNone, From: "CRM Pulse <pulse@example.com>"}
}

func TestNewEmailRefusesWhatCannotWork(t *testing.T) {
	tests := []struct {
		name string
		cfg  EmailConfig
		want string // "" = accepted
	}{
		{name: "defaults", cfg: EmailConfig{SMTP: smtpConfig()}},
		{name: "no host", cfg: EmailConfig{SMTP: SMTPConfig{From: "a@b.c"}}, want: "smtp.host: required"},
		{name: "no sender", cfg: EmailConfig{SMTP: SMTPConfig{Host: "h"}}, want: "smtp.from: required"},
		{name: "bad sender", cfg: EmailConfig{SMTP: SMTPConfig{Host: "h", From: "not an address"}}, want: "smtp.from"},
		{name: "bad tls mode", cfg: EmailConfig{SMTP: SMTPConfig{Host: "h", From: "a@b.c", TLS: "ssl"}}, want: `smtp.tls: "ssl"`},
		{name: "bad port", cfg: EmailConfig{SMTP: SMTPConfig{Host: "h", From: "a@b.c", Port: 70000}}, want: "smtp.port"},
		{name: "bad recipient template", cfg: EmailConfig{SMTP: smtpConfig(), To: "{{.Group"}, want: "email.to:"},
		{name: "bad per-digest template", cfg: EmailConfig{SMTP: smtpConfig(), ToByDigest: map[string]string{"monthly": "{{end}}"}}, want: "email.to_by_digest.monthly"},
		{name: "bad html template", cfg: EmailConfig{SMTP: smtpConfig(), HTML: "{{range}}"}, want: "email.html_template"},
		{name: "bad text template", cfg: EmailConfig{SMTP: smtpConfig(), Text: "{{if}}"}, want: "email.text_template"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewEmail(tt.cfg)
			if tt.want == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorContains(t, err, tt.want)
		})
	}
}

func TestDefaultPorts(t *testing.T) {
	for mode, port := range map[string]int{"": 587, TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25} {
		e, err := NewEmail(EmailConfig{SMTP: SMTPConfig{Host: "h", From: "a@b.c", TLS: mode}})
		require.NoError(t, err)
		require.Equal(t, port, e.smtp.Port, mode)
	}
}

// rendered writes m as the server would get it and returns its headers
// and its parts (quoted-printable decoded) by content type.
func rendered(t *testing.T, m *message) (textproto.MIMEHeader, map[string]string) {
	t.Helper()
	var b bytes.Buffer
	_, err := m.msg.WriteTo(&b)
	require.NoError(t, err)
	r := textproto.NewReader(bufio.NewReader(&b))
	headers, err := r.ReadMIMEHeader()
	require.NoError(t, err)
	_, params, err := mime.ParseMediaType(headers.Get("Content-Type"))
	require.NoError(t, err)
	parts := map[string]string{}
	mr := multipart.NewReader(r.R, params["boundary"])
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		require.NoError(t, err)
		body, err := io.ReadAll(p)
		require.NoError(t, err)
		ct, _, _ := mime.ParseMediaType(p.Header.Get("Content-Type"))
		parts[ct] = string(body)
	}
	return headers, parts
}

func TestRenderDefaults(t *testing.T) {
	e, err := NewEmail(EmailConfig{SMTP: smtpConfig()})
	require.NoError(t, err)
	dg, err := record.ParseDigest(digestRecord(t, "d1", "am1@example.com"))
	require.NoError(t, err)
	m, err := e.render(dg)
	require.NoError(t, err)
	require.Equal(t, []string{"<am1@example.com>"}, m.to)
	h, parts := rendered(t, m)
	require.Equal(t, "<d1@crmpulse>", h.Get("Message-Id"))
	require.Equal(t, "d1", h.Get("X-Crmpulse-Digest-Id"))
	require.Equal(t, "account_manager_daily — account_manager=am1@example.com tenant=acme — 2026-12-03", decodeHeader(t, h.Get("Subject")))
	require.Contains(t, h.Get("Content-Type"), "multipart/alternative")
	for _, want := range []string{
		"Fired (1)", "customer_churn customer_id=c1 tenant=acme since 2026-12-02 20:00, value 7776000",
		"Resolved (1)", "Still firing at the end of the period (0)",
		"revenue: 1234.5", "complaints: 0", "loyal: 3", "churned: 1", "digest d1",
	} {
		require.Contains(t, parts["text/plain"], want)
	}
	for _, want := range []string{
		"<h3>Fired (1)</h3>", "<td>customer_churn</td><td>customer_id=c1 tenant=acme</td><td>2026-12-02 20:00</td>",
		"<tr><td>revenue</td><td>1234.5</td></tr>", "<tr><td>loyal</td><td>3</td></tr>",
	} {
		require.Contains(t, parts["text/html"], want)
	}
	// The HTML part escapes upstream values.
	require.Contains(t, parts["text/html"], "<td>customer_id=&lt;c2&gt;</td>")
	require.Contains(t, parts["text/plain"], "customer_id=<c2>")
}

func TestRecipients(t *testing.T) {
	tests := []struct {
		name  string
		cfg   EmailConfig
		am    string
		to    []string
		error string
	}{
		{name: "the account manager", am: "am1@example.com", to: []string{"<am1@example.com>"}},
		{name: "no account manager", am: "unknown", error: `recipient "unknown" is not an email address`},
		{name: "a fixed list", cfg: EmailConfig{To: "a@example.com, b@example.com"}, am: "x", to: []string{"<a@example.com>", "<b@example.com>"}},
		{name: "per digest", cfg: EmailConfig{ToByDigest: map[string]string{"account_manager_daily": "director+{{.Group.tenant}}@example.com"}},
			am: "x", to: []string{"<director+acme@example.com>"}},
		{name: "other digests keep the default", cfg: EmailConfig{ToByDigest: map[string]string{"monthly": "director@example.com"}},
			am: "am2@example.com", to: []string{"<am2@example.com>"}},
		{name: "empty", cfg: EmailConfig{To: "{{.Group.nobody}}"}, am: "x", error: "no recipient"},
		{name: "endless template", cfg: EmailConfig{To: `{{range 100000000}}{{printf "%99d" 1}}{{end}}`}, am: "x", error: "exceeds"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.cfg.SMTP = smtpConfig()
			e, err := NewEmail(tt.cfg)
			require.NoError(t, err)
			dg, err := record.ParseDigest(digestRecord(t, "d1", tt.am))
			require.NoError(t, err)
			m, err := e.render(dg)
			if tt.error != "" {
				require.ErrorContains(t, err, tt.error)
				return
			}
			require.NoError(t, err)
			require.Equal(t, tt.to, m.to)
		})
	}
}

func TestClassify(t *testing.T) {
	require.Equal(t, outRetry, classify(errors.New("dial tcp: connection refused")), "not a send error: nothing left")
	tests := []struct {
		name string
		step gomail.SendErrReason
		code int
		want outcome
	}{
		{"lost answer after the data", gomail.ErrSMTPDataClose, 0, outAmbiguous},
		{"temporary refusal of the data", gomail.ErrSMTPDataClose, 451, outRetry},
		{"permanent refusal of the data", gomail.ErrSMTPDataClose, 554, outRefused},
		{"no such mailbox", gomail.ErrSMTPRcptTo, 550, outRefused},
		{"greylisted", gomail.ErrSMTPRcptTo, 450, outRetry},
		{"recipient step cut off", gomail.ErrSMTPRcptTo, 0, outRetry},
		{"sender refused (configuration)", gomail.ErrSMTPMailFrom, 530, outRetry},
		{"data refused before the content", gomail.ErrSMTPData, 554, outRetry},
		{"writing the content failed", gomail.ErrWriteContent, 0, outRetry},
		{"no recipients", gomail.ErrGetRcpts, 0, outRefused},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			require.Equal(t, tt.want, classifyReply(tt.step, tt.code))
		})
	}
}

func decodeHeader(t *testing.T, v string) string {
	t.Helper()
	s, err := new(mime.WordDecoder).DecodeHeader(v)
	require.NoError(t, err)
	return s
}
