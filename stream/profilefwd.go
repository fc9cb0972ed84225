package stream

import (
	"encoding/binary"
	"errors"
	"slices"
	"strings"

	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// headerProfile carries, on a forwarded record, the customer profile
// version its partition engine read (SPEC §1.3: whatever a partition
// engine hands to the group stage carries the customer.* values it read).
// The group stage has no profiles of its own: its engine runs with
// ProfilesFromRecords and reads this. A record that read no profile (none,
// or a deleted one) has no header, and reads as unknown there too.
const headerProfile = "crmpulse-profile"

// profileFormat is the first byte of an encoded profile.
const profileFormat = 1

// profileEncoder encodes the profile a forwarded record read: the five
// fixed fields, and of the attributes only those the group rules name
// (customer.attributes.x), so a profile with many attributes costs a
// forwarded record a few bytes. It remembers the last version it encoded:
// versions are shared by every record that read them, and a customer's
// records come in runs.
type profileEncoder struct {
	attrs   []string // attribute names the group rules read, sorted
	last    *ingest.Profile
	lastEnc []byte
}

// newProfileEncoder returns the encoder for the group rules, nil when
// there are none or none reads customer.*: then nothing is forwarded with
// the records and the hot path pays nothing.
func newProfileEncoder(groups *rules.File) *profileEncoder {
	if groups == nil {
		return nil
	}
	uses := false
	attrs := map[string]bool{}
	var paths []string
	for _, r := range groups.Rules {
		paths = append(paths, ruleCustomerPaths(r)...)
	}
	for _, d := range groups.Digests {
		paths = append(paths, digestCustomerPaths(d)...)
	}
	for _, p := range paths {
		uses = true
		if name, ok := strings.CutPrefix(p, rules.CustomerPrefix+"attributes."); ok {
			attrs[name] = true
		}
	}
	if !uses {
		return nil
	}
	e := &profileEncoder{}
	for name := range attrs {
		e.attrs = append(e.attrs, name)
	}
	slices.Sort(e.attrs)
	return e
}

// customerPathsIn appends the customer.* paths named in s (a field path
// or a value expression such as sum(customer.attributes.x)) to out.
func customerPathsIn(out []string, s string) []string {
	for {
		i := strings.Index(s, rules.CustomerPrefix)
		if i < 0 {
			return out
		}
		s = s[i:]
		end := strings.IndexAny(s, " ()[],")
		if end < 0 {
			end = len(s)
		}
		out = append(out, s[:end])
		s = s[end:]
	}
}

// digestCustomerPaths lists the customer.* paths a digest reads from
// records: its group_by and its metrics' match and value.
func digestCustomerPaths(d *rules.Digest) []string {
	var out []string
	for _, f := range d.GroupBy {
		out = customerPathsIn(out, f)
	}
	for _, m := range d.Metrics {
		for k := range m.Match {
			out = customerPathsIn(out, k)
		}
		out = customerPathsIn(out, m.Value)
	}
	return out
}

// ruleCustomerPaths lists the customer.* paths a rule names anywhere a
// record's field can be read: match maps, groupings, due, value.
func ruleCustomerPaths(r *rules.Rule) []string {
	var out []string
	add := func(s string) { out = customerPathsIn(out, s) }
	for _, m := range []map[string][]string{r.Match, r.Numerator, r.Denominator, r.Start, r.Stop} {
		for k := range m {
			add(k)
		}
	}
	for _, l := range [][]string{r.GroupBy, r.Key, r.Correlate} {
		for _, f := range l {
			add(f)
		}
	}
	add(r.DueField)
	add(r.Value)
	return out
}

// encode returns the header value for p; nil for no profile.
func (e *profileEncoder) encode(p *ingest.Profile) []byte {
	if p == nil {
		return nil
	}
	if p == e.last {
		return e.lastEnc
	}
	n := 1 + 6*binary.MaxVarintLen64 + len(p.Tenant) + len(p.AccountManager) + len(p.Tier) + len(p.Segment) + len(p.Region) + len(p.Timezone)
	b := make([]byte, 0, n+16*len(e.attrs))
	b = append(b, profileFormat)
	b = binary.AppendVarint(b, p.UpdatedAt)
	b = appendString(b, p.Tenant)
	b = appendString(b, p.AccountManager)
	b = appendString(b, p.Tier)
	b = appendString(b, p.Segment)
	b = appendString(b, p.Region)
	b = appendString(b, p.Timezone)
	n = 0
	for _, name := range e.attrs {
		if p.Attr(name) != "" {
			n += 2
		}
	}
	b = binary.AppendUvarint(b, uint64(n))
	for _, name := range e.attrs {
		if v := p.Attr(name); v != "" {
			b = appendString(appendString(b, name), v)
		}
	}
	e.last, e.lastEnc = p, b
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errBadProfile = errors.New("malformed crmpulse-profile header")

// decodeProfile reads a header value written by profileEncoder.encode.
func decodeProfile(b []byte) (*ingest.Profile, error) {
	if len(b) == 0 || b[0] != profileFormat {
		return nil, errBadProfile
	}
	b = b[1:]
	at, k := binary.Varint(b)
	if k <= 0 {
		return nil, errBadProfile
	}
	b = b[k:]
	str := func() (string, bool) {
		n, k := binary.Uvarint(b)
		if k <= 0 || uint64(len(b)-k) < n {
			return "", false
		}
		s := string(b[k : k+int(n)])
		b = b[k+int(n):]
		return s, true
	}
	p := &ingest.Profile{UpdatedAt: at}
	for _, f := range []*string{&p.Tenant, &p.AccountManager, &p.Tier, &p.Segment, &p.Region, &p.Timezone} {
		s, ok := str()
		if !ok {
			return nil, errBadProfile
		}
		*f = s
	}
	n, k := binary.Uvarint(b)
	if k <= 0 || n > uint64(len(b)) {
		return nil, errBadProfile
	}
	b = b[k:]
	if n > 0 {
		p.Attrs = make([]string, n)
		for i := range p.Attrs {
			s, ok := str()
			if !ok {
				return nil, errBadProfile
			}
			p.Attrs[i] = s
		}
	}
	if len(b) != 0 || len(p.Attrs)%2 != 0 {
		return nil, errBadProfile
	}
	return p, nil
}
