#!/usr/bin/env python3
"""kazoo against a ZooKeeper server: its core API and its recipes.

Usage: kazoo_recipes.py HOST:PORT

Every check runs under its own root node and must finish within its
timeout. Prints one line per check and exits 0 only if all of them pass,
1 if any failed, 2 on bad usage or when kazoo is missing.
"""

import sys
import threading
import time
import traceback
import uuid

try:
    from kazoo.client import KazooClient
    from kazoo.exceptions import (
        BadVersionError,
        InvalidACLError,
        NoAuthError,
        NodeExistsError,
        NoNodeError,
        NotEmptyError,
    )
    from kazoo.recipe.cache import TreeCache, TreeEvent
    from kazoo.security import CREATOR_ALL_ACL, make_digest_acl
except ImportError:
    print("kazoo is not installed (pip install kazoo)", file=sys.stderr)
    sys.exit(2)

# How long any single wait may take.
WAIT = 10.0


def wait_for(condition, what, timeout=WAIT):
    """Polls `condition` until it is true, or fails naming `what`."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.02)
    raise AssertionError("timed out waiting for " + what)


def expect(condition, what):
    if not condition:
        raise AssertionError(what)


def expect_raises(exc, fn, *args, **kwargs):
    try:
        fn(*args, **kwargs)
    except exc:
        return
    raise AssertionError("expected %s from %s%r" % (exc.__name__, fn.__name__, args))


class Env:
    """Clients for one check, all closed afterwards."""

    def __init__(self, hosts, root):
        self.hosts = hosts
        self.root = root
        self.clients = []

    def client(self, **kwargs):
        zk = KazooClient(hosts=self.hosts, timeout=10.0, **kwargs)
        zk.start(timeout=WAIT)
        self.clients.append(zk)
        return zk

    def path(self, *parts):
        return "/".join([self.root] + list(parts))

    def close(self):
        for zk in self.clients:
            try:
                zk.stop()
                zk.close()
            except Exception:
                pass


# --- the core API --------------------------------------------------------

def check_crud(env):
    zk = env.client()
    p = env.path("crud")
    expect(zk.create(p, b"v0", makepath=True) == p, "create returns the path")
    data, stat = zk.get(p)
    expect(data == b"v0" and stat.version == 0, "get reads what create wrote")
    stat = zk.set(p, b"v1")
    expect(stat.version == 1 and stat.dataLength == 2, "set bumps the version")
    expect_raises(BadVersionError, zk.set, p, b"x", version=0)
    expect_raises(NodeExistsError, zk.create, p)
    expect_raises(NoNodeError, zk.get, env.path("missing"))
    expect(zk.exists(env.path("missing")) is None, "exists on a missing node is None")
    zk.create(p + "/kid")
    expect_raises(NotEmptyError, zk.delete, p)
    expect(zk.get_children(p) == ["kid"], "get_children lists the child")
    children, stat = zk.get_children(p, include_data=True)
    expect(stat.numChildren == 1, "include_data gives the parent's stat")
    zk.delete(p, recursive=True)
    expect(zk.exists(p) is None, "recursive delete removes the tree")


def check_modes(env):
    zk = env.client()
    base = env.path("modes")
    zk.ensure_path(base)
    s1 = zk.create(base + "/s-", sequence=True)
    s2 = zk.create(base + "/s-", sequence=True)
    expect(s1.endswith("0000000000") and s2.endswith("0000000001"), "sequence counters count")
    e = zk.create(base + "/e", ephemeral=True)
    expect(zk.exists(e).ephemeralOwner == zk.client_id[0], "ephemeral owner is the session")
    # include_data sends create2, which answers with the Stat too.
    path, stat = zk.create(base + "/c2", b"xyz", include_data=True)
    expect(path == base + "/c2" and stat.dataLength == 3, "create2 returns path and stat")
    expect(stat.czxid == stat.mzxid and stat.version == 0, "a fresh node's stat")
    other = env.client()
    other.create(base + "/gone", ephemeral=True)
    other.stop()
    wait_for(lambda: zk.exists(base + "/gone") is None, "ephemeral of a closed session to vanish")


def check_transaction(env):
    zk = env.client()
    base = env.path("txn")
    zk.ensure_path(base)
    tx = zk.transaction()
    tx.create(base + "/a", b"a")
    tx.create(base + "/b", b"b")
    tx.check(base + "/a", 0)
    tx.set_data(base + "/a", b"a2")
    results = tx.commit()
    expect(len(results) == 4 and results[0] == base + "/a", "transaction commits every op")
    tx = zk.transaction()
    tx.delete(base + "/b")
    tx.create(base + "/a")
    results = tx.commit()
    expect(isinstance(results[1], NodeExistsError), "failed op reports NodeExists")
    expect(zk.exists(base + "/b") is not None, "failed transaction applies nothing")


def check_acl_and_auth(env):
    alice = env.client(auth_data=[("digest", "alice:secret")])
    p = env.path("acl")
    alice.ensure_path(env.path())
    alice.create(p, b"secret", acl=[make_digest_acl("alice", "secret", all=True)])
    anon = env.client()
    expect_raises(NoAuthError, anon.get, p)
    acls, _ = alice.get_acls(p)
    expect(acls[0].id.scheme == "digest", "get_acls returns the digest ACL")
    anon.add_auth("digest", "alice:secret")
    expect(anon.get(p)[0] == b"secret", "add_auth grants access")


def check_creator_all_acl(env):
    """kazoo writes "" as a null string: CREATOR_ALL_ACL's Id("auth", "")
    goes out with a null id, which servers take as the creator's ids."""
    anon = env.client()
    base = env.path("creator")
    anon.ensure_path(base)
    expect_raises(InvalidACLError, anon.create, base + "/anon", acl=CREATOR_ALL_ACL)
    zk = env.client(auth_data=[("digest", "carol:secret")])
    p = base + "/mine"
    zk.create(p, b"m", acl=CREATOR_ALL_ACL)
    acls, _ = zk.get_acls(p)
    expect([(a.id.scheme, a.perms) for a in acls] == [("digest", 31)], "create expands auth")
    expect(acls[0].id.id.startswith("carol:"), "to the creator's digest identity")
    expect_raises(NoAuthError, anon.get, p)
    zk.set_acls(base, CREATOR_ALL_ACL)
    acls, _ = zk.get_acls(base)
    expect([a.id.scheme for a in acls] == ["digest"], "set_acls expands auth")
    tx = zk.transaction()
    tx.create(base + "/txn", b"t", acl=CREATOR_ALL_ACL)
    results = tx.commit()
    expect(results == [base + "/txn"], "a transaction creates with CREATOR_ALL_ACL")
    acls, _ = zk.get_acls(base + "/txn")
    expect([a.id.scheme for a in acls] == ["digest"], "inside a transaction too")


