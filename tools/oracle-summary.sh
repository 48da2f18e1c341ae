#!/usr/bin/env bash
# Counts the oracle-dependent tests of the last run from the records the
# test kit writes (tests/support/oracle.rs): how many ran against Apache
# ZooKeeper, Java, Curator, kazoo, cli_mt or zkCli, and how many were
# skipped (each skipped one listed). Usage: tools/oracle-summary.sh [LOG]
set -euo pipefail
cd "$(dirname "$0")/.."
log="${1:-${ZK_ORACLE_LOG:-target/debug/oracle-tests.log}}"
if [ ! -f "$log" ]; then
  echo "oracle-dependent tests: no records in $log (none ran)"
  exit 0
fi
count() { awk -F'\t' -v o="$1" '$1 == o { print $3 }' "$log" | sort -u | wc -l; }
ran=$(count ran)
skipped=$(count skipped)
failed=$(count failed)
echo "oracle-dependent tests: $ran ran, $skipped skipped, $failed failed for a missing oracle"
if [ "$skipped" -gt 0 ]; then
  echo "skipped (oracle missing):"
  awk -F'\t' '$1 == "skipped" { print "  " $3 " (" $2 ")" }' "$log" | sort -u
fi
