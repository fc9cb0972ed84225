package rules

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"

	"github.com/crmpulse/crmpulse/ingest"
)

// Event is a view over either input record, so that detectors have one code
// path for both sources. Exactly one of I, R and S is set.
type Event struct {
	I *ingest.Interaction
	R *ingest.Receipt
	// C is a profile version, for rules on source customers (then I and R
	// are nil).
	C *ingest.Profile
	// S is a segment transition, for rules on source segments.
	S *SegmentRecord
}

// Profile is the customer profile version current at the event's time,
// as the engine attached it to the record; nil when there is none.
func (e Event) Profile() *ingest.Profile {
	if e.C != nil {
		return e.C
	}
	if e.I != nil {
		return e.I.CurrentProfile()
	}
	if e.R != nil {
		return e.R.CurrentProfile()
	}
	if e.S != nil {
		return e.S.Profile
	}
	return nil
}

// Getter reads one field of an event as a string.
type Getter func(Event) string

// NumGetter reads a numeric field of an event.
type NumGetter func(Event) float64

// Field is a compiled field path: how to read it and the label name it gets
// in alerts (attributes.x becomes x).
type Field struct {
	Path  string
	Label string
	Get   Getter
	// Customer says the path reads the profile (customer.f), so it may not
	// be part of a key or a correlation (SPEC §3).
	Customer bool
}

// CustomerPrefix starts a field path that reads the record's customer
// profile (SPEC §3): customer.tier, customer.attributes.x.
const CustomerPrefix = "customer."

// ProfileGetter reads one field of a profile version; "" when absent.
type ProfileGetter func(*ingest.Profile) string

// ProfileField is a compiled profile field path (account_manager, tier,
// attributes.x) and the label name it gets.
type ProfileField struct {
	Path  string
	Label string
	Get   ProfileGetter
}

var profileFields = map[string]ProfileGetter{
	"account_manager": func(p *ingest.Profile) string { return p.AccountManager },
	"tier":            func(p *ingest.Profile) string { return p.Tier },
	"segment":         func(p *ingest.Profile) string { return p.Segment },
	"region":          func(p *ingest.Profile) string { return p.Region },
	"timezone":        func(p *ingest.Profile) string { return p.Timezone },
}

// CompileProfileField resolves a path of the profile's own fields (§1.3).
func CompileProfileField(path string) (ProfileField, error) {
	if name, ok := strings.CutPrefix(path, "attributes."); ok {
		if name == "" {
			return ProfileField{}, fmt.Errorf("unknown profile field %q: attribute name is empty", path)
		}
		return ProfileField{Path: path, Label: name, Get: func(p *ingest.Profile) string { return p.Attr(name) }}, nil
	}
	if g, ok := profileFields[path]; ok {
		return ProfileField{Path: path, Label: path, Get: g}, nil
	}
	return ProfileField{}, fmt.Errorf("unknown profile field %q (want account_manager, tier, segment, region, timezone or attributes.x)", path)
}

// compileCustomerField resolves customer.f for an event: the field of the
// version current at the record's time, UnknownDim when there is no
// profile or no such field.
func compileCustomerField(path string) (Field, error) {
	pf, err := CompileProfileField(strings.TrimPrefix(path, CustomerPrefix))
	if err != nil {
		return Field{}, err
	}
	get := pf.Get
	return Field{Path: path, Label: pf.Label, Customer: true, Get: func(e Event) string {
		p := e.Profile()
		if p == nil {
			return ingest.UnknownDim
		}
		if v := get(p); v != "" {
			return v
		}
		return ingest.UnknownDim
	}}, nil
}

var interactionFields = map[string]Getter{
	"event_id":    func(e Event) string { return e.I.EventID },
	"type":        func(e Event) string { return e.I.Type },
	"customer_id": func(e Event) string { return e.I.CustomerID },
	"tenant":      func(e Event) string { return e.I.Tenant },
	"segment":     func(e Event) string { return e.I.Segment },
	"region":      func(e Event) string { return e.I.Region },
	"channel":     func(e Event) string { return e.I.Channel },
	"currency":    func(e Event) string { return e.I.Currency },
	"amount":      func(e Event) string { return strconv.FormatFloat(e.I.Amount, 'f', -1, 64) },
}

