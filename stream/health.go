package stream

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/crmpulse/crmpulse/processor"
)

// progress is what a partition worker tells the watchdog about itself. The
// worker writes it (a few atomic stores per loop pass and one add per
// record); the watchdog reads it from its own goroutine. A worker stuck in
// a rule cannot report anything, so the watchdog judges from what stops
// changing.
type progress struct {
	part string
	// records counts records through the engine; passes counts loop passes
	// (each return to the wait for input, a tick or a batch).
	records atomic.Int64
	passes  atomic.Int64
	// parked: the worker is waiting for input, a tick or a control message.
	parked atomic.Bool
	// pending: when it last parked, the worker had input waiting (records
	// at hand or a lag above zero).
	pending atomic.Bool
	// phase is what the worker was doing when it last woke up (a phase*
	// constant), and eng the engine it runs, whose Busy names the rule.
	phase atomic.Int32
	eng   atomic.Pointer[processor.Engine]

	// Watchdog-owned.
	watch watchState
}

// The worker's phases, as the watchdog reports them.
const (
	phaseRecords = iota
	phaseTick
	phaseReload
	phaseCheckpoint
)

var phaseNames = [...]string{
	phaseRecords:    "processing records or writing their outputs",
	phaseTick:       "advancing the watermark, writing outputs or starting a checkpoint",
	phaseReload:     "preparing a rules reload",
	phaseCheckpoint: "handling a finished checkpoint",
}

// awake notes that the worker left its wait to do phase with eng.
func (p *progress) awake(phase int32, eng *processor.Engine) {
	p.phase.Store(phase)
	if p.eng.Load() != eng {
		p.eng.Store(eng)
	}
	p.parked.Store(false)
}

// park notes that the worker is about to wait, with input pending or not.
func (p *progress) park(pending bool) {
	p.passes.Add(1)
	if p.pending.Load() != pending {
		p.pending.Store(pending)
	}
	p.parked.Store(true)
}

// observation is one look of the watchdog at a worker.
type observation struct {
	records, passes int64
	parked, pending bool
}

// watchState is what the watchdog remembers of a worker between looks.
type watchState struct {
	seen bool
	last observation
	// busySince: the worker has been in the same step since then (it did
	// not park and neither counter moved). waitingSince: input has been
	// waiting since then without a record going through.
	busySince, waitingSince time.Time
	warned, stalled         bool
}

// judge folds in one observation at now and returns how long the worker
// has been busy on one step and how long it has made no progress while it
// had work: input waiting, or a step that does not end. A worker that
// parked with nothing pending (caught up) is making all the progress there
// is.
func (s *watchState) judge(o observation, now time.Time) (busy, stalled time.Duration) {
	if !s.seen {
		s.seen, s.last, s.busySince, s.waitingSince = true, o, now, now
		return 0, 0
	}
	moved := o.records != s.last.records || o.passes != s.last.passes
	if o.parked || moved {
		s.busySince = now
	}
	if o.records != s.last.records || (o.parked && !o.pending) {
		s.waitingSince = now
	}
	s.last = o
	busy = now.Sub(s.busySince)
	stalled = busy
	if o.pending {
		stalled = max(stalled, now.Sub(s.waitingSince))
	}
	return busy, stalled
}

// health is the set of running partition workers the watchdog looks at,
// and the stages that must stop before the process can (for a shutdown
// that does not end in time).
type health struct {
	mu      sync.Mutex
	workers map[*progress]struct{}
	running map[string]int
	// verdict is the last look's answer for /healthz: "" when healthy.
	verdict atomic.Pointer[string]
}

func newHealth() *health {
	return &health{workers: map[*progress]struct{}{}, running: map[string]int{}}
}

func (h *health) add(p *progress) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.workers[p] = struct{}{}
}

// started and stopped track the partition workers and the group stage
// between their start and their return, for the shutdown report.
func (h *health) started(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.running[name]++
}

func (h *health) stopped(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.running[name]--; h.running[name] <= 0 {
		delete(h.running, name)
	}
}

