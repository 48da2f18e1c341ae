//! Five real `zk-server` processes whose quorum links run through proxies,
//! so a test can cut the network between two groups of members for real.
//!
//! Each member gets its own zoo.cfg: its own `server.N` line carries its
//! real quorum and election ports, every other line the ports of the proxy
//! that carries this member's traffic to that peer. Member i reaches member
//! j only through the proxies (i, j); cutting the proxies between two
//! groups in both directions partitions them.

mod ensemble_support;
#[path = "ensemble_support/link_proxy.rs"]
mod link_proxy;
#[path = "ensemble_support/process.rs"]
mod process;
mod server_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use ensemble_support::{synced_get, try_create, try_session, SETTLE};
use link_proxy::LinkProxy;
use process::{mode_of, port_of, reserve_ports, spawn_server, Proc};
use zk_proto::ErrorCode;

const MEMBERS: usize = 5;

/// A member's real listening ports.
#[derive(Debug, Clone, Copy)]
struct Ports {
    client: u16,
    quorum: u16,
    election: u16,
}

/// The proxies member `from` dials to reach member `to`.
#[derive(Debug)]
struct Link {
    quorum: LinkProxy,
    election: LinkProxy,
}

/// The processes (killed on drop), their client addresses and the links.
struct Ensemble {
    _procs: Vec<Proc>,
    clients: Vec<SocketAddr>,
    links: BTreeMap<(usize, usize), Link>,
}

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// One `server.N` line (`n` counts from 0) with the addresses a member
/// dials to reach that server.
fn server_line(n: usize, quorum: SocketAddr, election: SocketAddr, client: u16) -> String {
    format!(
        "server.{}=127.0.0.1:{}:{};127.0.0.1:{client}\n",
        n + 1,
        quorum.port(),
        election.port()
    )
}

/// Member `me`'s view of the ensemble: itself on its real ports, every
/// peer through the proxies `me` dials.
fn member_config(
    me: usize,
    ports: &[Ports],
    links: &BTreeMap<(usize, usize), Link>,
    data: &Path,
) -> String {
    let servers: String = (0..ports.len())
        .map(|j| {
            let (quorum, election) = if j == me {
                (local(ports[j].quorum), local(ports[j].election))
            } else {
                let link = &links[&(me, j)];
                (link.quorum.addr(), link.election.addr())
            };
            server_line(j, quorum, election, ports[j].client)
        })
        .collect();
    format!(
        "tickTime=100\ninitLimit=10\nsyncLimit=5\ndataDir={}\nforceSync=no\n\
         preAllocSize=1024\n4lw.commands.whitelist=*\n{servers}",
        data.display()
    )
}

impl Ensemble {
    fn start(dir: &Path) -> Ensemble {
        // Held while the proxies bind port 0, released for the members.
        let reserved = reserve_ports(3 * MEMBERS);
        let ports: Vec<Ports> = reserved
            .chunks(3)
            .map(|p| Ports {
                client: port_of(&p[0]),
                quorum: port_of(&p[1]),
                election: port_of(&p[2]),
            })
            .collect();
        let mut links = BTreeMap::new();
        for from in 0..MEMBERS {
            for to in (0..MEMBERS).filter(|&to| to != from) {
                let link = Link {
                    quorum: LinkProxy::start(local(ports[to].quorum)).expect("proxy"),
                    election: LinkProxy::start(local(ports[to].election)).expect("proxy"),
                };
                links.insert((from, to), link);
            }
        }
        drop(reserved);
        let mut procs = Vec::new();
        for me in 0..MEMBERS {
            let data = dir.join(format!("data{}", me + 1));
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{}\n", me + 1)).expect("myid");
            let cfg = dir.join(format!("zoo{}.cfg", me + 1));
            std::fs::write(&cfg, member_config(me, &ports, &links, &data)).expect("zoo.cfg");
            procs.push(spawn_server(&cfg));
        }
        Ensemble {
            _procs: procs,
            clients: ports.iter().map(|p| local(p.client)).collect(),
            links,
        }
    }