var receiptFields = map[string]Getter{
	"receipt_id":   func(e Event) string { return e.R.ReceiptID },
	"message_id":   func(e Event) string { return e.R.MessageID },
	"customer_id":  func(e Event) string { return e.R.CustomerID },
	"channel":      func(e Event) string { return e.R.Channel },
	"status":       func(e Event) string { return e.R.Status },
	"attempt":      func(e Event) string { return strconv.Itoa(e.R.Attempt) },
	"tenant":       func(e Event) string { return e.R.Tenant },
	"campaign_id":  func(e Event) string { return e.R.CampaignID },
	"template_id":  func(e Event) string { return e.R.TemplateID },
	"provider":     func(e Event) string { return e.R.Provider },
	"error_code":   func(e Event) string { return e.R.ErrorCode },
	"recipient_tz": func(e Event) string { return e.R.RecipientTZ },
}

// CompileField resolves a field path for a source.
func CompileField(source, path string) (Field, error) {
	if source == SourceCustomers {
		return profileSourceField(path)
	}
	if strings.HasPrefix(path, CustomerPrefix) {
		return compileCustomerField(path)
	}
	if source == SourceSegments {
		return compileSegmentField(path)
	}
	if source == SourceInteractions {
		if name, ok := strings.CutPrefix(path, "attributes."); ok {
			if name == "" {
				return Field{}, fmt.Errorf("unknown event field %q: attribute name is empty", path)
			}
			return Field{Path: path, Label: name, Get: func(e Event) string { return e.I.Attributes[name] }}, nil
		}
		if g, ok := interactionFields[path]; ok {
			return Field{Path: path, Label: path, Get: g}, nil
		}
		return Field{}, fmt.Errorf("unknown event field %q for source interactions", path)
	}
	if g, ok := receiptFields[path]; ok {
		return Field{Path: path, Label: path, Get: g}, nil
	}
	return Field{}, fmt.Errorf("unknown event field %q for source receipts", path)
}

// CompileNumber resolves a numeric field for sum(field). Refunds count
// negative in sum(amount), whatever sign the producer gave them, because
// sums of amount are revenue (SPEC §1.1).
func CompileNumber(source, path string) (NumGetter, error) {
	switch {
	case source == SourceInteractions && path == "amount":
		return func(e Event) float64 {
			if e.I.Type == "refund" {
				return -math.Abs(e.I.Amount)
			}
			return e.I.Amount
		}, nil
	case source == SourceReceipts && path == "attempt":
		return func(e Event) float64 { return float64(e.R.Attempt) }, nil
	}
	if _, err := CompileField(source, path); err != nil {
		return nil, err
	}
	return nil, fmt.Errorf("field %q is not numeric", path)
}

// Matcher is a compiled match: every listed field must hold one of its
// accepted values.
type Matcher struct {
	fields []Field
	values [][]string // a short list scans faster than a map lookup hashes
}

// Match reports whether e satisfies every condition. An empty matcher
// matches everything.
func (m *Matcher) Match(e Event) bool {
	if m == nil {
		return true
	}
	for i, f := range m.fields {
		if !slices.Contains(m.values[i], f.Get(e)) {
			return false
		}
	}
	return true
}

// ReadsProfile reports whether a condition of m reads the customer's
// profile (a customer.* path).
func (m *Matcher) ReadsProfile() bool {
	if m == nil {
		return false
	}
	return slices.ContainsFunc(m.fields, func(f Field) bool { return f.Customer })
}

func compileMatch(source string, m map[string][]string) (*Matcher, error) {
	if len(m) == 0 {
		return nil, nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sortStrings(keys)
	// The record's own fields first: a customer.* condition looks the
	// profile up, which a record that fails a cheaper condition is spared
	// (the engine resolves profiles on first use).
	slices.SortStableFunc(keys, func(a, b string) int {
		ca, cb := strings.HasPrefix(a, "customer."), strings.HasPrefix(b, "customer.")
		switch {
		case ca == cb:
			return 0
		case cb:
			return -1
		}
		return 1
	})
	out := &Matcher{}
	for _, k := range keys {
		f, err := CompileField(source, k)
		if err != nil {
			return nil, err
		}
		if len(m[k]) == 0 {
			return nil, fmt.Errorf("field %s: empty list of accepted values", k)
		}
		out.fields = append(out.fields, f)
		out.values = append(out.values, slices.Compact(slices.Sorted(slices.Values(m[k]))))
	}
	return out, nil
}
