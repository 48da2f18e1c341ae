//! `zk-server` processes from zoo.cfg files (server.N lines, myid in each
//! data dir); the leader dies by SIGKILL and the others carry on.

mod ensemble_support;
#[path = "ensemble_support/process.rs"]
mod process;
mod server_common;

use std::net::SocketAddr;
use std::time::Duration;

use ensemble_support::{synced_get, try_create, try_session, SETTLE};
use process::{mode_of, port_of, reserve_ports, server_lines, spawn_server, Proc};

/// Waits until exactly one of `addrs` (the live ones) says leader and the
/// rest follower; returns the leader's index.
async fn wait_for_modes(addrs: &[Option<SocketAddr>]) -> usize {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        let mut leader = None;
        let mut ok = true;
        for (i, addr) in addrs.iter().enumerate() {
            let Some(addr) = addr else { continue };
            match mode_of(*addr).await.as_deref() {
                Some("leader") if leader.is_none() => leader = Some(i),
                Some("follower") => {}
                _ => ok = false,
            }
        }
        if let (true, Some(leader)) = (ok, leader) {
            return leader;
        }
        assert!(tokio::time::Instant::now() < deadline, "no stable leader");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// `members` member processes on fresh ports, with `tickTime=tick_ms`,
/// initLimit 10 and syncLimit 5; their client addresses.
fn start_ensemble(
    dir: &std::path::Path,
    members: usize,
    tick_ms: u64,
) -> (Vec<Option<Proc>>, Vec<Option<SocketAddr>>) {
    let reserved = reserve_ports(3 * members);
    let ports: Vec<u16> = reserved.iter().map(port_of).collect();
    // Free the ports just before the members bind them.
    drop(reserved);
    let servers = server_lines(&ports, members);
    let mut procs: Vec<Option<Proc>> = Vec::new();
    let mut addrs = Vec::new();
    for i in 0..members {
        let data = dir.join(format!("data{}", i + 1));
        std::fs::create_dir_all(&data).unwrap();
        std::fs::write(data.join("myid"), format!("{}\n", i + 1)).unwrap();
        let cfg = dir.join(format!("zoo{}.cfg", i + 1));
        std::fs::write(
            &cfg,
            format!(
                "tickTime={tick_ms}\ninitLimit=10\nsyncLimit=5\ndataDir={}\n\
                 forceSync=no\npreAllocSize=1024\n4lw.commands.whitelist=*\n{servers}",
                data.display()
            ),
        )
        .unwrap();
        procs.push(Some(spawn_server(&cfg)));
        addrs.push(Some(SocketAddr::from(([127, 0, 0, 1], ports[3 * i]))));
    }
    (procs, addrs)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_three_process_ensemble_survives_kill_9_of_its_leader() {
    let dir = tempfile::tempdir().unwrap();
    let (mut procs, mut addrs) = start_ensemble(dir.path(), 3, 100);
    let leader = wait_for_modes(&addrs).await;
    let follower = (leader + 1) % 3;
    let mut c = loop {
        if let Some(c) = try_session(addrs[follower].unwrap()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(try_create(&mut c, 1, "/before-kill").await);

    // SIGKILL: no shutdown path runs.
    procs[leader] = None;
    addrs[leader] = None;
    let new_leader = wait_for_modes(&addrs).await;
    assert_ne!(new_leader, leader);

    let survivor = (0..3).find(|&i| i != leader).unwrap();
    let mut c = loop {
        if let Some(c) = try_session(addrs[survivor].unwrap()).await {
            break c;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(try_create(&mut c, 1, "/after-kill").await);
    for i in (0..3).filter(|&i| i != leader) {
        let mut c = try_session(addrs[i].unwrap()).await.expect("session");
        for (x, path) in ["/before-kill", "/after-kill"].iter().enumerate() {
            let data = synced_get(&mut c, 10 + 2 * x as i32, path).await;
            assert_eq!(data.as_deref(), Ok(path.as_bytes()), "member {i}, {path}");
        }
    }
}

/// With tickTime 2000 and syncLimit 5, followers that waited for the dead
/// leader to go quiet would need 10 s; its closed connections tell them at
/// once, as in Apache.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn followers_elect_a_new_leader_long_before_sync_limit_when_the_leader_is_killed() {
    let dir = tempfile::tempdir().unwrap();
    let (mut procs, mut addrs) = start_ensemble(dir.path(), 3, 2_000);
    let leader = wait_for_modes(&addrs).await;
    let killed = tokio::time::Instant::now();
    procs[leader] = None;
    addrs[leader] = None;
    let new_leader = wait_for_modes(&addrs).await;
    let took = killed.elapsed();
    assert_ne!(new_leader, leader);
    assert!(
        took < Duration::from_secs(5),
        "a new leader after {took:?}; syncLimit x tickTime is 10 s"
    );
    let mut c = try_session(addrs[new_leader].unwrap())
        .await
        .expect("the new leader serves");
    assert!(try_create(&mut c, 1, "/after-kill").await);
}

/// A session on any live member, trying them in turn.
async fn session_on_any(addrs: &[Option<SocketAddr>], skip: usize) -> server_common::RawClient {
    let deadline = tokio::time::Instant::now() + SETTLE;
    loop {
        for (i, addr) in addrs.iter().enumerate() {
            if i == skip {
                continue;
            }
            if let Some(c) = match addr {
                Some(addr) => try_session(*addr).await,
                None => None,
            } {
                return c;
            }
        }
        assert!(tokio::time::Instant::now() < deadline, "no member serves");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Writes `/w-<n>` one after another until `stop` is set, moving to another
/// member whenever a write fails; returns the writes that were acknowledged.
async fn write_load(
    addrs: Vec<Option<SocketAddr>>,
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    start_on: usize,
) -> Vec<String> {
    let mut acked = Vec::new();
    let mut next = 0u32;
    let mut member = start_on;
    let mut client = session_on_any(&addrs, usize::MAX).await;
    let mut xid = 1;
    while !stop.load(std::sync::atomic::Ordering::SeqCst) && next < 10_000 {
        let path = format!("/w-{next}");
        next += 1;
        xid += 1;
        if try_create(&mut client, xid, &path).await {
            acked.push(path);
        } else {
            // The member died or lost its leader: the write may or may not
            // have happened; only acknowledged writes are promised.
            member = (member + 1) % addrs.len();
            client = session_on_any(&addrs, member).await;
        }
    }
    acked
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_five_process_ensemble_under_write_load_loses_no_acknowledged_write_when_its_leader_is_killed(
) {
    let dir = tempfile::tempdir().unwrap();
    let (mut procs, mut addrs) = start_ensemble(dir.path(), 5, 100);
    let leader = wait_for_modes(&addrs).await;

    // The writer knows every member but the one about to die, so its
    // failures come from the election, not from dialing a dead process.
    let mut writer_addrs = addrs.clone();
    writer_addrs[leader] = None;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writer = tokio::spawn(write_load(writer_addrs, stop.clone(), (leader + 1) % 5));
    tokio::time::sleep(Duration::from_millis(500)).await;

    procs[leader] = None; // SIGKILL mid-load
    addrs[leader] = None;
    let new_leader = wait_for_modes(&addrs).await;
    assert_ne!(new_leader, leader);
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    let acked = writer.await.unwrap();
    assert!(
        acked.len() > 10,
        "the load made progress: {} acks",
        acked.len()
    );

    for i in (0..5).filter(|&i| i != leader) {
        let mut c = try_session(addrs[i].unwrap()).await.expect("session");
        let mut xid = 100;
        for path in &acked {
            xid += 1;
            let data = synced_get(&mut c, xid, path).await;
            assert_eq!(data.as_deref(), Ok(path.as_bytes()), "member {i}, {path}");
        }
    }
}
