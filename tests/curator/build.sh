#!/usr/bin/env sh
# Compiles CuratorPeer.java by hand, for running it outside the tests:
#
#   tests/curator/build.sh [out-dir]    (default: /tmp/curator-peer)
#   java -cp "$(tests/curator/build.sh)" CuratorPeer 127.0.0.1:2181 latch /election me
#
# Prints the classpath to run it with. Needs javac (default-jdk-headless)
# and Apache Curator 5 from Debian (libcurator-recipes-java); the Rust test
# (tests/curator_interop.rs) uses the same jars from /usr/share/java.
set -eu
here="$(cd "$(dirname "$0")" && pwd)"
out="${1:-/tmp/curator-peer}"
jars=/usr/share/java
cp=""
for jar in curator-recipes curator-framework curator-client zookeeper zookeeper-jute guava slf4j-api; do
  [ -f "$jars/$jar.jar" ] || { echo "missing $jars/$jar.jar (apt-get install -y libcurator-recipes-java)" >&2; exit 1; }
  cp="$cp:$jars/$jar.jar"
done
# Silences the ZooKeeper client's logging when present.
[ -f "$jars/slf4j-nop.jar" ] && cp="$cp:$jars/slf4j-nop.jar"
mkdir -p "$out"
javac -nowarn -Xlint:none -d "$out" -cp "${cp#:}" "$here/CuratorPeer.java" >&2
echo "$out$cp"
