#!/usr/bin/env python3
"""kazoo client scenarios for the wire capture (run by capture_all.py).

usage: kazoo_scenarios.py SCENARIO HOST:PORT

HOST:PORT is the recording proxy. Every scenario is bounded in time and
prints what it did (the capture log keeps that output).
"""

import sys
import time
from collections import namedtuple

from kazoo.client import KazooClient
from kazoo.exceptions import (
    AuthFailedError,
    BadVersionError,
    KazooException,
    NoAuthError,
    NodeExistsError,
    NoNodeError,
)
from kazoo.protocol.serialization import (
    Create2,
    int_struct,
    long_struct,
    write_buffer,
    write_string,
)
from kazoo.security import OPEN_ACL_UNSAFE, make_digest_acl


def log(*a):
    print("[kazoo]", *a, flush=True)


def connect(hosts, timeout=10.0, **kw):
    zk = KazooClient(hosts=hosts, timeout=timeout, connection_retry=None, **kw)
    zk.start(timeout=15)
    return zk


def finish(zk):
    zk.stop()
    zk.close()


def expect(exc_type, fn, *a, **kw):
    try:
        r = fn(*a, **kw)
        log("UNEXPECTED success", fn.__name__, a, r)
    except exc_type as e:
        log("expected", type(e).__name__, "from", fn.__name__, a)


# --- requests kazoo has no API for, sent over kazoo's own connection --------
class CreateContainer(Create2):
    """createContainer (19): CreateRequest with flags=4, reply Create2Response."""

    type = 19


class CreateTTL(namedtuple("CreateTTL", "path data acl flags ttl")):
    """createTTL (21): CreateTTLRequest, reply Create2Response."""

    type = 21

    def serialize(self):
        b = bytearray(Create2(self.path, self.data, self.acl, self.flags).serialize())
        b.extend(long_struct.pack(self.ttl))
        return b

    deserialize = Create2.deserialize


def raw_call(zk, req):
    ar = zk.handler.async_result()
    zk._call(req, ar)
    return ar.get(timeout=10)


# --- scenarios -----------------------------------------------------------------
def sc_connect(hosts):
    zk = connect(hosts)
    log("connected, session", hex(zk.client_id[0]))
    finish(zk)


def sc_create_modes(hosts):
    zk = connect(hosts)
    log(zk.create("/km", b"root"))                                   # create(1) persistent
    log(zk.create("/km/eph", b"e", ephemeral=True))                  # flags 1
    log(zk.create("/km/seq-", b"s", sequence=True))                  # flags 2
    log(zk.create("/km/eseq-", b"es", ephemeral=True, sequence=True))  # flags 3
    log(zk.create("/km/nulldata", None))                             # data buffer length -1
    log(zk.create("/km/empty", b""))                                 # data buffer length 0
    log(zk.create("/km/c2", b"with-stat", include_data=True))        # create2(15)
    # makepath: create2 fails NoNode, kazoo creates parents (create(1)), retries
    log(zk.create("/km/deep/er/node", b"mk", makepath=True, include_data=True))
    log(zk.get("/km/nulldata"))
    log(zk.get("/km/empty"))
    # kazoo has no container/TTL API: same connection, hand-built records
    log(raw_call(zk, CreateContainer("/km/cont", b"c", OPEN_ACL_UNSAFE, 4)))
    log(raw_call(zk, CreateTTL("/km/ttl", b"t", OPEN_ACL_UNSAFE, 5, 10000)))
    log(raw_call(zk, CreateTTL("/km/ttlseq-", b"ts", OPEN_ACL_UNSAFE, 6, 10000)))
    log(zk.get_children("/km"))
    finish(zk)


