// Package schemas holds the JSON Schemas of every record CRM Pulse reads
// and writes (docs/events.md): the three input topics and the alert,
// resend, segment, digest and rejected-line outputs. They are the contract
// for upstream producers and downstream consumers; the tests validate
// generated data and replay outputs against them, so the schemas cannot
// drift from what the code accepts and emits.
package schemas

import "embed"

// FS holds the schema files, named <record>.json.
//
//go:embed *.json
var FS embed.FS

// Names are the records with a schema, one file each.
var Names = []string{"interaction", "receipt", "customer", "alert", "resend", "segment", "digest", "rejected"}
