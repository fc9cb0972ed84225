#!/usr/bin/env bash
# Prints what a replay produced in a form a person can read: alert counts by
# rule and state, a few alerts, and a few resend triggers.
set -euo pipefail
dir=${1:?usage: demo-report.sh DIR}
python3 - "$dir" <<'PY'
import json, sys, collections
d = sys.argv[1]
alerts = [json.loads(l) for l in open(f"{d}/alerts.jsonl")]
resends = [json.loads(l) for l in open(f"{d}/resends.jsonl")]
rejected = [json.loads(l) for l in open(f"{d}/rejected.jsonl")]
print(f"\n== {len(alerts)} alert records ==")
by = collections.Counter((a["rule"], a["kind"], a["state"]) for a in alerts)
for (rule, kind, state), n in sorted(by.items()):
    print(f"  {rule:28} {kind:11} {state:9} {n}")
print("\n== examples ==")
shown = set()
for a in alerts:
    if (a["rule"], a["state"]) in shown:
        continue
    shown.add((a["rule"], a["state"]))
    labels = ",".join(f"{k}={v}" for k, v in sorted(a["labels"].items()) if k != "alertname")
    summary = a["annotations"].get("summary", "")
    print(f"  [{a['severity'] or '-':8}] {a['state']:8} {a['rule']:24} {labels}  value={a['value']:.4g} threshold={a['threshold']:.4g} starts={a['starts_at']}  {summary}")
print(f"\n== {len(resends)} resend records ==")
byr = collections.Counter((r["policy"], r["action"], r["reason"]) for r in resends)
for (p, act, reason), n in sorted(byr.items()):
    print(f"  {p:20} {act:7} {reason:12} {n}")
for r in resends[:5]:
    print(f"  {r['action']:6} {r['trigger_id'][:12]} msg={r['message_id']} cust={r['customer_id']} attempt={r['attempt']} via {r['channel']} not_before={r['not_before']} ({r['reason']})")
print(f"\n== {len(rejected)} rejected records ==")
for reason, n in sorted(collections.Counter(r["reason"] for r in rejected).items()):
    print(f"  {reason:14} {n}")
PY