def check_watches(env):
    zk = env.client()
    writer = env.client()
    p = env.path("w")
    zk.ensure_path(env.path())
    seen = []
    zk.exists(p, watch=lambda ev: seen.append(("exists", ev.type)))
    writer.create(p, b"1")
    wait_for(lambda: ("exists", "CREATED") in seen, "NodeCreated")
    zk.get(p, watch=lambda ev: seen.append(("get", ev.type)))
    writer.set(p, b"2")
    wait_for(lambda: ("get", "CHANGED") in seen, "NodeDataChanged")
    zk.get_children(p, watch=lambda ev: seen.append(("children", ev.type)))
    writer.create(p + "/k")
    wait_for(lambda: ("children", "CHILD") in seen, "NodeChildrenChanged")
    writer.set(p, b"3")
    time.sleep(0.2)
    expect(seen.count(("get", "CHANGED")) == 1, "one-shot watches fire once")


# --- recipes -------------------------------------------------------------

def check_lock(env):
    a, b = env.client(), env.client()
    path = env.path("lock")
    order = []
    lock_a = a.Lock(path, "a")
    lock_b = b.Lock(path, "b")
    expect(lock_a.acquire(timeout=WAIT), "first lock acquires")

    def contender():
        with lock_b:
            order.append("b")

    t = threading.Thread(target=contender)
    t.start()
    wait_for(lambda: len(lock_a.contenders()) == 2, "two contenders")
    expect(lock_a.contenders() == ["a", "b"], "contenders in queue order")
    time.sleep(0.2)
    expect(order == [], "second contender waits")
    order.append("a")
    lock_a.release()
    t.join(WAIT)
    expect(order == ["a", "b"], "lock hands over in order")
    expect(not lock_b.acquire(blocking=False) or lock_b.release(), "lock free again")


def check_election(env):
    a, b = env.client(), env.client()
    path = env.path("election")
    leaders = []
    stop_a = threading.Event()

    def lead_a():
        leaders.append("a")
        stop_a.wait(WAIT)

    def lead_b():
        leaders.append("b")

    ea = a.Election(path, "a")
    eb = b.Election(path, "b")
    ta = threading.Thread(target=ea.run, args=(lead_a,))
    ta.start()
    wait_for(lambda: leaders == ["a"], "a to lead")
    tb = threading.Thread(target=eb.run, args=(lead_b,))
    tb.start()
    wait_for(lambda: len(eb.contenders()) == 2, "b to enter the election")
    expect(eb.contenders() == ["a", "b"], "contenders in order")
    stop_a.set()
    ta.join(WAIT)
    tb.join(WAIT)
    expect(leaders == ["a", "b"], "leadership passes to b")


