package datagen

import (
	"math"
	"math/rand/v2"
)

// Segments, regions, channels and providers are small codes into these
// tables; records carry codes and the encoder turns them into text.

const (
	segConsumer = iota
	segSMB
	segMidMarket
	segEnterprise
	numSegments
)

var segmentNames = [numSegments]string{"consumer", "smb", "mid_market", "enterprise"}

// segmentShare is the share of customers in each segment.
var segmentShare = [numSegments]float64{0.45, 0.30, 0.17, 0.08}

const (
	regNA = iota
	regEMEA
	regAPAC
	regLATAM
	numRegions
)

var regionNames = [numRegions]string{"na", "emea", "apac", "latam"}

// regionShare is the first tenant's regional mix; tenant i rotates it by
// i, so each tenant has a different home region.
var regionShare = [numRegions]float64{0.35, 0.30, 0.25, 0.10}

// Recipient zones. Offsets are fixed (standard time, as in November): the
// generator only needs them to shape daily activity and retry timing.
type zone struct {
	name   string
	offset int64 // seconds east of UTC
}

var zones = []zone{
	{"Asia/Shanghai", 8 * 3600},
	{"Europe/Berlin", 1 * 3600},
	{"America/New_York", -5 * 3600},
	{"Asia/Tokyo", 9 * 3600},
	{"UTC", 0},
}

const (
	zShanghai = iota
	zBerlin
	zNewYork
	zTokyo
	zUTC
)

// regionZones lists, per region, the zones its customers live in and how
// likely each is.
var regionZones = [numRegions][]struct {
	zone int
	p    float64
}{
	regNA:    {{zNewYork, 1}},
	regEMEA:  {{zBerlin, 0.85}, {zUTC, 0.15}},
	regAPAC:  {{zShanghai, 0.6}, {zTokyo, 0.4}},
	regLATAM: {{zNewYork, 0.5}, {zUTC, 0.5}},
}

// Message channels.
const (
	chEmail = iota
	chSMS
	chPush
	chInApp
	numChannels
)

var channelNames = [numChannels]string{"email", "sms", "push", "inapp"}

// preferredShare is how customers prefer to be contacted.
var preferredShare = [numChannels]float64{0.45, 0.25, 0.22, 0.08}

// Providers; provNone is written as no provider field.
const (
	provNone = iota
	provSendgrid
	provSES
	provTwilio
	provSinch
	provFCM
	provAPNs
	numProviders
)

var providerNames = [numProviders]string{"", "sendgrid", "ses", "twilio", "sinch", "fcm", "apns"}

// Interaction channels (where the customer did it).
const (
	icWeb = iota
	icApp
	icStore
	icCallCenter
	icEmail
	icSMS
	numIChannels
)

var iChannelNames = [numIChannels]string{"web", "app", "store", "call_center", "email", "sms"}

var currencies = []string{"USD", "EUR", "CNY", "GBP"}

// customer is one generated customer. Fields that change while generating
// (churn, unsubscribe, last order) live here too.
type customer struct {
	num       int32 // the number in the id: c0001234
	tenant    uint8
	segment   uint8
	region    uint8
	zone      uint8
	omitTZ    bool // receipts leave recipient_tz out: the rules file's default applies
	preferred uint8
	ios       bool    // push goes through APNs, else FCM
	badEmail  bool    // every email to them bounces
	activity  float64 // multiplies every base rate
	churnAt   int64   // ms; activity stops here (math.MaxInt64: never)
	unsubAt   int64   // ms; marketing unsubscribe (math.MaxInt64: never)
	lastOrder uint64  // the last order id, for refunds
}

// Customer mix knobs.
const (
	occasionalShare = 0.05 // customers who come by rarely: natural churn alerts
	occasionalScale = 0.08
	badEmailShare   = 0.01
	omitTZShare     = 0.10
	iosShare        = 0.45
)

// pick returns an index drawn with the given weights.
func pick(r *rand.Rand, w []float64) int {
	var sum float64
	for _, x := range w {
		sum += x
	}
	u := r.Float64() * sum
	for i, x := range w {
		if u < x {
			return i
		}
		u -= x
	}
	return len(w) - 1
}

// tenantWeights gives tenant i a weight of 1/(i+1): the first is the
// largest, the rest a long tail.
func tenantWeights(n int) []float64 {
	w := make([]float64, n)
	for i := range w {
		w[i] = 1 / float64(i+1)
	}
	return w
}

// newPopulation draws the customers. It uses its own random stream, so
// the population does not depend on how many days are generated.
func newPopulation(cfg *Config) []customer {
	r := rand.New(rand.NewPCG(uint64(cfg.Seed), streamPopulation))
	tw := tenantWeights(len(cfg.Tenants))
	cs := make([]customer, cfg.Customers)
	for i := range cs {
		c := &cs[i]
		c.num = int32(i + 1)
		c.tenant = uint8(pick(r, tw))
		c.segment = uint8(pick(r, segmentShare[:]))
		var rw [numRegions]float64
		for k := range rw {
			rw[k] = regionShare[(k+int(c.tenant))%numRegions]
		}
		c.region = uint8(pick(r, rw[:]))
		zs := regionZones[c.region]
		zw := make([]float64, len(zs))
		for k, z := range zs {
			zw[k] = z.p
		}
		c.zone = uint8(zs[pick(r, zw)].zone)
		c.omitTZ = r.Float64() < omitTZShare
		c.preferred = uint8(pick(r, preferredShare[:]))
		c.ios = r.Float64() < iosShare
		c.badEmail = r.Float64() < badEmailShare
		c.activity = math.Min(3, math.Max(0.3, math.Exp(0.5*r.NormFloat64())))
		if r.Float64() < occasionalShare {
			c.activity *= occasionalScale
		}
		c.churnAt = math.MaxInt64
		c.unsubAt = math.MaxInt64
	}
	return cs
}

// tenantRegionCounts returns how many customers each tenant has per region.
func tenantRegionCounts(cs []customer, tenants int) [][numRegions]int {
	n := make([][numRegions]int, tenants)
	for i := range cs {
		n[cs[i].tenant][cs[i].region]++
	}
	return n
}