    /// Cuts every link between `a` and `b`, both directions.
    async fn partition(&mut self, a: &[usize], b: &[usize]) {
        for (&(from, to), link) in self.links.iter_mut() {
            let crosses =
                (a.contains(&from) && b.contains(&to)) || (b.contains(&from) && a.contains(&to));
            if crosses {
                link.quorum.cut().await;
                link.election.cut().await;
            }
        }
    }

    /// Restores every link.
    fn heal(&mut self) {
        for link in self.links.values_mut() {
            link.quorum.heal().expect("proxy rebinds its port");
            link.election.heal().expect("proxy rebinds its port");
        }
    }

    /// Waits until exactly one of `members` says leader and the rest
    /// follower; returns the leader.
    async fn wait_for_leader_among(&self, members: &[usize]) -> usize {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            let mut leaders = Vec::new();
            let mut followers = 0;
            let mut modes = Vec::new();
            for &m in members {
                let mode = mode_of(self.clients[m]).await;
                match mode.as_deref() {
                    Some("leader") => leaders.push(m),
                    Some("follower") => followers += 1,
                    _ => {}
                }
                modes.push(mode);
            }
            if leaders.len() == 1 && followers + 1 == members.len() {
                return leaders[0];
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no stable leader among {members:?}: {modes:?}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A session on `member`, retried until it serves.
    async fn session(&self, member: usize) -> server_common::RawClient {
        let deadline = tokio::time::Instant::now() + SETTLE;
        loop {
            if let Some(c) = try_session(self.clients[member]).await {
                return c;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "member {member} never served a session"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_partitioned_leader_and_follower_acknowledge_nothing_while_the_majority_carries_on_and_all_converge_after_healing(
) {
    let dir = tempfile::tempdir().expect("temp dir");
    let mut ensemble = Ensemble::start(dir.path());
    let all: Vec<usize> = (0..MEMBERS).collect();
    let old_leader = ensemble.wait_for_leader_among(&all).await;
    let minority = [old_leader, (old_leader + 1) % MEMBERS];
    let majority: Vec<usize> = all
        .iter()
        .copied()
        .filter(|m| !minority.contains(m))
        .collect();

    let mut c = ensemble.session(majority[0]).await;
    assert!(
        try_create(&mut c, 1, "/before").await,
        "write before the cut"
    );
    drop(c);
    // Sessions on the minority exist before the cut, so their writes are
    // sent after it to members that may still believe in their leader.
    let mut on_leader = ensemble.session(minority[0]).await;
    let mut on_follower = ensemble.session(minority[1]).await;

    ensemble.partition(&minority, &majority).await;

    let (leader_write, follower_write) = tokio::join!(
        try_create(&mut on_leader, 2, "/minority-leader"),
        try_create(&mut on_follower, 2, "/minority-follower"),
    );
    assert!(!leader_write, "the cut-off leader acknowledged a write");
    assert!(!follower_write, "the cut-off follower acknowledged a write");

    let new_leader = ensemble.wait_for_leader_among(&majority).await;
    assert!(majority.contains(&new_leader));
    let mut acked = vec!["/before".to_string()];
    for member in &majority {
        let mut c = ensemble.session(*member).await;
        let path = format!("/majority-{member}");
        assert!(
            try_create(&mut c, 1, &path).await,
            "member {member} of the majority did not acknowledge {path}"
        );
        acked.push(path);
    }

    // Settled on its side of the cut, the minority still acknowledges
    // nothing: it refuses sessions or fails the write.
    for member in minority {
        if let Some(mut c) = try_session(ensemble.clients[member]).await {
            assert!(
                !try_create(&mut c, 1, "/minority-later").await,
                "minority member {member} acknowledged a write after the majority moved on"
            );
        }
    }

    ensemble.heal();
    ensemble.wait_for_leader_among(&all).await;
    for member in all {
        let mut c = ensemble.session(member).await;
        let mut xid = 10;
        for path in &acked {
            xid += 2;
            let data = synced_get(&mut c, xid, path).await;
            assert_eq!(
                data.as_deref(),
                Ok(path.as_bytes()),
                "member {member}, {path}"
            );
        }
        for path in ["/minority-leader", "/minority-follower", "/minority-later"] {
            xid += 2;
            let data = synced_get(&mut c, xid, path).await;
            assert_eq!(data, Err(ErrorCode::NoNode), "member {member}, {path}");
        }
    }
}
