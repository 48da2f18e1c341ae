#!/usr/bin/env python3
"""Recording TCP proxy for the ZooKeeper client protocol (stdlib only).

Listens on 127.0.0.1:<listen-port>, forwards every accepted connection to
127.0.0.1:<target-port>, splits each direction into frames using the 4-byte
big-endian length prefix, and writes a golden fixture file:

    # comment lines (header)
    C <hex of whole client->server frame incl. length prefix>
    S <hex of whole server->client frame incl. length prefix>
    = reconnect            (between two TCP connections)

Frames are forwarded whole (a frame is only passed on once all its bytes have
arrived), so a forced drop never leaves half a frame on either side.

Forced drops (to make a client reconnect and re-send its watches):
  --drop-after N       after the N-th client frame of the *first* connection,
                       wait --drop-delay seconds (to let replies through), then
                       close both sides of that connection.
  --drop-file PATH     whenever PATH exists, close the currently open
                       connection(s) and delete PATH.
  --hold-after-drop S  the first connection accepted after a forced drop is
                       only forwarded after S seconds (its bytes wait in the
                       socket), so a driver can change znodes out of band
                       while the client is disconnected.

The proxy stops (and writes the fixture) on SIGTERM/SIGINT, when --stop-file
appears, or after --max-runtime seconds. The fixture is also rewritten every
time a connection closes, so a crash loses at most the open connection.
"""

import argparse
import asyncio
import os
import signal
import struct
import sys
import time


class Conn:
    def __init__(self, idx):
        self.idx = idx
        self.events = []  # (seq, 'C'|'S', bytes)
        self.client_frames = 0
        self.closing = False
        self.writers = []
        self.partial = {}  # direction -> leftover bytes at close


