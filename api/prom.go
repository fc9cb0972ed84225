package api

import (
	"cmp"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/crmpulse/crmpulse/processor"
	"github.com/crmpulse/crmpulse/processor/rules"
)

// promAlert is an alert of the Prometheus API (/api/v1/alerts, and the
// alerts of a rule in /api/v1/rules).
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	ActiveAt    time.Time         `json:"activeAt"`
	// Value is a string, as Prometheus formats it ("1.5e+01").
	Value string `json:"value"`
	// The rest is CRM Pulse's, as vmalert adds its own fields: the alert
	// record's fingerprint, rule and threshold (SPEC §4).
	Fingerprint string     `json:"fingerprint"`
	Rule        string     `json:"rule"`
	Threshold   float64    `json:"threshold"`
	WindowStart *time.Time `json:"windowStart,omitempty"`
	WindowEnd   *time.Time `json:"windowEnd,omitempty"`
}

// labelsOf is an alert's labels as Alertmanager receives them: severity is
// a label unless the rule already sets one (alerting/alertmanager does the
// same).
func labelsOf(labels map[string]string, severity string) map[string]string {
	l := maps.Clone(labels)
	if l == nil {
		l = map[string]string{}
	}
	if _, ok := l["severity"]; !ok && severity != "" {
		l["severity"] = severity
	}
	return l
}

func toProm(a *processor.Alert) promAlert {
	ann := a.Annotations
	if ann == nil {
		ann = map[string]string{}
	}
	return promAlert{
		Labels: labelsOf(a.Labels, a.Severity), Annotations: ann, State: "firing",
		ActiveAt: a.StartsAt.UTC(), Value: strconv.FormatFloat(a.Value, 'e', -1, 64),
		Fingerprint: a.Fingerprint, Rule: a.Rule, Threshold: a.Threshold,
		WindowStart: a.WindowStart, WindowEnd: a.WindowEnd,
	}
}

// firing is the firing alerts, ordered by rule then fingerprint so that
// answers are stable.
func (a *API) firing() []processor.Alert {
	alerts := slices.Clone(a.cfg.Alerts.Firing())
	slices.SortFunc(alerts, func(x, y processor.Alert) int {
		return cmp.Or(cmp.Compare(x.Rule, y.Rule), cmp.Compare(x.Fingerprint, y.Fingerprint))
	})
	return alerts
}

func (a *API) alerts(w http.ResponseWriter, _ *http.Request) {
	alerts := a.firing()
	out := make([]promAlert, 0, len(alerts))
	for i := range alerts {
		out = append(out, toProm(&alerts[i]))
	}
	writeData(w, map[string]any{"alerts": out})
}

// promGroup and promRule are the rule groups of /api/v1/rules.
type promGroup struct {
	Name           string     `json:"name"`
	File           string     `json:"file"`
	Rules          []promRule `json:"rules"`
	Interval       float64    `json:"interval"`
	Limit          int        `json:"limit"`
	EvaluationTime float64    `json:"evaluationTime"`
	LastEvaluation time.Time  `json:"lastEvaluation"`
}

type promRule struct {
	Name           string            `json:"name"`
	Query          string            `json:"query"`
	Duration       float64           `json:"duration"`
	KeepFiringFor  float64           `json:"keepFiringFor"`
	Labels         map[string]string `json:"labels"`
	Annotations    map[string]string `json:"annotations"`
	Alerts         []promAlert       `json:"alerts"`
	Health         string            `json:"health"`
	LastError      string            `json:"lastError"`
	Type           string            `json:"type"`
	State          string            `json:"state"`
	EvaluationTime float64           `json:"evaluationTime"`
	LastEvaluation time.Time         `json:"lastEvaluation"`
	// CRM Pulse's own: the detector kind and the input it reads.
	Kind   string `json:"kind"`
	Source string `json:"source"`
}

// GroupName is the name of the one rule group: a rules file is one group.
const GroupName = "crmpulse"

func (a *API) rules(w http.ResponseWriter, r *http.Request) {
	groups := []promGroup{}
	// type=record asks for recording rules, of which there are none.
	if t := r.URL.Query().Get("type"); t != "" && t != "alert" && t != "record" {
		writeError(w, http.StatusBadRequest, errBadData, fmt.Errorf("type: must be alert or record, got %q", t), nil)
		return
	}
	if r.URL.Query().Get("type") == "record" {
		writeData(w, map[string]any{"groups": groups})
		return
	}
	names := r.URL.Query()["rule_name[]"]
	rf := a.cfg.Rules.Rules()
	byRule := map[string][]promAlert{}
	alerts := a.firing()
	for i := range alerts {
		byRule[alerts[i].Rule] = append(byRule[alerts[i].Rule], toProm(&alerts[i]))
	}
	g := promGroup{Name: GroupName, File: a.cfg.RulesFile, Rules: []promRule{}}
	if rf != nil {
		for _, rule := range rf.Rules {
			if len(names) > 0 && !slices.Contains(names, rule.Name) {
				continue
			}
			g.Rules = append(g.Rules, toPromRule(rule, byRule[rule.Name]))
		}
	}
	groups = append(groups, g)
	writeData(w, map[string]any{"groups": groups})
}

