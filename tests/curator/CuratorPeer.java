// A small Apache Curator 5 program the Rust interop tests drive as a child
// process (tests/curator_interop.rs). It speaks a line protocol:
//
//   java CuratorPeer <connectString> <role> <args...>
//
// It prints `READY` once its session is connected, then one line per thing
// it observes, and reads commands from stdin, one per line. When stdin
// closes (the Rust test ended or died) the program exits at once, so it
// never outlives the test.
//
// Roles:
//   mutex <lockPath> <markerPath> <holdMs> <rounds>
//       waits for `go`, then `rounds` times: acquire an InterProcessMutex,
//       create the ephemeral <markerPath> (`OVERLAP` and exit 2 if it
//       already exists: someone else believes it holds the lock), print
//       `ACQUIRED <wall ms>`, hold for <holdMs>, print `RELEASED <wall ms>`,
//       delete the marker, release. Prints `DONE` at the end.
//   latch <path> <id>
//       a LeaderLatch; prints `LEADER` / `NOT_LEADER` on changes.
//       Commands: `status` -> `STATUS LEADER|NOT_LEADER`,
//                 `leader` -> `LEADER_ID <id>`, `close` -> `CLOSED`.
//   pcc <path>
//       a PathChildrenCache (with data) started with POST_INITIALIZED_EVENT;
//       prints `CHILD_ADDED|CHILD_UPDATED|CHILD_REMOVED <path> <data>` and
//       `INITIALIZED`.
//   member <membershipPath> <id> <payload>
//       a GroupMember. Commands: `members` -> `MEMBERS <id=payload,...>`
//       (sorted by id), `close` -> `CLOSED`.
//
// Every role also answers `exit` by closing the framework and exiting 0.
// Failures print `ERROR <what>` and exit non-zero.

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.Map;
import java.util.TreeMap;
import java.util.concurrent.BlockingQueue;
import java.util.concurrent.LinkedBlockingQueue;
import java.util.concurrent.TimeUnit;

import org.apache.curator.framework.CuratorFramework;
import org.apache.curator.framework.CuratorFrameworkFactory;
import org.apache.curator.framework.recipes.cache.ChildData;
import org.apache.curator.framework.recipes.cache.PathChildrenCache;
import org.apache.curator.framework.recipes.cache.PathChildrenCacheEvent;
import org.apache.curator.framework.recipes.leader.LeaderLatch;
import org.apache.curator.framework.recipes.leader.LeaderLatchListener;
import org.apache.curator.framework.recipes.locks.InterProcessMutex;
import org.apache.curator.framework.recipes.nodes.GroupMember;
import org.apache.curator.retry.ExponentialBackoffRetry;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;

public final class CuratorPeer {
    /** Marks the end of stdin in the command queue. */
    private static final String EOF = "\u0000eof";

    /** How long any single wait inside the peer may take. */
    private static final int WAIT_SECONDS = 30;

    private CuratorPeer() {}

    /** One whole line per call, flushed, so the test sees it at once. */
    static synchronized void say(String line) {
        System.out.println(line);
        System.out.flush();
    }

