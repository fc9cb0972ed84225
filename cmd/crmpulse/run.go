package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"

	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/alerting/delivery"
	"github.com/crmpulse/crmpulse/alerting/followup"
	"github.com/crmpulse/crmpulse/backtest"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/stream"
)

const runUsage = `Usage: crmpulse run [--config FILE] [flags]

Runs the detection engine on Kafka: one engine per partition of the input
topics, alerts and resend triggers to their topics, dead letters to
<topic>.dlq, state snapshots to a compacted topic. Settings come from the
YAML file, then CRMPULSE_* environment variables, then flags. SIGHUP (or a
change of the rules file) reloads the rules. See docs/run.md.

Flags:
`

func cmdRun(ctx context.Context, args []string) int {
	fs := flag.NewFlagSet("run", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	configPath := fs.String("config", "", "YAML configuration file (keys below)")
	logLevel := fs.String("log-level", "info", "debug, info, warn or error")
	fv := stream.BindFlags(fs)
	usage := func(w io.Writer) {
		fmt.Fprint(w, runUsage)
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(io.Discard)
		fmt.Fprintln(w)
		stream.Usage(w)
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			usage(os.Stdout)
			return exitOK
		}
		fmt.Fprintf(os.Stderr, "crmpulse run: %v\n\n", err)
		usage(os.Stderr)
		return exitUsage
	}
	cfg, err := stream.LoadConfig(*configPath, os.Getenv)
	if err == nil {
		err = fv.Apply(&cfg)
	}
	if err == nil {
		err = cfg.ReadSecretFiles()
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse run: %v\n", err)
		return exitUsage
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(strings.ToUpper(*logLevel))); err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse run: --log-level: %v\n", err)
		return exitUsage
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	if flags := fv.SecretFlags(); len(flags) > 0 {
		logger.Warn("secrets given as flags are visible to every user of this machine (ps, /proc); "+
			"use the CRMPULSE_* environment, the config file or the *_file keys", "flags", flags)
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("crmpulse"))
	dcfg := delivery.Config{
		AlertmanagerURLs: cfg.Alertmanager.URLs, ResendDelay: cfg.Alertmanager.ResendDelay.D(),
		AlertWebhook: cfg.Webhooks.Alerts, ResendWebhook: cfg.Webhooks.Resends,
		WebhookSecret: cfg.Webhooks.Secret, DeadLetterFile: cfg.Webhooks.DeadLetterFile,
		AlertmanagerClient: cfg.Alertmanager.HTTP(), WebhookClient: cfg.Webhooks.HTTP(),
	}
	var notifiers *delivery.Sink
	if dcfg.Enabled() {
		if notifiers, err = delivery.New(dcfg, logger, reg); err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse run: %v\n", err)
			return exitUsage
		}
		cfg.Sinks = append(cfg.Sinks, notifiers)
	}
	var an *analytics
	// forced: the stop overran; nothing more may wait on a stuck part.
	forced := false
	if cfg.ClickHouse.DSN != "" {
		if an, err = openAnalytics(ctx, cfg.ClickHouse, logger, reg); err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse run: %v\n", err)
			if errors.Is(err, errConfig) {
				return exitUsage
			}
			return exitFailure
		}
		defer func() {
			if !forced {
				an.sink.Close()
			}
		}()
		cfg.Sinks = append(cfg.Sinks, an.sink)
		// POST /api/v1/backtest reads the raw events through the sink's
		// connection (docs/api.md).
		if cfg.Backtest, err = backtest.New(backtest.Config{
			Source: backtest.NewClickHouse(an.sink.Conn()), Limits: cfg.API.BacktestLimits(),
		}); err != nil {
			fmt.Fprintf(os.Stderr, "crmpulse run: %v\n", err)
			return exitUsage
		}
	}
	// Every partition's engine follows its resend triggers to the resent
	// attempts' receipts (outcomes are metrics, and rows for the sinks),
	// and with ClickHouse computes the aggregates of its partition.
	cfg.Components = func(p int) []processor.Component {
		tr, err := followup.New(followup.Config{}, reg)
		if err != nil {
			panic(err) // only a metrics registration clash, fixed at build time
		}
		cs := []processor.Component{followup.NewComponent(tr)}
		if an != nil {
			more, err := an.components(p)
			if err != nil {
				panic(err) // the config was validated when the sink was opened
			}
			cs = append(cs, more...)
		}
		return cs
	}
	app, err := stream.New(cfg, logger, reg)
	if err != nil {
		fmt.Fprintf(os.Stderr, "crmpulse run: %v\n", err)
		return exitUsage
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	defer signal.Stop(hup)
	go func() {
		for range hup {
			_ = app.Reload() // refused files are logged and counted by the app
		}
	}()
	g, gctx := errgroup.WithContext(ctx)
	// The sinks outlive the app by a moment so its last checkpoint can
	// still flush them; they stop when the app has returned.
	sctx, stopSinks := context.WithCancel(context.WithoutCancel(ctx))
	if notifiers != nil {
		g.Go(func() error { return notifiers.Run(sctx) })
	}
	if an != nil {
		g.Go(func() error { return an.sink.Run(sctx) })
	}
	g.Go(func() error { defer stopSinks(); return app.Run(gctx) })
	done := make(chan error, 1)
	go func() { done <- g.Wait() }()
	select {
	case err = <-done:
	case <-gctx.Done():
		// The app bounds its own stop by shutdown_timeout (and then
		// returns, naming what did not stop); the sinks get a moment more
		// to flush what its last checkpoints handed them.
		t := time.NewTimer(cfg.ShutdownTimeout.D() + sinkStopGrace)
		defer t.Stop()
		// A second signal does not wait for the stop.
		again := make(chan os.Signal, 1)
		signal.Notify(again, os.Interrupt, syscall.SIGTERM)
		defer signal.Stop(again)
		select {
		case err = <-done:
		case <-t.C:
			forced = true
			err = fmt.Errorf("the outputs did not stop within shutdown_timeout %s + %s: %w",
				cfg.ShutdownTimeout, sinkStopGrace, stream.ErrShutdownTimeout)
		case s := <-again:
			forced = true
			err = fmt.Errorf("%s again while stopping; not waiting for the final checkpoints: %w", s, stream.ErrShutdownTimeout)
		}
	}
	if err != nil {
		if errors.Is(err, stream.ErrShutdownTimeout) {
			forced = true
		}
		logger.Error("crmpulse run failed", "err", err)
		return exitFailure
	}
	return exitOK
}

// sinkStopGrace is how long the notifiers and the ClickHouse sink may take
// to stop after the pipeline did (or gave up at shutdown_timeout).
const sinkStopGrace = 5 * time.Second
