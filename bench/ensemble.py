#!/usr/bin/env python3
"""Three-member ensembles side by side: Apache ZooKeeper 3.8 against our
zk-server.

Each kind runs as three processes on 127.0.0.1 with equivalent zoo.cfg
files (compare.py's standalone settings plus initLimit, syncLimit, three
server.N lines and a myid file per member). Rounds alternate the kinds
(A B, B A, A B ...); in each round a fresh ensemble is started, and:

- write and read throughput go through all three members (zk-bench with a
  connect string naming all three, so its sessions spread over them);
- leader failover trials (--failovers per kind in all, spread over the
  rounds): zk-bench `failover` keeps a few writers going, the leader found
  via `srvr` is killed with SIGKILL, and the time from the kill to the
  first successful write issued after the writers saw the failure is
  taken from zk-bench's outage report. `srvr` on the survivors also gives
  the time until a new leader is announced. The killed member is then
  restarted on its data dir, and the next trial waits until it has
  rejoined (three members serving, one leader).

Output (in --out, default target/bench-ensemble/<timestamp>): results.json
(every raw number), report.md, throughput.svg, failover.svg, and logs/
(each member's log, per round).

Reuses compare.py's helpers (server processes, zk-bench runner, medians,
SVG panels). Standard library only; every wait is bounded and every process
started is stopped on exit.
"""

import argparse
import datetime
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare as cmp  # noqa: E402  (after the path is set)

SERVERS = cmp.SERVERS
WORKLOADS = ["write", "read", "mixed"]
MEASURING = b"zk-bench: measuring"


# --------------------------------------------------------------------------
# Four-letter words


def four_letter(port, word, timeout=1.0):
    """Sends a four-letter word to a client port; the reply as text."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        s.sendall(word.encode())
        chunks = []
        while True:
            chunk = s.recv(4096)
            if not chunk:
                break
            chunks.append(chunk)
    return b"".join(chunks).decode(errors="replace")


def parse_mode(srvr_text):
    """`leader`, `follower`, ... from a srvr reply; None when the member
    does not serve (no Mode line)."""
    for line in srvr_text.splitlines():
        if line.startswith("Mode:"):
            return line.split(":", 1)[1].strip()
    return None


def mode_of(port):
    try:
        return parse_mode(four_letter(port, "srvr"))
    except OSError:
        return None


# --------------------------------------------------------------------------
# Ensembles


class Member(cmp.Server):
    """One ensemble member: compare.py's server plus its quorum ports."""

    def __init__(self, kind, workdir, tick_time, our_binary, myid, opts):
        super().__init__(kind, workdir, tick_time, our_binary)
        self.myid = myid
        self.quorum_port = cmp.free_port()
        self.election_port = cmp.free_port()
        self.init_limit = opts.init_limit
        self.sync_limit = opts.sync_limit
        self.peers = []

    def server_line(self):
        return f"server.{self.myid}=127.0.0.1:{self.quorum_port}:{self.election_port}"

    def config_lines(self):
        return super().config_lines() + [
            f"initLimit={self.init_limit}",
            f"syncLimit={self.sync_limit}",
            *(p.server_line() for p in self.peers),
        ]

    def write_config(self, fresh=True):
        cfg = super().write_config(fresh)
        with open(os.path.join(self.data_dir, "myid"), "w") as f:
            f.write(f"{self.myid}\n")
        return cfg

    def kill(self):
        """SIGKILL, as a crash: no shutdown, no flush."""
        self.proc.kill()
        self.proc.wait(timeout=15)
        self.proc = None
        self.log.close()
        self.log = None


def quorum_ready(modes):
    """Whether every member serves and exactly one leads."""
    values = list(modes.values())
    return all(values) and values.count("leader") == 1


