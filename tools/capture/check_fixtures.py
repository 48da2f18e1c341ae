#!/usr/bin/env python3
"""Sanity-check the golden wire fixtures (stdlib only).

usage: check_fixtures.py [-v] [FIXTURE_DIR_OR_FILES...]

For every fixture: parse it, check every frame's 4-byte length prefix equals
its body length, check each connection starts with ConnectRequest /
ConnectResponse, and print the counts of C/S frames, the request opcodes seen
(client frames after the ConnectRequest), special xids and non-zero reply
error codes. -v also prints a one-line header decode of every frame.
Exit status 1 if any fixture is malformed.
"""

import glob
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "zk-proto", "tests", "fixtures")

OPS = {
    0: "notification", 1: "create", 2: "delete", 3: "exists", 4: "getData", 5: "setData",
    6: "getACL", 7: "setACL", 8: "getChildren", 9: "sync", 11: "ping", 12: "getChildren2",
    13: "check", 14: "multi", 15: "create2", 16: "reconfig", 17: "checkWatches",
    18: "removeWatches", 19: "createContainer", 20: "deleteContainer", 21: "createTTL",
    22: "multiRead", 100: "auth", 101: "setWatches", 102: "sasl", 103: "getEphemerals",
    104: "getAllChildrenNumber", 105: "setWatches2", 106: "addWatch", 107: "whoAmI",
    -10: "createSession", -11: "closeSession", -1: "error",
}


def parse(path):
    """Returns (comments, connections); a connection is a list of (dir, bytes, lineno)."""
    comments, conns, cur = [], [], []
    with open(path, encoding="utf-8") as f:
        for n, raw in enumerate(f, 1):
            line = raw.rstrip("\n")
            if not line.strip():
                continue
            if line.startswith("#"):
                comments.append(line)
            elif line == "= reconnect":
                conns.append(cur)
                cur = []
            elif line[:2] in ("C ", "S "):
                hx = line[2:]
                if hx != hx.lower():
                    raise ValueError(f"{path}:{n}: hex not lowercase")
                cur.append((line[0], bytes.fromhex(hx), n))
            else:
                raise ValueError(f"{path}:{n}: unparseable line {line[:40]!r}")
    conns.append(cur)
    return comments, conns


def check(path, verbose=False):
    errors = []
    comments, conns = parse(path)
    counts = {"C": 0, "S": 0}
    ops = {}
    special = set()
    errs = {}
    for ci, conn in enumerate(conns):
        seen_first = {"C": False, "S": False}
        for d, fr, n in conn:
            counts[d] += 1
            if len(fr) < 4:
                errors.append(f"line {n}: frame shorter than 4 bytes")
                continue
            (ln,) = struct.unpack(">i", fr[:4])
            body = fr[4:]
            if ln != len(body):
                errors.append(f"line {n}: length prefix {ln} != body length {len(body)}")
                continue
            desc = ""
            if not seen_first[d]:
                seen_first[d] = True
                if d == "C":
                    if len(body) not in (44, 45) and len(body) < 44:
                        errors.append(f"line {n}: first client frame not a ConnectRequest ({len(body)} bytes)")
                    pv, zxid, to, sid = struct.unpack(">iqiq", body[:24])
                    desc = f"ConnectRequest proto={pv} lastZxid={zxid:#x} timeout={to} session={sid:#x} len={len(body)}"
                    ops.setdefault("connect", 0)
                    ops["connect"] += 1
                else:
                    pv, to, sid = struct.unpack(">iiq", body[:16])
                    desc = f"ConnectResponse proto={pv} timeout={to} session={sid:#x} len={len(body)}"
            elif d == "C":
                xid, op = struct.unpack(">ii", body[:8])
                name = OPS.get(op, f"op{op}")
                key = f"{name}({op})"
                ops[key] = ops.get(key, 0) + 1
                if xid < 0:
                    special.add(f"C xid {xid} op {op}")
                desc = f"xid={xid} {key} +{len(body) - 8}B"
            else:
                xid, zxid, err = struct.unpack(">iqi", body[:16])
                if xid == -1:
                    et, state = struct.unpack(">ii", body[16:24])
                    ops["notification"] = ops.get("notification", 0) + 1
                    desc = f"notification zxid={zxid} type={et} state={state}"
                elif xid < 0:
                    special.add(f"S xid {xid}")
                    desc = f"xid={xid} zxid={zxid:#x} err={err}"
                else:
                    desc = f"xid={xid} zxid={zxid:#x} err={err} +{len(body) - 16}B"
                if err:
                    errs[err] = errs.get(err, 0) + 1
            if verbose:
                print(f"  [{ci}] {d} {desc}")
    return errors, counts, ops, special, errs, len(conns), comments


def main():
    args = sys.argv[1:]
    verbose = False
    if args and args[0] == "-v":
        verbose, args = True, args[1:]
    if not args:
        args = [DEFAULT_DIR]
    files = []
    for a in args:
        files += sorted(glob.glob(os.path.join(a, "*.txt"))) if os.path.isdir(a) else [a]
    bad = 0
    all_ops = {}
    for fpath in files:
        name = os.path.basename(fpath)
        if verbose:
            print(f"== {name}")
        try:
            errors, counts, ops, special, errs, nconn, _ = check(fpath, verbose)
        except ValueError as e:
            print(f"{name}: PARSE ERROR {e}")
            bad += 1
            continue
        status = "OK" if not errors else "BAD"
        print(f"{name}: {status}  C={counts['C']} S={counts['S']} connections={nconn}")
        print("    requests: " + ", ".join(f"{k}x{v}" for k, v in sorted(ops.items())))
        if special:
            print("    special xids: " + ", ".join(sorted(special)))
        if errs:
            print("    reply errors: " + ", ".join(f"{k}x{v}" for k, v in sorted(errs.items())))
        for e in errors:
            print("    ERROR " + e)
        bad += bool(errors)
        for k in ops:
            all_ops[k] = all_ops.get(k, 0) + ops[k]
    print(f"\n{len(files)} fixture(s), {bad} bad")
    print("all request kinds: " + ", ".join(sorted(all_ops)))
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
