package rulestest

import (
	"fmt"
	"maps"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/processor"
)

// alertExpect is an expected alert: in a firing set (where rule and labels
// identify it) or in expect_records. Nil and unset fields are not compared.
type alertExpect struct {
	line        int
	rule        string
	labels      map[string]string // exact, alertname left out
	hasLabels   bool
	annotations map[string]string // the keys given only
	severity    *string
	state       *string
	kind        *string
	value       *float64
	threshold   *float64
	startsAt    *time.Time
	endsAt      *time.Time
	windowStart *time.Time
	windowEnd   *time.Time
}

// key identifies the alert in a firing set.
func (x *alertExpect) key() string { return labelSet(x.rule, x.labels) }

// alertKey is an alert's identity as a test file writes it.
func alertKey(a *processor.Alert) string { return labelSet(a.Rule, a.Labels) }

// labelSet renders rule{a="x", b="y"}, alertname left out and names sorted.
func labelSet(rule string, labels map[string]string) string {
	var b strings.Builder
	b.WriteString(rule)
	b.WriteByte('{')
	first := true
	for _, k := range slices.Sorted(maps.Keys(labels)) {
		if k == "alertname" {
			continue
		}
		if !first {
			b.WriteString(", ")
		}
		first = false
		b.WriteString(k)
		b.WriteByte('=')
		b.WriteString(strconv.Quote(labels[k]))
	}
	b.WriteByte('}')
	return b.String()
}

// diff lists how a differs from x, one "field: want …, got …" per field.
func (x *alertExpect) diff(a *processor.Alert, tf timeFmt) []string {
	var d []string
	if x.rule != "" && x.rule != a.Rule {
		d = append(d, fmt.Sprintf("rule: want %s, got %s", x.rule, a.Rule))
	}
	if x.hasLabels && !sameLabels(x.labels, a.Labels, a.Rule) {
		d = append(d, fmt.Sprintf("labels: want %s, got %s", labelSet("", x.labels), labelSet("", a.Labels)))
	}
	for _, k := range slices.Sorted(maps.Keys(x.annotations)) {
		got, ok := a.Annotations[k]
		switch {
		case !ok:
			d = append(d, fmt.Sprintf("annotations.%s: want %q, got none", k, x.annotations[k]))
		case got != x.annotations[k]:
			d = append(d, fmt.Sprintf("annotations.%s: want %q, got %q", k, x.annotations[k], got))
		}
	}
	d = diffStr(d, "state", x.state, a.State)
	d = diffStr(d, "kind", x.kind, a.Kind)
	d = diffStr(d, "severity", x.severity, a.Severity)
	d = diffNum(d, "value", x.value, a.Value)
	d = diffNum(d, "threshold", x.threshold, a.Threshold)
	d = diffTime(d, "starts_at", x.startsAt, &a.StartsAt, tf)
	d = diffTime(d, "ends_at", x.endsAt, a.EndsAt, tf)
	d = diffTime(d, "window_start", x.windowStart, a.WindowStart, tf)
	d = diffTime(d, "window_end", x.windowEnd, a.WindowEnd, tf)
	return d
}

// sameLabels compares an expected label set with an alert's. alertname
// may be given; it must then be the rule's name.
func sameLabels(want, got map[string]string, rule string) bool {
	if n, ok := want["alertname"]; ok && n != rule {
		return false
	}
	count := 0
	for k, v := range got {
		if k == "alertname" {
			continue
		}
		count++
		if w, ok := want[k]; !ok || w != v {
			return false
		}
	}
	_, named := want["alertname"]
	if named {
		count++
	}
	return count == len(want)
}

// String renders the expectation with the fields it gives.
func (x *alertExpect) render(tf timeFmt) string {
	var b strings.Builder
	if x.state != nil {
		b.WriteString(*x.state + " ")
	}
	if x.hasLabels {
		b.WriteString(x.key())
	} else if x.rule != "" {
		b.WriteString(x.rule + "{…}")
	} else {
		b.WriteString("{…}")
	}
	for _, k := range slices.Sorted(maps.Keys(x.annotations)) {
		fmt.Fprintf(&b, " annotations.%s=%q", k, x.annotations[k])
	}
	optStr(&b, "kind", x.kind)
	optStr(&b, "severity", x.severity)
	optNum(&b, "value", x.value)
	optNum(&b, "threshold", x.threshold)
	optTime(&b, "starts_at", x.startsAt, tf)
	optTime(&b, "ends_at", x.endsAt, tf)
	optTime(&b, "window_start", x.windowStart, tf)
	optTime(&b, "window_end", x.windowEnd, tf)
	return b.String()
}

// renderAlert is one alert on one line, in the test file's terms.
func renderAlert(a *processor.Alert, tf timeFmt, withState bool) string {
	var b strings.Builder
	if withState {
		b.WriteString(a.State + " ")
	}
	b.WriteString(alertKey(a))
	fmt.Fprintf(&b, " value=%s starts_at=%s", fmtNum(a.Value), tf.fmt(a.StartsAt))
	if a.EndsAt != nil {
		fmt.Fprintf(&b, " ends_at=%s", tf.fmt(*a.EndsAt))
	}
	return b.String()
}

