#!/usr/bin/env python3
"""Side-by-side benchmark: Apache ZooKeeper 3.8 against our zk-server.

Both run standalone on 127.0.0.1 with equivalent zoo.cfg files (fsync on,
same tickTime, fresh temp data dirs). Every workload of `zk-bench` runs
against each server alternately (A B A B ...) for --rounds rounds; the
report gives the median of the rounds and the ratio ours / Apache.

Also measured, per server: start-up time (process start to the first
successful request), resident memory idle and after populating --populate
znodes of --value-size bytes, server CPU during each workload, and (one
extra, unmedianed pass with `perf stat`) syscalls, fsyncs and context
switches per request.

Output (in --out, default target/bench-compare/<timestamp>): results.json
(every raw number), report.md, throughput.svg, latency.svg.

Standard library only. Every wait is bounded; every process started is
stopped on exit, including on Ctrl-C.
"""

import argparse
import datetime
import json
import os
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
APACHE_CLASSPATH = "/etc/zookeeper/conf:/usr/share/java/zookeeper.jar"
APACHE_MAIN = "org.apache.zookeeper.server.quorum.QuorumPeerMain"
WORKLOADS = ["read", "write", "mixed", "create-delete", "watch", "churn"]
SERVERS = ["apache", "ours"]
LABELS = {"apache": "Apache ZooKeeper 3.8", "ours": "zk-server (Rust)"}
# Linux USER_HZ: /proc/<pid>/stat counts CPU time in these ticks.
CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
PERF_EVENTS = [
    "task-clock",
    "context-switches",
    "raw_syscalls:sys_enter",
    "syscalls:sys_enter_fdatasync",
    "syscalls:sys_enter_fsync",
    "syscalls:sys_enter_futex",
]


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Ports, /proc, and a ten-line ZooKeeper probe


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def rss_kib(pid):
    """VmRSS of a process, in KiB (None if it is gone)."""
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_seconds(pid):
    """User + system CPU seconds of a process (all threads)."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    # fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def total_cpu_seconds(pids):
    """CPU seconds of several processes together (None if any is gone)."""
    times = [cpu_seconds(pid) for pid in pids]
    if not times or any(t is None for t in times):
        return None
    return sum(times)


def _frame(payload):
    return struct.pack(">i", len(payload)) + payload


def _read_frame(sock):
    header = _read_exact(sock, 4)
    (length,) = struct.unpack(">i", header)
    return _read_exact(sock, length)


def _read_exact(sock, n):
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("closed")
        data += chunk
    return data


def zk_probe(port, timeout=2.0):
    """One session and one request: ConnectRequest, exists("/"),
    closeSession. True when the exists reply carries error code 0."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.settimeout(timeout)
        # ConnectRequest: protocolVersion, lastZxidSeen, timeOut, sessionId,
        # passwd (16 zero bytes), readOnly.
        connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"
        s.sendall(_frame(connect))
        reply = _read_frame(s)
        (_proto, timeout_ms, session_id) = struct.unpack(">iiq", reply[:16])
        if session_id == 0 or timeout_ms <= 0:
            return False
        path = b"/"
        exists = struct.pack(">ii", 1, 3) + struct.pack(">i", len(path)) + path + b"\0"
        s.sendall(_frame(exists))
        (xid, _zxid, err) = struct.unpack(">iqi", _read_frame(s)[:16])
        s.sendall(_frame(struct.pack(">ii", 2, -11)))
        return xid == 1 and err == 0


# --------------------------------------------------------------------------
# Servers


