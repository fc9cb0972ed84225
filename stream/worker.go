package stream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	kafkago "github.com/segmentio/kafka-go"
	"golang.org/x/sync/errgroup"

	"github.com/crmpulse/crmpulse/ingest"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// Worker tuning.
const (
	// drainBudget is how many records a worker processes between looks at
	// its timers and control channels.
	drainBudget = 4096
	// finalCheckpointTimeout bounds the checkpoint a worker writes when it
	// loses its partition or the process stops.
	finalCheckpointTimeout = 20 * time.Second
	// snapshotShare caps the share of a worker's time spent serialising
	// state: after a snapshot that took d, the next waits at least d/share.
	snapshotShare = 0.05
)

// worker owns one partition number: its engine, the fetchers of both input
// topic-partitions, and its checkpoints. It is the only goroutine touching
// the engine; a helper goroutine persists checkpoints so that processing
// goes on while outputs are acknowledged and the snapshot is written.
type worker struct {
	a      *App
	p      int
	log    *slog.Logger
	commit func(map[string]map[int]int64) error
	clock  *partitionClock
	reload chan reloadReq
	// done closes when the worker stops taking reload requests.
	done     chan struct{}
	doneOnce sync.Once

	eng    *processor.Engine
	merger *ikafka.Merger
	enc    *encoder
	epoch  *epoch
	msgs   []kafkago.Message
	dirty  bool
	nextCP time.Time
	// runStart is the occurred_at of the first record since the watermark
	// last moved.
	runStart time.Time

	cpJobs chan cpJob
	cpDone chan error
	cpBusy bool
	last   manifest // the snapshot the partition's state was last written to

	consumed [ikafka.NumInputs]int64
	partName string
	live     *progress // what the health watchdog sees of the loop
	// forward says the rules have group-level rules, whose records go to
	// the group stage; lastMark is the last watermark marker sent there.
	forward  bool
	lastMark time.Time
	// profileFwd, when set, encodes the profile a forwarded record read
	// for the group stage (its rules use customer.*); nil otherwise.
	profileFwd *profileEncoder
	// fwdProfiles says the group stage keeps profiles of its own
	// (groupsNeedProfiles): accepted profile records and tombstones are
	// forwarded too.
	fwdProfiles bool
	// dedup suppresses what a restore re-produces (outputdedup.go).
	dedup *outputDedup
	// alerts is the set of alerts the partition holds as firing.
	alerts *activeAlerts
}

type cpJob struct {
	cp    checkpoint
	epoch *epoch
}

// reloadReq asks a worker to rebuild its engine with new rules: it answers
// on prepared, then swaps when commit closes or keeps its engine when abort
// closes.
type reloadReq struct {
	rules    *rules.File
	prepared chan<- error
	commit   <-chan struct{}
	abort    <-chan struct{}
}

