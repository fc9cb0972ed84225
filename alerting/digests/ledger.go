package digests

import (
	"context"
	"sync"
	"time"
)

// States of a delivery in the ledger.
const (
	// StateSending is written just before the message leaves: a crash
	// after it cannot tell whether the recipient got the digest, so a
	// later run does not send it again (at most once) and says so.
	StateSending = "sending"
	// StateSent: the server accepted the message.
	StateSent = "sent"
	// StatePending: an attempt after StateSending failed before the
	// message was accepted; the digest is still to be delivered.
	StatePending = "pending"
	// StateRefused: the digest cannot be delivered (no recipient, a
	// template failed, the server refused it for good). It is not retried.
	StateRefused = "refused"
)

// Entry is what the ledger holds for one delivery of one digest.
type Entry struct {
	State  string    `json:"state"`
	At     time.Time `json:"at"`
	To     []string  `json:"to,omitempty"`
	Reason string    `json:"reason,omitempty"`
}

// final says whether a delivery in this state is over: it is never tried
// again.
func (e Entry) final() bool {
	return e.State == StateSending || e.State == StateSent || e.State == StateRefused
}

// Ledger remembers each delivery (channel and digest_id) durably, so that
// restarts, crashes and a second instance do not deliver a digest twice.
// stream's ledger keeps it in a compacted Kafka topic.
type Ledger interface {
	// Get returns the latest entry of key, having caught up with what
	// other writers put before the call.
	Get(ctx context.Context, key string) (Entry, bool, error)
	// Put stores e under key durably before it returns.
	Put(ctx context.Context, key string, e Entry) error
}

// MemLedger is a Ledger in memory: for tests and for replay, where
// nothing outlives the process.
type MemLedger struct {
	mu sync.Mutex
	m  map[string]Entry
	// Puts counts the Put calls, in order, as "key=state".
	Puts []string
}

// Get implements Ledger.
func (l *MemLedger) Get(_ context.Context, key string) (Entry, bool, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	e, ok := l.m[key]
	return e, ok, nil
}

// Put implements Ledger.
func (l *MemLedger) Put(_ context.Context, key string, e Entry) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]Entry{}
	}
	l.m[key] = e
	l.Puts = append(l.Puts, key+"="+e.State)
	return nil
}

// Key is the ledger key of one channel's delivery of a digest.
func Key(channel, digestID string) string { return channel + "/" + digestID }
