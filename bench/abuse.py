#!/usr/bin/env python3
"""Hostile clients, side by side with Apache ZooKeeper 3.8 (issue 10).

For each abuse case, on a fresh server: one raw-socket client misbehaves
while another client reads a small node in a loop. Reported per case and
server: the server's peak RSS growth over its RSS before the abuse, and the
other client's p50 / p99 / max latency (a request that gets no answer
counts as the time it waited). Rounds alternate the server order; the
report gives medians of the rounds.

Cases:
  noread-1mb      getData of a 1 MB node, pipelined, replies never read
  noread-small    exists of a small node, pipelined, replies never read
  reading-flood   exists of a small node, pipelined, replies read and dropped
  multiread-big   multiRead of 500 nodes of 100 KB (a 50 MB reply), in a
                  loop, replies read (ours refuses replies past
                  2 x jute.maxbuffer with MarshallingError; Apache sends them)
  wchp-200k       the four-letter word wchp, back to back, with 200k watches
                  set by another session

    python3 bench/abuse.py                      # 3 rounds, 10 s per case
    python3 bench/abuse.py --rounds 1 --duration 5 --cases noread-1mb
    # Output: target/bench-abuse/<timestamp>/{report.md,results.json}

Needs the release zk-server (cargo build --release -p zk-server) and
Apache ZooKeeper from Debian (apt-get install -y zookeeper).
"""

import argparse
import datetime
import json
import os
import shutil
import socket
import statistics
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402  (Server, rss_kib, framing helpers)

CASES = ["noread-1mb", "noread-small", "reading-flood", "multiread-big", "wchp-200k"]
WATCHES = 200_000
OBSERVER_TIMEOUT = 10.0
ONE_MB = 1_000_000

# --------------------------------------------------------------------------
# Jute, just what the cases need


def _string(s):
    b = s.encode()
    return struct.pack(">i", len(b)) + b


def _buffer(b):
    return struct.pack(">i", len(b)) + b


def _request(xid, op, body):
    return compare._frame(struct.pack(">ii", xid, op) + body)


def get_data(xid, path):
    return _request(xid, 4, _string(path) + b"\0")


def exists(xid, path, watch=False):
    return _request(xid, 3, _string(path) + (b"\1" if watch else b"\0"))


def create(xid, path, data):
    acl = struct.pack(">i", 1) + struct.pack(">i", 31) + _string("world") + _string("anyone")
    return _request(xid, 1, _string(path) + _buffer(data) + acl + struct.pack(">i", 0))


def multi_read(xid, paths):
    body = b""
    for p in paths:
        body += struct.pack(">i?i", 4, False, -1) + _string(p) + b"\0"
    body += struct.pack(">i?i", -1, True, -1)
    return _request(xid, 22, body)


def read_frame(s):
    """One whole frame body (without the O(n^2) copying of appending bytes)."""
    (length,) = struct.unpack(">i", read_exact(s, 4))
    return read_exact(s, length)


def read_exact(s, n):
    buf = bytearray(n)
    view = memoryview(buf)
    got = 0
    while got < n:
        k = s.recv_into(view[got:])
        if k == 0:
            raise ConnectionError("closed")
        got += k
    return bytes(buf)


def session(port, timeout=10.0):
    """A connected socket with a new session."""
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.settimeout(timeout)
    connect = struct.pack(">iqiqi", 0, 0, 30000, 0, 16) + b"\0" * 16 + b"\0"
    s.sendall(compare._frame(connect))
    reply = read_frame(s)
    (_proto, timeout_ms, session_id) = struct.unpack(">iiq", reply[:16])
    if session_id == 0 or timeout_ms <= 0:
        raise ConnectionError("session refused")
    return s


def call(s, frame):
    """Sends one request and returns (xid, err) of the next reply."""
    s.sendall(frame)
    while True:
        reply = read_frame(s)
        (xid, _zxid, err) = struct.unpack(">iqi", reply[:16])
        if xid != -1:  # skip watch events
            return xid, err


# --------------------------------------------------------------------------
# The cases


def setup(port, case):
    """Loads the case's data; returns the sockets that must stay open."""
    keep = []
    if case == "wchp-200k":
        w = session(port)
        for chunk in range(WATCHES // 2000):
            w.sendall(b"".join(exists(chunk * 2000 + i + 1, f"/watched/{chunk * 2000 + i}", True)
                               for i in range(2000)))
            for _ in range(2000):
                read_frame(w)
        keep.append(w)
    s = session(port)
    assert call(s, create(1, "/small", b"x"))[1] == 0
    if case == "noread-1mb":
        assert call(s, create(2, "/big", b"\7" * ONE_MB))[1] == 0
    if case == "multiread-big":
        data = b"\3" * 100_000
        for chunk in range(5):
            s.sendall(b"".join(create(10 + chunk * 100 + i, f"/m{chunk * 100 + i}", data)
                               for i in range(100)))
            for _ in range(100):
                (_xid, _zxid, err) = struct.unpack(">iqi", read_frame(s)[:16])
                assert err == 0, err
    s.close()
    return keep


def abuse(port, case, stop):
    """Misbehaves until `stop` is set."""
    if case == "wchp-200k":
        while not stop.is_set():
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=30) as w:
                    w.sendall(b"wchp")
                    while w.recv(1 << 16):
                        pass
            except OSError:
                time.sleep(0.1)
        return
    s = session(port)
    s.settimeout(0.2)
    try:
        if case == "multiread-big":
            request = multi_read(1, [f"/m{i}" for i in range(500)])
            s.settimeout(OBSERVER_TIMEOUT)
            while not stop.is_set():
                call(s, request)
            return
        if case == "noread-1mb":
            batch = b"".join(get_data(i, "/big") for i in range(100))
        else:
            batch = b"".join(exists(i, "/small") for i in range(2000))
        if case == "reading-flood":
            def drain():
                buf = bytearray(1 << 16)
                while not stop.is_set():
                    try:
                        if s.recv_into(buf) == 0:
                            return
                    except socket.timeout:
                        pass
                    except OSError:
                        return
            threading.Thread(target=drain, daemon=True).start()
        view = memoryview(batch)
        sent = 0
        while not stop.is_set():
            try:
                sent += s.send(view[sent:])
                if sent == len(batch):
                    sent = 0
            except socket.timeout:
                pass  # the server stopped reading us: keep trying
    except OSError:
        pass  # the server closed us
    finally:
        s.close()


