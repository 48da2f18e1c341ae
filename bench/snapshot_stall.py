#!/usr/bin/env python3
"""Other clients' latency while a server snapshots a big tree, ours vs
Apache ZooKeeper 3.8 (issue 10; results in docs/PERFORMANCE.md).

For each server and round: populate a tree of --nodes znodes of
--value-size bytes, restart with snapshots off (snapCount 10^9) and
measure a probe (zk-bench read, --probe-sessions sessions x 1 in flight)
while a writer (zk-bench write) keeps writing; restart with a small
--snap-count so that the same writes take several snapshots of the big
tree during the window, and measure the probe again. The report gives the
probe's p50/p99/max with and without snapshots (median of the rounds;
servers alternate per round) and how many snapshot files each window
produced, so a window without a snapshot shows.

    python3 bench/snapshot_stall.py                    # defaults below
    python3 bench/snapshot_stall.py --nodes 400000 --rounds 3 --skip-build
"""

import argparse
import datetime
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (the shared server and zk-bench helpers)

NO_SNAPSHOTS = 1_000_000_000


class StallServer(compare.Server):
    """A standalone server whose snapCount (and Apache heap) is set here."""

    def __init__(self, kind, workdir, our_binary, heap):
        super().__init__(kind, workdir, 2000, our_binary)
        self.snap_count = NO_SNAPSHOTS
        self.heap = heap

    def config_lines(self):
        lines = super().config_lines()
        # Apache reads unknown zoo.cfg keys as zookeeper.* properties.
        lines.append(f"snapCount={self.snap_count}")
        return lines

    def command(self, cfg):
        cmd = super().command(cfg)
        if self.kind == "apache":
            cmd = [c if not c.startswith("-Xmx") else f"-Xmx{self.heap}" for c in cmd]
        return cmd

    def restart(self, limit=300.0):
        """Stops and starts again on the same data; seconds to serve."""
        self.stop()
        started = self.launch(fresh=False)
        while time.monotonic() - started < limit:
            if self.proc.poll() is not None:
                self.log.flush()
                with open(self.log.name, "rb") as f:
                    tail = f.read()[-2000:].decode("utf-8", "replace")
                raise RuntimeError(
                    f"{self.kind} exited early with code {self.proc.returncode}; "
                    f"{self.log.name} ends with:\n{tail}"
                )
            try:
                if compare.zk_probe(self.port):
                    return time.monotonic() - started
            except OSError:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} did not answer within {limit}s")

    def snapshot_files(self):
        v2 = os.path.join(self.data_dir, "version-2")
        if not os.path.isdir(v2):
            return 0
        return sum(1 for n in os.listdir(v2) if n.startswith("snapshot."))


def bench_cmd(bench, server, workload, sessions, in_flight, duration, warmup, extra=()):
    return [
        bench, workload, "--connect", server.connect_string(),
        "--sessions", str(sessions), "--in-flight", str(in_flight),
        "--duration", f"{duration}s", "--warmup", f"{warmup}s", "--json", *extra,
    ]


def populate(bench, server, opts):
    cmd = [
        bench, "populate", "--connect", server.connect_string(),
        "--count", str(opts.nodes), "--value-size", str(opts.value_size),
        "--sessions", "16", "--in-flight", "8", "--keep", "--json",
        "--root", "/ballast",
    ]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=1800)
    if out.returncode != 0:
        raise RuntimeError(f"populate failed: {out.stderr.strip()}")


def window(bench, server, opts):
    """The probe's latency while the writer writes; snapshot files made."""
    before = server.snapshot_files()
    # The writer covers the probe's whole run (set-up, warm-up, window).
    writer = subprocess.Popen(
        bench_cmd(bench, server, "write", opts.writer_sessions, opts.writer_in_flight,
                  opts.duration + opts.warmup + 4, 0, ["--value-size", str(opts.value_size),
                                                       "--root", "/writer"]),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )
    try:
        time.sleep(1.0)
        probe = subprocess.run(
            bench_cmd(bench, server, "read", opts.probe_sessions, 1, opts.duration,
                      opts.warmup, ["--value-size", "1024", "--root", "/probe"]),
            capture_output=True, text=True, timeout=opts.duration + opts.warmup + 120,
        )
    finally:
        try:
            out, err = writer.communicate(timeout=opts.duration + opts.warmup + 120)
        except subprocess.TimeoutExpired:
            writer.kill()
            out, err = writer.communicate()
    if probe.returncode != 0:
        raise RuntimeError(f"probe failed: {probe.stderr.strip()}")
    if writer.returncode != 0:
        raise RuntimeError(f"writer failed: {err.strip()}")
    report = json.loads(probe.stdout)
    writes = json.loads(out)
    return {
        "p50_us": report["latency"]["p50_us"],
        "p99_us": report["latency"]["p99_us"],
        "max_us": report["latency"]["max_us"],
        "probe_per_s": report["throughput_per_s"],
        "writes_per_s": writes["throughput_per_s"],
        "snapshots": server.snapshot_files() - before,
    }