// runPartition serves partition p until ctx ends (the generation ended) or
// something fails. committed holds the group's offsets for both topics, used
// only when the partition has no snapshot.
func (a *App) runPartition(ctx context.Context, p int, committed map[string]int64, commit func(map[string]map[int]int64) error) (err error) {
	w := &worker{
		a: a, p: p, log: a.log.With("partition", p), commit: commit,
		reload: make(chan reloadReq, 1), enc: newEncoder(a.cfg.Topics, a.cfg.Kafka.GroupID, strconv.Itoa(p)), epoch: newEpoch(),
		cpJobs: make(chan cpJob, 1), cpDone: make(chan error, 1), partName: strconv.Itoa(p),
		done: make(chan struct{}), alerts: newActiveAlerts(name(p)),
	}
	stopReloads := func() { w.doneOnce.Do(func() { close(w.done) }) }
	rf := a.register(w)
	defer a.unregister(w)
	defer func() { w.dedup.close() }()
	defer stopReloads() // runs before unregister, which waits for a reload in progress
	if ctx.Err() != nil {
		return nil
	}
	w.clock = a.wms.add(p, a.now())
	defer a.wms.remove(p, w.clock)

	starts, err := w.restore(ctx, rf, committed)
	if err != nil {
		if ctx.Err() != nil {
			return nil // the generation ended while restoring
		}
		a.m.restores.WithLabelValues("failed").Inc()
		return err
	}
	a.restored.Add(1)
	defer a.restored.Add(-1)
	w.alerts.assigned(a.cfg.Sinks)
	defer w.alerts.revoked(a.cfg.Sinks) // after the final checkpoint

	g, gctx := errgroup.WithContext(ctx)
	var chans, frees [ikafka.NumInputs]chan *ikafka.Batch
	for k := range chans {
		chans[k], frees[k] = make(chan *ikafka.Batch, 4), make(chan *ikafka.Batch, 8)
	}
	type fetch struct {
		topic  string
		source ingest.Source
		start  int64
		out    chan *ikafka.Batch
		free   chan *ikafka.Batch
	}
	fetches := []fetch{
		{a.cfg.Topics.Interactions, ingest.SourceInteractions, starts[ikafka.Interactions], chans[ikafka.Interactions], frees[ikafka.Interactions]},
		{a.cfg.Topics.Receipts, ingest.SourceReceipts, starts[ikafka.Receipts], chans[ikafka.Receipts], frees[ikafka.Receipts]},
	}
	if a.cfg.Topics.Customers != "" {
		fetches = append(fetches, fetch{a.cfg.Topics.Customers, ingest.SourceCustomers, starts[ikafka.Customers], chans[ikafka.Customers], frees[ikafka.Customers]})
	}
	for _, f := range fetches {
		lag := a.m.lag.WithLabelValues(f.topic, w.partName)
		fetches, reconnects := a.m.fetches.WithLabelValues(f.topic), a.m.reconnects.WithLabelValues(f.topic)
		fe, err := ikafka.NewFetcher(ikafka.FetcherConfig{
			Brokers: a.brokers, Security: a.sec, Topic: f.topic, Partition: p, Source: f.source, Offset: f.start,
			MaxWait: a.cfg.Kafka.MaxWait.D(), Out: f.out, Free: f.free,
			Lag: func(n int64) { lag.Set(float64(n)) }, ErrorLogger: a.kafkaLog,
			OnFetch: fetches.Inc, OnReconnect: reconnects.Inc,
		})
		if err != nil {
			return err
		}
		g.Go(func() error { return fe.Run(gctx) })
	}
	w.merger = ikafka.NewMerger(chans[ikafka.Interactions], chans[ikafka.Receipts], frees[ikafka.Interactions], frees[ikafka.Receipts],
		starts[ikafka.Interactions], starts[ikafka.Receipts])
	if a.cfg.Topics.Customers != "" {
		w.merger.WithCustomers(chans[ikafka.Customers], frees[ikafka.Customers], starts[ikafka.Customers])
	}

	cpCtx, cpCancel := context.WithCancel(context.Background())
	defer cpCancel()
	go w.persistLoop(cpCtx)

	// loop returns nil when ctx ends or a fetcher failed. Only then is the
	// state consistent with everything produced, and worth a last
	// checkpoint; after an output or checkpoint error it is not (some
	// output may be lost), and the next owner restarts from the last good
	// snapshot instead.
	w.live = &progress{part: w.partName}
	a.health.add(w.live)
	err = w.loop(gctx)
	a.forget(w.live)
	stopReloads()
	switch {
	case err == nil:
		err = w.final()
	case ctx.Err() != nil:
		// Stopped halfway through by the end of the generation: no final
		// checkpoint, the next owner resumes from the last one.
		w.log.Debug("partition stopped mid-step", "err", err)
		err = nil
	default:
		a.m.workerErrors.Inc()
	}
	close(w.cpJobs)
	cpCancel()
	if gerr := g.Wait(); gerr != nil && ctx.Err() == nil {
		err = errors.Join(err, gerr)
	}
	return err
}

var closedChan = func() chan struct{} { c := make(chan struct{}); close(c); return c }()

