package main

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/internal/tlsclient"
	"github.com/crmpulse/crmpulse/sink/clickhouse"
	"github.com/crmpulse/crmpulse/sink/clickhouse/chtest"
	"github.com/crmpulse/crmpulse/stream"
)

// TestClickHouseTLS: the analytics sink, configured by the clickhouse.*
// keys, reaches a private real ClickHouse over its TLS port with a user and
// a password from a file and migrates its schema; a wrong password, a
// certificate from an untrusted CA, a certificate for another name and a
// plaintext client on the TLS port each fail at once with an error naming
// the server and the cause, the password never in it.
func TestClickHouseTLS(t *testing.T) {
	srv := chtest.StartTLS(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	db := "crmpulse_tls_" + time.Now().Format("150405")
	admin := chtest.Open(t, "clickhouse://"+srv.Plain+"/default")
	require.NoError(t, admin.Exec(ctx, "CREATE DATABASE "+db))

	pwFile := filepath.Join(t.TempDir(), "ch-password")
	require.NoError(t, os.WriteFile(pwFile, []byte(chtest.TLSPassword+"\n"), 0o600))
	base := stream.DefaultConfig().ClickHouse
	base.DSN = "clickhouse://" + srv.TLS + "/" + db
	base.Username = chtest.TLSUser
	base.PasswordFile = pwFile
	base.TLS = tlsclient.Config{CAFile: srv.Certs.CAFile}

	t.Run("TLS with a user and a password file works", func(t *testing.T) {
		an, err := openAnalytics(ctx, base, slog.New(slog.DiscardHandler), prometheus.NewRegistry())
		require.NoError(t, err)
		defer an.sink.Close()
		v, err := clickhouse.SchemaVersion(ctx, an.sink.Conn())
		require.NoError(t, err)
		require.Equal(t, clickhouse.LatestVersion(), v)
	})

	t.Run("insecure_skip_verify is warned about", func(t *testing.T) {
		cfg := base
		cfg.TLS = tlsclient.Config{InsecureSkipVerify: true}
		var logs bytes.Buffer
		an, err := openAnalytics(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
		require.NoError(t, err)
		defer an.sink.Close()
		require.Contains(t, logs.String(), "level=WARN")
		require.Contains(t, logs.String(), "clickhouse.tls.insecure_skip_verify is set")
	})

	for _, tc := range []struct {
		name   string
		edit   func(*stream.CHConfig)
		access bool // wraps clickhouse.ErrAccess: given up at once
		causes []string
	}{
		{"a wrong password is named as such", func(c *stream.CHConfig) { c.PasswordFile, c.Password = "", "not-the-password" },
			true, []string{"wrong user or password", `user "` + chtest.TLSUser + `"`}},
		{"an unknown user is named as such", func(c *stream.CHConfig) { c.Username = "nobody" },
			true, []string{"wrong user or password", `user "nobody"`}},
		{"a certificate from an untrusted CA is named as such", func(c *stream.CHConfig) { c.TLS.CAFile = srv.Certs.OtherCAFile },
			true, []string{"untrusted CA", "clickhouse.tls.ca_file"}},
		{"a certificate for another name is named as such", func(c *stream.CHConfig) { c.TLS.ServerName = "ch.example.com" },
			true, []string{"not valid for this host name", "clickhouse.tls.server_name"}},
		{"a plaintext client on the TLS port is told to use TLS", func(c *stream.CHConfig) { c.TLS = tlsclient.Config{} },
			false, []string{"a TLS port?", "clickhouse.tls.enabled"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := base
			tc.edit(&cfg)
			if !tc.access {
				// Not a refused login: start-up would wait for the server;
				// the Ping alone shows the message.
				tc2, err := cfg.TLS.Build()
				require.NoError(t, err)
				s, err := clickhouse.New(clickhouse.Config{DSN: cfg.DSN, Username: cfg.Username, Password: chtest.TLSPassword, TLS: tc2}, nil, nil)
				require.NoError(t, err)
				defer s.Close()
				err = s.Ping(ctx)
				require.Error(t, err)
				require.Contains(t, err.Error(), "clickhouse "+srv.TLS)
				for _, c := range tc.causes {
					require.Contains(t, err.Error(), c)
				}
				return
			}
			var logs bytes.Buffer
			_, err := openAnalytics(ctx, cfg, slog.New(slog.NewTextHandler(&logs, nil)), prometheus.NewRegistry())
			require.Error(t, err)
			require.ErrorIs(t, err, clickhouse.ErrAccess)
			require.NotContains(t, logs.String(), "waiting for ClickHouse", "a refused login is not retried")
			msg := err.Error()
			require.Contains(t, msg, "clickhouse "+srv.TLS)
			for _, c := range tc.causes {
				require.Contains(t, msg, c)
			}
			require.NotContains(t, msg, chtest.TLSPassword)
			require.NotContains(t, msg, "not-the-password")
		})
	}
}
