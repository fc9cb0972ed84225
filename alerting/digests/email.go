package digests

import (
	"bytes"
	"context"
	"crypto/tls"
	_ "embed"
	"errors"
	"fmt"
	htmltemplate "html/template"
	"io"
	"maps"
	"net/mail"
	"slices"
	"strconv"
	"strings"
	"text/template"
	"time"

	gomail "github.com/wneessen/go-mail"

	"github.com/crmpulse/crmpulse/record"
)

// The built-in bodies; EmailConfig.HTML and .Text replace them.
var (
	//go:embed templates/digest.html.tmpl
	DefaultHTML string
	//go:embed templates/digest.txt.tmpl
	DefaultText string
)

// Defaults of EmailConfig.
const (
	DefaultTo          = "{{.Group.account_manager}}"
	DefaultSubject     = "{{.Digest}} — {{groupText .Group}} — {{.PeriodEnd.UTC.Format \"2006-01-02\"}}"
	DefaultSMTPTimeout = 30 * time.Second
	// maxRendered bounds what one template may write: a template that
	// loops without end fails the digest instead of filling memory.
	maxRendered = 4 << 20
)

// TLS modes of SMTPConfig.
const (
	TLSStartTLS = "starttls" // STARTTLS, required (port 587)
	TLSImplicit = "tls"      // TLS from the first byte (port 465)
	TLSNone     = "none"     // plain SMTP: a relay on localhost, or tests
)

// SMTPConfig is the mail server digests are handed to.
type SMTPConfig struct {
	Host     string
	Port     int // default 587, 465 with TLS "tls", 25 with "none"
	Username string
	Password string
	// TLS is starttls (the default), tls or none.
	TLS string
	// TLSConfig checks the server's certificate (CA, server name); nil:
	// the system roots and Host.
	TLSConfig *tls.Config
	// From is the sender address, e.g. "CRM Pulse <pulse@example.com>".
	From    string
	Timeout time.Duration // one SMTP conversation; default 30s
}

// EmailConfig says how a digest becomes an email. To, ToByDigest and
// Subject are text/template templates, HTML an html/template template and
// Text a text/template template, each executed on the *record.Digest
// (fields DigestID, Digest, Group, PeriodStart, PeriodEnd, Fired, Resolved,
// Open, Metrics, Segments) with the functions groupText, labelsText,
// number, sortedKeys and sortedCounts.
type EmailConfig struct {
	SMTP SMTPConfig
	// To gives the recipients, comma-separated; default the group's
	// account_manager. ToByDigest overrides it for the digests it names.
	To         string
	ToByDigest map[string]string
	Subject    string
	HTML, Text string // default DefaultHTML, DefaultText
}

// Email renders digests and hands them to an SMTP server.
type Email struct {
	smtp       SMTPConfig
	to         *template.Template
	toByDigest map[string]*template.Template
	subject    *template.Template
	html       *htmltemplate.Template
	text       *template.Template
}

var funcs = map[string]any{
	// groupText is a group's values as k=v, sorted by label name.
	"groupText":  func(m map[string]string) string { return labelsText(m) },
	"labelsText": labelsText,
	// number writes a value as the records do: no exponent, no trailing
	// zeros.
	"number":       func(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) },
	"sortedKeys":   func(m map[string]float64) []string { return slices.Sorted(maps.Keys(m)) },
	"sortedCounts": func(m map[string]int) []string { return slices.Sorted(maps.Keys(m)) },
}

func labelsText(m map[string]string) string {
	var b strings.Builder
	for i, k := range slices.Sorted(maps.Keys(m)) {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k + "=" + m[k])
	}
	return b.String()
}