func toPromRule(r *rules.Rule, alerts []promAlert) promRule {
	state := "inactive"
	if len(alerts) > 0 {
		state = "firing"
	}
	if alerts == nil {
		alerts = []promAlert{}
	}
	ann := maps.Clone(r.Annotations)
	if ann == nil {
		ann = map[string]string{}
	}
	hold := r.ForDur
	if r.ForWindows > 0 {
		hold = time.Duration(r.ForWindows) * r.Window.D()
	}
	return promRule{
		Name: r.Name, Query: Describe(r), Duration: hold.Seconds(), KeepFiringFor: r.KeepFiringFor.D().Seconds(),
		Labels: labelsOf(r.Labels, r.Severity), Annotations: ann, Alerts: alerts,
		Health: "ok", Type: "alerting", State: state, Kind: r.Kind, Source: r.Source,
	}
}

// Describe is a one-line account of what a rule computes, shown as its
// query: there is no PromQL behind a CRM Pulse rule.
func Describe(r *rules.Rule) string {
	var b strings.Builder
	src := r.Source + matchText(r.Match)
	agg := func() string {
		v := r.Value
		if v == "" {
			v = "count"
		}
		return v
	}
	by := func(fields []string) string {
		if len(fields) == 0 {
			return ""
		}
		return " by (" + strings.Join(fields, ", ") + ")"
	}
	thr := func() string {
		if r.Threshold == nil {
			return ""
		}
		return " " + r.Op + " " + strconv.FormatFloat(*r.Threshold, 'g', -1, 64)
	}
	switch r.Kind {
	case rules.KindInactivity:
		fmt.Fprintf(&b, "inactivity: no %s%s for %s", src, by(r.Key), dur(r.IdleFor))
	case rules.KindThreshold:
		fmt.Fprintf(&b, "threshold: %s(%s)%s over %s%s", agg(), src, by(r.GroupBy), dur(r.Window), thr())
	case rules.KindDrop:
		base := ""
		if bl := r.Baseline; bl != nil {
			if bl.Seasons > 0 {
				base = fmt.Sprintf(" vs the same window of the %d preceding %s seasons", bl.Seasons, dur(bl.Season))
			} else {
				base = fmt.Sprintf(" vs the mean of the %d preceding windows", bl.Windows)
			}
		}
		fmt.Fprintf(&b, "drop: %s(%s)%s over %s%s down by %s%%", agg(), src, by(r.GroupBy), dur(r.Window), base,
			strconv.FormatFloat(r.DropPct, 'g', -1, 64))
	case rules.KindRatio:
		fmt.Fprintf(&b, "ratio: count(%s%s) / count(%s%s)%s over %s%s", r.Source, matchText(r.Numerator),
			r.Source, matchText(r.Denominator), by(r.GroupBy), dur(r.Window), thr())
	case rules.KindAbsence:
		fmt.Fprintf(&b, "absence: %s%s not followed by %s%s%s within %s", r.Source, matchText(r.Start),
			r.Source, matchText(r.Stop), by(r.Correlate), dur(r.Within))
	default:
		fmt.Fprintf(&b, "%s: %s", r.Kind, src)
	}
	return b.String()
}

// dur renders a duration as a rules file writes it (1h, 90m → 1h30m, 7d).
func dur(d rules.Duration) string {
	v := d.D()
	if v != 0 && v%(24*time.Hour) == 0 {
		return rules.Duration(v).String()
	}
	s := v.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}

// matchText renders a match map as {field=~"a|b", ...}, fields sorted.
func matchText(m map[string][]string) string {
	if len(m) == 0 {
		return ""
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		vals := m[k]
		if len(vals) == 1 {
			parts = append(parts, fmt.Sprintf("%s=%q", k, vals[0]))
		} else {
			parts = append(parts, fmt.Sprintf("%s=~%q", k, strings.Join(vals, "|")))
		}
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

// segmentSet and classCount are the answer of /api/v1/segments.
type segmentSet struct {
	Name    string       `json:"name"`
	Classes []classCount `json:"classes"`
	Total   int64        `json:"total"`
	AsOf    *time.Time   `json:"as_of"`
}

type classCount struct {
	Class string `json:"class"`
	Count int64  `json:"count"`
}

func (a *API) segments(w http.ResponseWriter, _ *http.Request) {
	sets := []segmentSet{}
	if a.cfg.Segments != nil {
		for _, s := range a.cfg.Segments.Segments() {
			out := segmentSet{Name: s.Name, Classes: []classCount{}}
			if !s.AsOf.IsZero() {
				t := s.AsOf.UTC()
				out.AsOf = &t
			}
			for _, c := range s.Classes {
				out.Classes = append(out.Classes, classCount{Class: c.Class, Count: c.Count})
				out.Total += c.Count
			}
			slices.SortFunc(out.Classes, func(x, y classCount) int { return cmp.Compare(x.Class, y.Class) })
			sets = append(sets, out)
		}
	}
	slices.SortFunc(sets, func(x, y segmentSet) int { return cmp.Compare(x.Name, y.Name) })
	writeData(w, map[string]any{"sets": sets})
}
