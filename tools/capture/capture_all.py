#!/usr/bin/env python3
"""Re-capture every golden wire fixture from scratch.

For each scenario: start a fresh Apache ZooKeeper standalone server (new temp
dataDir, 127.0.0.1 only), start record_proxy.py in front of it, run the client
(kazoo / zkCli.sh / cli_mt / Java API program) against the proxy, stop the
proxy (which writes zk-proto/tests/fixtures/<scenario>.txt), stop the server.

usage: capture_all.py [--only NAME[,NAME...]] [--keep-tmp] [--out DIR]

Needs: apt packages zookeeper zookeeper-bin (Apache ZooKeeper 3.8 + C CLI),
a JDK (javac/java), and `pip install kazoo`. See README.md.
"""

import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
DEFAULT_OUT = os.path.join(REPO, "zk-proto", "tests", "fixtures")

JAVA = shutil.which("java") or "/usr/bin/java"
ZK_JAR = "/usr/share/java/zookeeper.jar"  # its manifest Class-Path pulls in the deps
SLF4J_SIMPLE = "/usr/share/java/slf4j-simple.jar"
ZKCLI = "/usr/share/zookeeper/bin/zkCli.sh"
CLI_MT = "/usr/lib/zookeeper/bin/cli_mt"


def log(*a):
    print("[capture]", *a, file=sys.stderr, flush=True)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def four_letter(port, word, timeout=2.0):
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
            s.sendall(word.encode())
            data = b""
            end = time.time() + timeout
            while time.time() < end:
                chunk = s.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.decode(errors="replace")
    except OSError:
        return ""


