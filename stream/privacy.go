package stream

import (
	"fmt"

	"github.com/crmpulse/crmpulse/privacy"
)

// Scrubbers builds the scrubbers of privacy.dead_letters and
// privacy.repartition (nil when a mode is keep, so the hot path pays one
// nil check). Contact attributes are those of clickhouse.contact_attributes
// and contact_patterns, hashed with clickhouse.hash_key: the same hash the
// raw tables store, so a dead letter can be matched with its rows.
func (c *Config) Scrubbers() (deadLetters, repartition *privacy.Scrubber, err error) {
	m, err := privacy.NewMatcher(c.ClickHouse.ContactAttrs, c.ClickHouse.ContactPatterns)
	if err != nil {
		return nil, nil, fmt.Errorf("clickhouse: %w", err)
	}
	var h *privacy.Hasher
	build := func(key, v string) (*privacy.Scrubber, error) {
		mode, err := privacy.ParseMode(v)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		if mode == privacy.Keep {
			return nil, nil
		}
		if h == nil && c.ClickHouse.HashKey != "" {
			if h, err = privacy.NewHasher(c.ClickHouse.HashKey); err != nil {
				return nil, fmt.Errorf("clickhouse.%w", err)
			}
		}
		s, err := privacy.NewScrubber(mode, m, h)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", key, err)
		}
		return s, nil
	}
	if deadLetters, err = build("privacy.dead_letters", c.Privacy.DeadLetters); err != nil {
		return nil, nil, err
	}
	if repartition, err = build("privacy.repartition", c.Privacy.Repartition); err != nil {
		return nil, nil, err
	}
	return deadLetters, repartition, nil
}
