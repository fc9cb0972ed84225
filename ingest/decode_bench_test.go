package ingest

import (
	"encoding/json"
	"testing"

	gojson "github.com/goccy/go-json"
)

// benchInteraction is a typical crm.interactions record: every field set,
// two attributes, about 250 bytes.
var benchInteraction = []byte(`{"event_id":"evt-01JD3M7Q9X4K2B","type":"purchase","customer_id":"cus-0088421","occurred_at":"2026-11-22T09:00:00.123+08:00","tenant":"acme","segment":"gold","region":"apac","channel":"web","amount":129.95,"currency":"USD","attributes":{"order_id":"ord-55310","sku":"SKU-7781"}}`)

// benchReceipt is a typical crm.delivery-receipts record, about 250 bytes.
var benchReceipt = []byte(`{"receipt_id":"rcp-01JD3M7QB1","message_id":"msg-7731902","customer_id":"cus-0088421","channel":"sms","status":"soft_bounce","occurred_at":"2026-11-22T09:00:05Z","attempt":2,"tenant":"acme","campaign_id":"black-friday","template_id":"tpl-12","provider":"twilio","error_code":"30003","recipient_tz":"Asia/Shanghai"}`)

func BenchmarkDecodeInteraction(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		var ev Interaction
		b.SetBytes(int64(len(benchInteraction)))
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeInteraction(benchInteraction, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(benchInteraction)))
		b.ReportAllocs()
		for b.Loop() {
			var ev Interaction
			if err := json.Unmarshal(benchInteraction, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy", func(b *testing.B) {
		b.SetBytes(int64(len(benchInteraction)))
		b.ReportAllocs()
		for b.Loop() {
			var ev Interaction
			if err := gojson.Unmarshal(benchInteraction, &ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeReceipt(b *testing.B) {
	b.Run("ours", func(b *testing.B) {
		var r Receipt
		b.SetBytes(int64(len(benchReceipt)))
		b.ReportAllocs()
		for b.Loop() {
			if err := DecodeReceipt(benchReceipt, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("encoding_json", func(b *testing.B) {
		b.SetBytes(int64(len(benchReceipt)))
		b.ReportAllocs()
		for b.Loop() {
			var r Receipt
			if err := json.Unmarshal(benchReceipt, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("goccy", func(b *testing.B) {
		b.SetBytes(int64(len(benchReceipt)))
		b.ReportAllocs()
		for b.Loop() {
			var r Receipt
			if err := gojson.Unmarshal(benchReceipt, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