// restore builds the engine from the partition's latest snapshot, or empty
// when it has none, and returns the offsets to read from, by merger input.
func (w *worker) restore(ctx context.Context, rf *rules.File, committed map[string]int64) (starts [ikafka.NumInputs]int64, err error) {
	a := w.a
	local, groups := splitRules(rf)
	eng, err := processor.New(processor.Config{Rules: local, Extra: a.components(w.p), FutureSkew: a.cfg.FutureSkew.D(),
		AttachProfiles: groupsReadProfiles(groups)})
	if err != nil {
		return starts, err
	}
	w.setEngine(eng, groups)
	w.dedup = a.newOutputDedup(w.partName, w.log)
	t := a.cfg.Topics
	startI, startR := committed[t.Interactions], committed[t.Receipts]
	// Profiles without a committed offset are read from the start
	// whatever kafka.start_offset says: the compacted topic is the current
	// profile of every customer, not a stream to join at its end.
	startC := committed[t.Customers]
	if startC < 0 {
		startC = kafkago.FirstOffset
	}
	starts = [ikafka.NumInputs]int64{startI, startR, startC}
	cp, mf, ok, err := a.snaps.load(ctx, w.p)
	if err != nil {
		return starts, fmt.Errorf("restoring partition %d: %w", w.p, err)
	}
	if !ok {
		a.m.restores.WithLabelValues("empty").Inc()
		w.log.Info("partition assigned without a snapshot", "interactions_offset", startI, "receipts_offset", startR)
		return starts, w.firstCheckpoint(ctx, starts)
	}
	if err := eng.Restore(cp.Engine); err != nil {
		return starts, fmt.Errorf("restoring partition %d from snapshot %s: %w", w.p, mf.ID, err)
	}
	if err := w.alerts.restore(cp.Firing, local); err != nil {
		return starts, fmt.Errorf("restoring partition %d from snapshot %s: %w", w.p, mf.ID, err)
	}
	if cp.RulesHash != rf.Hash {
		// Components are matched by rule name: rules that kept their name
		// keep their state, new ones start empty.
		w.log.Warn("snapshot was taken with other rules; restoring rule state by name",
			"snapshot_rules", cp.RulesHash, "running_rules", rf.Hash)
	}
	if o, ok := cp.Offsets[a.cfg.Topics.Interactions]; ok {
		startI = o
	}
	if o, ok := cp.Offsets[a.cfg.Topics.Receipts]; ok {
		startR = o
	}
	if t.Customers != "" {
		// A snapshot taken before the customers topic was configured has
		// no offset for it: every profile is read, from the start.
		startC = kafkago.FirstOffset
		if o, ok := cp.Offsets[t.Customers]; ok {
			startC = o
		}
	}
	starts = [ikafka.NumInputs]int64{startI, startR, startC}
	w.last = mf
	w.dedup.restore(ctx, cp.Outputs, position{offsets: w.positionOffsets(starts), wm: wmNanos(eng.Watermark())})
	a.m.restores.WithLabelValues("snapshot").Inc()
	a.m.snapshotBytes.WithLabelValues(w.partName).Set(float64(mf.Bytes))
	w.log.Info("partition restored", "snapshot", mf.ID, "bytes", mf.Bytes, "watermark", eng.Watermark(),
		"interactions_offset", startI, "receipts_offset", startR)
	return starts, nil
}

// tickEvery is how often a worker looks at the clock when no record comes.
func (a *App) tickEvery() time.Duration {
	return min(max(min(a.cfg.CommitInterval.D(), a.cfg.IdleTimeout.D())/4, 10*time.Millisecond), 250*time.Millisecond)
}