class Recorder:
    def __init__(self, args):
        self.args = args
        self.conns = []
        self.seq = 0
        self.stop = asyncio.Event()
        self.hold_next = False

    def log(self, msg):
        if not self.args.quiet:
            print(f"[record_proxy {self.args.listen_port}] {msg}", file=sys.stderr, flush=True)

    def write_fixture(self):
        a = self.args
        tmp = a.out + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            for line in a.comment:
                for sub in line.split("\n"):
                    f.write("# " + sub + "\n" if sub else "#\n")
            first = True
            for c in self.conns:
                if not c.events:
                    continue
                if not first:
                    f.write("= reconnect\n")
                first = False
                for _, d, frame in c.events:
                    f.write(f"{d} {frame.hex()}\n")
        os.replace(tmp, a.out)

    async def pump(self, conn, direction, reader, writer):
        """Read frames from reader, record, forward to writer."""
        buf = b""
        try:
            while True:
                while len(buf) < 4:
                    chunk = await reader.read(65536)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                (n,) = struct.unpack(">i", buf[:4])
                if n < 0 or n > 16 * 1024 * 1024:
                    # Not a sane frame (e.g. a four-letter word): pass raw.
                    self.log(f"conn {conn.idx} {direction}: odd length {n}, raw passthrough")
                    conn.events.append((self.next_seq(), direction, buf))
                    writer.write(buf)
                    await writer.drain()
                    buf = b""
                    continue
                while len(buf) < 4 + n:
                    chunk = await reader.read(65536)
                    if not chunk:
                        raise EOFError
                    buf += chunk
                frame, buf = buf[: 4 + n], buf[4 + n :]
                if conn.closing:
                    raise EOFError
                conn.events.append((self.next_seq(), direction, frame))
                writer.write(frame)
                await writer.drain()
                if direction == "C":
                    conn.client_frames += 1
                    if (
                        self.args.drop_after
                        and conn.idx == 0
                        and conn.client_frames == self.args.drop_after
                    ):
                        asyncio.get_running_loop().create_task(self.delayed_drop(conn))
        except (EOFError, ConnectionError, asyncio.CancelledError, OSError):
            pass
        finally:
            if buf:
                conn.partial[direction] = buf
            # propagate the half-close to the other side; the other pump keeps
            # running so in-flight replies (e.g. to closeSession) are kept.
            try:
                if writer.can_write_eof():
                    writer.write_eof()
            except Exception:
                pass

    def next_seq(self):
        self.seq += 1
        return self.seq

    async def delayed_drop(self, conn):
        await asyncio.sleep(self.args.drop_delay)
        self.drop(conn, "drop-after")

    def drop(self, conn, why):
        if conn.closing:
            return
        self.log(f"forcing drop of conn {conn.idx} ({why})")
        conn.closing = True
        self.hold_next = True
        for w in conn.writers:
            try:
                w.transport.abort()
            except Exception:
                pass

    async def handle(self, creader, cwriter):
        conn = Conn(len(self.conns))
        self.conns.append(conn)
        open_others = [c for c in self.conns[:-1] if c.writers and not c.closing and not getattr(c, "done", False)]
        if open_others:
            self.log(f"WARNING conn {conn.idx} overlaps with open conn(s) {[c.idx for c in open_others]}")
        self.log(f"accepted conn {conn.idx}")
        if self.hold_next and self.args.hold_after_drop > 0:
            # Keep the reconnecting client waiting (its ConnectRequest stays
            # buffered in the socket) so out-of-band changes can be made while
            # it is disconnected.
            self.hold_next = False
            self.log(f"holding conn {conn.idx} for {self.args.hold_after_drop}s")
            await asyncio.sleep(self.args.hold_after_drop)
        try:
            sreader, swriter = await asyncio.open_connection("127.0.0.1", self.args.target_port)
        except OSError as e:
            self.log(f"upstream connect failed: {e}")
            cwriter.close()
            return
        conn.writers = [cwriter, swriter]
        t1 = asyncio.create_task(self.pump(conn, "C", creader, swriter))
        t2 = asyncio.create_task(self.pump(conn, "S", sreader, cwriter))
        done, pending = await asyncio.wait({t1, t2}, return_when=asyncio.FIRST_COMPLETED)
        if pending:
            done2, pending = await asyncio.wait(pending, timeout=3.0)
        for w in conn.writers:
            try:
                w.transport.abort()
            except Exception:
                pass
        if pending:
            await asyncio.wait(pending, timeout=1.0)
        conn.done = True
        for d, rest in conn.partial.items():
            self.log(f"conn {conn.idx} {d}: {len(rest)} unframed trailing bytes dropped: {rest.hex()}")
        self.log(f"conn {conn.idx} closed: {len(conn.events)} frames")
        self.write_fixture()

    async def watch_files(self):
        a = self.args
        t0 = time.monotonic()
        while not self.stop.is_set():
            if a.drop_file and os.path.exists(a.drop_file):
                try:
                    os.unlink(a.drop_file)
                except OSError:
                    pass
                for c in self.conns:
                    if not getattr(c, "done", False):
                        self.drop(c, "drop-file")
            if a.stop_file and os.path.exists(a.stop_file):
                self.stop.set()
            if a.max_runtime and time.monotonic() - t0 > a.max_runtime:
                self.log("max runtime reached")
                self.stop.set()
            await asyncio.sleep(0.05)

    async def main(self):
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self.stop.set)
        server = await asyncio.start_server(self.handle, "127.0.0.1", self.args.listen_port)
        self.log(f"listening, forwarding to 127.0.0.1:{self.args.target_port}, writing {self.args.out}")
        if self.args.ready_file:
            with open(self.args.ready_file, "w") as f:
                f.write(str(os.getpid()))
        watcher = asyncio.create_task(self.watch_files())
        await self.stop.wait()
        server.close()
        # give in-flight frames a moment, then abort everything
        await asyncio.sleep(0.2)
        for c in self.conns:
            for w in c.writers:
                try:
                    w.transport.abort()
                except Exception:
                    pass
        await asyncio.sleep(0.1)
        watcher.cancel()
        self.write_fixture()
        self.log(f"wrote {self.args.out} ({len(self.conns)} connection(s))")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--listen-port", type=int, required=True)
    p.add_argument("--target-port", type=int, required=True)
    p.add_argument("--out", required=True, help="fixture file to write")
    p.add_argument("--comment", action="append", default=[], help="header comment line (repeatable)")
    p.add_argument("--drop-after", type=int, default=0, help="drop first connection after N client frames")
    p.add_argument("--drop-delay", type=float, default=0.5, help="seconds to wait before the drop")
    p.add_argument("--drop-file", help="drop open connections whenever this file appears")
    p.add_argument("--hold-after-drop", type=float, default=0.0,
                   help="delay forwarding of the first connection accepted after a forced drop")
    p.add_argument("--stop-file", help="stop when this file appears")
    p.add_argument("--ready-file", help="write pid here once listening")
    p.add_argument("--max-runtime", type=float, default=300.0, help="hard stop after this many seconds")
    p.add_argument("--quiet", action="store_true")
    args = p.parse_args()
    asyncio.run(Recorder(args).main())


if __name__ == "__main__":
    main()