def sc_get_set_exists_delete(hosts):
    zk = connect(hosts)
    zk.create("/kg", b"v0")
    zk.create("/kg/a", b"a0")
    zk.create("/kg/b", b"b0")
    log(zk.get("/kg"))                                              # getData
    log(zk.set("/kg", b"v1", version=0))                           # setData version 0
    log(zk.set("/kg", b"v2"))                                       # setData version -1
    expect(BadVersionError, zk.set, "/kg", b"bad", version=7)      # BadVersion -103
    log(zk.exists("/kg"))                                           # exists present
    got = []
    log(zk.exists("/kg/new", watch=lambda ev: got.append(ev)))      # exists absent + watch
    log(zk.get_children("/kg"))                                     # getChildren(8)
    log(zk.get_children("/kg", include_data=True))                  # getChildren2(12)
    expect(NoNodeError, zk.get, "/kg/missing")                     # NoNode -101
    expect(NodeExistsError, zk.create, "/kg/a", b"dup")            # NodeExists -110
    # data watch + change -> NodeDataChanged notification
    log(zk.get("/kg/a", watch=lambda ev: got.append(ev)))
    zk.set("/kg/a", b"a1")
    # exists-watch fires NodeCreated
    zk.create("/kg/new", b"n")
    # child watch + delete child -> NodeChildrenChanged ; data watch -> NodeDeleted
    log(zk.get_children("/kg", watch=lambda ev: got.append(ev)))
    log(zk.get("/kg/b", watch=lambda ev: got.append(ev)))
    zk.delete("/kg/b")                                              # delete version -1
    expect(BadVersionError, zk.delete, "/kg/new", version=5)
    zk.delete("/kg/new", version=0)                                 # delete with version
    expect(NoNodeError, zk.delete, "/kg/missing")
    deadline = time.time() + 5
    while len(got) < 4 and time.time() < deadline:
        time.sleep(0.05)
    log("events:", got)
    finish(zk)


def sc_multi(hosts):
    zk = connect(hosts)
    zk.create("/kt", b"")
    zk.create("/kt/old", b"o")
    t = zk.transaction()
    t.create("/kt/x", b"x")
    t.set_data("/kt/old", b"o2", version=0)
    t.check("/kt/old", 1)
    t.delete("/kt/x")
    t.create("/kt/s-", b"s", sequence=True)
    log("ok txn:", t.commit())
    t = zk.transaction()
    t.create("/kt/y", b"y")
    t.create("/kt/old", b"dup")          # NodeExists
    t.set_data("/kt/old", b"never")
    log("failing txn:", t.commit())
    t = zk.transaction()
    t.check("/kt/old", 99)               # BadVersion on check
    t.delete("/kt/old")
    log("failing check txn:", t.commit())
    log(zk.get_children("/kt"))
    finish(zk)


def sc_auth(hosts):
    acl = make_digest_acl("user", "password", all=True)
    zk = connect(hosts)
    zk.add_auth("digest", "user:password")                          # auth xid -4
    log(zk.create("/ka", b"secret", acl=[acl]))                    # digest ACL
    log(zk.get_acls("/ka"))                                         # getACL(6)
    log(zk.get("/ka"))
    log(zk.set_acls("/ka", [acl, make_digest_acl("other", "pw", read=True)], version=0))  # setACL(7)
    log(zk.get_acls("/ka"))
    finish(zk)
    # second connection: no credentials -> NoAuth; then digest other:pw (READ only,
    # no ADMIN -> getACL masks digest ids as user:x); then an unknown scheme -> AUTHFAILED
    zk = connect(hosts)
    expect(NoAuthError, zk.get, "/ka")                             # NoAuth -102
    expect(NoAuthError, zk.get_acls, "/ka")                        # getACL needs READ or ADMIN
    zk.add_auth("digest", "other:pw")
    log(zk.get_acls("/ka"))                                         # masked ids
    log(zk.get("/ka"))
    try:
        zk.add_auth("nosuchscheme", "whatever")
        log("UNEXPECTED auth success")
    except (AuthFailedError, KazooException) as e:
        log("expected auth failure", type(e).__name__)
    time.sleep(1.0)
    log("state after auth failure:", zk.state, zk.client_state)
    try:
        zk.stop()
        zk.close()
    except Exception as e:
        log("stop:", type(e).__name__, e)


def sc_ping(hosts):
    zk = connect(hosts, timeout=4.0)
    log("negotiated timeout ms:", zk._session_timeout)
    log(zk.exists("/"))
    time.sleep(9)
    log(zk.exists("/"))
    finish(zk)


SCENARIOS = {
    "connect": sc_connect,
    "create_modes": sc_create_modes,
    "get_set_exists_delete": sc_get_set_exists_delete,
    "multi": sc_multi,
    "auth": sc_auth,
    "ping": sc_ping,
}

if __name__ == "__main__":
    SCENARIOS[sys.argv[1]](sys.argv[2])