func (w *worker) loop(ctx context.Context) error {
	tick := time.NewTicker(w.a.tickEvery())
	defer tick.Stop()
	orderTimer := time.NewTimer(time.Hour)
	orderTimer.Stop()
	w.nextCP = w.a.now().Add(w.a.cfg.CommitInterval.D())
	for {
		w.live.awake(phaseRecords, w.eng)
		now := time.Now()
		n, events := 0, 0
		for ; n < drainBudget; n++ {
			if n&255 == 255 {
				now = time.Now() // processing may have waited on a sink
			}
			rec, src := w.merger.Next(now)
			if rec == nil {
				break
			}
			if err := w.process(ctx, rec, src); err != nil {
				return err
			}
			if src != ikafka.Customers {
				events++
			}
			w.live.records.Add(1)
		}
		if n > 0 {
			// The end of what is at hand ends the run.
			w.advance()
			w.runStart = time.Time{}
			if err := w.emit(ctx); err != nil {
				return err
			}
			if events > 0 {
				// Profiles do not make a partition active: a partition
				// reading only profiles is idle for the pipeline
				// watermark (SPEC §1.3: they never move the watermark).
				w.clock.lastRecord.Store(w.a.now().UnixNano())
			}
			w.dirty = true
		}
		if err := w.flushMsgs(ctx); err != nil {
			return err
		}
		var waitC <-chan time.Time
		if d := w.merger.WaitDeadline(); !d.IsZero() {
			orderTimer.Reset(max(time.Until(d), 0))
			waitC = orderTimer.C
		}
		chans := w.merger.Chans()
		// With records still at hand, only look at the other channels.
		var more <-chan struct{}
		if n == drainBudget {
			more = closedChan
		}
		// Input is waiting when records are at hand or a fetch saw more.
		w.live.park(n == drainBudget || w.merger.Lag(ikafka.Interactions)+w.merger.Lag(ikafka.Receipts)+w.merger.Lag(ikafka.Customers) > 0)
		select {
		case b := <-chans[ikafka.Interactions]:
			w.merger.Feed(ikafka.Interactions, b)
		case b := <-chans[ikafka.Receipts]:
			w.merger.Feed(ikafka.Receipts, b)
		case b := <-chans[ikafka.Customers]:
			w.merger.Feed(ikafka.Customers, b)
		case <-waitC:
		case <-tick.C:
			w.live.awake(phaseTick, w.eng)
			if err := w.onTick(ctx); err != nil {
				return err
			}
		case err := <-w.cpDone:
			w.live.awake(phaseCheckpoint, w.eng)
			w.cpBusy = false
			if err != nil {
				return err
			}
		case req := <-w.reload:
			w.live.awake(phaseReload, w.eng)
			w.onReload(ctx, req)
		case <-ctx.Done():
			return nil
		case <-more:
		}
		if waitC != nil && !orderTimer.Stop() {
			select {
			case <-orderTimer.C:
			default:
			}
		}
	}
}

// process feeds one record to the engine and queues what it produced.
func (w *worker) process(ctx context.Context, rec *ikafka.Record, src int) error {
	w.consumed[src]++
	if rec.Err != nil {
		return w.reject(rec, rec.Err)
	}
	if src == ikafka.Customers {
		return w.profile(ctx, rec)
	}
	// The engine's watermark follows the records (SPEC §2) as in replay,
	// except that records less than advanceStep apart form one run, after
	// which the watermark moves once, to exactly where replay's would be.
	if rec.At.Sub(w.runStart) >= advanceStep || rec.At.Before(w.runStart) {
		w.advance()
		w.runStart = rec.At
		if err := w.emit(ctx); err != nil {
			return err
		}
	}
	var err error
	if src == ikafka.Interactions {
		err = w.eng.Interaction(rec.I)
	} else {
		err = w.eng.Receipt(rec.R)
	}
	switch {
	case err == nil:
		if w.forward {
			w.epoch.add(1)
			w.msgs = append(w.msgs, w.forwarded(rec, src))
		}
	case errors.Is(err, processor.ErrDuplicate):
		w.a.m.duplicates.Inc()
	default:
		if rerr := w.reject(rec, err); rerr != nil {
			return rerr
		}
	}
	return w.emit(ctx)
}

