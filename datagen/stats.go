package datagen

import (
	"fmt"
	"strings"
)

// Stats is what Generate wrote. Line counts include duplicates and
// malformed lines; Duplicates, OutOfOrder, Late and Malformed are summed
// over both streams.
type Stats struct {
	// Interactions and Receipts are the lines written to each stream.
	Interactions int
	Receipts     int
	// Customers are the profile lines written (GenerateAll with a
	// Customers writer); 0 otherwise.
	Customers int
	// Duplicates are lines repeating an earlier line byte for byte.
	Duplicates int
	// OutOfOrder are lines whose occurred_at is before the newest one
	// already written to their stream, by at most AllowedLateness: a
	// consumer still accepts them.
	OutOfOrder int
	// Late are lines more than AllowedLateness behind the newest one
	// already written to their stream: a consumer refuses them as late.
	Late int
	// Malformed are lines a consumer must refuse: not JSON, a required
	// field missing, a wrong type, an unparsable or zone-less time.
	Malformed int
	// Injected counts the anomalies and notable outcomes in the data.
	Injected Injected
}

// Injected counts what was injected, and notable outcomes of normal
// traffic that rules and resend policies act on.
type Injected struct {
	ChurnedCustomers     int // customers who stop all activity
	RevenueDrops         int // tenant × segment groups with a purchase drop
	ComplaintBursts      int // tenant × region hours full of complaints
	BurstComplaints      int // complaints in those bursts
	UnresolvedComplaints int // complaints never resolved
	ProviderIncidents    int // provider × hour incidents
	BacklashCampaigns    int // campaigns drawing spam complaints
	Undelivered          int // attempts with a sent receipt and nothing after
	Retries              int // attempts numbered 2 or more
	SoftBounces          int
	HardBounces          int
	Failed               int
	Rejected             int
	Complained           int // complained receipts
	Unsubscribed         int // unsubscribed receipts
	Unsubscribes         int // unsubscribe interactions
	Profiles             int // customers with a profile (first versions)
	ProfileUpdates       int // later versions that change a profile
	DeletedProfiles      int // deleted: true versions
	Invoices             int // invoice_issued interactions
	Payments             int // invoice_paid interactions
	Tasks                int // task_opened interactions
	LargeOrders          int // large_order interactions
	// Reminders are the injected cases of the reminder rules, by id.
	Reminders Reminders
	// Notes say where and when each injection is, for people reading the
	// alerts a replay produces.
	Notes []string
}

// Events is the number of valid, distinct records written.
func (s Stats) Events() int {
	return s.Interactions + s.Receipts - s.Duplicates - s.Malformed
}

// String is a one-line summary.
func (s Stats) String() string {
	i := s.Injected
	return fmt.Sprintf("%d interaction lines, %d receipt lines, %d profile lines (%d duplicates, %d out of order, %d late, %d malformed); "+
		"injected: %d churned customers, %d revenue drops, %d complaint bursts, %d unresolved complaints, "+
		"%d provider incidents, %d backlash campaigns, %d undelivered messages, %d retries",
		s.Interactions, s.Receipts, s.Customers, s.Duplicates, s.OutOfOrder, s.Late, s.Malformed,
		i.ChurnedCustomers, i.RevenueDrops, i.ComplaintBursts, i.UnresolvedComplaints,
		i.ProviderIncidents, i.BacklashCampaigns, i.Undelivered, i.Retries)
}

// Report is the summary followed by the injection notes, one per line.
func (s Stats) Report() string {
	var b strings.Builder
	b.WriteString(s.String())
	for _, n := range s.Injected.Notes {
		b.WriteString("\n  ")
		b.WriteString(n)
	}
	return b.String()
}