def check_barriers(env):
    a, b = env.client(), env.client()
    path = env.path("barrier")
    barrier = a.Barrier(path)
    barrier.create()
    passed = []
    t = threading.Thread(target=lambda: passed.append(b.Barrier(path).wait(WAIT)))
    t.start()
    time.sleep(0.3)
    expect(passed == [], "waiter blocks while the barrier stands")
    barrier.remove()
    t.join(WAIT)
    expect(passed == [True], "waiter passes once the barrier is removed")

    dpath = env.path("double")
    entered = []

    def party(zk, name):
        db = zk.DoubleBarrier(dpath, 2)
        db.enter()
        entered.append(name)
        db.leave()

    threads = [threading.Thread(target=party, args=(zk, n)) for zk, n in ((a, "a"), (b, "b"))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(WAIT)
    expect(sorted(entered) == ["a", "b"], "both parties pass the double barrier")


def check_queues(env):
    a, b = env.client(), env.client()
    q = a.Queue(env.path("queue"))
    for item in (b"one", b"two", b"three"):
        q.put(item)
    expect(len(q) == 3, "queue holds three items")
    q2 = b.Queue(env.path("queue"))
    expect([q2.get(), q2.get(), q2.get()] == [b"one", b"two", b"three"], "FIFO order")
    expect(q2.get() is None, "empty queue gives None")
    pq = a.Queue(env.path("prio"))
    pq.put(b"low", priority=200)
    pq.put(b"high", priority=10)
    expect(pq.get() == b"high", "priority queue serves the lowest number first")

    lq = a.LockingQueue(env.path("lq"))
    lq.put(b"job")
    consumer = b.LockingQueue(env.path("lq"))
    expect(consumer.get(WAIT) == b"job", "locking queue hands out the item")
    expect(consumer.consume(), "consume removes it")
    expect(len(consumer) == 0, "locking queue empty")


def check_counter(env):
    a, b = env.client(), env.client()
    path = env.path("counter")
    ca, cb = a.Counter(path), b.Counter(path)
    ca += 5
    cb += 3
    cb -= 1
    expect(ca.value == 7 and cb.value == 7, "both counters see 7")
    fc = a.Counter(env.path("fcounter"), default=0.0)
    fc += 2.5
    expect(fc.value == 2.5, "float counter")


def check_children_and_data_watch(env):
    zk, writer = env.client(), env.client()
    base = env.path("cw")
    zk.ensure_path(base)
    children_seen = []
    zk.ChildrenWatch(base)(lambda children: children_seen.append(sorted(children)))
    writer.create(base + "/x")
    writer.create(base + "/y")
    wait_for(lambda: children_seen and children_seen[-1] == ["x", "y"], "ChildrenWatch to see x, y")
    writer.delete(base + "/x")
    wait_for(lambda: children_seen[-1] == ["y"], "ChildrenWatch to see the delete")

    data_seen = []
    dpath = base + "/d"
    zk.DataWatch(dpath)(lambda data, stat: data_seen.append(data))
    wait_for(lambda: data_seen == [None], "DataWatch to report the missing node")
    writer.create(dpath, b"1")
    wait_for(lambda: data_seen[-1] == b"1", "DataWatch to see creation")
    writer.set(dpath, b"2")
    wait_for(lambda: data_seen[-1] == b"2", "DataWatch to see the change")
    writer.delete(dpath)
    wait_for(lambda: data_seen[-1] is None, "DataWatch to see the delete")


def check_tree_cache(env):
    zk, writer = env.client(), env.client()
    base = env.path("tree")
    writer.create(base + "/a/b", b"ab", makepath=True)
    cache = TreeCache(zk, base)
    events = []
    cache.listen(lambda ev: events.append((ev.event_type, ev.event_data.path if ev.event_data else None)))
    cache.start()
    try:
        wait_for(lambda: (TreeEvent.INITIALIZED, None) in events, "TreeCache to initialise")
        expect(cache.get_data(base + "/a/b").data == b"ab", "cache holds the deep node")
        writer.create(base + "/c", b"c")
        wait_for(lambda: (TreeEvent.NODE_ADDED, base + "/c") in events, "NODE_ADDED")
        writer.set(base + "/a/b", b"new")
        wait_for(lambda: (TreeEvent.NODE_UPDATED, base + "/a/b") in events, "NODE_UPDATED")
        expect(cache.get_data(base + "/a/b").data == b"new", "cache follows the change")
        writer.delete(base + "/a", recursive=True)
        wait_for(lambda: (TreeEvent.NODE_REMOVED, base + "/a") in events, "NODE_REMOVED")
        expect(sorted(cache.get_children(base)) == ["c"], "cache children after the removal")
    finally:
        cache.close()


CHECKS = [
    check_crud,
    check_modes,
    check_transaction,
    check_acl_and_auth,
    check_creator_all_acl,
    check_watches,
    check_lock,
    check_election,
    check_barriers,
    check_queues,
    check_counter,
    check_children_and_data_watch,
    check_tree_cache,
]


def main(argv):
    if len(argv) != 2:
        print(__doc__, file=sys.stderr)
        return 2
    hosts = argv[1]
    run = "/kazoo-" + uuid.uuid4().hex[:8]
    failed = 0
    for check in CHECKS:
        env = Env(hosts, run + "/" + check.__name__)
        started = time.time()
        try:
            check(env)
            print("ok      %-32s %.2fs" % (check.__name__, time.time() - started))
        except Exception:
            failed += 1
            print("FAILED  %s" % check.__name__)
            traceback.print_exc(file=sys.stdout)
        finally:
            env.close()
        sys.stdout.flush()
    print("%d of %d checks failed" % (failed, len(CHECKS)))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
