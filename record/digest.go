package record

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"time"
)

// Digest is one scheduled report for one group and period (SPEC §3.4,
// §4). The engine leaves EmittedAt zero; whoever writes it stamps it.
type Digest struct {
	DigestID string
	Digest   string
	// Group holds the group's values under their label names.
	Group       map[string]string
	PeriodStart time.Time
	PeriodEnd   time.Time
	// Fired, Resolved and Open are the listed rules' alerts fired and
	// resolved in the period and firing at its end, each sorted by
	// (starts_at, fingerprint); never nil.
	Fired, Resolved, Open []DigestAlert
	// Metrics holds every metric, 0 included; Segments every class of the
	// segment set, 0 included (empty without one).
	Metrics   map[string]float64
	Segments  map[string]int
	EmittedAt time.Time
}

// DigestAlert is an alert as a digest lists it.
type DigestAlert struct {
	Fingerprint string
	Rule        string
	Labels      map[string]string
	StartsAt    time.Time
	EndsAt      *time.Time
	Value       float64
}

// ID is the deterministic identity of the digest: delivery and sinks
// collapse repeats by it.
func (d *Digest) ID() string { return d.DigestID }

// AppendJSON appends d's JSON object (SPEC §4) to b, as encoding/json would
// write the record with sorted map keys.
func (d *Digest) AppendJSON(b []byte) ([]byte, error) {
	var err error
	b = append(b, `{"digest_id":`...)
	b = appendString(b, d.DigestID)
	b = append(b, `,"digest":`...)
	b = appendString(b, d.Digest)
	b = append(b, `,"group":`...)
	b = appendMap(b, d.Group)
	b = append(b, `,"period_start":`...)
	if b, err = appendTime(b, &d.PeriodStart); err != nil {
		return b, err
	}
	b = append(b, `,"period_end":`...)
	if b, err = appendTime(b, &d.PeriodEnd); err != nil {
		return b, err
	}
	b = append(b, `,"alerts":{"fired":`...)
	if b, err = appendDigestAlerts(b, d.Fired); err != nil {
		return b, err
	}
	b = append(b, `,"resolved":`...)
	if b, err = appendDigestAlerts(b, d.Resolved); err != nil {
		return b, err
	}
	b = append(b, `,"open":`...)
	if b, err = appendDigestAlerts(b, d.Open); err != nil {
		return b, err
	}
	b = append(b, `},"metrics":{`...)
	for i, k := range slices.Sorted(maps.Keys(d.Metrics)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		if b, err = appendFloat(b, d.Metrics[k], "metrics."+k); err != nil {
			return b, err
		}
	}
	b = append(b, `},"segments":{`...)
	for i, k := range slices.Sorted(maps.Keys(d.Segments)) {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendString(b, k)
		b = append(b, ':')
		b = strconv.AppendInt(b, int64(d.Segments[k]), 10)
	}
	b = append(b, `},"emitted_at":`...)
	if b, err = appendTime(b, &d.EmittedAt); err != nil {
		return b, err
	}
	return append(b, '}'), nil
}

func appendDigestAlerts(b []byte, as []DigestAlert) ([]byte, error) {
	if as == nil {
		return append(b, "null"...), nil
	}
	var err error
	b = append(b, '[')
	for i := range as {
		a := &as[i]
		if i > 0 {
			b = append(b, ',')
		}
		b = append(b, `{"fingerprint":`...)
		b = appendString(b, a.Fingerprint)
		b = append(b, `,"rule":`...)
		b = appendString(b, a.Rule)
		b = append(b, `,"labels":`...)
		b = appendMap(b, a.Labels)
		b = append(b, `,"starts_at":`...)
		if b, err = appendTime(b, &a.StartsAt); err != nil {
			return b, err
		}
		b = append(b, `,"ends_at":`...)
		if b, err = appendTime(b, a.EndsAt); err != nil {
			return b, err
		}
		b = append(b, `,"value":`...)
		if b, err = appendFloat(b, a.Value, "value"); err != nil {
			return b, err
		}
		b = append(b, '}')
	}
	return append(b, ']'), nil
}

// digestWire and digestAlertWire are the SPEC §4 shapes, for reading a
// digest back (delivery reads them from the digests topic).
type digestWire struct {
	DigestID    string             `json:"digest_id"`
	Digest      string             `json:"digest"`
	Group       map[string]string  `json:"group"`
	PeriodStart time.Time          `json:"period_start"`
	PeriodEnd   time.Time          `json:"period_end"`
	Metrics     map[string]float64 `json:"metrics"`
	Segments    map[string]int     `json:"segments"`
	EmittedAt   time.Time          `json:"emitted_at"`
	Alerts      struct {
		Fired    []digestAlertWire `json:"fired"`
		Resolved []digestAlertWire `json:"resolved"`
		Open     []digestAlertWire `json:"open"`
	} `json:"alerts"`
}

type digestAlertWire struct {
	Fingerprint string            `json:"fingerprint"`
	Rule        string            `json:"rule"`
	Labels      map[string]string `json:"labels"`
	StartsAt    time.Time         `json:"starts_at"`
	EndsAt      *time.Time        `json:"ends_at"`
	Value       float64           `json:"value"`
}

// ParseDigest reads a digest record as AppendJSON writes it. A record
// without a digest_id, a digest name or a period end is refused: nothing
// downstream could deliver it once.
func ParseDigest(b []byte) (*Digest, error) {
	var j digestWire
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("digest record: %w", err)
	}
	switch {
	case j.DigestID == "":
		return nil, errors.New("digest record: no digest_id")
	case j.Digest == "":
		return nil, fmt.Errorf("digest record %s: no digest name", j.DigestID)
	case j.PeriodEnd.IsZero():
		return nil, fmt.Errorf("digest record %s: no period_end", j.DigestID)
	}
	alerts := func(in []digestAlertWire) []DigestAlert {
		out := make([]DigestAlert, len(in))
		for i, a := range in {
			out[i] = DigestAlert(a)
		}
		return out
	}
	d := &Digest{
		DigestID: j.DigestID, Digest: j.Digest, Group: j.Group,
		PeriodStart: j.PeriodStart, PeriodEnd: j.PeriodEnd,
		Fired: alerts(j.Alerts.Fired), Resolved: alerts(j.Alerts.Resolved), Open: alerts(j.Alerts.Open),
		Metrics: j.Metrics, Segments: j.Segments, EmittedAt: j.EmittedAt,
	}
	if d.Group == nil {
		d.Group = map[string]string{}
	}
	return d, nil
}