def observe(port, stop, latencies):
    """Reads /small in a loop; a request with no answer counts as the time
    it waited."""
    xid = 0
    s = None
    while not stop.is_set():
        asked = time.monotonic()
        try:
            if s is None:
                s = session(port, OBSERVER_TIMEOUT)
            xid += 1
            call(s, get_data(xid, "/small"))
        except (OSError, ConnectionError, struct.error):
            if s is not None:
                s.close()
            s = None
        latencies.append(time.monotonic() - asked)
        time.sleep(0.005)
    if s is not None:
        s.close()


def run_case(server, case, duration):
    server.start()
    try:
        keep = setup(server.port, case)
        time.sleep(1.0)
        baseline = compare.rss_kib(server.pid)
        stop = threading.Event()
        latencies = []
        threads = [
            threading.Thread(target=abuse, args=(server.port, case, stop), daemon=True),
            threading.Thread(target=observe, args=(server.port, stop, latencies), daemon=True),
        ]
        for t in threads:
            t.start()
        peak = baseline
        ends = time.monotonic() + duration
        while time.monotonic() < ends:
            rss = compare.rss_kib(server.pid)
            if rss is None:
                break  # the server died
            peak = max(peak, rss)
            time.sleep(0.1)
        alive = server.proc.poll() is None
        stop.set()
        for t in threads:
            t.join(timeout=OBSERVER_TIMEOUT + 5)
        lat = sorted(latencies) or [OBSERVER_TIMEOUT]
        pick = lambda q: lat[min(len(lat) - 1, int(q * len(lat)))] * 1000  # noqa: E731
        return {
            "baseline_mb": baseline / 1024,
            "peak_growth_mb": (peak - baseline) / 1024,
            "p50_ms": pick(0.50),
            "p99_ms": pick(0.99),
            "max_ms": lat[-1] * 1000,
            "requests": len(latencies),
            "alive": alive,
        }
    finally:
        for k in locals().get("keep") or []:
            k.close()
        server.stop()
        # 100 MB of txn logs per case otherwise stay behind.
        shutil.rmtree(server.data_dir, ignore_errors=True)


# --------------------------------------------------------------------------


def median_of(rounds, key):
    values = [r[key] for r in rounds]
    return statistics.median(values) if values else None


def render(results, opts):
    lines = [
        "| case | server | RSS growth (MB) | other client p50 (ms) | p99 (ms) | max (ms) | alive |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for case in opts.cases:
        for kind in opts.servers:
            rounds = results[case][kind]
            lines.append(
                f"| {case} | {compare.LABELS[kind]} | {median_of(rounds, 'peak_growth_mb'):.0f} "
                f"| {median_of(rounds, 'p50_ms'):.1f} | {median_of(rounds, 'p99_ms'):.1f} "
                f"| {median_of(rounds, 'max_ms'):.0f} | {all(r['alive'] for r in rounds)} |"
            )
    return "\n".join(lines) + "\n"


def main(argv):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--duration", type=float, default=10.0)
    p.add_argument("--cases", type=lambda v: v.split(","), default=CASES)
    p.add_argument("--servers", type=lambda v: v.split(","), default=compare.SERVERS)
    p.add_argument("--ours-cfg", action="append", default=[],
                   help="an extra zoo.cfg line for our server (repeatable), "
                        "e.g. globalOutstandingLimit=100")
    opts = p.parse_args(argv)
    target = os.environ.get("CARGO_TARGET_DIR", os.path.join(compare.REPO, "target"))
    ours = os.path.join(target, "release", "zk-server")
    if not os.path.exists(ours):
        raise SystemExit(f"missing {ours}: cargo build --release -p zk-server")
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out_dir = os.path.join(target, "bench-abuse", stamp)
    os.makedirs(out_dir, exist_ok=True)
    results = {case: {kind: [] for kind in opts.servers} for case in opts.cases}
    for rnd in range(opts.rounds):
        order = opts.servers if rnd % 2 == 0 else list(reversed(opts.servers))
        for case in opts.cases:
            for kind in order:
                server = compare.Server(kind, out_dir, 2000, ours)
                if kind == "ours" and opts.ours_cfg:
                    base = server.config_lines
                    server.config_lines = lambda base=base: base() + opts.ours_cfg
                compare.log(f"round {rnd + 1}: {case} on {kind}")
                r = run_case(server, case, opts.duration)
                compare.log(f"  {r}")
                results[case][kind].append(r)
    report = render(results, opts)
    with open(os.path.join(out_dir, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    with open(os.path.join(out_dir, "report.md"), "w") as f:
        f.write(report)
    print(report)
    print(f"written to {out_dir}", file=sys.stderr)


if __name__ == "__main__":
    main(sys.argv[1:])