// NewEmail checks cfg and parses its templates, naming the one at fault.
func NewEmail(cfg EmailConfig) (*Email, error) {
	s := cfg.SMTP
	var errs []error
	if s.Host == "" {
		errs = append(errs, errors.New("smtp.host: required"))
	}
	switch s.TLS {
	case "":
		s.TLS = TLSStartTLS
	case TLSStartTLS, TLSImplicit, TLSNone:
	default:
		errs = append(errs, fmt.Errorf("smtp.tls: %q: want starttls, tls or none", s.TLS))
	}
	if s.Port == 0 {
		s.Port = map[string]int{TLSStartTLS: 587, TLSImplicit: 465, TLSNone: 25}[s.TLS]
	}
	if s.Port < 0 || s.Port > 65535 {
		errs = append(errs, fmt.Errorf("smtp.port: %d: not a port", s.Port))
	}
	if s.From == "" {
		errs = append(errs, errors.New("smtp.from: required"))
	} else if _, err := mail.ParseAddress(s.From); err != nil {
		errs = append(errs, fmt.Errorf("smtp.from: %q: %w", s.From, err))
	}
	if s.Timeout == 0 {
		s.Timeout = DefaultSMTPTimeout
	}
	e := &Email{smtp: s, toByDigest: map[string]*template.Template{}}
	parse := func(name, text, def string) *template.Template {
		if text == "" {
			text = def
		}
		t, err := template.New(name).Funcs(funcs).Option("missingkey=zero").Parse(text)
		if err != nil {
			errs = append(errs, fmt.Errorf("email.%s: %w", name, err))
		}
		return t
	}
	e.to = parse("to", cfg.To, DefaultTo)
	for _, d := range slices.Sorted(maps.Keys(cfg.ToByDigest)) {
		e.toByDigest[d] = parse("to_by_digest."+d, cfg.ToByDigest[d], DefaultTo)
	}
	e.subject = parse("subject", cfg.Subject, DefaultSubject)
	e.text = parse("text_template", cfg.Text, DefaultText)
	html := cfg.HTML
	if html == "" {
		html = DefaultHTML
	}
	var err error
	if e.html, err = htmltemplate.New("html_template").Funcs(funcs).Option("missingkey=zero").Parse(html); err != nil {
		errs = append(errs, fmt.Errorf("email.html_template: %w", err))
	}
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("digest email: %w", err)
	}
	return e, nil
}

// limited fails a write past maxRendered.
type limited struct{ bytes.Buffer }

var errTooLarge = fmt.Errorf("output exceeds %d bytes", maxRendered)

func (l *limited) Write(p []byte) (int, error) {
	if l.Len()+len(p) > maxRendered {
		return 0, errTooLarge
	}
	return l.Buffer.Write(p)
}

type executor interface {
	Execute(io.Writer, any) error
}

func render(t executor, d *record.Digest) (string, error) {
	var b limited
	if err := t.Execute(&b, d); err != nil {
		return "", err
	}
	return b.String(), nil
}

// message is one rendered digest email.
type message struct {
	to  []string
	msg *gomail.Msg
}

// render builds d's email. Its error is final: the same digest and
// templates always fail the same way.
func (e *Email) render(d *record.Digest) (*message, error) {
	tt := e.to
	if t, ok := e.toByDigest[d.Digest]; ok {
		tt = t
	}
	toText, err := render(tt, d)
	if err != nil {
		return nil, fmt.Errorf("recipient template: %w", err)
	}
	var to []string
	for _, a := range strings.Split(toText, ",") {
		a = strings.TrimSpace(a)
		if a == "" {
			continue
		}
		addr, err := mail.ParseAddress(a)
		if err != nil {
			return nil, fmt.Errorf("recipient %q is not an email address (the group's value is %q when the field is absent)", a, "unknown")
		}
		to = append(to, addr.String())
	}
	if len(to) == 0 {
		return nil, fmt.Errorf("no recipient: the recipient template gave %q", toText)
	}
	subject, err := render(e.subject, d)
	if err != nil {
		return nil, fmt.Errorf("subject template: %w", err)
	}
	text, err := render(e.text, d)
	if err != nil {
		return nil, fmt.Errorf("text template: %w", err)
	}
	html, err := render(e.html, d)
	if err != nil {
		return nil, fmt.Errorf("html template: %w", err)
	}
	m := gomail.NewMsg(gomail.WithNoDefaultUserAgent())
	if err := m.From(e.smtp.From); err != nil {
		return nil, fmt.Errorf("from %q: %w", e.smtp.From, err)
	}
	if err := m.To(to...); err != nil {
		return nil, fmt.Errorf("recipients %v: %w", to, err)
	}
	m.Subject(strings.TrimSpace(strings.ReplaceAll(subject, "\n", " ")))
	// The Message-ID is the digest's: a mail system that sees it twice
	// can tell it is one digest.
	m.SetMessageIDWithValue(d.DigestID + "@crmpulse")
	m.SetGenHeader("X-CRMPulse-Digest-Id", d.DigestID)
	m.SetGenHeader("X-CRMPulse-Digest", d.Digest)
	m.SetDateWithValue(time.Now())
	m.SetBodyString(gomail.TypeTextPlain, text)
	m.AddAlternativeString(gomail.TypeTextHTML, html)
	return &message{to: to, msg: m}, nil
}