class Server:
    """One standalone server process with its own temp data dir."""

    def __init__(self, kind, workdir, tick_time, our_binary):
        self.kind = kind
        self.dir = tempfile.mkdtemp(prefix=f"zkcmp-{kind}-", dir=workdir)
        self.port = free_port()
        self.tick_time = tick_time
        self.our_binary = our_binary
        self.proc = None
        self.log = None

    @property
    def data_dir(self):
        return os.path.join(self.dir, "data")

    def config_lines(self):
        """The zoo.cfg, one key=value per line (bench/ensemble.py adds the
        ensemble's lines to these)."""
        lines = [
            f"tickTime={self.tick_time}",
            f"dataDir={self.data_dir}",
            f"clientPort={self.port}",
            "clientPortAddress=127.0.0.1",
            "forceSync=yes",
            "maxClientCnxns=0",
            "4lw.commands.whitelist=*",
        ]
        if self.kind == "apache":
            # The embedded Jetty admin server would take port 8080.
            lines.append("admin.enableServer=false")
        return lines

    def write_config(self, fresh=True):
        """Writes zoo.cfg; `fresh` also empties the data dir."""
        if fresh:
            shutil.rmtree(self.data_dir, ignore_errors=True)
        os.makedirs(self.data_dir, exist_ok=True)
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write("\n".join(self.config_lines()) + "\n")
        return cfg

    def command(self, cfg):
        if self.kind == "apache":
            # As zkServer.sh runs it: the default 1000 MB heap.
            return [
                "java",
                "-Xmx1000m",
                f"-Dzookeeper.log.dir={self.dir}",
                "-Dzookeeper.root.logger=INFO,CONSOLE",
                "-cp",
                APACHE_CLASSPATH,
                APACHE_MAIN,
                cfg,
            ]
        return [self.our_binary, cfg]

    def launch(self, fresh=True):
        """Starts the process without waiting for it to serve; returns the
        monotonic time it was started at."""
        cfg = self.write_config(fresh)
        self.log = open(os.path.join(self.dir, "server.log"), "ab")
        env = dict(os.environ, RUST_LOG="warn")
        started = time.monotonic()
        self.proc = subprocess.Popen(
            self.command(cfg), stdout=self.log, stderr=subprocess.STDOUT, env=env
        )
        return started

    def start(self, limit=60.0):
        """Starts a fresh server; returns seconds to the first successful
        request."""
        started = self.launch()
        while time.monotonic() - started < limit:
            if self.proc.poll() is not None:
                raise RuntimeError(f"{self.kind} exited early; see {self.log.name}")
            try:
                if zk_probe(self.port):
                    return time.monotonic() - started
            except (OSError, ConnectionError, struct.error):
                pass
            time.sleep(0.005)
        raise RuntimeError(f"{self.kind} did not answer within {limit}s")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    @property
    def pids(self):
        """Every process whose CPU counts as the server's."""
        return [self.pid] if self.pid else []

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=15)
        self.proc = None
        if self.log:
            self.log.close()
            self.log = None

    def connect_string(self):
        return f"127.0.0.1:{self.port}"


# --------------------------------------------------------------------------
# Running zk-bench


def run_bench(bench, server, workload, opts, extra=(), limit_pad=60):
    cmd = [
        bench,
        workload,
        "--connect",
        server.connect_string(),
        "--sessions",
        str(opts.sessions),
        "--in-flight",
        str(opts.in_flight),
        "--value-size",
        str(opts.value_size),
        "--duration",
        f"{opts.duration}s",
        "--warmup",
        f"{opts.warmup}s",
        "--json",
        *extra,
    ]
    limit = opts.duration + opts.warmup + limit_pad
    cpu_before = total_cpu_seconds(server.pids)
    wall = time.monotonic()
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=limit)
    wall = time.monotonic() - wall
    cpu_after = total_cpu_seconds(server.pids)
    if out.returncode != 0:
        raise RuntimeError(f"zk-bench {workload} failed: {out.stderr.strip()}")
    report = json.loads(out.stdout)
    if cpu_before is not None and cpu_after is not None:
        # Whole invocation (setup + warm-up + window + cleanup): close
        # enough to the window's load for a "was the server CPU-bound" read.
        report["server_cpu_percent"] = 100.0 * (cpu_after - cpu_before) / wall
    return report