    static void fail(String what) {
        say("ERROR " + what);
        System.exit(3);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 2) {
            fail("usage: CuratorPeer <connectString> <role> <args...>");
        }
        String role = args[1];
        BlockingQueue<String> commands = readCommands(role.equals("mutex"));
        CuratorFramework client = CuratorFrameworkFactory.builder()
                .connectString(args[0])
                .sessionTimeoutMs(10_000)
                .connectionTimeoutMs(10_000)
                .retryPolicy(new ExponentialBackoffRetry(100, 5))
                .build();
        client.start();
        if (!client.blockUntilConnected(WAIT_SECONDS, TimeUnit.SECONDS)) {
            fail("not connected to " + args[0]);
        }
        say("READY");
        int code;
        switch (role) {
            case "mutex":
                need(args, 6);
                code = mutex(client, commands, args[2], args[3],
                        Long.parseLong(args[4]), Integer.parseInt(args[5]));
                break;
            case "latch":
                need(args, 4);
                code = latch(client, commands, args[2], args[3]);
                break;
            case "pcc":
                need(args, 3);
                code = pathChildrenCache(client, commands, args[2]);
                break;
            case "member":
                need(args, 5);
                code = member(client, commands, args[2], args[3], args[4]);
                break;
            default:
                fail("unknown role " + role);
                return;
        }
        client.close();
        System.exit(code);
    }

    static void need(String[] args, int count) {
        if (args.length < count) {
            fail("role " + args[1] + " needs " + (count - 2) + " arguments");
        }
    }

    /**
     * Reads stdin lines into a queue on a daemon thread. On end of input
     * the queue gets EOF; a peer whose main thread may be blocked in a
     * recipe (the mutex loop) exits right away instead.
     */
    static BlockingQueue<String> readCommands(boolean exitOnEof) {
        BlockingQueue<String> queue = new LinkedBlockingQueue<>();
        Thread reader = new Thread(() -> {
            try (BufferedReader in = new BufferedReader(
                    new InputStreamReader(System.in, StandardCharsets.UTF_8))) {
                String line;
                while ((line = in.readLine()) != null) {
                    queue.add(line.trim());
                }
            } catch (Exception e) {
                // A broken stdin is the same as a closed one.
            }
            if (exitOnEof) {
                Runtime.getRuntime().halt(0);
            }
            queue.add(EOF);
        }, "stdin");
        reader.setDaemon(true);
        reader.start();
        return queue;
    }

    static int mutex(CuratorFramework client, BlockingQueue<String> commands, String lockPath,
            String markerPath, long holdMs, int rounds) throws Exception {
        // Start together with the Rust side, so the two really contend.
        String go = commands.poll(WAIT_SECONDS, TimeUnit.SECONDS);
        if (!"go".equals(go)) {
            fail("expected go, got " + go);
        }
        InterProcessMutex lock = new InterProcessMutex(client, lockPath);
        for (int i = 0; i < rounds; i++) {
            if (!lock.acquire(WAIT_SECONDS, TimeUnit.SECONDS)) {
                fail("lock not acquired within " + WAIT_SECONDS + " s");
            }
            try {
                try {
                    client.create().withMode(CreateMode.EPHEMERAL).forPath(markerPath);
                } catch (KeeperException.NodeExistsException e) {
                    say("OVERLAP " + markerPath);
                    return 2;
                }
                // Times are taken strictly inside the marker's lifetime, so
                // two holders' intervals can only overlap if their markers
                // did.
                say("ACQUIRED " + System.currentTimeMillis());
                Thread.sleep(holdMs);
                say("RELEASED " + System.currentTimeMillis());
                client.delete().forPath(markerPath);
            } finally {
                lock.release();
            }
        }
        say("DONE");
        return 0;
    }

    static int latch(CuratorFramework client, BlockingQueue<String> commands, String path,
            String id) throws Exception {
        LeaderLatch latch = new LeaderLatch(client, path, id);
        latch.addListener(new LeaderLatchListener() {
            @Override
            public void isLeader() {
                say("LEADER");
            }

            @Override
            public void notLeader() {
                say("NOT_LEADER");
            }
        });
        latch.start();
        boolean open = true;
        while (true) {
            String command = commands.take();
            switch (command) {
                case "status":
                    say("STATUS " + (latch.hasLeadership() ? "LEADER" : "NOT_LEADER"));
                    break;
                case "leader":
                    say("LEADER_ID " + latch.getLeader().getId());
                    break;
                case "close":
                    if (open) {
                        latch.close();
                        open = false;
                    }
                    say("CLOSED");
                    break;
                case "exit":
                case EOF:
                    if (open) {
                        latch.close();
                    }
                    return 0;
                default:
                    say("ERROR unknown command " + command);
            }
        }
    }

    static String describe(ChildData child) {
        byte[] data = child.getData();
        String text = data == null ? "" : new String(data, StandardCharsets.UTF_8);
        return child.getPath() + " " + text.replace('\n', ' ');
    }

    @SuppressWarnings("deprecation")
    static int pathChildrenCache(CuratorFramework client, BlockingQueue<String> commands,
            String path) throws Exception {
        PathChildrenCache cache = new PathChildrenCache(client, path, true);
        cache.getListenable().addListener((c, event) -> {
            PathChildrenCacheEvent.Type type = event.getType();
            switch (type) {
                case CHILD_ADDED:
                case CHILD_UPDATED:
                case CHILD_REMOVED:
                    say(type + " " + describe(event.getData()));
                    break;
                default:
                    say(type.toString());
            }
        });
        cache.start(PathChildrenCache.StartMode.POST_INITIALIZED_EVENT);
        while (true) {
            String command = commands.take();
            if (command.equals("exit") || command.equals(EOF)) {
                cache.close();
                return 0;
            }
            say("ERROR unknown command " + command);
        }
    }

    static int member(CuratorFramework client, BlockingQueue<String> commands, String path,
            String id, String payload) throws Exception {
        GroupMember member =
                new GroupMember(client, path, id, payload.getBytes(StandardCharsets.UTF_8));
        member.start();
        boolean open = true;
        while (true) {
            String command = commands.take();
            switch (command) {
                case "members": {
                    Map<String, byte[]> current = new TreeMap<>(member.getCurrentMembers());
                    StringBuilder line = new StringBuilder("MEMBERS ");
                    String separator = "";
                    for (Map.Entry<String, byte[]> entry : current.entrySet()) {
                        line.append(separator).append(entry.getKey()).append('=')
                                .append(new String(entry.getValue(), StandardCharsets.UTF_8));
                        separator = ",";
                    }
                    say(line.toString());
                    break;
                }
                case "close":
                    if (open) {
                        member.close();
                        open = false;
                    }
                    say("CLOSED");
                    break;
                case "exit":
                case EOF:
                    if (open) {
                        member.close();
                    }
                    return 0;
                default:
                    say("ERROR unknown command " + command);
            }
        }
    }
}
