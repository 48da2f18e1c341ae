#!/bin/sh
# Side-by-side benchmark of Apache ZooKeeper 3.8 and zk-server.
# All options go to compare.py; see `bench/compare.sh --help`.
exec python3 "$(dirname "$0")/compare.py" "$@"
