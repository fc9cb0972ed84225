// Package mailpittest reads the real SMTP server of the tests (Mailpit):
// the shared one deploy/local starts, or a private instance a test stops
// and starts to play an outage.
package mailpittest

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/crmpulse/crmpulse/internal/testenv"
)

// Server is one Mailpit.
type Server struct {
	SMTP string // host:port
	API  string // http://host:port

	t      testing.TB
	bin    string
	dir    string
	cmd    *exec.Cmd
	exited chan struct{}
}

// Shared is the Mailpit make test starts (deploy/local/mailpit.sh).
func Shared(t testing.TB) *Server {
	t.Helper()
	smtp := testenv.Env(t, "CRMPULSE_MAILPIT_SMTP", `the real SMTP server that make test starts (deploy/local/mailpit.sh start; eval "$(deploy/local/mailpit.sh env)")`)
	api := testenv.Env(t, "CRMPULSE_MAILPIT_API", `Mailpit's HTTP API (deploy/local/mailpit.sh start; eval "$(deploy/local/mailpit.sh env)")`)
	return &Server{SMTP: smtp, API: strings.TrimRight(api, "/"), t: t}
}

// Private starts a Mailpit of the test's own on free ports, stopped at
// the end of the test. Stop and Start play an outage on the same ports.
func Private(t testing.TB) *Server {
	t.Helper()
	bin := testenv.Env(t, "CRMPULSE_MAILPIT_BIN", `the Mailpit binary deploy/local/mailpit.sh installs (eval "$(deploy/local/mailpit.sh env)")`)
	ports := testenv.FreePorts(t, 2)
	s := &Server{SMTP: "127.0.0.1:" + ports[0], API: "http://127.0.0.1:" + ports[1], t: t, bin: bin, dir: t.TempDir()}
	s.Start()
	t.Cleanup(func() {
		if s.cmd != nil {
			s.Stop()
		}
	})
	return s
}

// Start starts the private instance and waits until it answers.
func (s *Server) Start() {
	s.t.Helper()
	if s.bin == "" {
		s.t.Fatal("mailpittest: Start on the shared Mailpit")
	}
	// Its database lives in the test's directory, so messages survive a
	// Stop and Start as on a real server.
	s.cmd = exec.Command(s.bin, "--database="+s.dir+"/mailpit.db", "--smtp="+s.SMTP, "--listen="+strings.TrimPrefix(s.API, "http://"),
		"--smtp-auth-accept-any", "--smtp-auth-allow-insecure", "--smtp-disable-rdns", "--disable-version-check", "--quiet")
	var out bytes.Buffer
	s.cmd.Stdout, s.cmd.Stderr = &out, &out
	if err := s.cmd.Start(); err != nil {
		s.t.Fatalf("starting mailpit: %v", err)
	}
	s.exited = make(chan struct{})
	go func(cmd *exec.Cmd, exited chan struct{}) { cmd.Wait(); close(exited) }(s.cmd, s.exited)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(s.API + "/readyz")
		if err == nil {
			resp.Body.Close()
			if c, err := net.DialTimeout("tcp", s.SMTP, time.Second); err == nil {
				c.Close()
				return
			}
		}
		select {
		case <-s.exited:
			s.t.Fatalf("mailpit exited at start: %s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("mailpit did not answer within 30s: %s", out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the private instance and waits until its SMTP port is shut.
func (s *Server) Stop() {
	s.t.Helper()
	s.cmd.Process.Kill()
	<-s.exited
	s.cmd = nil
}

// Message is one mail as Mailpit stored it.
type Message struct {
	ID        string
	MessageID string
	Subject   string
	To        []string
	Text      string
	HTML      string
	Headers   map[string][]string
}

func (s *Server) do(method, path string, body io.Reader, into any) error {
	req, err := http.NewRequest(method, s.API+path, body)
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return fmt.Errorf("%s %s: reading the answer: %w", method, path, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, b)
	}
	if into == nil {
		return nil
	}
	if err := json.Unmarshal(b, into); err != nil {
		return fmt.Errorf("%s %s: decoding %q: %w", method, path, b, err)
	}
	return nil
}

// To returns every message addressed to addr, each read whole.
func (s *Server) To(addr string) ([]Message, error) { return s.Search(fmt.Sprintf("to:%q", addr)) }

// Search returns the messages Mailpit's search finds for query (words
// match subjects and bodies; to:addr a recipient), each read whole.
func (s *Server) Search(query string) ([]Message, error) {
	return s.list("/api/v1/search?limit=1000&query=" + url.QueryEscape(query))
}

// All returns every message the server holds, each read whole.
func (s *Server) All() ([]Message, error) { return s.list("/api/v1/messages?limit=1000") }

func (s *Server) list(path string) ([]Message, error) {
	var list struct {
		Messages []struct {
			ID string `json:"ID"`
		} `json:"messages"`
	}
	if err := s.do(http.MethodGet, path, nil, &list); err != nil {
		return nil, err
	}
	var out []Message
	for _, x := range list.Messages {
		var m struct {
			ID        string `json:"ID"`
			MessageID string `json:"MessageID"`
			Subject   string `json:"Subject"`
			To        []struct {
				Address string `json:"Address"`
			} `json:"To"`
			Text string `json:"Text"`
			HTML string `json:"HTML"`
		}
		if err := s.do(http.MethodGet, "/api/v1/message/"+url.PathEscape(x.ID), nil, &m); err != nil {
			return nil, err
		}
		msg := Message{ID: m.ID, MessageID: m.MessageID, Subject: m.Subject, Text: m.Text, HTML: m.HTML}
		for _, a := range m.To {
			msg.To = append(msg.To, a.Address)
		}
		if err := s.do(http.MethodGet, "/api/v1/message/"+url.PathEscape(x.ID)+"/headers", nil, &msg.Headers); err != nil {
			return nil, err
		}
		out = append(out, msg)
	}
	return out, nil
}

// Delete removes the messages with these IDs.
func (s *Server) Delete(ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	body, err := json.Marshal(map[string][]string{"IDs": ids})
	if err != nil {
		return err
	}
	return s.do(http.MethodDelete, "/api/v1/messages", bytes.NewReader(body), nil)
}
