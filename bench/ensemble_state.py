#!/usr/bin/env python3
"""Three-member ensembles with large state, side by side: Apache ZooKeeper
3.8 against our zk-server (issue 10).

Two measurements per kind and round; rounds alternate the kinds (A B, B A,
...), each round on fresh ensembles:

- rejoin: the ensemble is filled with --state-mb MB of znodes of
  --value-size bytes; one follower is killed with SIGKILL while --missed
  setData go on; it is restarted on its data dir, and the time from its
  restart to serving again as a follower (`srvr` says follower and a
  session gets an answer) is taken. With --force-snap both kinds are told
  to never DIFF from the txn-log files (Apache:
  -Dzookeeper.snapshotSizeFactor=0; ours: snapshotSizeFactor=0), so the
  follower rejoins by SNAP; otherwise each decides by its own rule.
- memory: a constant tree of 200 znodes is overwritten --warmup times,
  then --overwrites times; every member's RSS before and after the second
  part gives the growth per 100k writes (the largest member's is
  reported). Apache runs with zkServer.sh's -Xmx1000m here and -Xmx3g in
  the rejoin trial (1000 MB runs out with 100 MB of state under load).

Output (in --out, default target/bench-ensemble-state/<timestamp>):
results.json (every raw number) and report.md (medians, ratios).

Needs kazoo (python3-kazoo) and the release zk-server
(`cargo build --release -p zk-server`). Reuses compare.py / ensemble.py
helpers. Every wait is bounded; every process started is stopped on exit.
"""

import argparse
import datetime
import json
import os
import shutil
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as cmp  # noqa: E402
import ensemble as ens  # noqa: E402

from kazoo.client import KazooClient  # noqa: E402

log = cmp.log


class StateMember(ens.Member):
    """An ensemble member with the knobs this benchmark needs."""

    force_snap = False
    # Apache's heap: zkServer.sh's 1000 MB runs out with 100 MB of state
    # under load, so the rejoin trial gives it more.
    apache_heap = "-Xmx1000m"

    def command(self, cfg):
        cmd = super().command(cfg)
        if self.kind == "apache":
            cmd[1] = self.apache_heap
        return cmd

    def config_lines(self):
        lines = super().config_lines()
        # Fast enough to fill; the measurement is not about fsync.
        lines = [l for l in lines if not l.startswith("forceSync=")] + ["forceSync=no"]
        # No periodic snapshot in the middle of a measurement.
        lines.append("snapCount=100000000")
        if self.force_snap:
            # Apache turns unknown zoo.cfg keys into zookeeper.<key>
            # system properties, so one line serves both kinds.
            lines.append("snapshotSizeFactor=0")
        return lines



class StateEnsemble(ens.Ensemble):
    def __init__(self, kind, workdir, opts, our_binary):
        super().__init__(kind, workdir, opts, our_binary)
        self.members = [
            StateMember(kind, workdir, opts.tick_time, our_binary, myid, opts) for myid in (1, 2, 3)
        ]
        for m in self.members:
            m.peers = self.members
            m.force_snap = opts.force_snap


def client(ensemble, members=None):
    hosts = ",".join(m.connect_string() for m in (members or ensemble.members))
    zk = KazooClient(hosts=hosts, timeout=30)
    zk.start(timeout=60)
    return zk


def pipelined(calls, window=1000, limit=600):
    """Runs zero-argument async calls, `window` in flight at a time."""
    deadline = time.monotonic() + limit
    pending = []
    for call in calls:
        pending.append(call())
        if len(pending) >= window:
            for p in pending:
                p.get(timeout=max(1, deadline - time.monotonic()))
            pending = []
    for p in pending:
        p.get(timeout=max(1, deadline - time.monotonic()))


def rejoin_trial(ensemble, opts):
    """Fills the ensemble, kills a follower, writes, restarts it; returns
    seconds from the restart to serving as a follower."""
    nodes = opts.state_mb * 1024 * 1024 // opts.value_size
    value = b"v" * opts.value_size
    zk = client(ensemble)
    try:
        zk.create("/big")
        t = time.monotonic()
        pipelined(lambda i=i: zk.create_async(f"/big/n{i:08d}", value) for i in range(nodes))
        log(f"{ensemble.kind}: {nodes} znodes ({opts.state_mb} MB) in {time.monotonic() - t:.1f}s")
        leader = ensemble.leader()
        follower = next(m for m in ensemble.members if m is not leader)
        follower.kill()
        others = [m for m in ensemble.members if m is not follower]
        zk.stop()
        zk = client(ensemble, others)
        pipelined(
            lambda i=i: zk.set_async(f"/big/n{i % nodes:08d}", b"w" * opts.value_size)
            for i in range(opts.missed)
        )
    finally:
        zk.stop()
        zk.close()
    restarted = time.monotonic()
    follower.launch(fresh=False)
    deadline = restarted + opts.rejoin_limit
    while time.monotonic() < deadline:
        if ens.mode_of(follower.port) == "follower" and ens.probe(follower.port):
            return time.monotonic() - restarted
        time.sleep(0.02)
    raise RuntimeError(f"{ensemble.kind}: the follower did not rejoin in {opts.rejoin_limit}s")


