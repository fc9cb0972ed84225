package schemas_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/santhosh-tekuri/jsonschema/v6"
	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/ingest"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
	"github.com/crmpulse/crmpulse/schemas"
)

// compile loads every schema, with format assertions on so that a
// date-time that is not RFC 3339 fails like the decoder's bad_time.
func compile(t *testing.T) map[string]*jsonschema.Schema {
	t.Helper()
	c := jsonschema.NewCompiler()
	c.AssertFormat()
	for _, n := range schemas.Names {
		b, err := schemas.FS.ReadFile(n + ".json")
		require.NoError(t, err)
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(b))
		require.NoError(t, err, n)
		require.NoError(t, c.AddResource(n+".json", doc), n)
	}
	out := map[string]*jsonschema.Schema{}
	for _, n := range schemas.Names {
		s, err := c.Compile(n + ".json")
		require.NoError(t, err, n)
		out[n] = s
	}
	return out
}

// lines returns the lines of path (without newlines).
func lines(t *testing.T, path string) [][]byte {
	t.Helper()
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	require.NoError(t, err)
	defer f.Close()
	var out [][]byte
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		out = append(out, bytes.Clone(sc.Bytes()))
	}
	require.NoError(t, sc.Err())
	return out
}

func valid(s *jsonschema.Schema, line []byte) error {
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(line))
	if err != nil {
		return err
	}
	return s.Validate(v)
}

func TestSchemasCompile(t *testing.T) {
	entries, err := schemas.FS.ReadDir(".")
	require.NoError(t, err)
	require.Len(t, entries, len(schemas.Names), "every schema file is listed in Names")
	compile(t)
}

// TestInputSchemasAgreeWithDecoder: on generated data, which includes
// malformed, duplicated and late records, every line the decoder accepts is
// valid against its schema, and every line it refuses for its shape
// (missing field, wrong type, not JSON) is invalid.
func TestInputSchemasAgreeWithDecoder(t *testing.T) {
	sch := compile(t)
	dir := t.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Seed, cfg.Customers, cfg.Days = 3, 300, 7
	ip, rp := filepath.Join(dir, "i.jsonl"), filepath.Join(dir, "r.jsonl")
	fi, err := os.Create(ip)
	require.NoError(t, err)
	fr, err := os.Create(rp)
	require.NoError(t, err)
	_, err = datagen.Generate(cfg, fi, fr)
	require.NoError(t, err)
	require.NoError(t, fi.Close())
	require.NoError(t, fr.Close())

	shape := map[ingest.Reason]bool{ingest.ReasonNotJSON: true, ingest.ReasonMissingField: true, ingest.ReasonWrongType: true}
	for _, tc := range []struct {
		path   string
		schema string
		decode func([]byte) error
	}{
		{ip, "interaction", func(b []byte) error { var ev ingest.Interaction; return ingest.DecodeInteraction(b, &ev) }},
		{rp, "receipt", func(b []byte) error { var r ingest.Receipt; return ingest.DecodeReceipt(b, &r) }},
	} {
		var accepted, refused int
		for _, line := range lines(t, tc.path) {
			derr := tc.decode(line)
			verr := valid(sch[tc.schema], line)
			var re *ingest.RejectError
			switch {
			case derr == nil:
				accepted++
				require.NoError(t, verr, "decoder accepts, schema refuses: %s", line)
			case errors.As(derr, &re) && shape[re.Reason]:
				refused++
				require.Error(t, verr, "decoder refuses (%v), schema accepts: %s", derr, line)
			}
		}
		require.Greater(t, accepted, 1000, tc.schema)
		require.Positive(t, refused, "%s: the generated data has malformed records", tc.schema)
	}
}

// TestOutputsMatchSchemas replays generated data through the example rules
// and validates every alert, resend and rejected line.
func TestOutputsMatchSchemas(t *testing.T) {
	sch := compile(t)
	dir := t.TempDir()
	cfg := datagen.DefaultConfig()
	cfg.Seed, cfg.Customers = 42, 600
	ip, rp := filepath.Join(dir, "i.jsonl"), filepath.Join(dir, "r.jsonl")
	fi, err := os.Create(ip)
	require.NoError(t, err)
	fr, err := os.Create(rp)
	require.NoError(t, err)
	_, err = datagen.Generate(cfg, fi, fr)
	require.NoError(t, err)
	require.NoError(t, fi.Close())
	require.NoError(t, fr.Close())
	rf, err := rules.Load("../examples/rules.yaml")
	require.NoError(t, err)
	if len(rf.Digests) == 0 {
		// Until the example rules have digests of their own, add two so
		// that digests.jsonl is produced and validated.
		data, err := os.ReadFile("../examples/rules.yaml")
		require.NoError(t, err)
		rf, err = rules.Parse(append(data, []byte(exampleDigests)...))
		require.NoError(t, err)
	}
	out := filepath.Join(dir, "out")
	_, err = replay.Run(context.Background(), replay.Config{Rules: rf, Interactions: ip, Receipts: rp, OutDir: out})
	require.NoError(t, err)

	for file, schema := range map[string]string{
		"alerts.jsonl": "alert", "resends.jsonl": "resend", "rejected.jsonl": "rejected",
		"segments.jsonl": "segment", "digests.jsonl": "digest",
	} {
		ls := lines(t, filepath.Join(out, file))
		for _, line := range ls {
			require.NoError(t, valid(sch[schema], line), "%s: %s", file, line)
		}
		if schema == "alert" || schema == "resend" || schema == "rejected" || schema == "digest" {
			require.NotEmpty(t, ls, file)
		}
	}
}