// resendExpect is an expected resend trigger or cancel; nil fields are
// not compared.
type resendExpect struct {
	line       int
	triggerID  *string
	action     *string
	policy     *string
	messageID  *string
	customerID *string
	tenant     *string
	channel    *string
	attempt    *int
	reason     *string
	notBefore  *time.Time
}

func (x *resendExpect) diff(r *processor.Resend, tf timeFmt) []string {
	var d []string
	d = diffStr(d, "trigger_id", x.triggerID, r.TriggerID)
	d = diffStr(d, "action", x.action, r.Action)
	d = diffStr(d, "policy", x.policy, r.Policy)
	d = diffStr(d, "message_id", x.messageID, r.MessageID)
	d = diffStr(d, "customer_id", x.customerID, r.CustomerID)
	d = diffStr(d, "tenant", x.tenant, r.Tenant)
	d = diffStr(d, "channel", x.channel, r.Channel)
	if x.attempt != nil && *x.attempt != r.Attempt {
		d = append(d, fmt.Sprintf("attempt: want %d, got %d", *x.attempt, r.Attempt))
	}
	d = diffStr(d, "reason", x.reason, r.Reason)
	d = diffTime(d, "not_before", x.notBefore, &r.NotBefore, tf)
	return d
}

func (x *resendExpect) render(tf timeFmt) string {
	var b strings.Builder
	if x.action != nil {
		b.WriteString(*x.action)
	} else {
		b.WriteString("resend|cancel")
	}
	optStr(&b, "message_id", x.messageID)
	if x.attempt != nil {
		fmt.Fprintf(&b, " attempt=%d", *x.attempt)
	}
	optStr(&b, "channel", x.channel)
	optStr(&b, "policy", x.policy)
	optStr(&b, "reason", x.reason)
	optStr(&b, "customer_id", x.customerID)
	optStr(&b, "tenant", x.tenant)
	optStr(&b, "trigger_id", x.triggerID)
	optTime(&b, "not_before", x.notBefore, tf)
	return b.String()
}

func renderResend(r *processor.Resend, tf timeFmt) string {
	return fmt.Sprintf("%s message_id=%s attempt=%d channel=%s policy=%s reason=%s customer_id=%s not_before=%s",
		r.Action, r.MessageID, r.Attempt, r.Channel, r.Policy, r.Reason, r.CustomerID, tf.fmt(r.NotBefore))
}

func diffStr(d []string, field string, want *string, got string) []string {
	if want != nil && *want != got {
		d = append(d, fmt.Sprintf("%s: want %q, got %q", field, *want, got))
	}
	return d
}

func diffNum(d []string, field string, want *float64, got float64) []string {
	if want != nil && !closeEnough(*want, got) {
		d = append(d, fmt.Sprintf("%s: want %s, got %s", field, fmtNum(*want), fmtNum(got)))
	}
	return d
}

func diffTime(d []string, field string, want, got *time.Time, tf timeFmt) []string {
	switch {
	case want == nil:
	case got == nil:
		d = append(d, fmt.Sprintf("%s: want %s, got none", field, tf.fmt(*want)))
	case !want.Equal(*got):
		d = append(d, fmt.Sprintf("%s: want %s, got %s", field, tf.fmt(*want), tf.fmt(*got)))
	}
	return d
}

// closeEnough compares values that went through float arithmetic (means,
// ratios) with a relative tolerance far below anything a rule can mean.
func closeEnough(a, b float64) bool {
	if a == b {
		return true
	}
	return math.Abs(a-b) <= 1e-9*math.Max(1, math.Max(math.Abs(a), math.Abs(b)))
}

func fmtNum(f float64) string { return strconv.FormatFloat(f, 'g', -1, 64) }

func optStr(b *strings.Builder, k string, v *string) {
	if v != nil {
		fmt.Fprintf(b, " %s=%s", k, *v)
	}
}

func optNum(b *strings.Builder, k string, v *float64) {
	if v != nil {
		fmt.Fprintf(b, " %s=%s", k, fmtNum(*v))
	}
}

func optTime(b *strings.Builder, k string, v *time.Time, tf timeFmt) {
	if v != nil {
		fmt.Fprintf(b, " %s=%s", k, tf.fmt(*v))
	}
}

// timeFmt renders times as a test writes them: relative to the test's
// start when it has one ("+7d2h"), RFC 3339 otherwise.
type timeFmt struct{ start time.Time }

func (tf timeFmt) fmt(t time.Time) string {
	if tf.start.IsZero() {
		return fmtAbs(t)
	}
	d := t.Sub(tf.start)
	sign := "+"
	if d < 0 {
		sign, d = "-", -d
	}
	return sign + fmtDur(d)
}

func fmtAbs(t time.Time) string { return t.UTC().Format(time.RFC3339Nano) }

// fmtDur renders d the way rules.ParseDuration reads it, shortest first:
// 7d, 1d2h, 2h30m, 90s → 1m30s.
func fmtDur(d time.Duration) string {
	if d == 0 {
		return "0s"
	}
	const day = 24 * time.Hour
	var s string
	if days := d / day; days > 0 {
		s = strconv.FormatInt(int64(days), 10) + "d"
		d -= days * day
		if d == 0 {
			return s
		}
	}
	r := d.String()
	if strings.HasSuffix(r, "m0s") {
		r = strings.TrimSuffix(r, "0s")
	}
	if strings.HasSuffix(r, "h0m") {
		r = strings.TrimSuffix(r, "0m")
	}
	return s + r
}