def one_round(bench, ours, kind, workdir, opts):
    server = StallServer(kind, workdir, ours, opts.apache_heap)
    try:
        server.start(limit=120)
        compare.log(f"{kind}: populating {opts.nodes} x {opts.value_size} B")
        populate(bench, server, opts)
        server.snap_count = NO_SNAPSHOTS
        server.restart()
        compare.log(f"{kind}: window without snapshots")
        without = window(bench, server, opts)
        server.snap_count = opts.snap_count
        server.restart()
        compare.log(f"{kind}: window with snapshots every ~{opts.snap_count} txns")
        with_snaps = window(bench, server, opts)
        result = {"without": without, "with": with_snaps}
    except Exception:
        server.stop()
        # Kept for a look: the data and the server's log.
        compare.log(f"{kind} failed; its dir is kept: {server.dir}")
        raise
    server.stop()
    shutil.rmtree(server.dir, ignore_errors=True)
    return result


def median_of(rounds, phase, key):
    return compare.median([r[phase][key] for r in rounds])


def render(results):
    lines = [
        f"Snapshot stall, {results['started']}: {results['nodes']} znodes x "
        f"{results['value_size']} B, writer {results['writer']}, probe {results['probe']}, "
        f"snapCount {results['snap_count']} in the 'with' window; median of "
        f"{results['rounds']} rounds.",
        "",
        "| server | probe p50 ms (no snap / snap) | p99 ms (no snap / snap) | "
        "p99 ratio | max ms (no snap / snap) | snapshots per window | writes/s |",
        "|---|---|---|---|---|---|---|",
    ]
    for kind in compare.SERVERS:
        rounds = results["servers"][kind]
        if not rounds:
            continue
        def ms(phase, key):
            return median_of(rounds, phase, key) / 1000.0
        p99_ratio = ms("with", "p99_us") / max(ms("without", "p99_us"), 1e-9)
        lines.append(
            f"| {compare.LABELS[kind]} | {ms('without', 'p50_us'):.2f} / {ms('with', 'p50_us'):.2f} "
            f"| {ms('without', 'p99_us'):.2f} / {ms('with', 'p99_us'):.2f} | {p99_ratio:.2f}x "
            f"| {ms('without', 'max_us'):.1f} / {ms('with', 'max_us'):.1f} "
            f"| {[r['with']['snapshots'] for r in rounds]} "
            f"| {median_of(rounds, 'with', 'writes_per_s'):.0f} |"
        )
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--nodes", type=int, default=200_000)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--snap-count", type=int, default=20_000)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=int, default=15)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--probe-sessions", type=int, default=4)
    p.add_argument("--writer-sessions", type=int, default=4)
    p.add_argument("--writer-in-flight", type=int, default=8)
    p.add_argument("--apache-heap", default="4g")
    p.add_argument("--servers", default="apache,ours")
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--out", default=None)
    opts = p.parse_args(argv)

    compare.build(opts.skip_build)
    bench, ours = compare.binaries()
    workdir = tempfile.mkdtemp(prefix="zk-snapstall-")
    kinds = [k for k in opts.servers.split(",") if k]
    results = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "nodes": opts.nodes, "value_size": opts.value_size, "snap_count": opts.snap_count,
        "rounds": opts.rounds,
        "writer": f"{opts.writer_sessions} sessions x {opts.writer_in_flight} setData in flight",
        "probe": f"{opts.probe_sessions} sessions x 1 getData in flight",
        "servers": {k: [] for k in compare.SERVERS},
    }
    for r in range(opts.rounds):
        order = kinds if r % 2 == 0 else list(reversed(kinds))
        for kind in order:
            compare.log(f"round {r + 1}: {kind}")
            results["servers"][kind].append(one_round(bench, ours, kind, workdir, opts))
    shutil.rmtree(workdir, ignore_errors=True)
    text = render(results)
    print(text)
    out = opts.out or os.path.join(compare.REPO, "target", "bench-snapshot-stall")
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(out, "report.md"), "w") as f:
        f.write(text)


if __name__ == "__main__":
    main(sys.argv[1:])
