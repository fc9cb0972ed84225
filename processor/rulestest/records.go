package rulestest

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/crmpulse/crmpulse/ingest"
)

// This file turns a test's input records into decoded records: YAML maps
// become the JSON the pipeline reads, expanded by repeat, and go through
// the production decoder.

func (c *testCtx) input(n *yaml.Node) {
	m := c.p.mapping(n, "input", "customers", "interactions", "receipts")
	if m == nil {
		return
	}
	total := 0
	for _, src := range []ingest.Source{ingest.SourceCustomers, ingest.SourceInteractions, ingest.SourceReceipts} {
		for i, r := range c.p.list(m[string(src)], string(src)) {
			recs := c.record(r, src, i)
			total += len(recs)
			c.p.records += len(recs)
			if total > maxRecordsPerTest || c.p.records > maxRecordsPerFile {
				c.errf(r, "input: more than %d records in a test, or %d in a file", maxRecordsPerTest, maxRecordsPerFile)
				return
			}
			c.t.records = append(c.t.records, recs...)
		}
	}
	// SPEC §5's merge: occurred_at (updated_at) order, on a tie a profile
	// before an interaction before a receipt, file order otherwise.
	// Records are in that source order, so a stable sort gives exactly
	// that.
	slices.SortStableFunc(c.t.records, func(a, b record) int { return a.at.Compare(b.at) })
}

// record decodes one input record (expanded by repeat) with the decoder the
// pipeline uses, so the test sees exactly what production would.
func (c *testCtx) record(n *yaml.Node, src ingest.Source, idx int) []record {
	kind, idKey, idPrefix, timeKey := "interaction", "event_id", "i", "occurred_at"
	switch src {
	case ingest.SourceReceipts:
		kind, idKey, idPrefix = "receipt", "receipt_id", "r"
	case ingest.SourceCustomers:
		// A profile has no id of its own: customer_id and updated_at say
		// which version it is.
		kind, idKey, idPrefix, timeKey = "customer", "", "", "updated_at"
	}
	what := fmt.Sprintf("%s #%d", kind, idx+1)
	pos := n // where errors point: the alias, not its anchor
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	var lines [][]byte
	switch {
	case n.Kind == yaml.ScalarNode && n.ShortTag() == "!!str":
		if c.p.inputBytes += len(n.Value); c.p.inputBytes > maxInputBytes {
			c.errf(pos, "%s: input larger than %d bytes", what, maxInputBytes)
			return nil
		}
		lines = [][]byte{[]byte(n.Value)}
	case n.Kind == yaml.MappingNode:
		var ok bool
		if lines, ok = c.expand(n, pos, what, idKey, fmt.Sprintf("%s%d", idPrefix, idx+1), timeKey); !ok {
			return nil
		}
	default:
		c.errf(pos, "%s: must be a mapping or a JSON string", what)
		return nil
	}
	out := make([]record, 0, len(lines))
	for k, line := range lines {
		rec := record{line: pos.Line}
		var err error
		switch src {
		case ingest.SourceCustomers:
			rec.cu = &ingest.Customer{}
			err = ingest.DecodeCustomer(line, rec.cu)
			rec.at = rec.cu.UpdatedAt
		case ingest.SourceInteractions:
			rec.i = &ingest.Interaction{}
			err = ingest.DecodeInteraction(line, rec.i)
			rec.at = rec.i.OccurredAt
		default:
			rec.r = &ingest.Receipt{}
			err = ingest.DecodeReceipt(line, rec.r)
			rec.at = rec.r.OccurredAt
		}
		if err != nil {
			copyNo := ""
			if len(lines) > 1 {
				copyNo = fmt.Sprintf(" (copy %d)", k+1)
			}
			c.errf(pos, "%s%s: %v", what, copyNo, err)
			return nil
		}
		out = append(out, rec)
	}
	return out
}

// copyMark in a string of a repeated record is replaced by the copy's
// number, so that copies can differ: customer_id: "c{n}".
const copyMark = "{n}"

