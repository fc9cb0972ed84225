package stream

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Reload tuning.
const (
	// rulesPollInterval is how often the rules file is checked for changes.
	rulesPollInterval = 2 * time.Second
	// reloadTimeout bounds how long a reload waits for the workers to
	// prepare their new engines.
	reloadTimeout = time.Minute
)

// ErrReloadUnchanged is returned by Reload when the file did not change.
var ErrReloadUnchanged = errors.New("rules unchanged")

// Reload loads the rules file again (on SIGHUP and when the file changes).
// A file that does not parse, or an engine that cannot take it, is refused
// and the running rules stay. Otherwise every worker builds an engine with
// the new rules from a snapshot of its current one, and only when all of
// them succeeded do they all switch.
func (a *App) Reload() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	rf, err := rules.Load(a.cfg.Rules)
	if err == nil && rf.Hash == a.rules.Hash {
		a.m.reloads.WithLabelValues("unchanged").Inc()
		a.m.reloadOK.Set(1)
		return ErrReloadUnchanged
	}
	if err == nil {
		_, err = processor.New(processor.Config{Rules: rf})
	}
	if err == nil {
		err = a.swapRules(rf)
	}
	if err != nil {
		a.m.reloads.WithLabelValues("failure").Inc()
		a.m.reloadOK.Set(0)
		a.log.Error("rules reload refused; the running rules stay", "rules", a.cfg.Rules, "err", err)
		return err
	}
	a.rules = rf
	a.noteRules(rf)
	a.warnGroupLevel(rf)
	a.m.reloads.WithLabelValues("success").Inc()
	a.log.Info("rules reloaded", "rules", a.cfg.Rules, "hash", rf.Hash, "partitions", len(a.workers))
	return nil
}

// swapRules runs the two phases over the workers; a.mu is held.
func (a *App) swapRules(rf *rules.File) error {
	commit, abort := make(chan struct{}), make(chan struct{})
	type pending struct {
		w   *worker
		ack chan error
	}
	var ps []pending
	timeout := time.After(reloadTimeout)
	for w := range a.workers {
		p := pending{w: w, ack: make(chan error, 1)}
		select {
		case w.reload <- reloadReq{rules: rf, prepared: p.ack, commit: commit, abort: abort}:
			ps = append(ps, p)
		case <-w.done:
		case <-timeout:
			close(abort)
			return fmt.Errorf("partition %d did not take the reload in time", w.p)
		}
	}
	var errs []error
	for _, p := range ps {
		select {
		case err := <-p.ack:
			errs = append(errs, err)
		case <-p.w.done:
			// It stopped; whoever owns the partition next starts with the
			// new rules.
		case <-timeout:
			errs = append(errs, fmt.Errorf("partition %d did not prepare the reload in time", p.w.p))
		}
	}
	if err := errors.Join(errs...); err != nil {
		close(abort)
		return err
	}
	close(commit)
	return nil
}

// noteRules exports the running rules' identity.
func (a *App) noteRules(rf *rules.File) {
	a.m.reloadOK.Set(1)
	a.m.reloadTime.Set(float64(a.now().UnixNano()) / 1e9)
	if len(rf.Hash) >= 12 {
		if h, err := strconv.ParseUint(rf.Hash[:12], 16, 64); err == nil {
			a.m.rulesHash.Set(float64(h))
		}
	}
}

// watchRules reloads when the rules file's modification time or size
// changes.
func (a *App) watchRules(ctx context.Context) {
	stamp := func() string {
		st, err := os.Stat(a.cfg.Rules)
		if err != nil {
			return "missing"
		}
		return st.ModTime().String() + "/" + strconv.FormatInt(st.Size(), 10)
	}
	last := stamp()
	t := time.NewTicker(rulesPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if s := stamp(); s != last {
			last = s
			a.log.Info("rules file changed; reloading", "rules", a.cfg.Rules)
			_ = a.Reload()
		}
	}
}