// outcome of one attempt to send.
type outcome int

const (
	outSent      outcome = iota
	outRetry             // not delivered; try again later
	outRefused           // not delivered, and never will be
	outAmbiguous         // the server may have it: do not send again
)

// send makes one attempt: it connects, calls before (which records that
// the message is about to leave) and sends.
func (e *Email) send(ctx context.Context, m *message, before func() error) (outcome, error) {
	opts := []gomail.Option{gomail.WithPort(e.smtp.Port), gomail.WithTimeout(e.smtp.Timeout)}
	switch e.smtp.TLS {
	case TLSNone:
		opts = append(opts, gomail.WithTLSPolicy(gomail.NoTLS))
	case TLSImplicit:
		opts = append(opts, gomail.WithSSL())
	default:
		opts = append(opts, gomail.WithTLSPolicy(gomail.TLSMandatory))
	}
	if e.smtp.TLSConfig != nil {
		opts = append(opts, gomail.WithTLSConfig(e.smtp.TLSConfig))
	}
	if e.smtp.Username != "" {
		opts = append(opts, gomail.WithSMTPAuth(gomail.SMTPAuthAutoDiscover),
			gomail.WithUsername(e.smtp.Username), gomail.WithPassword(e.smtp.Password))
	}
	c, err := gomail.NewClient(e.smtp.Host, opts...)
	if err != nil {
		return outRefused, fmt.Errorf("smtp client for %s: %w", e.addr(), err)
	}
	if err := c.DialWithContext(ctx); err != nil {
		return outRetry, fmt.Errorf("connecting to smtp %s: %w", e.addr(), err)
	}
	defer c.Close()
	if err := before(); err != nil {
		return outRetry, err
	}
	err = c.Send(m.msg)
	if err == nil || m.msg.IsDelivered() {
		return outSent, nil
	}
	return classify(err), fmt.Errorf("sending to %v through smtp %s: %w", m.to, e.addr(), err)
}

func (e *Email) addr() string { return e.smtp.Host + ":" + strconv.Itoa(e.smtp.Port) }

// classify says what a failed send means for the digest. Only a failure
// after the message's final dot without a reply is ambiguous: the server
// may have queued it.
func classify(err error) outcome {
	var se *gomail.SendError
	if !errors.As(err, &se) {
		return outRetry
	}
	return classifyReply(se.Reason, se.ErrorCode())
}

// classifyReply decides on a failed step of the SMTP conversation and the
// server's reply code (0: none, the connection failed).
func classifyReply(step gomail.SendErrReason, code int) outcome {
	temp := code >= 400 && code < 500
	switch step {
	case gomail.ErrSMTPDataClose:
		if code == 0 {
			return outAmbiguous
		}
		if temp {
			return outRetry
		}
		return outRefused
	case gomail.ErrSMTPRcptTo:
		// A permanent refusal of a recipient (no such mailbox) will not
		// change; anything else (greylisting, a full queue) may.
		if code >= 500 {
			return outRefused
		}
		return outRetry
	case gomail.ErrGetSender, gomail.ErrGetRcpts, gomail.ErrNoUnencoded:
		return outRefused
	default:
		return outRetry
	}
}