def perf_profile(bench, server, workload, opts):
    """One run under `perf stat -p`, counting inside the measured window:
    zk-bench gets a 2 s warm-up, perf starts 2.5 s after launch (set-up of
    these workloads takes well under 0.5 s) and stops 1 s before the window
    ends."""
    if not shutil.which("perf"):
        return None
    duration = max(opts.duration, 3)
    cmd = [
        bench, workload, "--connect", server.connect_string(),
        "--sessions", str(opts.sessions), "--in-flight", str(opts.in_flight),
        "--value-size", str(opts.value_size), "--duration", f"{duration}s",
        "--warmup", "2s", "--json",
    ]
    bench_proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(2.5)
    span = duration - 1.0
    perf = subprocess.run(
        ["perf", "stat", "-x,", "-e", ",".join(PERF_EVENTS), "-p", str(server.pid),
         "--", "sleep", str(span)],
        capture_output=True, text=True, timeout=span + 30,
    )
    out, err = bench_proc.communicate(timeout=duration + 60)
    if bench_proc.returncode != 0:
        raise RuntimeError(f"zk-bench {workload} (profile) failed: {err.strip()}")
    report = json.loads(out)
    counts = parse_perf(perf.stderr)
    if not counts:
        return None
    ops = report["throughput_per_s"] * span
    if workload == "watch":
        # One fan-out round is one write plus a re-arming read per watcher.
        ops = ops * (1 + report.get("watchers", opts.sessions))
    per_op = {k: v / ops for k, v in counts.items() if ops > 0 and k != "task-clock"}
    return {
        "span_s": span,
        "throughput_per_s": report["throughput_per_s"],
        "cpus_utilized": counts.get("task-clock", 0.0) / 1000.0 / span,
        "counts": counts,
        "per_request": per_op,
    }


def parse_perf(text):
    counts = {}
    for line in text.splitlines():
        parts = line.split(",")
        if len(parts) < 3:
            continue
        try:
            value = float(parts[0])
        except ValueError:
            continue
        counts[parts[2]] = value
    return counts


# --------------------------------------------------------------------------
# Summaries


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def ratio(ours, apache):
    if ours is None or apache is None or apache == 0:
        return None
    return ours / apache


def summarize(results):
    """Median of the rounds per (workload, server)."""
    summary = {}
    for workload in results["workloads"]:
        row = {}
        for kind in SERVERS:
            runs = results["runs"][workload][kind]
            row[kind] = {
                "throughput_per_s": median([r["throughput_per_s"] for r in runs]),
                "p50_us": median([r["latency"]["p50_us"] for r in runs]),
                "p99_us": median([r["latency"]["p99_us"] for r in runs]),
                "p999_us": median([r["latency"]["p999_us"] for r in runs]),
                "server_cpu_percent": median([r.get("server_cpu_percent") for r in runs]),
                "client_cpu_percent": median([r.get("client_cpu_percent") for r in runs]),
                "errors": sum(sum(r["errors"].values()) for r in runs),
                "rounds": len(runs),
            }
        row["throughput_ratio"] = ratio(row["ours"]["throughput_per_s"], row["apache"]["throughput_per_s"])
        row["p99_ratio"] = ratio(row["ours"]["p99_us"], row["apache"]["p99_us"])
        summary[workload] = row
    return summary


def fmt(value, digits=0):
    if value is None:
        return "n/a"
    return f"{value:,.{digits}f}"