// exampleDigests are digests over the example rules, for
// TestOutputsMatchSchemas.
const exampleDigests = `
digests:
  - name: account_manager_daily
    schedule: {every: day, at: "09:00", timezone: Asia/Shanghai}
    group_by: [tenant, customer.account_manager]
    alerts: [customer_churn, complaint_unresolved]
    metrics:
      - {name: revenue, source: interactions, match: {type: [purchase, refund]}, value: sum(amount)}
      - {name: complaints, source: interactions, match: {type: [complaint]}, value: count}
  - name: tenant_weekly
    schedule: {every: week, at: "08:00", timezone: Europe/Berlin}
    group_by: [tenant]
    alerts: [revenue_drop_daily, delivery_failure_rate, complaint_burst]
    metrics:
      - {name: customers, source: interactions, value: distinct(customer_id)}
      - {name: bounces, source: receipts, match: {status: [hard_bounce]}, value: count}
`

// TestSchemaExamples validates hand-written examples of SPEC §1.3 and §4
// records, and refuses broken ones, so the schemas of records the example
// rules do not produce are exercised too.
func TestSchemaExamples(t *testing.T) {
	sch := compile(t)
	for _, tc := range []struct {
		name   string
		schema string
		doc    string
		ok     bool
	}{
		{"a full profile", "customer", `{"customer_id":"c1","updated_at":"2026-11-01T00:00:00Z","tenant":"acme","account_manager":"am1@example.com","tier":"platinum","timezone":"Europe/Berlin","attributes":{"birthday":"04-12"}}`, true},
		{"a deletion", "customer", `{"customer_id":"c1","updated_at":"2026-11-01T00:00:00Z","deleted":true}`, true},
		{"a profile without updated_at", "customer", `{"customer_id":"c1"}`, false},
		{"a profile with a numeric attribute", "customer", `{"customer_id":"c1","updated_at":"2026-11-01T00:00:00Z","attributes":{"credit_limit":5000}}`, false},
		{"a first transition", "segment", `{"segment_set":"lifecycle","key":{"tenant":"acme","customer_id":"c1"},"tenant":"acme","customer_id":"c1","from":null,"to":"new","at":"2026-11-01T00:00:00Z","emitted_at":"2026-12-04T00:00:00Z"}`, true},
		{"a transition without to", "segment", `{"segment_set":"lifecycle","key":{},"tenant":"acme","customer_id":"c1","from":"new","at":"2026-11-01T00:00:00Z","emitted_at":"2026-12-04T00:00:00Z"}`, false},
		{"a digest", "digest", `{"digest_id":"d1","digest":"am_daily","group":{"tenant":"acme","account_manager":"am1@example.com"},"period_start":"2026-11-01T01:00:00Z","period_end":"2026-11-02T01:00:00Z","alerts":{"fired":[{"fingerprint":"f","rule":"churn","labels":{"alertname":"churn"},"starts_at":"2026-11-01T02:00:00Z","ends_at":null,"value":7776000}],"resolved":[],"open":[]},"metrics":{"revenue":1234.5,"complaints":0},"segments":{"loyal":10,"churned":0},"emitted_at":"2026-12-04T00:00:00Z"}`, true},
		{"a digest with a negative class count", "digest", `{"digest_id":"d1","digest":"x","group":{},"period_start":"2026-11-01T01:00:00Z","period_end":"2026-11-02T01:00:00Z","alerts":{"fired":[],"resolved":[],"open":[]},"metrics":{},"segments":{"loyal":-1},"emitted_at":"2026-12-04T00:00:00Z"}`, false},
		{"an alert in an unknown state", "alert", `{"fingerprint":"f","rule":"r","kind":"event","state":"pending","severity":"info","labels":{"alertname":"r"},"annotations":{},"value":1,"threshold":0,"starts_at":"2026-11-01T00:00:00Z","ends_at":null,"window_start":null,"window_end":null,"emitted_at":"2026-11-01T00:00:00Z"}`, false},
		{"an interaction with a time without zone", "interaction", `{"event_id":"e","type":"login","customer_id":"c","occurred_at":"2026-11-01T00:00:00"}`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			require.True(t, json.Valid([]byte(tc.doc)))
			err := valid(sch[tc.schema], []byte(tc.doc))
			if tc.ok {
				require.NoError(t, err)
			} else {
				require.Error(t, err)
			}
		})
	}
}
