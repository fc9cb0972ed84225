package processor

import (
	"math"
	"sync/atomic"
)

// Sums saturate: a sum that would pass ±math.MaxFloat64 is held there, so
// one huge amount cannot turn a window's value into ±Inf (which no output
// can encode) or, against the opposite infinity, into NaN. Every clamp is
// counted in Stats.Saturated and in the process-wide SaturatedSums.

// saturatedTotal is every engine's saturations in this process, for the
// crmpulse_engine_saturated_sums_total counter.
var saturatedTotal atomic.Int64

// SaturatedSums is the number of sums saturated by any engine of this
// process since it started.
func SaturatedSums() int64 { return saturatedTotal.Load() }

// countSaturated moves the components' saturations from the output into
// the engine's stats.
func (e *Engine) countSaturated() {
	if n := e.out.Saturated; n > 0 {
		e.stats.Saturated += n
		saturatedTotal.Add(n)
		e.out.Saturated = 0
	}
}

// satAdd is a + b for finite a and b, held at ±math.MaxFloat64 when the
// sum overflows; n counts the clamps.
func satAdd(a, b float64, n *int64) float64 {
	s := a + b
	if math.IsInf(s, 0) {
		*n++
		return math.Copysign(math.MaxFloat64, s)
	}
	return s
}

// sat holds an infinite v at ±math.MaxFloat64 and makes NaN 0 (the
// decoder refuses both in input; this keeps a detector whole if one got
// through); n counts clamps.
func sat(v float64, n *int64) float64 {
	if v != v {
		*n++
		return 0
	}
	if math.IsInf(v, 0) {
		*n++
		return math.Copysign(math.MaxFloat64, v)
	}
	return v
}