def render_markdown(results, summary):
    opts = results["options"]
    lines = [
        f"# zk-server vs Apache ZooKeeper 3.8: {results['started']}",
        "",
        f"Machine: {results['machine']['cpus']} CPUs, {results['machine']['kernel']}; "
        f"standalone, fsync on, tickTime {opts['tick_time']} ms.",
        f"Load: {opts['sessions']} sessions x {opts['in_flight']} in flight, {opts['value_size']} B values, "
        f"{opts['duration']} s measured after {opts['warmup']} s warm-up, {opts['rounds']} rounds "
        "alternating Apache / ours; medians of the rounds.",
        "",
        "## Throughput and latency (median of rounds)",
        "",
        "| workload | Apache ops/s | ours ops/s | ours/Apache | Apache p99 us | ours p99 us | ours/Apache p99 | Apache CPU % | ours CPU % | client CPU % (A / ours) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for workload, row in summary.items():
        a, o = row["apache"], row["ours"]
        lines.append(
            f"| {workload} | {fmt(a['throughput_per_s'])} | {fmt(o['throughput_per_s'])} | "
            f"{fmt(row['throughput_ratio'], 2)} | {fmt(a['p99_us'])} | {fmt(o['p99_us'])} | "
            f"{fmt(row['p99_ratio'], 2)} | {fmt(a['server_cpu_percent'])} | {fmt(o['server_cpu_percent'])} | "
            f"{fmt(a['client_cpu_percent'])} / {fmt(o['client_cpu_percent'])} |"
        )
    lines += ["", "Per-round throughput (ops/s):", ""]
    for workload in summary:
        for kind in SERVERS:
            runs = results["runs"][workload][kind]
            values = ", ".join(fmt(r["throughput_per_s"]) for r in runs)
            lines.append(f"- {workload}, {kind}: {values}")
    errors = {w: (r["apache"]["errors"], r["ours"]["errors"]) for w, r in summary.items()}
    if any(a or o for a, o in errors.values()):
        lines += ["", "Request errors (Apache / ours): " + ", ".join(f"{w} {a}/{o}" for w, (a, o) in errors.items())]
    else:
        lines += ["", "No request failed in any run."]
    server = results["server"]
    lines += [
        "",
        "## Start-up, memory",
        "",
        "| | Apache | ours | ours/Apache |",
        "|---|---:|---:|---:|",
    ]
    for key, label, digits in [
        ("startup_s", "start-up to first successful request (s, median)", 3),
        ("rss_idle_kib", "RSS idle (KiB, median)", 0),
        ("rss_populated_kib", f"RSS after {opts['populate']} znodes of {opts['value_size']} B (KiB)", 0),
        ("populate_per_s", f"populate {opts['populate']} znodes (creates/s)", 0),
    ]:
        a, o = server["apache"].get(key), server["ours"].get(key)
        lines.append(f"| {label} | {fmt(a, digits)} | {fmt(o, digits)} | {fmt(ratio(o, a), 2)} |")
    if results.get("profile"):
        lines += [
            "",
            "## Where the time goes (perf stat on the server process, one extra run)",
            "",
            "Per request (for watch: per request of a round = 1 write + 1 re-arming read per watcher).",
            "",
            "| workload | server | CPUs used | syscalls/req | fsync+fdatasync/req | futex/req | ctx switches/req |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for workload, per_server in results["profile"].items():
            for kind in SERVERS:
                p = per_server.get(kind)
                if not p:
                    continue
                q = p["per_request"]
                syncs = q.get("syscalls:sys_enter_fdatasync", 0) + q.get("syscalls:sys_enter_fsync", 0)
                lines.append(
                    f"| {workload} | {kind} | {p['cpus_utilized']:.2f} | {q.get('raw_syscalls:sys_enter', 0):.2f} | "
                    f"{syncs:.4f} | {q.get('syscalls:sys_enter_futex', 0):.2f} | {q.get('context-switches', 0):.2f} |"
                )
    lines += ["", "Charts: throughput.svg, latency.svg.", ""]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# SVG charts, drawn by hand: one small panel per workload with a bar per
# server, each panel on its own scale (workloads differ by 100x).

COLORS = {"apache": "#d9822b", "ours": "#2b7bb9"}


def svg_panels(title, summary, metric, unit, lower_is_better, label=None):
    """`label` formats a bar's value (default: 12k, 1.5M style)."""
    label = label or _short
    panel_w, panel_h, pad = 190, 220, 20
    cols = min(3, max(1, len(summary)))
    rows = (len(summary) + cols - 1) // cols
    # Wide enough for the title and legend even with one or two panels.
    width = max(cols * panel_w + pad * 2, 610)
    height = rows * panel_h + 80
    out = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'font-family="sans-serif" font-size="12">',
        f'<rect width="{width}" height="{height}" fill="white"/>',
        f'<text x="{width / 2}" y="22" text-anchor="middle" font-size="15" font-weight="bold">{_esc(title)}</text>',
    ]
    legend_x = pad
    for kind in SERVERS:
        out.append(f'<rect x="{legend_x}" y="34" width="12" height="12" fill="{COLORS[kind]}"/>')
        out.append(f'<text x="{legend_x + 16}" y="45">{_esc(LABELS[kind])}</text>')
        legend_x += 190
    note = "lower is better" if lower_is_better else "higher is better"
    out.append(f'<text x="{width - pad}" y="45" text-anchor="end" fill="#666">{note}</text>')
    for i, (workload, row) in enumerate(summary.items()):
        x0 = pad + (i % cols) * panel_w
        y0 = 60 + (i // cols) * panel_h
        values = [row[k][metric] for k in SERVERS]
        top = max([v for v in values if v] or [1]) * 1.2
        base = y0 + panel_h - 40
        bar_area = panel_h - 80
        out.append(f'<text x="{x0 + panel_w / 2}" y="{y0 + 16}" text-anchor="middle" font-weight="bold">{_esc(workload)}</text>')
        out.append(f'<line x1="{x0 + 20}" y1="{base}" x2="{x0 + panel_w - 20}" y2="{base}" stroke="#333"/>')
        for j, (kind, value) in enumerate(zip(SERVERS, values)):
            bx = x0 + 40 + j * 60
            if value is None:
                out.append(f'<text x="{bx + 22}" y="{base - 4}" text-anchor="middle">n/a</text>')
                continue
            h = bar_area * value / top
            out.append(f'<rect x="{bx}" y="{base - h:.1f}" width="44" height="{h:.1f}" fill="{COLORS[kind]}"/>')
            out.append(f'<text x="{bx + 22}" y="{base - h - 4:.1f}" text-anchor="middle">{label(value)}</text>')
        r = ratio(values[1], values[0])
        if r is not None:
            out.append(
                f'<text x="{x0 + panel_w / 2}" y="{base + 18}" text-anchor="middle" fill="#444">'
                f'ours/Apache {r:.2f}x</text>'
            )
        out.append(f'<text x="{x0 + panel_w / 2}" y="{base + 32}" text-anchor="middle" fill="#888">{_esc(unit)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _short(value):
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 10_000:
        return f"{value / 1000:.0f}k"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:.0f}"


def _esc(text):
    return str(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


# --------------------------------------------------------------------------
# The comparison


def build(skip):
    if skip:
        return
    log("building zk-bench and zk-server (release)")
    subprocess.run(
        ["cargo", "build", "--release", "-p", "zk-bench", "-p", "zk-server"],
        cwd=REPO, check=True, timeout=1800,
    )


def binaries():
    """Paths of the release zk-bench and zk-server; exits if missing, or if
    Apache ZooKeeper is not installed."""
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(REPO, "target"))
    bench = os.path.join(target, "release", "zk-bench")
    ours = os.path.join(target, "release", "zk-server")
    for binary in (bench, ours):
        if not os.path.exists(binary):
            raise SystemExit(f"missing {binary}: build first (or drop --skip-build)")
    if not shutil.which("java") or not os.path.exists("/usr/share/java/zookeeper.jar"):
        raise SystemExit("Apache ZooKeeper not found: apt-get install -y zookeeper zookeeper-bin")
    return bench, ours


def compare(opts):
    bench, ours = binaries()
    workdir = tempfile.mkdtemp(prefix="zk-compare-")
    servers = {k: Server(k, workdir, opts.tick_time, ours) for k in SERVERS}
    results = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "machine": {"cpus": os.cpu_count(), "kernel": " ".join(os.uname()[2:3])},
        "options": vars(opts),
        "workloads": opts.workloads,
        "runs": {w: {k: [] for k in SERVERS} for w in opts.workloads},
        "server": {k: {"startup_s_rounds": [], "rss_idle_kib_rounds": []} for k in SERVERS},
        "profile": {},
    }

    def stop_all(*_):
        for s in servers.values():
            s.stop()

    signal.signal(signal.SIGTERM, lambda *_: (stop_all(), sys.exit(1)))
    try:
        for rnd in range(opts.rounds):
            # Alternate who goes first so neither always gets the cooler
            # machine: A B, B A, A B ...
            order = SERVERS if rnd % 2 == 0 else list(reversed(SERVERS))
            for kind in order:
                server = servers[kind]
                startup = server.start()
                time.sleep(opts.settle)
                rss = rss_kib(server.pid)
                results["server"][kind]["startup_s_rounds"].append(startup)
                results["server"][kind]["rss_idle_kib_rounds"].append(rss)
                log(f"round {rnd + 1}/{opts.rounds} {kind}: up in {startup:.3f}s, RSS {rss} KiB")
                for workload in opts.workloads:
                    extra = ["--read-ratio", str(opts.read_ratio)] if workload == "mixed" else []
                    report = run_bench(bench, server, workload, opts, extra)
                    results["runs"][workload][kind].append(report)
                    log(
                        f"  {workload:<14} {report['throughput_per_s']:>10.0f}/s  "
                        f"p99 {report['latency']['p99_us']:>7} us  server CPU "
                        f"{report.get('server_cpu_percent', 0):.0f}%"
                    )
                server.stop()
        for kind in SERVERS:
            server = servers[kind]
            server.start()
            time.sleep(opts.settle)
            info = results["server"][kind]
            if opts.profile:
                for workload in opts.workloads:
                    profile = perf_profile(bench, server, workload, opts)
                    if profile:
                        results["profile"].setdefault(workload, {})[kind] = profile
                        log(f"profile {kind} {workload}: {profile['cpus_utilized']:.2f} CPUs")
            if opts.populate > 0:
                report = run_bench(
                    bench, server, "populate", opts,
                    ["--count", str(opts.populate), "--keep"], limit_pad=600,
                )
                time.sleep(opts.settle)
                info["populate_per_s"] = report["throughput_per_s"]
                info["rss_populated_kib"] = rss_kib(server.pid)
                info["populate_report"] = report
                log(f"{kind}: {opts.populate} znodes at {report['throughput_per_s']:.0f}/s, RSS {info['rss_populated_kib']} KiB")
            server.stop()
        for kind in SERVERS:
            info = results["server"][kind]
            info["startup_s"] = median(info["startup_s_rounds"])
            info["rss_idle_kib"] = median(info["rss_idle_kib_rounds"])
    finally:
        stop_all()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarize(results)
    results["summary"] = summary
    os.makedirs(opts.out, exist_ok=True)
    with open(os.path.join(opts.out, "results.json"), "w") as f:
        json.dump(results, f, indent=2)
    with open(os.path.join(opts.out, "report.md"), "w") as f:
        f.write(render_markdown(results, summary))
    with open(os.path.join(opts.out, "throughput.svg"), "w") as f:
        f.write(svg_panels("Throughput (median of rounds)", summary, "throughput_per_s", "ops/s", False))
    with open(os.path.join(opts.out, "latency.svg"), "w") as f:
        f.write(svg_panels("p99 latency (median of rounds)", summary, "p99_us", "p99 us", True))
    log(f"report written to {opts.out}")
    print(render_markdown(results, summary))


def parse_args(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3, help="rounds per server (median is reported)")
    p.add_argument("--duration", type=float, default=5, help="measured seconds per run")
    p.add_argument("--warmup", type=float, default=2, help="warm-up seconds per run")
    p.add_argument("--sessions", type=int, default=16)
    p.add_argument("--in-flight", type=int, default=8)
    p.add_argument("--value-size", type=int, default=1024)
    p.add_argument("--read-ratio", type=int, default=90)
    p.add_argument("--populate", type=int, default=100_000, help="znodes for the memory measurement (0: skip)")
    p.add_argument("--tick-time", type=int, default=2000)
    p.add_argument("--settle", type=float, default=2.0, help="seconds to idle before reading RSS")
    p.add_argument("--workloads", default=",".join(WORKLOADS))
    p.add_argument("--no-profile", dest="profile", action="store_false", help="skip the perf stat pass")
    p.add_argument("--skip-build", action="store_true")
    p.add_argument("--out", default=None)
    opts = p.parse_args(argv)
    opts.workloads = [w for w in opts.workloads.split(",") if w]
    unknown = [w for w in opts.workloads if w not in WORKLOADS]
    if unknown:
        p.error(f"unknown workloads: {unknown}")
    if opts.rounds < 1:
        p.error("--rounds must be at least 1")
    if opts.out is None:
        stamp = time.strftime("%Y%m%d-%H%M%S")
        opts.out = os.path.join(REPO, "target", "bench-compare", stamp)
    return opts


if __name__ == "__main__":
    options = parse_args(sys.argv[1:])
    build(options.skip_build)
    compare(options)
