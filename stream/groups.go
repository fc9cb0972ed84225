package stream

import (
	"bytes"
	"container/heap"
	"context"
	"encoding/gob"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"time"

	kafkago "github.com/segmentio/kafka-go"

	"github.com/crmpulse/crmpulse/ingest"
	ikafka "github.com/crmpulse/crmpulse/ingest/kafka"
	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// The repartition stage. Rules whose groups span customers (group_by, key
// or correlate without customer_id: revenue per segment, complaints per
// region) need every partition's records. Each partition's worker (stage 1)
// runs the customer-level rules and forwards every record its engine
// accepted to the single-partition repartition topic, with watermark
// markers; the owner of input partition 0 also runs the group stage (stage
// 2): one engine with the group-level rules, fed the forwarded records in
// occurred_at order. A single partition gives every group exactly one
// owner; the stage moves with partition 0 and its state is checkpointed on
// the snapshots topic like a partition's.
//
// Why stage 2 sees what replay sees: an upstream partition's marker says
// "every record I forward from now on has occurred_at ≥ wm" (its engine
// refuses older ones as late). Stage 2 holds the forwarded records until
// the minimum marker over all upstream partitions passes them, then feeds
// them in occurred_at order, advancing its engine's watermark after each
// record exactly as replay does; a record is therefore never late there,
// and the group rules see replay's sequence. A restarted upstream re-forwards
// records it had forwarded before its last checkpoint; the engine drops them
// as duplicates (or as behind its watermark), so nothing counts twice.

// Headers of repartition records.
const (
	headerUpstream  = "crmpulse-upstream-partition"
	headerSource    = "crmpulse-source"
	headerWatermark = "crmpulse-watermark"
	// headerGroup names the consumer group that wrote a record: two
	// deployments sharing a repartition topic ignore each other's.
	headerGroup = "crmpulse-group"
	// headerCustomer is a forwarded profile's Kafka key, its customer id:
	// what a tombstone (no value) deletes.
	headerCustomer = "crmpulse-customer"
)

// groupStageID is the group stage's id in the snapshots topic.
const groupStageID = -1

// groupsReadProfiles says whether the group stage's rules read customer.*
// from the records it is forwarded, so that the partition engines attach
// each record's profile (and forward it) even when their own rules do not.
func groupsReadProfiles(groups *rules.File) bool {
	return groups != nil && groups.ReadsRecordProfiles()
}

// isGroupLevel says whether r groups across customers.
func isGroupLevel(r *rules.Rule) bool {
	for _, f := range r.Fields {
		if f.Path == "customer_id" {
			return false
		}
	}
	return true
}

// splitRules returns the rules of stage 1 (customer-level rules and every
// resend policy) and of the group stage (group-level rules and the
// digests, nil when there are neither). Both keep rf's hash, which names
// the rules file.
//
// Digests span partitions (SPEC §3.4), so they run in the group stage,
// which sees every accepted record and profile in replay's order. The
// customer-level rules a digest lists run there too, as shadows: the stage
// computes their alerts only to report them and never emits them, since
// the partition engines do (digestShadows).
func splitRules(rf *rules.File) (local, groups *rules.File) {
	l, g := *rf, *rf
	l.Rules, g.Rules, g.Resend = nil, nil, nil
	l.Digests = nil
	shadows := digestShadows(rf)
	for _, r := range rf.Rules {
		switch {
		case isGroupLevel(r):
			g.Rules = append(g.Rules, r)
		case shadows[r.Name]:
			l.Rules = append(l.Rules, r)
			g.Rules = append(g.Rules, r)
		default:
			l.Rules = append(l.Rules, r)
		}
	}
	if len(g.Rules) == 0 && len(g.Digests) == 0 {
		return &l, nil
	}
	// The partition engines own the segment sets (their keys hold
	// customer_id). The group stage needs them only to feed its own rules
	// on segments and its digests' class counts; what it computes of them
	// is never emitted, so a set is not reported twice.
	onSegments := false
	for _, r := range g.Rules {
		onSegments = onSegments || r.Source == rules.SourceSegments
	}
	for _, d := range g.Digests {
		onSegments = onSegments || d.Segments != ""
	}
	if !onSegments {
		g.Segments = nil
	}
	return &l, &g
}

// digestShadows names the customer-level rules whose alerts some digest
// lists: the group stage runs them for its digests and drops their alerts.
func digestShadows(rf *rules.File) map[string]bool {
	listed := map[string]bool{}
	for _, d := range rf.Digests {
		for _, name := range d.Alerts {
			listed[name] = true
		}
	}
	out := map[string]bool{}
	for _, r := range rf.Rules {
		if listed[r.Name] && !isGroupLevel(r) {
			out[r.Name] = true
		}
	}
	return out
}

// groupsNeedProfiles says whether the group stage keeps profiles of its
// own, fed the profile records the partitions forward: its digests group
// segment keys by customer.* at E, or its shadow rules read customer_labels
// when they fire or run on profiles (calendar). Its record-level reads use
// the profile each forwarded record carries either way.
func groupsNeedProfiles(groups *rules.File) bool {
	return groups != nil && len(groups.Digests) > 0
}

// forwarded is the repartition record of an accepted input record, its
// contact attributes hashed or dropped per privacy.repartition, with the
// profile it read when the group rules use customer.* (profilefwd.go).
func (w *worker) forwarded(rec *ikafka.Record, src int) kafkago.Message {
	source := ingest.SourceInteractions
	var profile *ingest.Profile
	if src == ikafka.Interactions {
		profile = rec.I.CurrentProfile()
	} else {
		source = ingest.SourceReceipts
		profile = rec.R.CurrentProfile()
	}
	h := w.forwardHeaders(source, 1)
	if w.profileFwd != nil && profile != nil {
		h = append(h, kafkago.Header{Key: headerProfile, Value: w.profileFwd.encode(profile)})
	}
	value := bytes.Clone(rec.Msg.Value)
	if w.a.repScrub != nil {
		value = w.a.repScrub.Attributes(value)
	}
	return kafkago.Message{
		Topic: w.a.cfg.Topics.Repartition, Key: []byte(w.partName), Value: value, WriterData: w.epoch,
		Headers: h,
	}
}

// forwardHeaders are the headers of a record forwarded from this
// partition's source, with room for extra more.
func (w *worker) forwardHeaders(source ingest.Source, extra int) []kafkago.Header {
	h := make([]kafkago.Header, 3, 3+extra)
	h[0] = kafkago.Header{Key: headerUpstream, Value: []byte(w.partName)}
	h[1] = kafkago.Header{Key: headerSource, Value: []byte(source)}
	h[2] = kafkago.Header{Key: headerGroup, Value: []byte(w.a.cfg.Kafka.GroupID)}
	return h
}

// marker is the repartition record promising that nothing older than wm
// will be forwarded by this partition.
func (w *worker) marker(wm time.Time) kafkago.Message {
	return kafkago.Message{
		Topic: w.a.cfg.Topics.Repartition, Key: []byte(w.partName), WriterData: w.epoch,
		Headers: []kafkago.Header{
			{Key: headerUpstream, Value: []byte(w.partName)},
			{Key: headerWatermark, Value: []byte(strconv.FormatInt(wm.UnixNano(), 10))},
			{Key: headerGroup, Value: []byte(w.a.cfg.Kafka.GroupID)},
		},
	}
}

// queueMarker queues a marker when the engine's watermark moved since the
// last one.
func (w *worker) queueMarker() {
	wm := w.eng.Watermark()
	if wm.IsZero() || !wm.After(w.lastMark) {
		return
	}
	w.lastMark = wm
	w.epoch.add(1)
	w.msgs = append(w.msgs, w.marker(wm))
}

// pendingRecord is a forwarded record waiting for the watermark.
type pendingRecord struct {
	At     int64 // occurred_at, Unix nanos
	Seq    int64 // repartition offset: ties keep topic order
	Source ingest.Source
	Value  []byte
	// Profile is the crmpulse-profile header: the profile the upstream
	// engine read for the record, nil for none.
	Profile []byte
	// Customer is a forwarded profile's customer id (a tombstone has no
	// Value).
	Customer []byte
}

// rank orders records at one instant as replay does: a profile first.
func (p *pendingRecord) rank() int {
	if p.Source == ingest.SourceCustomers {
		return 0
	}
	return 1
}

type pendingHeap []pendingRecord

func (h pendingHeap) Len() int { return len(h) }
func (h pendingHeap) Less(i, j int) bool {
	if h[i].At != h[j].At {
		return h[i].At < h[j].At
	}
	if ri, rj := h[i].rank(), h[j].rank(); ri != rj {
		return ri < rj
	}
	return h[i].Seq < h[j].Seq
}
func (h pendingHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *pendingHeap) Push(x any)   { *h = append(*h, x.(pendingRecord)) }
func (h *pendingHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// groupState is the group stage's snapshot.
type groupState struct {
	Engine  []byte
	Next    int64         // repartition offset to read next
	Marks   map[int]int64 // upstream partition → its latest marker
	Pending []pendingRecord
	// LastHash names the rules the engine ran.
	LastHash string
}

// groupStage runs the group-level rules. It lives in the goroutine of
// runGroupStage only.
type groupStage struct {
	a         *App
	log       *slog.Logger
	upstreams int
	eng       *processor.Engine // nil while the rules have no group-level rule
	hash      string
	next      int64
	marks     map[int]int64
	pending   pendingHeap
	enc       *encoder
	epoch     *epoch
	msgs      []kafkago.Message
	last      manifest
	dirty     bool
	lastFeed  time.Time
	released  int64
	dedup     *outputDedup  // suppresses what a restore re-produces (outputdedup.go)
	alerts    *activeAlerts // the alerts the stage holds as firing
	// shadows are the rules run only for the digests (digestShadows):
	// their alerts are the partition engines' to emit.
	shadows map[string]bool
}

// runGroupStage serves the group stage until ctx ends (the generation
// ended), then writes a final checkpoint.
func (a *App) runGroupStage(ctx context.Context, upstreams int) error {
	s := &groupStage{
		a: a, log: a.log.With("stage", "groups"), upstreams: upstreams, marks: map[int]int64{},
		enc: newEncoder(a.cfg.Topics, a.cfg.Kafka.GroupID, name(groupStageID)), epoch: newEpoch(), lastFeed: a.now(),
		alerts: newActiveAlerts(name(groupStageID)),
	}
	s.dedup = a.newOutputDedup(name(groupStageID), s.log)
	defer s.dedup.close()
	if err := s.restore(ctx); err != nil {
		if ctx.Err() != nil {
			return nil
		}
		return err
	}
	s.alerts.assigned(a.cfg.Sinks)
	defer s.alerts.revoked(a.cfg.Sinks) // after the final checkpoint
	r := kafkago.NewReader(kafkago.ReaderConfig{
		Brokers: a.brokers, Dialer: a.sec.Dialer(), Topic: a.cfg.Topics.Repartition, Partition: 0,
		MinBytes: 1, MaxBytes: 16 << 20, MaxWait: readerMaxWait(a.cfg.Kafka.MaxWait.D()), QueueCapacity: 10000,
		ErrorLogger: a.kafkaLog,
	})
	defer r.Close()
	if err := r.SetOffset(s.next); err != nil {
		return fmt.Errorf("group stage: seeking %s to %d: %w", a.cfg.Topics.Repartition, s.next, err)
	}
	msgs := make(chan kafkago.Message, 4096)
	fetchErr := make(chan error, 1)
	rctx, stopReading := context.WithCancel(ctx)
	defer stopReading()
	go func() {
		defer close(msgs)
		for {
			m, err := r.FetchMessage(rctx)
			if err != nil {
				if rctx.Err() == nil {
					fetchErr <- fmt.Errorf("group stage: reading %s: %w", a.cfg.Topics.Repartition, err)
				}
				return
			}
			select {
			case msgs <- m:
			case <-rctx.Done():
				return
			}
		}
	}()
	tick := time.NewTicker(a.tickEvery())
	defer tick.Stop()
	nextCP := a.now().Add(a.cfg.CommitInterval.D())
	err := func() error {
		for {
			select {
			case m, ok := <-msgs:
				if !ok {
					return nil
				}
				if err := s.take(m); err != nil {
					return err
				}
				// Take what else is at hand before releasing.
				for n := 0; n < drainBudget; n++ {
					select {
					case m, ok := <-msgs:
						if !ok {
							return nil
						}
						if err := s.take(m); err != nil {
							return err
						}
						continue
					default:
					}
					break
				}
				if err := s.release(ctx); err != nil {
					return err
				}
			case <-tick.C:
				if err := s.onTick(ctx); err != nil {
					return err
				}
				if s.dirty && !a.now().Before(nextCP) {
					if err := s.checkpoint(ctx); err != nil {
						return err
					}
					nextCP = a.now().Add(a.cfg.CommitInterval.D())
				}
			case err := <-fetchErr:
				return err
			case <-ctx.Done():
				return nil
			}
		}
	}()
	if err != nil {
		return err
	}
	fctx, cancel := context.WithTimeout(context.Background(), finalCheckpointTimeout)
	defer cancel()
	if !s.dirty {
		return nil
	}
	return s.checkpoint(fctx)
}

// setRules (re)builds the engine for the current rules, keeping the state
// of rules that kept their name.
func (s *groupStage) setRules(rf *rules.File) error {
	if rf.Hash == s.hash {
		return nil
	}
	_, g := splitRules(rf)
	var snap []byte
	if s.eng != nil {
		var err error
		if snap, err = s.eng.Snapshot(); err != nil {
			return fmt.Errorf("group stage: snapshotting for a rules change: %w", err)
		}
	}
	s.hash = rf.Hash
	s.shadows = digestShadows(rf)
	if g == nil {
		s.eng = nil
		return nil
	}
	eng, err := processor.New(processor.Config{Rules: g, ProfilesFromRecords: true})
	if err != nil {
		return fmt.Errorf("group stage: %w", err)
	}
	if snap != nil {
		if err := eng.Restore(snap); err != nil {
			return fmt.Errorf("group stage: restoring state into the new rules: %w", err)
		}
	}
	s.eng = eng
	s.dirty = true
	return nil
}

func (s *groupStage) restore(ctx context.Context) error {
	a := s.a
	cp, mf, ok, err := a.snaps.load(ctx, groupStageID)
	if err != nil {
		return fmt.Errorf("restoring the group stage: %w", err)
	}
	if !ok {
		s.log.Info("group stage starting without a snapshot")
		if err := s.setRules(a.currentRules()); err != nil {
			return err
		}
		// A first snapshot records the output offsets, so that a crash
		// before the first regular checkpoint is deduplicated as well.
		return s.checkpoint(ctx)
	}
	var st groupState
	if err := gob.NewDecoder(bytes.NewReader(cp.Engine)).Decode(&st); err != nil {
		return fmt.Errorf("restoring the group stage from snapshot %s: %w", mf.ID, err)
	}
	s.next, s.marks, s.pending, s.last = st.Next, st.Marks, pendingHeap(st.Pending), mf
	_, groupRules := splitRules(a.currentRules())
	if err := s.alerts.restore(cp.Firing, groupRules); err != nil {
		return fmt.Errorf("restoring the group stage from snapshot %s: %w", mf.ID, err)
	}
	if s.marks == nil {
		s.marks = map[int]int64{}
	}
	heap.Init(&s.pending)
	if st.Engine != nil {
		_, g := splitRules(a.currentRules())
		if g == nil {
			g = &rules.File{Version: 1, Defaults: a.currentRules().Defaults}
		}
		eng, err := processor.New(processor.Config{Rules: g, ProfilesFromRecords: true})
		if err != nil {
			return err
		}
		if err := eng.Restore(st.Engine); err != nil {
			return fmt.Errorf("restoring the group stage from snapshot %s: %w", mf.ID, err)
		}
		s.eng, s.hash, s.shadows = eng, a.currentRules().Hash, digestShadows(a.currentRules())
	} else if err := s.setRules(a.currentRules()); err != nil {
		return err
	}
	s.dedup.restore(ctx, cp.Outputs, s.position())
	s.log.Info("group stage restored", "snapshot", mf.ID, "offset", s.next, "pending", len(s.pending))
	return nil
}

// take reads one repartition record: a marker moves its upstream's
// watermark, a record waits in the heap.
func (s *groupStage) take(m kafkago.Message) error {
	s.next = m.Offset + 1
	s.dirty = true
	var up, wm = -1, int64(math.MinInt64)
	var source ingest.Source
	var profile, customer []byte
	group := ""
	for _, h := range m.Headers {
		switch h.Key {
		case headerGroup:
			group = string(h.Value)
		case headerUpstream:
			up, _ = strconv.Atoi(string(h.Value))
		case headerWatermark:
			wm, _ = strconv.ParseInt(string(h.Value), 10, 64)
		case headerSource:
			source = ingest.Source(h.Value)
		case headerProfile:
			profile = h.Value
		case headerCustomer:
			customer = h.Value
		}
	}
	if group != s.a.cfg.Kafka.GroupID {
		return nil // another deployment's
	}
	if up < 0 {
		s.log.Warn("repartition record without upstream partition; skipped", "offset", m.Offset)
		return nil
	}
	if wm != math.MinInt64 {
		if old, ok := s.marks[up]; !ok || wm > old {
			s.marks[up] = wm
		}
		return nil
	}
	if source == ingest.SourceCustomers {
		s.takeProfile(m, up, customer)
		return nil
	}
	at, err := occurredAt(source, m.Value)
	if err != nil {
		// Stage 1 forwards only records its engine accepted.
		s.log.Warn("undecodable repartition record; skipped", "offset", m.Offset, "err", err)
		return nil
	}
	heap.Push(&s.pending, pendingRecord{At: at.UnixNano(), Seq: m.Offset, Source: source, Value: m.Value, Profile: profile})
	return nil
}

// takeProfile holds a forwarded profile until the watermark passes its
// updated_at, as replay merges profiles in event time. A tombstone has no
// time of its own: it applies where its partition's watermark was when it
// was forwarded, before the records forwarded after it.
func (s *groupStage) takeProfile(m kafkago.Message, up int, customer []byte) {
	at := int64(math.MinInt64)
	if m.Value == nil {
		if len(customer) == 0 {
			return
		}
		if wm, ok := s.marks[up]; ok {
			at = wm - 1
		}
	} else {
		var c ingest.Customer
		if err := ingest.DecodeCustomer(m.Value, &c); err != nil {
			s.log.Warn("undecodable forwarded profile; skipped", "offset", m.Offset, "err", err)
			return
		}
		at = c.UpdatedAt.UnixNano()
	}
	heap.Push(&s.pending, pendingRecord{At: at, Seq: m.Offset, Source: ingest.SourceCustomers, Value: m.Value, Customer: customer})
}

func occurredAt(source ingest.Source, v []byte) (time.Time, error) {
	switch source {
	case ingest.SourceInteractions:
		var ev ingest.Interaction
		if err := ingest.DecodeInteraction(v, &ev); err != nil {
			return time.Time{}, err
		}
		return ev.OccurredAt, nil
	case ingest.SourceReceipts:
		var r ingest.Receipt
		if err := ingest.DecodeReceipt(v, &r); err != nil {
			return time.Time{}, err
		}
		return r.OccurredAt, nil
	}
	return time.Time{}, fmt.Errorf("unknown source %q", source)
}

// watermark is the minimum marker over every upstream partition, ok false
// until each has sent one.
func (s *groupStage) watermark() (int64, bool) {
	if len(s.marks) < s.upstreams {
		return 0, false
	}
	wm := int64(math.MaxInt64)
	for p := 0; p < s.upstreams; p++ {
		m, ok := s.marks[p]
		if !ok {
			return 0, false
		}
		wm = min(wm, m)
	}
	return wm, true
}

// release feeds the engine every held record older than the watermark, in
// occurred_at order, advancing after each as replay does.
func (s *groupStage) release(ctx context.Context) error {
	wm, ok := s.watermark()
	if !ok {
		return nil
	}
	n := 0
	for len(s.pending) > 0 && s.pending[0].At < wm {
		p := heap.Pop(&s.pending).(pendingRecord)
		n++
		if s.eng == nil {
			continue
		}
		var profile *ingest.Profile
		if p.Profile != nil {
			var perr error
			if profile, perr = decodeProfile(p.Profile); perr != nil {
				// Written by stage 1 of this build; reads as no profile.
				s.log.Warn("forwarded record with an unreadable profile; read as none", "offset", p.Seq, "err", perr)
			}
		}
		if p.Source == ingest.SourceCustomers {
			// A profile never moves the watermark (SPEC §1.3).
			if p.Value == nil {
				s.eng.DropCustomer(string(p.Customer))
			} else {
				var c ingest.Customer
				if err := ingest.DecodeCustomer(p.Value, &c); err == nil {
					_ = s.eng.Customer(&c) // accepted upstream already
				}
			}
			if err := s.emit(ctx); err != nil {
				return err
			}
			continue
		}
		var err error
		switch p.Source {
		case ingest.SourceInteractions:
			var ev ingest.Interaction
			if err = ingest.DecodeInteraction(p.Value, &ev); err == nil {
				ev.Profile = profile
				err = s.eng.Interaction(&ev)
			}
		default:
			var r ingest.Receipt
			if err = ingest.DecodeReceipt(p.Value, &r); err == nil {
				r.Profile = profile
				err = s.eng.Receipt(&r)
			}
		}
		if err != nil && !errors.Is(err, processor.ErrDuplicate) {
			// Re-forwarded after an upstream restart and already behind
			// the watermark: counted once already.
			s.log.Debug("group stage refused a forwarded record", "err", err)
		}
		s.eng.AdvanceFromEvents()
		if err := s.emit(ctx); err != nil {
			return err
		}
	}
	if n > 0 {
		s.released += int64(n)
		s.lastFeed = s.a.now()
	}
	return s.flush()
}

// onTick follows rule reloads and, once nothing is held and no record came
// for idle_timeout, advances the engine to the upstream watermark (as an
// idle partition follows the pipeline watermark).
func (s *groupStage) onTick(ctx context.Context) error {
	if err := s.setRules(s.a.currentRules()); err != nil {
		s.log.Error("group stage keeps its rules", "err", err)
	}
	if err := s.release(ctx); err != nil {
		return err
	}
	if s.eng != nil {
		s.a.m.stateKeys.WithLabelValues("groups").Set(float64(s.eng.StateKeys() + len(s.pending)))
		if wm := s.eng.Watermark(); !wm.IsZero() {
			s.a.m.partWatermark.WithLabelValues("groups").Set(float64(wm.UnixNano()) / 1e9)
		}
	}
	if s.eng == nil || len(s.pending) > 0 || s.a.now().Sub(s.lastFeed) < s.a.cfg.IdleTimeout.D() {
		return nil
	}
	wm, ok := s.watermark()
	if !ok || !time.Unix(0, wm).After(s.eng.Watermark()) {
		return nil
	}
	s.eng.Advance(time.Unix(0, wm))
	s.dirty = true
	if err := s.emit(ctx); err != nil {
		return err
	}
	return s.flush()
}

// emit hands the engine's output to the sinks and queues it for Kafka.
func (s *groupStage) emit(ctx context.Context) (err error) {
	// The partition engines own the segment sets and emit their
	// transitions; the stage's copies (kept only for its rules on
	// segments, see splitRules) would be duplicates: drop them before the
	// sinks and Kafka see them.
	out := s.eng.Output()
	if len(out.Transitions) > 0 {
		clear(out.Transitions)
		out.Transitions = out.Transitions[:0]
	}
	// So are the alerts of the rules it runs only for its digests.
	if len(s.shadows) > 0 && len(out.Alerts) > 0 {
		kept := out.Alerts[:0]
		for _, a := range out.Alerts {
			if !s.shadows[a.Rule] {
				kept = append(kept, a)
			}
		}
		clear(out.Alerts[len(kept):])
		out.Alerts = kept
	}
	if s.eng.Output().Len() > 0 {
		s.dirty = true
	}
	s.tag()
	s.msgs, err = s.a.emit(s.alerts.observe(ctx, s.eng.Output()), s.eng.Output(), s.enc, s.msgs, s.epoch)
	if err != nil {
		return fmt.Errorf("group stage: %w", err)
	}
	return nil
}

func (s *groupStage) flush() (err error) {
	s.msgs, err = s.a.flush(s.dedup.filter(s.msgs, s.position))
	return err
}

// checkpoint makes the stage's outputs durable, then its state.
func (s *groupStage) checkpoint(ctx context.Context) error {
	if err := s.flush(); err != nil {
		return err
	}
	st := groupState{Next: s.next, Marks: s.marks, Pending: s.pending, LastHash: s.hash}
	if s.eng != nil {
		snap, err := s.eng.Snapshot()
		if err != nil {
			return fmt.Errorf("group stage: snapshotting: %w", err)
		}
		st.Engine = snap
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		return fmt.Errorf("group stage: encoding its state: %w", err)
	}
	ep := s.epoch
	s.epoch = newEpoch()
	ep.seal()
	if err := ep.wait(ctx); err != nil {
		return fmt.Errorf("group stage: outputs not acknowledged: %w", err)
	}
	for _, sink := range s.a.cfg.Sinks {
		if err := sink.Flush(ctx); err != nil {
			return fmt.Errorf("group stage: flushing a sink: %w", err)
		}
	}
	firing, err := s.alerts.marshal()
	if err != nil {
		return fmt.Errorf("group stage: %w", err)
	}
	cp := checkpoint{Engine: buf.Bytes(), RulesHash: s.hash,
		Offsets: map[string]int64{s.a.cfg.Topics.Repartition: s.next},
		// Still before any record of the new epoch reaches the writer.
		Outputs: s.dedup.checkpointMarks(ctx), Firing: firing}
	if s.eng != nil {
		cp.Watermark = s.eng.Watermark()
	}
	mf, err := s.a.snaps.save(ctx, groupStageID, &cp, s.last, s.a.now())
	if err != nil {
		return fmt.Errorf("group stage: %w", err)
	}
	s.last = mf
	s.dirty = false
	return nil
}