def stop_proc(p, name, timeout=10):
    """Stop one process we started (by its pid / process group)."""
    if p is None or p.poll() is not None:
        return
    try:
        os.killpg(p.pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    try:
        p.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        log(f"{name} did not stop, killing")
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        p.wait(timeout=5)


def pkg_version(pkg):
    try:
        return subprocess.run(["dpkg-query", "-W", "-f=${Version}", pkg], capture_output=True,
                              text=True, timeout=10).stdout.strip()
    except Exception:
        return "?"


class ZkServer:
    def __init__(self, tmp):
        self.dir = tempfile.mkdtemp(prefix="zk-", dir=tmp)
        self.port = free_port()
        self.proc = None
        self.version = "?"

    def start(self):
        data = os.path.join(self.dir, "data")
        os.makedirs(data)
        cfg = os.path.join(self.dir, "zoo.cfg")
        with open(cfg, "w") as f:
            f.write(
                "tickTime=2000\n"
                f"dataDir={data}\n"
                f"clientPort={self.port}\n"
                "clientPortAddress=127.0.0.1\n"
                "extendedTypesEnabled=true\n"
                "4lw.commands.whitelist=*\n"
                "admin.enableServer=false\n"
            )
        cp = ":".join(["/etc/zookeeper/conf", ZK_JAR, SLF4J_SIMPLE])
        self.logf = open(os.path.join(self.dir, "server.log"), "w")
        self.proc = subprocess.Popen(
            [JAVA, "-Dzookeeper.extendedTypesEnabled=true", "-Xmx256m", "-cp", cp,
             "org.apache.zookeeper.server.quorum.QuorumPeerMain", cfg],
            stdout=self.logf, stderr=subprocess.STDOUT, start_new_session=True, cwd=self.dir)
        end = time.time() + 30
        while time.time() < end:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ZooKeeper exited, see {self.dir}/server.log")
            if four_letter(self.port, "ruok", 1.0) == "imok":
                break
            time.sleep(0.2)
        else:
            raise RuntimeError("ZooKeeper did not answer ruok")
        end = time.time() + 20
        while time.time() < end and self.version == "?":
            for line in four_letter(self.port, "srvr").splitlines():
                if line.startswith("Zookeeper version:"):
                    self.version = line.split(":", 1)[1].strip()
            if self.version == "?":
                time.sleep(0.2)  # "not currently serving requests" yet
        if self.version == "?":
            raise RuntimeError("ZooKeeper not serving")
        log(f"ZooKeeper up on 127.0.0.1:{self.port} ({self.version})")

    def stop(self):
        stop_proc(self.proc, "zookeeper", timeout=15)
        if getattr(self, "logf", None):
            self.logf.close()


class Ctx:
    """What a scenario driver gets: ports, drop control, log file, oob client."""

    def __init__(self, tmp, zk, proxy_port, drop_file, logpath):
        self.tmp = tmp
        self.zk = zk
        self.proxy_port = proxy_port
        self.hosts = f"127.0.0.1:{proxy_port}"
        self.direct = f"127.0.0.1:{zk.port}"
        self.drop_file = drop_file
        self.logpath = logpath

    def drop(self):
        with open(self.drop_file, "w") as f:
            f.write("drop\n")
        end = time.time() + 5
        while os.path.exists(self.drop_file) and time.time() < end:
            time.sleep(0.05)

    def oob(self, fn):
        """Run fn(kazoo_client) against the server directly (not recorded)."""
        from kazoo.client import KazooClient

        zk = KazooClient(hosts=self.direct, timeout=10)
        zk.start(timeout=15)
        try:
            fn(zk)
        finally:
            zk.stop()
            zk.close()


# ---------------------------------------------------------------------------
# drivers

def run_logged(ctx, argv, timeout, stdin=None, env=None):
    with open(ctx.logpath, "a") as lf:
        lf.write(f"$ {' '.join(argv)}\n")
        lf.flush()
        p = subprocess.Popen(argv, stdin=stdin, stdout=lf, stderr=subprocess.STDOUT,
                             start_new_session=True, env=env)
        try:
            p.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            log(f"{argv[0]} timed out, stopping it")
            stop_proc(p, argv[0])
        return p.returncode


def kazoo_driver(name, timeout=60):
    def run(ctx):
        rc = run_logged(ctx, [sys.executable, os.path.join(HERE, "kazoo_scenarios.py"), name, ctx.hosts],
                        timeout)
        if rc != 0:
            raise RuntimeError(f"kazoo scenario {name} exit {rc}, see {ctx.logpath}")
    return run


def interactive_driver(argv_fn, steps, first_wait=2.0, gap=0.4, end_wait=3.0, timeout=90):
    """Feed a CLI's stdin line by line. A step is a command string, or
    ("sleep", s), ("drop",), ("oob", fn)."""

    def run(ctx):
        argv = argv_fn(ctx)
        with open(ctx.logpath, "a") as lf:
            lf.write(f"$ {' '.join(argv)}\n")
            lf.flush()
            env = dict(os.environ)
            env["CLIENT_JVMFLAGS"] = "-Dzookeeper.log.dir=" + ctx.tmp
            p = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=lf, stderr=subprocess.STDOUT,
                                 start_new_session=True, env=env)
            t0 = time.time()
            try:
                time.sleep(first_wait)
                for st in steps:
                    if time.time() - t0 > timeout:
                        raise RuntimeError("scenario took too long")
                    if isinstance(st, str):
                        lf.write(f">>> {st}\n")
                        lf.flush()
                        p.stdin.write((st + "\n").encode())
                        p.stdin.flush()
                        time.sleep(gap)
                    elif st[0] == "sleep":
                        time.sleep(st[1])
                    elif st[0] == "drop":
                        lf.write(">>> [proxy drops the connection]\n")
                        lf.flush()
                        ctx.drop()
                    elif st[0] == "oob":
                        lf.write(">>> [out-of-band change]\n")
                        lf.flush()
                        ctx.oob(st[1])
                try:
                    p.stdin.close()
                except BrokenPipeError:
                    pass
                p.wait(timeout=end_wait + 10)
            except subprocess.TimeoutExpired:
                log(f"{argv[0]} did not exit, stopping it")
            finally:
                stop_proc(p, argv[0])
    return run


def zkcli(steps, timeout_ms=None, **kw):
    def argv(ctx):
        a = [ZKCLI, "-server", ctx.hosts]
        if timeout_ms:
            a += ["-timeout", str(timeout_ms)]
        return a
    return interactive_driver(argv, steps, **kw)


def cli_mt(steps, **kw):
    return interactive_driver(lambda ctx: [CLI_MT, ctx.hosts], steps, **kw)