class Ensemble:
    """Three members of one kind."""

    def __init__(self, kind, workdir, opts, our_binary):
        self.kind = kind
        self.members = [
            Member(kind, workdir, opts.tick_time, our_binary, myid, opts) for myid in (1, 2, 3)
        ]
        for m in self.members:
            m.peers = self.members

    def connect_string(self):
        return ",".join(m.connect_string() for m in self.members)

    @property
    def pids(self):
        return [pid for m in self.members for pid in m.pids]

    def modes(self):
        return {m.myid: (mode_of(m.port) if m.proc else None) for m in self.members}

    def leader(self):
        for m in self.members:
            if m.proc and mode_of(m.port) == "leader":
                return m
        return None

    def start(self, limit):
        """Starts all three on fresh data dirs; seconds until all serve."""
        started = time.monotonic()
        for m in self.members:
            m.launch(fresh=True)
        self.wait_ready(started, limit)
        return time.monotonic() - started

    def wait_ready(self, since, limit):
        """Waits until every member serves requests and one leads."""
        modes = {}
        while time.monotonic() - since < limit:
            for m in self.members:
                if m.proc and m.proc.poll() is not None:
                    raise RuntimeError(f"{self.kind} member {m.myid} exited; see {m.log.name}")
            modes = self.modes()
            if quorum_ready(modes) and all(probe(m.port) for m in self.members):
                return modes
            time.sleep(0.05)
        raise RuntimeError(f"{self.kind} ensemble not ready within {limit}s: modes {modes}")

    def stop(self):
        for m in self.members:
            m.stop()

    def save_logs(self, dest, tag):
        os.makedirs(dest, exist_ok=True)
        for m in self.members:
            src = os.path.join(m.dir, "server.log")
            if os.path.exists(src):
                shutil.copy(src, os.path.join(dest, f"{self.kind}-{tag}-member{m.myid}.log"))
            # The next round starts with a fresh log.
            if not m.proc and os.path.exists(src):
                os.remove(src)


def probe(port):
    try:
        return cmp.zk_probe(port)
    except (OSError, ConnectionError, ValueError):
        return False


# --------------------------------------------------------------------------
# Failover


def failover_times(outages, kill_unix_us):
    """The outage the kill caused, in seconds from the kill: the first
    outage whose first failure came after the kill. None when no write
    failed after the kill."""
    after = [o for o in outages if o["first_error_unix_us"] >= kill_unix_us]
    if not after:
        return None
    o = after[0]

    def since_kill(us):
        return None if us is None else (us - kill_unix_us) / 1e6

    gap = None
    if o["first_ack_unix_us"] is not None and o["last_ack_unix_us"] is not None:
        gap = (o["first_ack_unix_us"] - o["last_ack_unix_us"]) / 1e6
    return {
        "resume_s": since_kill(o["first_ack_unix_us"]),
        "first_error_s": since_kill(o["first_error_unix_us"]),
        "gap_s": gap,
        "errors": o["errors"],
        "stragglers": o["stragglers"],
    }


def read_until(stream, marker, limit):
    """Reads a pipe until `marker` appears or `limit` seconds pass; what was
    read. Reads the file descriptor directly so nothing is left in a
    Python buffer for communicate() to miss."""
    fd = stream.fileno()
    seen = b""
    deadline = time.monotonic() + limit
    while marker not in seen:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        ready, _, _ = select.select([fd], [], [], left)
        if not ready:
            break
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        seen += chunk
    return seen


def wait_for_leader(members, limit):
    """Seconds until one of `members` says it leads (None if none does)."""
    started = time.monotonic()
    while time.monotonic() - started < limit:
        for m in members:
            if mode_of(m.port) == "leader":
                return time.monotonic() - started, m.myid
        time.sleep(0.02)
    return None, None


def failover_trial(bench, ensemble, opts):
    leader = ensemble.leader()
    if leader is None:
        raise RuntimeError(f"{ensemble.kind}: no leader before the trial: {ensemble.modes()}")
    cmd = [
        bench, "failover", "--connect", ensemble.connect_string(),
        "--sessions", str(opts.writers), "--in-flight", "1",
        "--value-size", str(opts.value_size),
        "--warmup", "1s", "--duration", f"{opts.failover_limit}s", "--json",
    ]
    env = dict(os.environ, RUST_LOG="error")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    trial = {"killed": leader.myid}
    try:
        early = read_until(proc.stderr, MEASURING, 30)
        if MEASURING not in early:
            raise RuntimeError(f"zk-bench failover did not start writing: {early.decode(errors='replace')}")
        # Writes have been flowing for the warm-up; let them run a little
        # inside the measured window before the crash.
        time.sleep(opts.pre_kill)
        kill_unix_us = int(time.time() * 1e6)
        leader.kill()
        survivors = [m for m in ensemble.members if m is not leader]
        elected_s, new_leader = wait_for_leader(survivors, opts.failover_limit)
        trial.update({"elected_s": elected_s, "new_leader": new_leader})
        out, err = proc.communicate(timeout=opts.failover_limit + 60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=15)
    if proc.returncode != 0:
        raise RuntimeError(f"zk-bench failover failed: {err.decode(errors='replace').strip()}")
    report = json.loads(out)
    trial["outages"] = report.get("outages", [])
    trial["kill_unix_us"] = kill_unix_us
    trial["writes_per_s"] = report["throughput_per_s"]
    trial["errors"] = report["errors"]
    times = failover_times(trial["outages"], kill_unix_us)
    trial.update(times or {"resume_s": None})
    # Bring the member back on its own data and wait for it to rejoin.
    since = leader.launch(fresh=False)
    ensemble.wait_ready(since, opts.rejoin_limit)
    trial["rejoin_s"] = time.monotonic() - since
    return trial


