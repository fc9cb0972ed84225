package processor

import (
	"bytes"
	"encoding/gob"
	"maps"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/ingest"
)

// profileStore holds the customer profiles of SPEC §1.3: for each
// customer, the versions read so far, so that whatever reads a profile gets
// the version current at its own time (the greatest updated_at ≤ t).
//
// Customers are interned in a keyTable by customer_id alone, not by
// (tenant, customer_id): a Kafka tombstone carries only the key, which is
// the customer_id, and must drop the profile in every tenant. A customer's
// versions (of all its tenants, nearly always one) sit in one slice sorted
// by updated_at, so a lookup is a hash probe and a short backwards scan,
// with no allocation. The strings of a version are interned: tiers,
// regions, zones, account managers and attribute names repeat across
// millions of customers.
type profileStore struct {
	keys     *keyTable
	versions pages[[]*ingest.Profile] // per customer index; nil once dropped
	live     int                      // customers with at least one version
	strs     map[string]string
	// horizon is how far before the watermark a profile can still be
	// read (an alert's starts_at lags the watermark by its rule's for).
	horizon int64
	wm      int64
}

func newProfileStore(horizon time.Duration) *profileStore {
	return &profileStore{keys: newKeyTable(), strs: map[string]string{}, horizon: int64(horizon)}
}

// maxInterned bounds the intern table: past it, new strings are cloned
// instead, so a producer sending unique values cannot grow it forever.
const maxInterned = 1 << 16

func (s *profileStore) intern(v string) string {
	if v == "" {
		return ""
	}
	if iv, ok := s.strs[v]; ok {
		return iv
	}
	c := strings.Clone(v) // v may share the decoded record's backing string
	if len(s.strs) < maxInterned {
		s.strs[c] = c
	}
	return c
}

// put adds c as a version of its customer. A version with the same tenant
// and updated_at as one already read replaces it (the later read wins).
func (s *profileStore) put(c *ingest.Customer) {
	tenant := c.Tenant
	if tenant == "" { // the decoder defaults it; a Go caller may not
		tenant = ingest.DefaultTenant
	}
	p := &ingest.Profile{
		Tenant: s.intern(tenant), AccountManager: s.intern(c.AccountManager),
		Tier: s.intern(c.Tier), Segment: s.intern(c.Segment), Region: s.intern(c.Region),
		Timezone: s.intern(c.Timezone), UpdatedAt: c.UpdatedAt.UnixNano(), Deleted: c.Deleted,
	}
	if !c.Deleted && len(c.Attributes) > 0 {
		names := slices.Sorted(maps.Keys(c.Attributes))
		p.Attrs = make([]string, 0, 2*len(names))
		// One allocation for every value of the version, not one each.
		var b strings.Builder
		for _, n := range names {
			b.WriteString(c.Attributes[n])
		}
		all, off := b.String(), 0
		for _, n := range names {
			v := all[off : off+len(c.Attributes[n])]
			off += len(v)
			p.Attrs = append(p.Attrs, s.intern(n), v)
		}
	}
	if p.Deleted {
		p.AccountManager, p.Tier, p.Segment, p.Region, p.Timezone = "", "", "", "", ""
	}
	s.insert([]byte(c.CustomerID), p)
}

func (s *profileStore) insert(cid []byte, p *ingest.Profile) {
	idx, _ := s.keys.intern(cid)
	for int(idx) >= s.versions.n {
		s.versions.add()
	}
	vs := s.versions.at(idx)
	if len(*vs) == 0 {
		s.live++
	}
	i, found := slices.BinarySearchFunc(*vs, p, func(a, b *ingest.Profile) int {
		switch {
		case a.UpdatedAt < b.UpdatedAt:
			return -1
		case a.UpdatedAt > b.UpdatedAt:
			return 1
		}
		return 0
	})
	// Among equal updated_at, find this tenant's to replace.
	for j := i; found && j < len(*vs) && (*vs)[j].UpdatedAt == p.UpdatedAt; j++ {
		if (*vs)[j].Tenant == p.Tenant {
			(*vs)[j] = p
			s.prune(vs)
			return
		}
	}
	*vs = slices.Insert(*vs, i, p)
	s.prune(vs)
}

// prune forgets what no reader can reach any more: for each tenant, the
// versions older than the one current at watermark − horizon, and that one
// too when it is a deletion (no version and a deleted one read the same).
func (s *profileStore) prune(vs *[]*ingest.Profile) {
	if len(*vs) < 2 && (len(*vs) == 0 || !(*vs)[0].Deleted) {
		return
	}
	cut := s.wm - s.horizon
	keep := (*vs)[:0]
	all := *vs
	for i, p := range all {
		if p.UpdatedAt <= cut {
			superseded := false
			for _, q := range all[i+1:] {
				if q.Tenant == p.Tenant && q.UpdatedAt <= cut {
					superseded = true
					break
				}
			}
			if superseded || p.Deleted {
				continue
			}
		}
		keep = append(keep, p)
	}
	clear(all[len(keep):])
	*vs = keep
	if len(keep) == 0 {
		*vs = nil
		s.live--
	}
}