// expand turns a record mapping into JSON records: a relative time in
// timeKey (occurred_at, or updated_at for profiles) resolved, a missing id
// filled in (none when idKey is empty), and `repeat: N, every: D` expanded
// into N copies times D apart, {n} replaced by the copy number and ids
// without {n} suffixed -1…-N.
func (c *testCtx) expand(n, pos *yaml.Node, what, idKey, autoID, timeKey string) ([][]byte, bool) {
	var (
		rest             bytes.Buffer
		id               = autoID
		idJSON           []byte
		when             time.Time
		whenJSON         []byte
		repeat           = 1
		every            time.Duration
		repeatN, everyN  *yaml.Node
		seen             = map[string]bool{}
		hasWhen, hasTime bool
	)
	ps, err := pairs(n, 0)
	if err != nil {
		c.errf(pos, "%s: %v", what, err)
		return nil, false
	}
	for _, kv := range ps {
		k, v := kv[0], kv[1]
		if k.Kind != yaml.ScalarNode {
			c.errf(k, "%s: keys must be strings", what)
			return nil, false
		}
		if seen[k.Value] {
			c.errf(k, "%s: field %s given twice", what, k.Value)
			return nil, false
		}
		seen[k.Value] = true
		switch k.Value {
		case "repeat":
			repeatN = v
			if err := v.Decode(&repeat); err != nil || repeat < 1 || repeat > maxRecordsPerTest {
				c.errf(v, "%s: repeat: want a count from 1 to %d", what, maxRecordsPerTest)
				return nil, false
			}
			continue
		case "every":
			everyN = v
			d, ok := c.duration(v, what+": every")
			if !ok {
				return nil, false
			}
			every = d
			continue
		case idKey:
			if idKey == "" {
				break
			}
			if v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
				id = v.Value
				continue
			}
			var b bytes.Buffer
			if err := nodeJSON(&b, v, 0); err != nil {
				c.errf(v, "%s: %s: %v", what, k.Value, err)
				return nil, false
			}
			idJSON = b.Bytes()
			continue
		case timeKey:
			hasWhen = true
			if v.Kind == yaml.ScalarNode && v.ShortTag() != "!!null" {
				at, err := c.parseWhen(v.Value)
				if err != nil {
					c.errf(v, "%s: %s: %v", what, timeKey, err)
					return nil, false
				}
				when, hasTime = at, true
				if v.Value[0] != '+' && v.Value[0] != '-' {
					// Keep the text as written so the decoder judges it.
					whenJSON, _ = json.Marshal(v.Value)
				}
				continue
			}
			var b bytes.Buffer
			if err := nodeJSON(&b, v, 0); err != nil {
				c.errf(v, "%s: %s: %v", what, k.Value, err)
				return nil, false
			}
			whenJSON = b.Bytes()
			continue
		}
		if rest.Len() > 0 {
			rest.WriteByte(',')
		}
		kj, _ := json.Marshal(k.Value)
		rest.Write(kj)
		rest.WriteByte(':')
		if err := nodeJSON(&rest, v, 0); err != nil {
			c.errf(v, "%s: %s: %v", what, k.Value, err)
			return nil, false
		}
		if rest.Len() > maxRecordBytes {
			c.errf(v, "%s: larger than %d bytes", what, maxRecordBytes)
			return nil, false
		}
	}
	if everyN != nil && repeatN == nil {
		c.errf(everyN, "%s: every: needs repeat", what)
		return nil, false
	}
	if repeat > 1 && (idJSON != nil || (hasWhen && !hasTime)) {
		c.errf(repeatN, "%s: repeat: needs a string %s and a time in %s", what, idKey, timeKey)
		return nil, false
	}
	if c.p.inputBytes += repeat * (rest.Len() + 2*len(id) + 100); c.p.inputBytes > maxInputBytes {
		c.errf(pos, "%s: input larger than %d bytes", what, maxInputBytes)
		return nil, false
	}
	out := make([][]byte, repeat)
	for k := range repeat {
		var b bytes.Buffer
		b.WriteByte('{')
		idk, _ := json.Marshal(idKey)
		b.Write(idk)
		b.WriteByte(':')
		switch {
		case idKey == "":
			// No id field: drop the `"":` just written.
			b.Truncate(1)
		case idJSON != nil:
			b.Write(idJSON)
		case repeatN != nil && strings.Contains(id, copyMark):
			j, _ := json.Marshal(strings.ReplaceAll(id, copyMark, strconv.Itoa(k+1)))
			b.Write(j)
		case repeat > 1:
			j, _ := json.Marshal(fmt.Sprintf("%s-%d", id, k+1))
			b.Write(j)
		default:
			j, _ := json.Marshal(id)
			b.Write(j)
		}
		if hasWhen {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			tk, _ := json.Marshal(timeKey)
			b.Write(tk)
			b.WriteByte(':')
			if k == 0 && whenJSON != nil {
				b.Write(whenJSON)
			} else {
				j, _ := json.Marshal(when.Add(time.Duration(k) * every).UTC().Format(time.RFC3339Nano))
				b.Write(j)
			}
		}
		if rest.Len() > 0 {
			if b.Len() > 1 {
				b.WriteByte(',')
			}
			if repeatN != nil {
				// JSON leaves {n} as it is, so it can be replaced in place.
				b.Write(bytes.ReplaceAll(rest.Bytes(), []byte(copyMark), []byte(strconv.Itoa(k+1))))
			} else {
				b.Write(rest.Bytes())
			}
		}
		b.WriteByte('}')
		out[k] = b.Bytes()
	}
	return out, true
}

