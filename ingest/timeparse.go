package ingest

import (
	"fmt"
	"time"
)

// Unix seconds of the first and last instants an RFC 3339 timestamp can
// name in UTC. A time outside them (0000-01-01T00:00:00+01:00 is in year -1)
// could be parsed but never written back out: time.Time.MarshalJSON refuses
// it, so every later encoder of the record would fail.
const (
	minUnixSec = -62167219200 // 0000-01-01T00:00:00Z
	maxUnixSec = 253402300799 // 9999-12-31T23:59:59Z
)

// parseTime parses an RFC 3339 timestamp with a zone (Z or ±hh:mm) and
// returns it in UTC. It accepts exactly what the strict fast path of the
// standard library's RFC 3339 parser accepts (four-digit year, two-digit
// fields, '.' before any number of fraction digits, upper-case T and Z,
// offsets up to 23:59) but works on bytes and builds the time arithmetically,
// because time.Parse costs several times more and needs a string.
func parseTime(b []byte) (time.Time, bool) {
	const minLen = len("2006-01-02T15:04:05Z")
	if len(b) < minLen ||
		b[4] != '-' || b[7] != '-' || b[10] != 'T' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	year, ok1 := digits4(b[0:4])
	month, ok2 := digits2(b[5:7])
	day, ok3 := digits2(b[8:10])
	hour, ok4 := digits2(b[11:13])
	minute, ok5 := digits2(b[14:16])
	sec, ok6 := digits2(b[17:19])
	if !(ok1 && ok2 && ok3 && ok4 && ok5 && ok6) ||
		month < 1 || month > 12 || day < 1 || day > daysIn(month, year) ||
		hour > 23 || minute > 59 || sec > 59 {
		return time.Time{}, false
	}
	rest := b[19:]

	var nsec int64
	if len(rest) >= 2 && rest[0] == '.' && isDigit(rest[1]) {
		n := 1
		scale := int64(100_000_000)
		for ; n < len(rest) && isDigit(rest[n]); n++ {
			// Digits past the ninth are below a nanosecond; like the
			// standard library, drop them rather than round.
			nsec += int64(rest[n]-'0') * scale
			scale /= 10
		}
		rest = rest[n:]
	}

	var offset int64
	switch {
	case len(rest) == 1 && rest[0] == 'Z':
	case len(rest) == len("+07:00") && (rest[0] == '+' || rest[0] == '-') && rest[3] == ':':
		oh, okh := digits2(rest[1:3])
		om, okm := digits2(rest[4:6])
		if !okh || !okm || oh > 23 || om > 59 {
			return time.Time{}, false
		}
		offset = int64(oh*3600 + om*60)
		if rest[0] == '-' {
			offset = -offset
		}
	default:
		return time.Time{}, false
	}

	unix := daysSinceEpoch(year, month, day)*86400 +
		int64(hour*3600+minute*60+sec) - offset
	if unix < minUnixSec || unix > maxUnixSec {
		return time.Time{}, false
	}
	return time.Unix(unix, nsec).UTC(), true
}

// timeDetail explains why parseTime refused b. It runs only for rejected
// records, so it may take the slow path: the standard library's message
// ("parsing time "2026-13-01": month out of range") is the one operators
// already know, and where the lenient time.Parse accepts what we refuse we
// say what we wanted instead.
func timeDetail(b []byte) string {
	s := string(b)
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return err.Error()
	}
	if y := t.UTC().Year(); y < 0 || y > 9999 {
		return fmt.Sprintf("parsing time %q: year %d in UTC is outside 0000-9999", s, y)
	}
	return fmt.Sprintf("parsing time %q: not RFC 3339 (want YYYY-MM-DDThh:mm:ss[.frac] then Z or ±hh:mm)", s)
}

func isDigit(c byte) bool { return c-'0' <= 9 }

func digits2(b []byte) (int, bool) {
	d0, d1 := b[0]-'0', b[1]-'0'
	return int(d0)*10 + int(d1), d0 <= 9 && d1 <= 9
}

func digits4(b []byte) (int, bool) {
	hi, ok1 := digits2(b[0:2])
	lo, ok2 := digits2(b[2:4])
	return hi*100 + lo, ok1 && ok2
}

func isLeap(year int) bool { return year%4 == 0 && (year%100 != 0 || year%400 == 0) }

func daysIn(month, year int) int {
	switch month {
	case 2:
		if isLeap(year) {
			return 29
		}
		return 28
	case 4, 6, 9, 11:
		return 30
	}
	return 31
}

// daysSinceEpoch is the number of days from 1970-01-01 to the given date of
// the proleptic Gregorian calendar (Howard Hinnant's days_from_civil): a few
// integer operations instead of time.Date's normalisation.
func daysSinceEpoch(year, month, day int) int64 {
	y := int64(year)
	if month <= 2 {
		y--
	}
	era := y
	if era < 0 {
		era -= 399
	}
	era /= 400
	yoe := y - era*400                     // [0, 399]
	mp := int64((month + 9) % 12)          // March = 0
	doy := (153*mp+2)/5 + int64(day) - 1   // [0, 365]
	doe := yoe*365 + yoe/4 - yoe/100 + doy // [0, 146096]
	return era*146097 + doe - 719468       // 719468 days from 0000-03-01 to 1970-01-01
}