// at returns the version of (tenant, customer) current at t, nil when there
// is none or it is a deletion. It does not allocate.
// ProfileAt implements ingest.ProfileSource: records look their profile
// up through it on first use.
func (s *profileStore) ProfileAt(tenant, customer string, t int64) *ingest.Profile {
	return s.at(tenant, customer, t)
}

func (s *profileStore) at(tenant, customer string, t int64) *ingest.Profile {
	if s.live == 0 {
		return nil
	}
	idx, ok := s.keys.lookupString(customer)
	if !ok || int(idx) >= s.versions.n {
		return nil
	}
	vs := *s.versions.at(idx)
	for i := len(vs) - 1; i >= 0; i-- {
		if p := vs[i]; p.UpdatedAt <= t && p.Tenant == tenant {
			if p.Deleted {
				return nil
			}
			return p
		}
	}
	return nil
}

// drop forgets every version of customer in every tenant: a Kafka
// tombstone. The interned key stays (a keyTable never shrinks) but holds
// nothing, and a snapshot leaves it out. It returns, per tenant the
// customer had versions in, the newest updated_at dropped, sorted by
// tenant: what a store of current profiles outside the engine needs to
// delete them too.
func (s *profileStore) drop(customer string) []DroppedProfile {
	idx, ok := s.keys.lookupString(customer)
	if !ok || int(idx) >= s.versions.n {
		return nil
	}
	vs := s.versions.at(idx)
	if len(*vs) == 0 {
		return nil
	}
	s.live--
	var dropped []DroppedProfile
	for _, p := range *vs { // sorted by updated_at: the last seen per tenant is its newest
		i := slices.IndexFunc(dropped, func(d DroppedProfile) bool { return d.Tenant == p.Tenant })
		if i < 0 {
			dropped = append(dropped, DroppedProfile{Tenant: p.Tenant})
			i = len(dropped) - 1
		}
		dropped[i].Newest = time.Unix(0, p.UpdatedAt).UTC()
	}
	slices.SortFunc(dropped, func(a, b DroppedProfile) int { return strings.Compare(a.Tenant, b.Tenant) })
	*vs = nil
	return dropped
}

// DroppedProfile is what a Kafka tombstone dropped in one tenant: the
// customer's versions there, the newest of which had updated_at Newest.
type DroppedProfile struct {
	Tenant string
	Newest time.Time
}

// advance records the watermark, for pruning.
func (s *profileStore) advance(wm time.Time) { s.wm = wm.UnixNano() }

// profilesState is the store in a snapshot: every customer with versions.
type profilesState struct {
	Customers []profileEntry
}

type profileEntry struct {
	CustomerID string
	Versions   []ingest.Profile
}

func (s *profileStore) state() []byte {
	var st profilesState
	for i := 0; i < s.versions.n; i++ {
		vs := *s.versions.at(uint32(i))
		if len(vs) == 0 {
			continue
		}
		e := profileEntry{CustomerID: string(s.keys.key(uint32(i))), Versions: make([]ingest.Profile, len(vs))}
		for j, p := range vs {
			e.Versions[j] = *p
		}
		st.Customers = append(st.Customers, e)
	}
	if len(st.Customers) == 0 {
		return nil
	}
	var buf bytes.Buffer
	if err := gob.NewEncoder(&buf).Encode(&st); err != nil {
		panic("encoding profiles: " + err.Error()) // plain strings and ints always encode
	}
	return buf.Bytes()
}

func (s *profileStore) restore(b []byte) error {
	*s = *newProfileStore(time.Duration(s.horizon))
	if len(b) == 0 {
		return nil
	}
	var st profilesState
	if err := gob.NewDecoder(bytes.NewReader(b)).Decode(&st); err != nil {
		return err
	}
	for _, e := range st.Customers {
		vs := make([]*ingest.Profile, len(e.Versions))
		for j := range e.Versions {
			p := e.Versions[j]
			p.Tenant, p.AccountManager, p.Tier = s.intern(p.Tenant), s.intern(p.AccountManager), s.intern(p.Tier)
			p.Segment, p.Region, p.Timezone = s.intern(p.Segment), s.intern(p.Region), s.intern(p.Timezone)
			for k := 0; k < len(p.Attrs); k += 2 {
				p.Attrs[k] = s.intern(p.Attrs[k])
			}
			vs[j] = &p
		}
		idx, _ := s.keys.intern([]byte(e.CustomerID))
		for int(idx) >= s.versions.n {
			s.versions.add()
		}
		*s.versions.at(idx) = vs
		s.live++
	}
	return nil
}

// len is the number of customers with a profile version held.
func (s *profileStore) len() int { return s.live }

// each calls f with the versions of (tenant, customer), oldest first, and
// for each the updated_at of the next one of that tenant (math.MaxInt64
// for the last), until f returns false.
func (s *profileStore) each(tenant, customer string, f func(p *ingest.Profile, until int64) bool) {
	idx, ok := s.keys.lookupString(customer)
	if !ok || int(idx) >= s.versions.n {
		return
	}
	vs := *s.versions.at(idx)
	for i, p := range vs {
		if p.Tenant != tenant {
			continue
		}
		until := int64(math.MaxInt64)
		for _, q := range vs[i+1:] {
			if q.Tenant == tenant && q.UpdatedAt > p.UpdatedAt {
				until = q.UpdatedAt
				break
			}
		}
		if !f(p, until) {
			return
		}
	}
}