// profile feeds one profile version or tombstone to the engine (SPEC §1.3).
// A profile never moves the watermark (no advance, no run) and is never
// late. It is forwarded only when the group stage keeps profiles of its
// own (digests); otherwise the group stage reads the profile each
// forwarded record carries.
func (w *worker) profile(ctx context.Context, rec *ikafka.Record) error {
	if rec.Tombstone {
		if len(rec.Msg.Key) > 0 {
			w.eng.DropCustomer(string(rec.Msg.Key))
			w.a.m.tombstones.Inc()
			w.forwardProfile(rec)
		}
		// The ClickHouse customers rows it deletes (profilerows).
		return w.emit(ctx)
	}
	if err := w.eng.Customer(rec.C); err != nil {
		if rerr := w.reject(rec, err); rerr != nil {
			return rerr
		}
		return w.emit(ctx)
	}
	w.forwardProfile(rec)
	return w.emit(ctx)
}

// setEngine installs eng, built for the group rules groups (nil when
// there are none), and what the partition forwards for them.
func (w *worker) setEngine(eng *processor.Engine, groups *rules.File) {
	w.eng, w.forward, w.profileFwd = eng, groups != nil, newProfileEncoder(groups)
	w.fwdProfiles = groupsNeedProfiles(groups)
}

// forwardProfile queues an accepted profile record (or tombstone) for the
// group stage when it keeps profiles.
func (w *worker) forwardProfile(rec *ikafka.Record) {
	if !w.fwdProfiles {
		return
	}
	value := bytes.Clone(rec.Msg.Value)
	if w.a.repScrub != nil && value != nil {
		value = w.a.repScrub.Attributes(value)
	}
	w.epoch.add(1)
	w.msgs = append(w.msgs, kafkago.Message{
		Topic: w.a.cfg.Topics.Repartition, Key: []byte(w.partName), Value: value, WriterData: w.epoch,
		Headers: append(w.forwardHeaders(ingest.SourceCustomers, 1),
			kafkago.Header{Key: headerCustomer, Value: bytes.Clone(rec.Msg.Key)}),
	})
}

// advanceStep bounds a run of records between two watermark moves. Replay
// advances after every record; at tens of thousands of records per second
// that is thousands of Advance calls per second, each walking every
// detector (threshold walks its firing groups). Within a run a timer due
// between two records fires after the run instead of between them, and a
// record less than advanceStep late may be accepted: a difference from
// replay only for records this close together.
const advanceStep = 10 * time.Millisecond

// advance applies SPEC §2's per-partition rule exactly: highest
// occurred_at seen − allowed lateness.
func (w *worker) advance() {
	w.eng.AdvanceFromEvents()
}

func (w *worker) reject(rec *ikafka.Record, err error) error {
	reason, detail := rejection(err)
	w.a.m.rejected.WithLabelValues(string(reason)).Inc()
	if reason == ingest.ReasonLate {
		w.a.m.late.Inc()
	}
	w.epoch.add(1)
	w.tag()
	w.msgs = append(w.msgs, w.enc.deadLetter(rec, reason, detail, w.epoch, w.a.deadScrub))
	w.a.m.outputs.WithLabelValues(kindDeadLetter).Inc()
	return nil
}

// emit hands the engine's output to the sinks and queues it for Kafka.
func (w *worker) emit(ctx context.Context) (err error) {
	w.tag()
	w.msgs, err = w.a.emit(w.alerts.observe(ctx, w.eng.Output()), w.eng.Output(), w.enc, w.msgs, w.epoch)
	if err != nil {
		return fmt.Errorf("partition %d: %w", w.p, err)
	}
	return nil
}

// flushMsgs hands queued records to the producer (App.flush), less those
// a restore found already written.
func (w *worker) flushMsgs(context.Context) (err error) {
	w.msgs, err = w.a.flush(w.dedup.filter(w.msgs, w.position))
	return err
}