def java_api(ctx):
    classes = os.path.join(ctx.tmp, "java-classes")
    if not os.path.exists(os.path.join(classes, "ZkApiScenario.class")):
        os.makedirs(classes, exist_ok=True)
        rc = run_logged(ctx, ["javac", "-cp", ZK_JAR, "-d", classes,
                              os.path.join(HERE, "ZkApiScenario.java")], 120)
        if rc != 0:
            raise RuntimeError("javac failed")
    rc = run_logged(ctx, [JAVA, "-cp", f"{classes}:{ZK_JAR}", "ZkApiScenario", ctx.hosts], 90)
    if rc != 0:
        raise RuntimeError(f"java scenario exit {rc}")


# out-of-band helpers (run directly against the server, not recorded)
def oob_set(path, data):
    return ("oob", lambda zk: zk.set(path, data))


def oob_create(path, data=b""):
    return ("oob", lambda zk: zk.create(path, data))


# ---------------------------------------------------------------------------
# scenarios: name -> (client, [description lines], driver, proxy options)

def scenarios():
    K = "kazoo " + __import__("kazoo").version.__version__ + " (Python client)"
    J = "Java zkCli.sh (ZooKeeperMain), Debian zookeeper " + pkg_version("libzookeeper-java")
    C = "C client cli_mt (libzookeeper-mt2 " + pkg_version("libzookeeper-mt2") + ")"
    JA = "Java client API program tools/capture/ZkApiScenario.java, Debian zookeeper " + pkg_version("libzookeeper-java")
    S = {}

    S["kazoo_connect"] = (K, [
        "connect (new session, 10 s timeout), then stop(): closeSession (-11) and close."],
        kazoo_driver("connect"), {})

    S["kazoo_create_modes"] = (K, [
        "create(1) persistent /km, ephemeral, persistent sequential, ephemeral sequential,",
        "null data (buffer len -1), empty data (len 0); create2(15) via include_data=True;",
        "makepath=True+include_data: create2 /km/deep/er/node -> NoNode(-101), then kazoo's",
        "ensure_path: exists /km/deep/er, /km/deep (NoNode), exists /km, create(1) /km/deep,",
        "/km/deep/er, and the create2 is retried;",
        "getData of the null/empty nodes; then, because kazoo has no API for them, hand-built",
        "createContainer(19) (flags 4) and createTTL(21) (flags 5 and 6, ttl 10000) records sent",
        "over kazoo's own connection (see tools/capture/kazoo_scenarios.py); getChildren; close.",
        "NB: kazoo encodes an empty *string* as length -1 (null)."],
        kazoo_driver("create_modes"), {})

    S["kazoo_get_set_exists_delete"] = (K, [
        "getData, setData(version 0), setData(-1), setData bad version -> BadVersion(-103),",
        "exists present, exists absent with watch, getChildren(8), getChildren2(12),",
        "getData missing -> NoNode(-101), create existing -> NodeExists(-110),",
        "getData+watch then setData -> NodeDataChanged notification (xid -1),",
        "create of the exists-watched node -> NodeCreated, getChildren+watch and getData+watch",
        "then delete child -> NodeChildrenChanged + NodeDeleted, delete bad version,",
        "delete with version 0, delete missing -> NoNode, close."],
        kazoo_driver("get_set_exists_delete"), {})

    S["kazoo_multi"] = (K, [
        "multi(14): successful txn (create, setData v0, check v1, delete, create sequential);",
        "failing txn (create ok, create NodeExists, setData) -> per-op errors 0/-110/-2, header err 0;",
        "failing txn (check bad version -103, delete -> -2); getChildren; close."],
        kazoo_driver("multi"), {})

    S["kazoo_auth"] = (K, [
        "connection 1: auth(100, xid -4) digest user:password, create with digest ACL,",
        "getACL(6), getData, setACL(7) version 0, getACL, close.",
        "= reconnect here means a SECOND, independent client/session (no credentials):",
        "getData -> NoAuth(-102), getACL -> NoAuth (getACL needs READ or ADMIN),",
        "auth digest other:pw (READ only, no ADMIN), getACL -> digest ids masked as user:x / other:x,",
        "getData, then auth with unknown scheme 'nosuchscheme' -> AUTHFAILED(-115) reply (zxid 0),",
        "server closes the connection. kazoo then reconnects once with sessionId 0 (new session),",
        "re-sends both auth packets, gets AUTHFAILED again and gives up (no closeSession sent)."],
        kazoo_driver("auth"), {})

    S["kazoo_ping"] = (K, [
        "connect with session timeout 4000 ms, exists /, idle ~9 s (kazoo pings: xid -2 op 11,",
        "reply xid -2), exists /, close."],
        kazoo_driver("ping"), {})

    S["zkcli_connect"] = (J, ["zkCli.sh: connect, ls /, quit (closeSession)."],
                          zkcli(["ls /", "quit"]), {})

    S["zkcli_create_modes"] = (J, [
        "zkCli.sh: create /zc (no data -> null buffer), create -e, create -s, create -e -s,",
        "create -c (createContainer 19), create -t 10000 (createTTL 21, flags 5),",
        "create -s -t 10000 (createTTL flags 6), create existing -> NodeExists,",
        "create under missing parent -> NoNode, create -e under ephemeral -> NoChildrenForEphemerals,",
        "ls /zc (zkCli ls = getChildren2), get /zc (null data), quit.",
        "zkCli 3.8 sends create (1) for the plain modes, 19 for -c, 21 for -t."],
        zkcli(["create /zc", "create -e /zc/eph e", "create -s /zc/seq- s", "create -e -s /zc/eseq- es",
               "create -c /zc/cont c", "create -t 10000 /zc/ttl data", "create -s -t 10000 /zc/ttlseq- data",
               "create /zc/eph dup", "create /zc/missing/child x", "create /zc/eph/child x",
               "ls /zc", "get /zc", "quit"]), {})

    S["zkcli_watches"] = (J, [
        "zkCli.sh: create /p /r /r/a /g; addWatch -m PERSISTENT /p (106, mode 0; NB zkCli's default",
        "mode without -m is PERSISTENT_RECURSIVE); addWatch -m PERSISTENT_RECURSIVE /r",
        "(mode 1); get -w /g (one-shot data watch); set /p, create /r/a/b, set /r/a -> notifications.",
        "Then the proxy drops the TCP connection and holds the reconnect ~3 s; meanwhile another",
        "(unrecorded) client sets /g and /p. After '= reconnect' the Java client re-sends its",
        "ConnectRequest with the same sessionId/passwd and lastZxidSeen, then setWatches2 (105)",
        "(data /g, persistent /p, persistent-recursive /r); the server at once fires NodeDataChanged",
        "for /g only: re-registered persistent watches are NOT checked against relativeZxid (3.8.0),",
        "so the missed change of /p is not reported. Then set /r/a (recursive watch still active),",
        "ls /r, quit. Notification zxid is -1 (3.8)."],
        zkcli(["create /p p0", "create /r r0", "create /r/a a0", "create /g g0",
               "addWatch -m PERSISTENT /p", "addWatch -m PERSISTENT_RECURSIVE /r", "get -w /g",
               "set /p p1", "create /r/a/b b0", "set /r/a a1",
               ("sleep", 1.0), ("drop",), ("sleep", 0.3),
               oob_set("/g", b"g1-oob"), oob_set("/p", b"p2-oob"),
               ("sleep", 5.0),
               "set /r/a a2", "ls /r", "quit"]),
        {"hold_after_drop": 3.0})

    S["zkcli_ping"] = (J, [
        "zkCli.sh -timeout 4000: connect, ls /, ~8 s idle (Java client pings: xid -2 op 11), quit."],
        zkcli(["ls /", ("sleep", 8.0), "quit"], timeout_ms=4000), {})

    S["zkcli_setwatches"] = (J, [
        "zkCli.sh: create /sw /sw/c; get -w /sw (data), ls -w /sw (child), stat -w /sw/missing (exist",
        "watch on absent node). Proxy drops the connection and holds the reconnect; meanwhile another",
        "(unrecorded) client creates /sw/missing. After '= reconnect': ConnectRequest (same session),",
        "setWatches (101, no persistent watches so not 105; note the Java client uses a normal",
        "positive xid, not -8), server fires NodeCreated /sw/missing and NodeChildrenChanged /sw.",
        "Then get /sw, quit."],
        zkcli(["create /sw s0", "create /sw/c c0", "get -w /sw", "ls -w /sw", "stat -w /sw/missing",
               ("sleep", 1.0), ("drop",), ("sleep", 0.3), oob_create("/sw/missing", b"m"),
               ("sleep", 5.0), "get /sw", "quit"]),
        {"hold_after_drop": 3.0})

    S["zkcli_whoami"] = (J, ["zkCli.sh: whoami (107), addauth digest u:p (auth xid -4), whoami, quit."],
                         zkcli(["whoami", "addauth digest u:p", "whoami", "quit"]), {})

    S["zkcli_misc"] = (J, [
        "zkCli.sh: create /m, create -e /m/e1 /m/e2, create /m/sub/x chain; getEphemerals (103),",
        "getEphemerals /m; getAllChildrenNumber (104) / and /m; sync / (9); get -w /m then",
        "removewatches /m -d (removeWatches 18), removewatches /m again -> NoWatcher(-121);",
        "getAcl /m; setAcl /m world:anyone:cdrwa; setAcl -v 5 (BadVersion); stat /m (exists 3);",
        "ls -s /m (getChildren2); ls -R /m (getChildren2 + getChildren 8 per node); config",
        "(getData /zookeeper/config, empty in standalone); setAcl /m/sub world:anyone:r then",
        "set /m/sub -> NoAuth(-102); delete /m -> NotEmpty(-111); deleteall /m/sub (getChildren",
        "walk then multi(14) of deletes -> per-op NoAuth(-102), RuntimeInconsistency(-2)); quit."],
        zkcli(["create /m mdata", "create -e /m/e1 1", "create -e /m/e2 2", "create /m/sub s", "create /m/sub/x x",
               "getEphemerals", "getEphemerals /m", "getAllChildrenNumber /", "getAllChildrenNumber /m",
               "sync /", "get -w /m", "removewatches /m -d", "removewatches /m",
               "getAcl /m", "setAcl /m world:anyone:cdrwa", "setAcl -v 5 /m world:anyone:cdrwa",
               "stat /m", "ls -s /m", "ls -R /m", "config",
               "setAcl /m/sub world:anyone:r", "set /m/sub nope", "delete /m", "deleteall /m/sub",
               "quit"]), {})

    S["cli_mt_session"] = (C, [
        "C cli_mt: create /cm (cli_mt's create sends its own fixed data), create +e, create +s,",
        "create +c (container 19), create +t=10000 (TTL 21), create2 /cm/c2 (15), ls (getChildren+watch),",
        "ls2 (getChildren2), get (getData+watch), set, exists, wexists /cm/x (exists+watch), sync,",
        "get /nonexistent (NoNode). Then the proxy drops the connection and holds the reconnect;",
        "meanwhile another (unrecorded) client creates /cm/x. After '= reconnect': ConnectRequest",
        "(same session) and setWatches (101) with xid -8; server fires NodeCreated /cm/x and",
        "NodeChildrenChanged /cm. Then get /cm, ~12 s idle (C client pings after 1/3 of the",
        "30 s session timeout), quit (closeSession).",
        "NB: the C client's xids start at the Unix time in seconds, not at 1."],
        cli_mt(["create /cm", "create +e /cm/e", "create +s /cm/s", "create +c /cm/cont",
                "create +t=10000 /cm/ttl", "create2 /cm/c2", "ls /cm", "ls2 /cm", "get /cm",
                "set /cm hello", "exists /cm", "wexists /cm/x", "sync /cm", "get /nonexistent",
                ("sleep", 1.0), ("drop",), ("sleep", 0.3), oob_create("/cm/x", b"x"),
                ("sleep", 5.0), "get /cm", ("sleep", 12.0), "quit"], gap=0.5),
        {"hold_after_drop": 3.0})

    S["java_api_misc"] = (JA, [
        "Java ZooKeeper API: create2 (Stat), create2 null data, createTTL (flags 5, 6),",
        "createContainer, ephemeral sequential; getData/getChildren with watchers then",
        "removeWatches(watcher) -> checkWatches (17) Data/Children; removeAllWatches -> removeWatches (18),",
        "again -> NoWatcher(-121); addWatch PERSISTENT and PERSISTENT_RECURSIVE (106) + notifications;",
        "multi (14) with create, create-with-TTL, create-container, check, setData, delete",
        "(Java sends op types 1/21/19 in the MultiHeaders; the 3.8.0 server answers the TTL and",
        "container creates with result type 15 = path+Stat, the plain create with type 1);",
        "failing multi (NoNode); multiRead (22: getData, getChildren, getData missing);",
        "getConfig; getEphemerals (103) both forms; getAllChildrenNumber (104); sync (9);",
        "auth digest; create with CREATOR_ALL_ACL (auth scheme); getACL; setACL v0; setACL bad",
        "version -> BadVersion; setACL world:nobody -> InvalidACL(-114); whoAmI (107);",
        "exists watch + create -> NodeCreated; delete non-empty -> NotEmpty(-111); close."],
        java_api, {})
    return S