// stillRunning names what has not returned yet, in order.
func (h *health) stillRunning() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var names []string
	for n := range h.running {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// unhealthy is why /healthz fails, or "" when it does not.
func (h *health) unhealthy() string {
	if v := h.verdict.Load(); v != nil {
		return *v
	}
	return ""
}

// watchEvery is how often the watchdog looks at the workers.
func (a *App) watchEvery() time.Duration {
	hc := a.cfg.Health
	return min(max(min(hc.SlowStep.D(), hc.StallTimeout.D())/4, 10*time.Millisecond), time.Second)
}

// watchHealth looks at every partition worker until ctx ends: it keeps the
// busy and stalled gauges, logs a step that takes longer than
// health.slow_step once (with the rule it is in), and fails /healthz while
// a partition has made no progress for health.stall_timeout with work to do.
func (a *App) watchHealth(ctx context.Context) {
	t := time.NewTicker(a.watchEvery())
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.lookAtWorkers(time.Now())
	}
}

func (a *App) lookAtWorkers(now time.Time) {
	h := a.health
	// Held throughout, so that forget cannot drop a gauge this look then
	// sets again.
	h.mu.Lock()
	defer h.mu.Unlock()
	ps := make([]*progress, 0, len(h.workers))
	for p := range h.workers {
		ps = append(ps, p)
	}
	slices.SortFunc(ps, func(x, y *progress) int { return strings.Compare(x.part, y.part) })
	var bad []string
	for _, p := range ps {
		busy, stalled := p.watch.judge(observation{
			records: p.records.Load(), passes: p.passes.Load(), parked: p.parked.Load(), pending: p.pending.Load(),
		}, now)
		a.m.partBusy.WithLabelValues(p.part).Set(busy.Seconds())
		where := p.where()
		if busy >= a.cfg.Health.SlowStep.D() && !p.watch.warned {
			p.watch.warned = true
			a.m.slowSteps.Inc()
			a.log.Warn("partition busy on one step", "partition", p.part, "busy", busy.Round(time.Millisecond), "step", where)
		} else if busy == 0 && p.watch.warned {
			p.watch.warned = false
			a.log.Info("partition making progress again", "partition", p.part)
		}
		isStalled := stalled >= a.cfg.Health.StallTimeout.D()
		if isStalled != p.watch.stalled {
			p.watch.stalled = isStalled
			if isStalled {
				a.log.Error("partition stalled: no progress with work to do; /healthz fails", "partition", p.part,
					"for", stalled.Round(time.Millisecond), "step", where)
			}
		}
		a.m.partStalled.WithLabelValues(p.part).Set(b2f(isStalled))
		if isStalled {
			bad = append(bad, fmt.Sprintf("partition %s: no progress for %s with work to do (stall_timeout %s); %s",
				p.part, stalled.Round(time.Second), a.cfg.Health.StallTimeout, where))
		}
	}
	var v *string
	if len(bad) > 0 {
		s := "unhealthy: " + strings.Join(bad, "\n")
		v = &s
	}
	h.verdict.Store(v)
}

// where says what a worker is doing, from the engine's Busy when it is in
// a rule.
func (p *progress) where() string {
	if p.parked.Load() {
		if p.pending.Load() {
			return "waiting for its input to arrive"
		}
		return "waiting for input"
	}
	if e := p.eng.Load(); e != nil {
		if comp, call, ok := e.Busy(); ok {
			return fmt.Sprintf("in %q (%s)", comp, call)
		}
	}
	ph := p.phase.Load()
	if ph < 0 || int(ph) >= len(phaseNames) {
		return "busy"
	}
	return phaseNames[ph]
}

// forget drops a stopped worker's gauges, so a partition that moved to
// another instance is not reported here.
func (a *App) forget(p *progress) {
	h := a.health
	h.mu.Lock()
	defer h.mu.Unlock()
	delete(h.workers, p)
	a.m.partBusy.DeleteLabelValues(p.part)
	a.m.partStalled.DeleteLabelValues(p.part)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
