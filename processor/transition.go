package processor

import "time"

// Transition is a segment transition record (SPEC §3.3, §4): a key of a
// segment set moving from one class to another at event time At. From is
// nil for the key's first class. EmittedAt is stamped by the writer, like
// Alert.EmittedAt.
type Transition struct {
	SegmentSet string            `json:"segment_set"`
	Key        map[string]string `json:"key"`
	Tenant     string            `json:"tenant"`
	CustomerID string            `json:"customer_id"`
	From       *string           `json:"from"`
	To         string            `json:"to"`
	At         time.Time         `json:"at"`
	EmittedAt  time.Time         `json:"emitted_at"`
}

// ID is the deterministic identity of the transition: a key changes class
// at most once per instant of a segment set, so (segment_set, key, at)
// names it; a replay or a restart writes the same ID for the same change.
func (t *Transition) ID() string {
	return t.SegmentSet + ":" + Fingerprint(t.Key) + ":" + t.At.UTC().Format(time.RFC3339Nano)
}

// AppendJSON appends t's JSON object to b, byte for byte as encoding/json
// writes it (see recordjson.go).
func (t *Transition) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"segment_set":`...)
	b = appendString(b, t.SegmentSet)
	b = append(b, `,"key":`...)
	b = appendMap(b, t.Key)
	b = append(b, `,"tenant":`...)
	b = appendString(b, t.Tenant)
	b = append(b, `,"customer_id":`...)
	b = appendString(b, t.CustomerID)
	b = append(b, `,"from":`...)
	if t.From == nil {
		b = append(b, "null"...)
	} else {
		b = appendString(b, *t.From)
	}
	b = append(b, `,"to":`...)
	b = appendString(b, t.To)
	b = append(b, `,"at":`...)
	if b, err = appendTime(b, &t.At); err != nil {
		return b, err
	}
	b = append(b, `,"emitted_at":`...)
	if b, err = appendTime(b, &t.EmittedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}
