// Java client API scenario for the wire capture (run by capture_all.py with
// `java -cp /usr/share/java/zookeeper.jar ZkApiScenario.java HOST:PORT`).
// Covers requests the CLIs cannot send: checkWatches (17), multiRead (22),
// createTTL/createContainer inside multi, create2 with TTL, getConfig, ...
import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;

import org.apache.zookeeper.AddWatchMode;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.KeeperException;
import org.apache.zookeeper.Op;
import org.apache.zookeeper.OpResult;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Id;
import org.apache.zookeeper.data.Stat;

public class ZkApiScenario {
    static final List<ACL> OPEN = ZooDefs.Ids.OPEN_ACL_UNSAFE;

    interface Step { Object run() throws Exception; }

    static void step(String what, Step s) {
        try {
            Object r = s.run();
            System.out.println("[java] " + what + " -> " + r);
        } catch (KeeperException e) {
            System.out.println("[java] " + what + " -> " + e.code() + " (" + e.getMessage() + ")");
        } catch (Exception e) {
            System.out.println("[java] " + what + " -> " + e);
        }
    }

    public static void main(String[] args) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        List<WatchedEvent> events = new ArrayList<>();
        Watcher def = ev -> {
            synchronized (events) { events.add(ev); }
            if (ev.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        };
        ZooKeeper zk = new ZooKeeper(args[0], 30000, def);
        if (!connected.await(15, TimeUnit.SECONDS)) throw new RuntimeException("no connect");
        Stat st = new Stat();
        Watcher w1 = ev -> System.out.println("[java] w1 " + ev);
        Watcher w2 = ev -> System.out.println("[java] w2 " + ev);

        step("create2 /j", () -> zk.create("/j", "j".getBytes(), OPEN, CreateMode.PERSISTENT, st));
        step("create2 null data", () -> zk.create("/j/null", null, OPEN, CreateMode.PERSISTENT, st));
        step("createTTL", () -> zk.create("/j/ttl", "t".getBytes(), OPEN, CreateMode.PERSISTENT_WITH_TTL, st, 60000L));
        step("createTTL seq", () -> zk.create("/j/ttls-", "t".getBytes(), OPEN, CreateMode.PERSISTENT_SEQUENTIAL_WITH_TTL, st, 60000L));
        step("createContainer", () -> zk.create("/j/cont", "c".getBytes(), OPEN, CreateMode.CONTAINER));
        step("create eph-seq", () -> zk.create("/j/es-", new byte[0], OPEN, CreateMode.EPHEMERAL_SEQUENTIAL));

        // checkWatches (17): removeWatches with a specific watcher
        step("getData w1", () -> new String(zk.getData("/j", w1, st)));
        step("getChildren w2", () -> zk.getChildren("/j", w2, st));
        step("removeWatches(w1,Data) -> checkWatches", () -> { zk.removeWatches("/j", w1, Watcher.WatcherType.Data, false); return "ok"; });
        step("removeWatches(w2,Children) -> checkWatches", () -> { zk.removeWatches("/j", w2, Watcher.WatcherType.Children, false); return "ok"; });
        // removeWatches (18): removeAllWatches
        step("exists w1 /j", () -> zk.exists("/j", w1));
        step("removeAllWatches Any", () -> { zk.removeAllWatches("/j", Watcher.WatcherType.Any, false); return "ok"; });
        step("removeAllWatches none left", () -> { zk.removeAllWatches("/j", Watcher.WatcherType.Data, false); return "ok"; });

        // persistent watches
        step("addWatch PERSISTENT", () -> { zk.addWatch("/j/null", AddWatchMode.PERSISTENT); return "ok"; });
        step("addWatch PERSISTENT_RECURSIVE", () -> { zk.addWatch("/j", w2, AddWatchMode.PERSISTENT_RECURSIVE); return "ok"; });
        step("setData fires", () -> zk.setData("/j/null", "now".getBytes(), -1));

        // multi (14) with create/createTTL/createContainer/check/setData/delete
        step("multi ok", () -> {
            List<OpResult> rs = zk.multi(Arrays.asList(
                Op.create("/j/m1", "1".getBytes(), OPEN, CreateMode.PERSISTENT),
                Op.create("/j/m2", "2".getBytes(), OPEN, CreateMode.PERSISTENT_WITH_TTL, 60000L),
                Op.create("/j/m3", "3".getBytes(), OPEN, CreateMode.CONTAINER),
                Op.check("/j", 0),
                Op.setData("/j/m1", "1b".getBytes(), 0),
                Op.delete("/j/m1", -1)));
            return rs.size() + " results";
        });
        step("multi fail", () -> zk.multi(Arrays.asList(
                Op.create("/j/m4", null, OPEN, CreateMode.PERSISTENT),
                Op.delete("/j/nope", -1),
                Op.setData("/j", "x".getBytes(), -1))));
        // multiRead (22)
        step("multiRead", () -> {
            List<OpResult> rs = zk.multi(Arrays.asList(
                Op.getData("/j"), Op.getChildren("/j"), Op.getData("/j/missing")));
            StringBuilder sb = new StringBuilder();
            for (OpResult r : rs) sb.append(r.getClass().getSimpleName()).append(' ');
            return sb.toString();
        });

        step("getConfig", () -> new String(zk.getConfig(false, st)));
        step("getEphemerals", () -> zk.getEphemerals());
        step("getEphemerals /j", () -> zk.getEphemerals("/j"));
        step("getAllChildrenNumber /j", () -> zk.getAllChildrenNumber("/j"));
        step("sync", () -> {
            CountDownLatch l = new CountDownLatch(1);
            zk.sync("/j", (rc, path, ctx) -> { System.out.println("[java] sync rc=" + rc + " " + path); l.countDown(); }, null);
            return l.await(10, TimeUnit.SECONDS);
        });
        step("addAuthInfo digest", () -> { zk.addAuthInfo("digest", "ju:jp".getBytes()); return "ok"; });
        step("create with auth ACL", () -> zk.create("/j/auth", "a".getBytes(), ZooDefs.Ids.CREATOR_ALL_ACL, CreateMode.PERSISTENT, st));
        step("getACL", () -> zk.getACL("/j/auth", st));
        step("setACL version 0", () -> zk.setACL("/j/auth", Arrays.asList(
                new ACL(ZooDefs.Perms.ALL, new Id("digest", org.apache.zookeeper.server.auth.DigestAuthenticationProvider.generateDigest("ju:jp"))),
                new ACL(ZooDefs.Perms.READ, new Id("world", "anyone"))), 0));
        step("setACL bad version", () -> zk.setACL("/j/auth", OPEN, 5));
        step("setACL invalid ACL", () -> zk.setACL("/j/auth", Arrays.asList(new ACL(ZooDefs.Perms.ALL, new Id("world", "nobody"))), -1));
        step("whoAmI", () -> zk.whoAmI());
        step("exists watch absent", () -> zk.exists("/j/later", true));
        step("create triggers NodeCreated", () -> zk.create("/j/later", null, OPEN, CreateMode.EPHEMERAL));
        step("delete non-empty", () -> { zk.delete("/j", -1); return "ok"; });
        Thread.sleep(500);
        synchronized (events) { System.out.println("[java] default watcher events: " + events); }
        zk.close();
    }
}