def memory_trial(ensemble, opts):
    """RSS (KiB) of every member before and after the overwrites."""
    zk = client(ensemble)
    try:
        for i in range(200):
            zk.create(f"/c{i}", b"x" * 100)
        # Warm up: first allocations, JIT, log files, heap sizing.
        pipelined(lambda i=i: zk.set_async(f"/c{i % 200}", b"y" * 100) for i in range(opts.warmup))
        before = [cmp.rss_kib(m.pid) for m in ensemble.members]
        t = time.monotonic()
        pipelined(
            lambda i=i: zk.set_async(f"/c{i % 200}", b"z" * 100) for i in range(opts.overwrites)
        )
        took = time.monotonic() - t
        after = [cmp.rss_kib(m.pid) for m in ensemble.members]
    finally:
        zk.stop()
        zk.close()
    return {"before_kib": before, "after_kib": after, "seconds": took}


def growth_per_100k(trial, overwrites):
    """The largest member growth, in MB per 100k writes."""
    grow = [a - b for a, b in zip(trial["after_kib"], trial["before_kib"])]
    return max(grow) / 1024 * 100_000 / overwrites


def run(opts):
    ours = opts.binary
    if not os.path.exists(ours):
        raise SystemExit(f"missing {ours}: cargo build --release -p zk-server")
    kinds = ["ours"] if opts.ours_only else cmp.SERVERS
    if "apache" in kinds and not os.path.exists("/usr/share/java/zookeeper.jar"):
        raise SystemExit("Apache ZooKeeper not found: apt-get install -y zookeeper")
    out = opts.out or os.path.join(
        cmp.REPO, "target", "bench-ensemble-state", datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    )
    os.makedirs(out, exist_ok=True)
    results = {"options": vars(opts), "rounds": []}
    workdir = tempfile.mkdtemp(prefix="zk-ens-state-")
    for rnd in range(opts.rounds):
        order = kinds if rnd % 2 == 0 else list(reversed(kinds))
        for kind in order:
            row = {"round": rnd, "kind": kind}
            for what in ("rejoin",) if opts.skip_memory else ("rejoin", "memory"):
                e = StateEnsemble(kind, workdir, opts, ours)
                for m in e.members:
                    m.apache_heap = "-Xmx3g" if what == "rejoin" else "-Xmx1000m"
                try:
                    e.start(limit=120)
                    if what == "rejoin":
                        row["rejoin_s"] = rejoin_trial(e, opts)
                        log(f"round {rnd} {kind}: rejoin {row['rejoin_s']:.2f}s")
                    else:
                        row["memory"] = memory_trial(e, opts)
                        g = growth_per_100k(row["memory"], opts.overwrites)
                        log(f"round {rnd} {kind}: RSS growth {g:.1f} MB per 100k writes")
                finally:
                    e.save_logs(os.path.join(out, "logs"), f"r{rnd}-{what}")
                    e.stop()
                    for m in e.members:
                        shutil.rmtree(m.dir, ignore_errors=True)
            results["rounds"].append(row)
    shutil.rmtree(workdir, ignore_errors=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    report = render(results, opts)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(report)
    print(report)


def render(results, opts):
    def med(kind, key):
        values = [r[key] for r in results["rounds"] if r["kind"] == kind and key in r]
        return cmp.median(values) if values else None

    for r in results["rounds"]:
        if "memory" in r:
            r["growth_mb_per_100k"] = growth_per_100k(r["memory"], opts.overwrites)
    sync = "SNAP forced" if opts.force_snap else "each kind's own DIFF/SNAP rule"
    lines = [
        f"State {opts.state_mb} MB ({opts.value_size}-byte znodes), follower missed "
        f"{opts.missed} txns, {sync}; {opts.overwrites} overwrites of 200 znodes; "
        f"median of {opts.rounds} rounds.",
        "",
        "| | Apache 3.8 | zk-server | ours / Apache |",
        "|---|---|---|---|",
    ]
    for key, label in (("rejoin_s", "follower rejoin (s)"), ("growth_mb_per_100k", "max member RSS growth (MB / 100k writes)")):
        a, o = med("apache", key), med("ours", key)
        lines.append(f"| {label} | {cmp.fmt(a, 2)} | {cmp.fmt(o, 2)} | {cmp.fmt(cmp.ratio(o, a), 2)} |")
    return "\n".join(lines) + "\n"


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--state-mb", type=int, default=100)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--missed", type=int, default=3000)
    p.add_argument("--overwrites", type=int, default=200_000)
    p.add_argument("--warmup", type=int, default=100_000, help="overwrites before the RSS baseline")
    p.add_argument("--force-snap", action="store_true")
    p.add_argument("--tick-time", type=int, default=2000)
    p.add_argument("--init-limit", type=int, default=10)
    p.add_argument("--sync-limit", type=int, default=5)
    p.add_argument("--rejoin-limit", type=float, default=120)
    p.add_argument("--ours-only", action="store_true", help="skip Apache (a quick check)")
    p.add_argument("--skip-memory", action="store_true", help="rejoin only")
    p.add_argument("--binary", default=os.path.join(cmp.REPO, "target", "release", "zk-server"))
    p.add_argument("--out")
    return p.parse_args(argv)


if __name__ == "__main__":
    run(parse_args(sys.argv[1:]))