# --------------------------------------------------------------------------
# Summary, report, charts


def summarize(results):
    summary = {"workloads": {}, "failover": {}}
    for workload in results["workloads"]:
        row = {}
        for kind in SERVERS:
            runs = results["runs"][workload][kind]
            row[kind] = {
                "throughput_per_s": cmp.median([r["throughput_per_s"] for r in runs]),
                "p50_us": cmp.median([r["latency"]["p50_us"] for r in runs]),
                "p99_us": cmp.median([r["latency"]["p99_us"] for r in runs]),
                "server_cpu_percent": cmp.median([r.get("server_cpu_percent") for r in runs]),
                "errors": sum(sum(r["errors"].values()) for r in runs),
            }
        row["throughput_ratio"] = cmp.ratio(row["ours"]["throughput_per_s"], row["apache"]["throughput_per_s"])
        row["p99_ratio"] = cmp.ratio(row["ours"]["p99_us"], row["apache"]["p99_us"])
        summary["workloads"][workload] = row
    for metric in ["resume_s", "elected_s", "gap_s", "rejoin_s"]:
        row = {}
        for kind in SERVERS:
            trials = results["failover"][kind]
            row[kind] = {
                "median": cmp.median([t.get(metric) for t in trials]),
                "values": [t.get(metric) for t in trials],
            }
        row["ratio"] = cmp.ratio(row["ours"]["median"], row["apache"]["median"])
        summary["failover"][metric] = row
    summary["startup_s"] = {k: cmp.median(results["startup_s"][k]) for k in SERVERS}
    summary["unrecovered"] = {
        k: sum(1 for t in results["failover"][k] if t.get("resume_s") is None) for k in SERVERS
    }
    return summary


FAILOVER_LABELS = {
    "resume_s": "kill to first successful write (s)",
    "elected_s": "kill to a survivor saying `Mode: leader` (s)",
    "gap_s": "last write ack before to first after (s)",
    "rejoin_s": "restart of the killed member to all three serving (s)",
}