// onTick publishes the partition's clock, follows the pipeline watermark
// when idle, updates gauges and checkpoints when due.
func (w *worker) onTick(ctx context.Context) error {
	a := w.a
	now := a.now()
	lateness := w.eng.AllowedLateness()
	if mx := w.eng.MaxEventTime(); !mx.IsZero() {
		w.clock.wm.Store(mx.Add(-lateness).UnixNano())
	}
	// Pending profiles do not keep the partition active (SPEC §1.3).
	lagI, lagR := w.merger.Lag(ikafka.Interactions), w.merger.Lag(ikafka.Receipts)
	w.clock.pending.Store(lagI+lagR > 0 || !w.merger.Started())
	if wm, ok := a.wms.pipeline(now, lateness); ok && wm.After(w.eng.Watermark()) {
		w.eng.Advance(wm)
		w.dirty = true
		if err := w.emit(ctx); err != nil {
			return err
		}
		if err := w.flushMsgs(ctx); err != nil {
			return err
		}
	}
	w.queueMarker()
	if err := w.flushMsgs(ctx); err != nil {
		return err
	}
	a.m.consumed.WithLabelValues(a.cfg.Topics.Interactions).Add(float64(w.consumed[0]))
	a.m.consumed.WithLabelValues(a.cfg.Topics.Receipts).Add(float64(w.consumed[1]))
	if a.cfg.Topics.Customers != "" {
		a.m.consumed.WithLabelValues(a.cfg.Topics.Customers).Add(float64(w.consumed[ikafka.Customers]))
	}
	w.consumed = [ikafka.NumInputs]int64{}
	if wm := w.eng.Watermark(); !wm.IsZero() {
		a.m.partWatermark.WithLabelValues(w.partName).Set(float64(wm.UnixNano()) / 1e9)
	}
	a.m.stateKeys.WithLabelValues(w.partName).Set(float64(w.eng.StateKeys()))

	if w.cpBusy || !w.dirty || now.Before(w.nextCP) {
		return nil
	}
	job, err := w.checkpoint(ctx)
	if err != nil {
		return err
	}
	w.cpBusy = true
	w.cpJobs <- job
	return nil
}

// checkpoint snapshots the engine at the current offsets and seals the
// outputs produced so far, which the checkpoint must wait for.
func (w *worker) checkpoint(ctx context.Context) (cpJob, error) {
	if err := w.flushMsgs(ctx); err != nil {
		return cpJob{}, err
	}
	t0 := time.Now()
	snap, err := w.eng.Snapshot()
	if err != nil {
		return cpJob{}, fmt.Errorf("snapshotting partition %d: %w", w.p, err)
	}
	firing, err := w.alerts.marshal()
	if err != nil {
		return cpJob{}, fmt.Errorf("snapshotting partition %d: %w", w.p, err)
	}
	took := time.Since(t0)
	w.a.m.snapshotTime.Observe(took.Seconds())
	w.a.m.snapshotBytes.WithLabelValues(w.partName).Set(float64(len(snap)))
	ep := w.epoch
	w.epoch = newEpoch()
	ep.seal()
	// Before any record of the new epoch reaches the writer.
	outputs := w.dedup.checkpointMarks(ctx)
	w.dirty = false
	w.nextCP = w.a.now().Add(max(w.a.cfg.CommitInterval.D(), time.Duration(float64(took)/snapshotShare)))
	return cpJob{epoch: ep, cp: checkpoint{
		Engine:    snap,
		RulesHash: w.eng.Rules().Hash,
		Watermark: w.eng.Watermark(),
		Offsets: w.offsets([ikafka.NumInputs]int64{
			w.merger.Offset(ikafka.Interactions), w.merger.Offset(ikafka.Receipts), w.merger.Offset(ikafka.Customers),
		}),
		Outputs: outputs,
		Firing:  firing,
	}}, nil
}

func (w *worker) persistLoop(ctx context.Context) {
	for job := range w.cpJobs {
		w.cpDone <- w.persist(ctx, job)
	}
}