// nodeJSON writes a YAML value as JSON. Scalars keep their YAML type
// (a quoted "42" stays a string, so the decoder can refuse it as it
// would in production); timestamps stay text for the decoder to judge.
func nodeJSON(b *bytes.Buffer, n *yaml.Node, depth int) error {
	if depth > maxNesting {
		return errors.New("nested too deeply")
	}
	if b.Len() > maxRecordBytes {
		return fmt.Errorf("larger than %d bytes", maxRecordBytes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		return nodeJSON(b, n.Alias, depth+1)
	case yaml.MappingNode:
		b.WriteByte('{')
		for i := 0; i+1 < len(n.Content); i += 2 {
			k := n.Content[i]
			if k.Kind != yaml.ScalarNode || k.Value == "<<" {
				return fmt.Errorf("line %d: keys must be plain strings", k.Line)
			}
			if i > 0 {
				b.WriteByte(',')
			}
			kj, _ := json.Marshal(k.Value)
			b.Write(kj)
			b.WriteByte(':')
			if err := nodeJSON(b, n.Content[i+1], depth+1); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	case yaml.SequenceNode:
		b.WriteByte('[')
		for i, e := range n.Content {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := nodeJSON(b, e, depth+1); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case yaml.ScalarNode:
		switch n.ShortTag() {
		case "!!null":
			b.WriteString("null")
		case "!!bool":
			var v bool
			if err := n.Decode(&v); err != nil {
				return err
			}
			b.WriteString(strconv.FormatBool(v))
		case "!!int":
			var v int64
			if err := n.Decode(&v); err != nil {
				return fmt.Errorf("line %d: integer %s out of range", n.Line, n.Value)
			}
			b.WriteString(strconv.FormatInt(v, 10))
		case "!!float":
			var v float64
			if err := n.Decode(&v); err != nil || math.IsInf(v, 0) || math.IsNaN(v) {
				return fmt.Errorf("line %d: %s is not a finite number", n.Line, n.Value)
			}
			j, _ := json.Marshal(v)
			b.Write(j)
		default:
			j, _ := json.Marshal(n.Value)
			b.Write(j)
		}
	default:
		return fmt.Errorf("line %d: unsupported YAML value", n.Line)
	}
	return nil
}