def render_markdown(results, summary):
    opts = results["options"]
    lines = [
        f"# Three-member ensembles, zk-server vs Apache ZooKeeper 3.8: {results['started']}",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['kernel']}. Each ensemble: "
        f"3 processes on 127.0.0.1, tickTime {opts['tick_time']} ms, initLimit {opts['init_limit']}, "
        f"syncLimit {opts['sync_limit']}, fsync on, fresh data dirs per round.",
        f"Throughput: {opts['sessions']} sessions x {opts['in_flight']} in flight over all three members, "
        f"{opts['value_size']} B values, {opts['duration']} s measured after {opts['warmup']} s warm-up, "
        f"{opts['rounds']} rounds alternating Apache / ours; medians. Server CPU is the sum of the 3 members.",
        "",
        "| workload | Apache ops/s | ours ops/s | ours/Apache | Apache p99 us | ours p99 us | ours/Apache p99 | Apache CPU % | ours CPU % |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload, row in summary["workloads"].items():
        a, o = row["apache"], row["ours"]
        lines.append(
            f"| {workload} | {cmp.fmt(a['throughput_per_s'])} | {cmp.fmt(o['throughput_per_s'])} | "
            f"{cmp.fmt(row['throughput_ratio'], 2)} | {cmp.fmt(a['p99_us'])} | {cmp.fmt(o['p99_us'])} | "
            f"{cmp.fmt(row['p99_ratio'], 2)} | {cmp.fmt(a['server_cpu_percent'])} | {cmp.fmt(o['server_cpu_percent'])} |"
        )
    lines += ["", "Per-round throughput (ops/s):", ""]
    for workload in summary["workloads"]:
        for kind in SERVERS:
            values = ", ".join(cmp.fmt(r["throughput_per_s"]) for r in results["runs"][workload][kind])
            lines.append(f"- {workload}, {kind}: {values}")
    errors = {w: (r["apache"]["errors"], r["ours"]["errors"]) for w, r in summary["workloads"].items()}
    if any(a or o for a, o in errors.values()):
        lines += ["", "Request errors (Apache / ours): " + ", ".join(f"{w} {a}/{o}" for w, (a, o) in errors.items())]
    else:
        lines += ["", "No request failed in any throughput run."]
    lines += [
        "",
        f"## Leader failover (median of {opts['failovers']} trials per server)",
        "",
        f"{opts['writers']} writers (one setData at a time each) through all three members; "
        f"the leader (found with `srvr`) is killed with SIGKILL {opts['pre_kill']} s into the measured window.",
        "",
        "| | Apache | ours | ours/Apache |",
        "|---|---:|---:|---:|",
    ]
    for metric, row in summary["failover"].items():
        lines.append(
            f"| {FAILOVER_LABELS[metric]} | {cmp.fmt(row['apache']['median'], 3)} | "
            f"{cmp.fmt(row['ours']['median'], 3)} | {cmp.fmt(row['ratio'], 2)} |"
        )
    lines += ["", "Every trial (seconds; n/a = not observed):", ""]
    for metric, row in summary["failover"].items():
        for kind in SERVERS:
            values = ", ".join(cmp.fmt(v, 3) for v in row[kind]["values"])
            lines.append(f"- {FAILOVER_LABELS[metric]}, {kind}: {values}")
    unrecovered = summary["unrecovered"]
    if any(unrecovered.values()):
        lines += [
            "",
            "Trials in which writes did not resume within "
            f"{opts['failover_limit']} s: " + ", ".join(f"{k} {n}" for k, n in unrecovered.items()),
        ]
    lines += [
        "",
        "Ensemble start-up (all three serving, one leader; median s): "
        + ", ".join(f"{k} {cmp.fmt(v, 2)}" for k, v in summary["startup_s"].items()),
        "",
        "Charts: throughput.svg, failover.svg.",
        "",
    ]
    return "\n".join(lines)


def seconds_label(value):
    return f"{value:.2f}s"


def write_charts(out, summary):
    throughput = {
        w: {k: {"throughput_per_s": row[k]["throughput_per_s"]} for k in SERVERS}
        for w, row in summary["workloads"].items()
    }
    with open(os.path.join(out, "throughput.svg"), "w") as f:
        f.write(cmp.svg_panels("3-member ensemble throughput (median of rounds)",
                               throughput, "throughput_per_s", "ops/s", False))
    names = {"resume_s": "kill to first write", "elected_s": "kill to new leader", "gap_s": "write gap"}
    failover = {
        names[m]: {k: {"seconds": summary["failover"][m][k]["median"]} for k in SERVERS}
        for m in names
    }
    with open(os.path.join(out, "failover.svg"), "w") as f:
        f.write(cmp.svg_panels("Leader failover, SIGKILL (median of trials)",
                               failover, "seconds", "seconds", True, label=seconds_label))


# --------------------------------------------------------------------------
# The comparison


def trials_per_round(total, rounds):
    """Spreads `total` failover trials over `rounds` as evenly as possible,
    earlier rounds taking the remainder: 5 over 3 gives [2, 2, 1]."""
    base, extra = divmod(total, rounds)
    return [base + (1 if r < extra else 0) for r in range(rounds)]