// persist makes a checkpoint durable, in the order that makes it safe:
// outputs acknowledged and sinks flushed, then the snapshot, then the
// offsets (informational: a restore seeks to the snapshot's own offsets).
func (w *worker) persist(ctx context.Context, job cpJob) error {
	a := w.a
	t0 := time.Now()
	err := func() error {
		if err := job.epoch.wait(ctx); err != nil {
			return err
		}
		for _, s := range a.cfg.Sinks {
			if err := s.Flush(ctx); err != nil {
				return fmt.Errorf("flushing a sink: %w", err)
			}
		}
		mf, err := a.snaps.save(ctx, w.p, &job.cp, w.last, a.now())
		if err != nil {
			return err
		}
		w.last = mf
		return nil
	}()
	if err != nil {
		a.m.checkpoints.WithLabelValues("failure").Inc()
		return fmt.Errorf("checkpointing partition %d: %w", w.p, err)
	}
	offsets := map[string]map[int]int64{}
	for t, o := range job.cp.Offsets {
		offsets[t] = map[int]int64{w.p: o}
	}
	if err := w.commit(offsets); err != nil {
		// Expected when the generation just ended; the snapshot holds the
		// offsets that count.
		w.log.Debug("committing offsets failed", "err", err)
	}
	a.m.checkpoints.WithLabelValues("success").Inc()
	a.m.checkpointTime.Observe(time.Since(t0).Seconds())
	return nil
}

// final writes a last checkpoint when the worker stops, so the next owner
// of the partition starts where this one ended.
func (w *worker) final() error {
	ctx, cancel := context.WithTimeout(context.Background(), finalCheckpointTimeout)
	defer cancel()
	var err error
	if w.cpBusy {
		select {
		case err = <-w.cpDone:
			w.cpBusy = false
		case <-ctx.Done():
			return fmt.Errorf("partition %d: final checkpoint: %w", w.p, ctx.Err())
		}
	}
	if err != nil || w.eng == nil || !w.dirty {
		return err
	}
	if err := w.emit(ctx); err != nil {
		return err
	}
	job, err := w.checkpoint(ctx)
	if err != nil {
		return err
	}
	return w.persist(ctx, job)
}

// onReload prepares an engine with the new rules from a snapshot of the
// current one and swaps it in only when every worker prepared.
func (w *worker) onReload(ctx context.Context, req reloadReq) {
	ne, err := w.rebuild(req.rules)
	req.prepared <- err
	if err != nil {
		return
	}
	select {
	case <-req.commit:
		_, groups := splitRules(req.rules)
		w.setEngine(ne, groups)
		w.dirty = true
	case <-req.abort:
	case <-ctx.Done():
	}
}

// offsets are the checkpoint offsets of the input topics, by merger input
// (the customers topic only when configured).
func (w *worker) offsets(o [ikafka.NumInputs]int64) map[string]int64 {
	t := w.a.cfg.Topics
	m := map[string]int64{t.Interactions: o[ikafka.Interactions], t.Receipts: o[ikafka.Receipts]}
	if t.Customers != "" {
		m[t.Customers] = o[ikafka.Customers]
	}
	return m
}

// positionOffsets are the offsets of a position: the event topics', and
// the customers topic's when configured (a profile can produce output: a
// calendar rule's reminder).
func (w *worker) positionOffsets(o [ikafka.NumInputs]int64) []int64 {
	if w.a.cfg.Topics.Customers == "" {
		return []int64{o[ikafka.Interactions], o[ikafka.Receipts]}
	}
	return o[:]
}

func (w *worker) rebuild(rf *rules.File) (*processor.Engine, error) {
	if err := w.emit(context.Background()); err != nil {
		return nil, err
	}
	snap, err := w.eng.Snapshot()
	if err != nil {
		return nil, fmt.Errorf("partition %d: snapshotting for reload: %w", w.p, err)
	}
	local, groups := splitRules(rf)
	ne, err := processor.New(processor.Config{Rules: local, Extra: w.a.components(w.p), FutureSkew: w.a.cfg.FutureSkew.D(),
		AttachProfiles: groupsReadProfiles(groups)})
	if err != nil {
		return nil, fmt.Errorf("partition %d: %w", w.p, err)
	}
	if err := ne.Restore(snap); err != nil {
		return nil, fmt.Errorf("partition %d: restoring state into the new rules: %w", w.p, err)
	}
	return ne, nil
}
