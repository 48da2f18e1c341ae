#!/usr/bin/env bash
# Re-capture all golden wire fixtures (zk-proto/tests/fixtures/*.txt) from
# scratch against a real Apache ZooKeeper 3.8 server. See README.md.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

missing=()
[ -f /usr/share/java/zookeeper.jar ] || missing+=("apt: zookeeper")
[ -x /usr/lib/zookeeper/bin/cli_mt ] || missing+=("apt: zookeeper-bin")
command -v javac >/dev/null || missing+=("apt: default-jdk-headless")
python3 -c 'import kazoo' 2>/dev/null || missing+=("pip: kazoo")
if [ ${#missing[@]} -gt 0 ]; then
  echo "missing prerequisites: ${missing[*]}" >&2
  echo "  apt-get update && apt-get install -y zookeeper zookeeper-bin default-jdk-headless && pip install kazoo" >&2
  exit 2
fi

timeout 1200 python3 "$here/capture_all.py" "$@"
python3 "$here/check_fixtures.py"