def run_scenario(name, spec, out_dir, tmp):
    client, desc, driver, popts = spec
    zk = ZkServer(tmp)
    proxy = None
    try:
        zk.start()
        sdir = os.path.join(tmp, name)
        os.makedirs(sdir, exist_ok=True)
        proxy_port = free_port()
        drop_file = os.path.join(sdir, "drop")
        ready = os.path.join(sdir, "ready")
        out = os.path.join(out_dir, name + ".txt")
        comments = [
            f"scenario: {name}",
            f"client: {client}",
            f"server: Apache ZooKeeper {zk.version} standalone (Debian package zookeeper {pkg_version('zookeeper')}),",
            "  extendedTypesEnabled=true, tickTime=2000",
            "captured by tools/capture/record_proxy.py via tools/capture/capture_all.py",
            "format: 'C <hex>' client->server, 'S <hex>' server->client, whole frame incl. 4-byte",
            "  length prefix, in arrival order at the proxy; '= reconnect' separates TCP connections",
            "what it does:",
        ] + ["  " + d for d in desc]
        argv = [sys.executable, os.path.join(HERE, "record_proxy.py"),
                "--listen-port", str(proxy_port), "--target-port", str(zk.port),
                "--out", out, "--drop-file", drop_file, "--ready-file", ready,
                "--max-runtime", "240"]
        if popts.get("hold_after_drop"):
            argv += ["--hold-after-drop", str(popts["hold_after_drop"])]
        for c in comments:
            argv += ["--comment", c]
        plog = open(os.path.join(sdir, "proxy.log"), "w")
        proxy = subprocess.Popen(argv, stdout=plog, stderr=subprocess.STDOUT, start_new_session=True)
        end = time.time() + 15
        while not os.path.exists(ready):
            if time.time() > end or proxy.poll() is not None:
                raise RuntimeError("proxy did not start")
            time.sleep(0.05)
        ctx = Ctx(sdir, zk, proxy_port, drop_file, os.path.join(sdir, "client.log"))
        log(f"--- {name}: proxy 127.0.0.1:{proxy_port} -> {zk.port}")
        driver(ctx)
        time.sleep(1.0)
    finally:
        stop_proc(proxy, "proxy")
        zk.stop()
    log(f"--- {name}: wrote {out}")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", help="comma-separated scenario names")
    ap.add_argument("--out", default=DEFAULT_OUT)
    ap.add_argument("--keep-tmp", action="store_true")
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    S = scenarios()
    names = args.only.split(",") if args.only else list(S)
    tmp = tempfile.mkdtemp(prefix="zk-capture-")
    log("work dir", tmp)
    failed = []
    try:
        for n in names:
            try:
                run_scenario(n, S[n], args.out, tmp)
            except Exception as e:
                log(f"!!! {n} failed: {e}")
                failed.append(n)
    finally:
        if not args.keep_tmp:
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            log("kept", tmp)
    if failed:
        log("FAILED:", ", ".join(failed))
        sys.exit(1)


if __name__ == "__main__":
    main()