def run(opts):
    bench, ours = cmp.binaries()
    workdir = tempfile.mkdtemp(prefix="zk-ensemble-")
    os.makedirs(opts.out, exist_ok=True)
    logs = os.path.join(opts.out, "logs")
    ensembles = {k: Ensemble(k, workdir, opts, ours) for k in SERVERS}
    results = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": " ".join(os.uname()[2:3])},
        "options": vars(opts),
        "workloads": opts.workloads,
        "runs": {w: {k: [] for k in SERVERS} for w in opts.workloads},
        "failover": {k: [] for k in SERVERS},
        "startup_s": {k: [] for k in SERVERS},
        "failures": [],
    }

    def stop_all():
        for e in ensembles.values():
            e.stop()

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(1)))
    began = time.monotonic()
    try:
        for rnd, trials in enumerate(trials_per_round(opts.failovers, opts.rounds)):
            order = SERVERS if rnd % 2 == 0 else list(reversed(SERVERS))
            for kind in order:
                ensemble = ensembles[kind]
                try:
                    run_round(bench, ensemble, rnd, trials, opts, results)
                except (RuntimeError, subprocess.TimeoutExpired, ValueError) as e:
                    # Record and go on: one misbehaving ensemble must not
                    # hide the other's numbers.
                    cmp.log(f"round {rnd + 1} {kind}: FAILED: {e}")
                    results["failures"].append({"round": rnd + 1, "kind": kind, "error": str(e),
                                                "modes": ensemble.modes()})
                finally:
                    ensemble.stop()
                    ensemble.save_logs(logs, f"round{rnd + 1}")
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)
    results["elapsed_s"] = time.monotonic() - began

    summary = summarize(results)
    results["summary"] = summary
    with open(os.path.join(opts.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    report = render_markdown(results, summary)
    if results["failures"]:
        report += "\nFailures:\n\n" + "\n".join(
            f"- round {f['round']} {f['kind']}: {f['error']} (modes {f['modes']})" for f in results["failures"]
        ) + "\n"
    with open(os.path.join(opts.out, "report.md"), "w") as f:
        f.write(report)
    write_charts(opts.out, summary)
    cmp.log(f"report written to {opts.out} ({results['elapsed_s']:.0f} s)")
    print(report)


def run_round(bench, ensemble, rnd, trials, opts, results):
    kind = ensemble.kind
    startup = ensemble.start(opts.start_limit)
    results["startup_s"][kind].append(startup)
    leader = ensemble.leader()
    cmp.log(f"round {rnd + 1}/{opts.rounds} {kind}: ensemble up in {startup:.2f}s, leader {leader.myid if leader else '?'}")
    for workload in opts.workloads:
        extra = ["--read-ratio", str(opts.read_ratio)] if workload == "mixed" else []
        report = cmp.run_bench(bench, ensemble, workload, opts, extra)
        results["runs"][workload][kind].append(report)
        cmp.log(
            f"  {workload:<6} {report['throughput_per_s']:>9.0f}/s  p99 {report['latency']['p99_us']:>7} us  "
            f"CPU (3 members) {report.get('server_cpu_percent', 0):.0f}%"
        )
    for _ in range(trials):
        trial = failover_trial(bench, ensemble, opts)
        trial["round"] = rnd + 1
        results["failover"][kind].append(trial)
        cmp.log(
            f"  failover: killed {trial['killed']}, new leader {trial.get('new_leader')} after "
            f"{cmp.fmt(trial.get('elected_s'), 3)}s, writes back after {cmp.fmt(trial.get('resume_s'), 3)}s, "
            f"rejoined in {trial['rejoin_s']:.2f}s"
        )


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="ensemble starts per kind (alternating)")
    p.add_argument("--failovers", type=int, default=5, help="failover trials per kind, spread over the rounds")
    p.add_argument("--duration", type=float, default=5, help="measured seconds per throughput run")
    p.add_argument("--warmup", type=float, default=2)
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--in-flight", type=int, default=8)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--read-ratio", type=int, default=90)
    p.add_argument("--workloads", default="write,read", help=f"any of {','.join(WORKLOADS)}")
    p.add_argument("--writers", type=int, default=4, help="writers during a failover trial")
    p.add_argument("--pre-kill", type=float, default=1.0, help="seconds of measured writes before the kill")
    p.add_argument("--failover-limit", type=float, default=30, help="longest a trial waits for writes to resume")
    p.add_argument("--rejoin-limit", type=float, default=60)
    p.add_argument("--start-limit", type=float, default=60)
    p.add_argument("--tick-time", type=int, default=2000)
    p.add_argument("--init-limit", type=int, default=10)
    p.add_argument("--sync-limit", type=int, default=5)
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--out", default=None)
    opts = p.parse_args(argv)
    opts.workloads = [w for w in opts.workloads.split(",") if w]
    unknown = [w for w in opts.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads: {unknown}")
    if opts.rounds < 1 or opts.failovers < 0:
        p.error("--rounds must be at least 1 and --failovers not negative")
    if opts.out is None:
        opts.out = os.path.join(cmp.REPO, "target", "bench-ensemble", time.strftime("%Y%m%d-%H%M%S"))
    return opts


if __name__ == "__main__":
    options = parse_args(sys.argv[1:])
    cmp.build(options.skip_build)
    run(options)
