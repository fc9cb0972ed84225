package processor

import "github.com/crmpulse/crmpulse/record"

// The records the engine emits live in the leaf package record, so that
// notifiers and sinks link them without the engine and the rules; these
// aliases keep the engine's code (and code written against processor)
// unchanged. New code outside the engine imports record.

type (
	Alert       = record.Alert
	Resend      = record.Resend
	Aggregate   = record.Aggregate
	Output      = record.Output
	Transition  = record.Transition
	Digest      = record.Digest
	DigestAlert = record.DigestAlert
)

// Alert states and resend actions of SPEC §4.
const (
	StateFiring   = record.StateFiring
	StateResolved = record.StateResolved
	ActionResend  = record.ActionResend
	ActionCancel  = record.ActionCancel
)

// ErrUnencodable is record.ErrUnencodable: a record encoding/json would
// refuse too.
var ErrUnencodable = record.ErrUnencodable
