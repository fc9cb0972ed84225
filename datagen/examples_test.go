package datagen_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/crmpulse/crmpulse/datagen"
	"github.com/crmpulse/crmpulse/processor/rules"
	"github.com/crmpulse/crmpulse/replay"
)

type alertLine struct {
	Rule   string            `json:"rule"`
	State  string            `json:"state"`
	Labels map[string]string `json:"labels"`
}

type resendLine struct {
	Policy string `json:"policy"`
	Action string `json:"action"`
	Reason string `json:"reason"`
}

func readJSONL[T any](t *testing.T, path string) []T {
	t.Helper()
	f, err := os.Open(path)
	require.NoError(t, err)
	defer f.Close()
	var out []T
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		var v T
		require.NoError(t, json.Unmarshal(sc.Bytes(), &v))
		out = append(out, v)
	}
	require.NoError(t, sc.Err())
	return out
}

// TestExampleRulesFireOnInjections replays the default data set through
// examples/rules.yaml: each injected anomaly fires the rule meant for it,
// and normal traffic fires nothing else (churn aside, which also fires for
// naturally occasional customers).
func TestExampleRulesFireOnInjections(t *testing.T) {
	if testing.Short() {
		t.Skip("-short: it replays two weeks of data")
	}
	file, err := rules.Load("../examples/rules.yaml")
	require.NoError(t, err)
	kinds := map[string]bool{}
	for _, r := range file.Rules {
		kinds[r.Kind] = true
	}
	require.Len(t, kinds, 5, "the example uses every detector kind")

	for _, seed := range []int64{1, 42} {
		t.Run(fmt.Sprintf("seed %d", seed), func(t *testing.T) {
			dir := t.TempDir()
			iPath, rPath := filepath.Join(dir, "interactions.jsonl"), filepath.Join(dir, "receipts.jsonl")
			fi, err := os.Create(iPath)
			require.NoError(t, err)
			fr, err := os.Create(rPath)
			require.NoError(t, err)
			st, err := datagen.Generate(datagen.Config{Seed: seed}, fi, fr)
			require.NoError(t, err)
			require.NoError(t, fi.Close())
			require.NoError(t, fr.Close())

			sum, err := replay.Run(context.Background(), replay.Config{Rules: file, Interactions: iPath, Receipts: rPath,
				OutDir: filepath.Join(dir, "out")})
			require.NoError(t, err)
			require.Equal(t, int64(st.Malformed+st.Late), sum.RejectedTotal(), "rejected = malformed + late")
			require.LessOrEqual(t, sum.Duplicates, int64(st.Duplicates))
			require.GreaterOrEqual(t, sum.Duplicates, int64(st.Duplicates-st.Late))

			firing := map[string][]map[string]string{}
			for _, a := range readJSONL[alertLine](t, filepath.Join(dir, "out", "alerts.jsonl")) {
				if a.State == "firing" {
					firing[a.Rule] = append(firing[a.Rule], a.Labels)
				}
			}
			inj := st.Injected
			def := datagen.DefaultConfig()
			allHave := func(rule string, want map[string]string) {
				t.Helper()
				require.NotEmpty(t, firing[rule], "rule %s never fired", rule)
				for _, l := range firing[rule] {
					for k, v := range want {
						require.Equal(t, v, l[k], "rule %s fired for %v", rule, l)
					}
				}
			}
			allHave("revenue_drop_daily", map[string]string{"tenant": def.Tenants[0], "segment": "smb"})
			allHave("purchases_drop_hourly", map[string]string{"tenant": def.Tenants[0], "segment": "smb"})
			allHave("delivery_failure_rate", map[string]string{"channel": "sms", "provider": "twilio"})
			allHave("campaign_backlash", map[string]string{"tenant": def.Tenants[1]})
			require.Len(t, firing["campaign_backlash"], inj.BacklashCampaigns)
			require.True(t, strings.HasSuffix(firing["campaign_backlash"][0]["campaign_id"], "_newsletter"))
			require.Len(t, firing["complaint_burst"], inj.ComplaintBursts)
			require.Len(t, firing["complaint_unresolved"], inj.UnresolvedComplaints)
			require.Len(t, firing["message_undelivered"], inj.Undelivered)
			churn := len(firing["customer_churn"])
			require.GreaterOrEqual(t, churn, inj.ChurnedCustomers*8/10)
			require.LessOrEqual(t, churn, inj.ChurnedCustomers+def.Customers/20)

			policies := map[string]int{}
			for _, r := range readJSONL[resendLine](t, filepath.Join(dir, "out", "resends.jsonl")) {
				if r.Action == "resend" {
					policies[r.Policy]++
				}
			}
			require.Positive(t, policies["sms_retry"])
			require.Positive(t, policies["email_retry"])
		})
	}
}
