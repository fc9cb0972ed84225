package processor

import (
	"maps"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/record"
)

// keySep joins the field values of a group key. It cannot appear in a
// decoded JSON string without an escape that upstream systems never send,
// and if one did, only that group's labels would look odd.
const keySep = "\x1f"

// groupKey is the values of fields for e, joined by keySep.
func groupKey(fields []rules.Field, e rules.Event, buf []byte) []byte {
	buf = buf[:0]
	for i, f := range fields {
		if i > 0 {
			buf = append(buf, keySep...)
		}
		buf = append(buf, f.Get(e)...)
	}
	return buf
}

// alertLabels is the label set of SPEC §4: the group fields, the rule's own
// labels and alertname. Group fields win over rule labels of the same name
// because they identify the alert.
func alertLabels(r *rules.Rule, key string) map[string]string {
	l := make(map[string]string, len(r.Fields)+len(r.Labels)+1)
	maps.Copy(l, r.Labels)
	vals := strings.Split(key, keySep)
	for i, f := range r.Fields {
		if i < len(vals) {
			l[f.Label] = vals[i]
		}
	}
	l["alertname"] = r.Name
	return l
}

// Fingerprint is record.Fingerprint, the stable hash of a label set.
func Fingerprint(labels map[string]string) string { return record.Fingerprint(labels) }

func tp(t time.Time) *time.Time { t = t.UTC(); return &t }

// newAlert builds a firing or resolved alert for rule r and group key.
func newAlert(r *rules.Rule, key, state string, value, threshold float64, startsAt time.Time) Alert {
	// No detector gives a non-finite value (sums saturate, rules check
	// refuses non-finite thresholds); clamping here as well means no
	// future one can emit an alert that no output can encode, which would
	// stop the partition.
	var ignored int64
	value, threshold = sat(value, &ignored), sat(threshold, &ignored)
	labels := alertLabels(r, key)
	return Alert{
		Fingerprint: Fingerprint(labels),
		Rule:        r.Name,
		Kind:        r.Kind,
		State:       state,
		Severity:    r.Severity,
		Labels:      labels,
		Annotations: r.RenderAnnotations(labels, value),
		Value:       value,
		Threshold:   threshold,
		StartsAt:    startsAt.UTC(),
	}
}
