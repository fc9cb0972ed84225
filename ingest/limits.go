package ingest

import (
	"fmt"
	"strconv"
	"time"
)

// The limits below bound what one record may carry (docs/limits.md, "Input
// records"). A record over any of them is refused whole with a reason that
// names the field and the limit; nothing is ever cut to fit, because a cut
// id is a different id: two customers sharing their first kilobyte would
// merge, and one customer would start a new key on every event.
//
// They are fixed rather than configurable: every string of a record can end
// up in a group key, an alert label, a ClickHouse key column or a resend
// trigger id, and the components downstream size their state by them.
const (
	// MaxFieldLen bounds every top-level string field (ids, tenant, type,
	// status, channel, segment, region, currency, campaign_id, ...), in
	// bytes after unescaping. Real ids are tens of bytes.
	MaxFieldLen = 1024
	// MaxAttributeKeyLen bounds each attributes key, in bytes.
	MaxAttributeKeyLen = 1024
	// MaxAttributeValueLen bounds each attributes value, in bytes: values
	// are free labels (a complaint text excerpt, a URL), so they get more
	// room than ids.
	MaxAttributeValueLen = 4096
	// MaxAttributes bounds the members of the attributes object (null
	// values and repeated keys count: the bound is on the work, too).
	MaxAttributes = 64
)

// The supported range of occurred_at, as Unix seconds: from MinTime
// inclusive to MaxTime exclusive.
const (
	MinTimeUnix int64 = 0          // 1970-01-01T00:00:00Z
	MaxTimeUnix int64 = 7258118400 // 2200-01-01T00:00:00Z
)

// MinTime and MaxTime are the supported range of event times: MinTime is
// the first instant accepted, MaxTime the first one refused. The engine
// keeps instants as int64 Unix nanoseconds, which end in 2262 and begin in
// 1677, and adds windows, idle periods and resend delays to them; a margin
// of decades on both sides keeps all of that arithmetic from wrapping, and
// no CRM event happened before 1970. Treat them as constants.
var (
	MinTime = time.Unix(MinTimeUnix, 0).UTC()
	MaxTime = time.Unix(MaxTimeUnix, 0).UTC()
)

// TimeInRange reports whether t is in the supported range [MinTime, MaxTime).
func TimeInRange(t time.Time) bool {
	// MaxTime is a whole second, so comparing seconds is exact.
	u := t.Unix()
	return u >= MinTimeUnix && u < MaxTimeUnix
}

// CheckTime returns nil for a time in the supported range, else a
// *RejectError with reason bad_time naming field. Everything that brings
// a time into the pipeline from outside (decoders, --until) checks it.
func CheckTime(field string, t time.Time) error {
	if TimeInRange(t) {
		return nil
	}
	return timeRangeError(field, t)
}

func timeRangeError(field string, t time.Time) *RejectError {
	return &RejectError{Reason: ReasonBadTime, Field: field, Detail: fmt.Sprintf(
		"%s is outside the supported range %s to %s (exclusive)",
		t.UTC().Format(time.RFC3339Nano), MinTime.Format(time.RFC3339), MaxTime.Format(time.RFC3339))}
}

// tooLong is the bad_value refusal of a string of n bytes over limit.
func tooLong(field, what string, n, limit int) *RejectError {
	return &RejectError{Reason: ReasonBadValue, Field: field,
		Detail: what + " is " + strconv.Itoa(n) + " bytes long, over the limit of " + strconv.Itoa(limit) + " bytes"}
}
