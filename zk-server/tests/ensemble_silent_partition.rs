//! A follower cut off silently — its packets dropped, not refused, so no
//! connection ever closes — while writes go on: the leader keeps serving
//! with the other follower, the cut-off one stops serving once its leader
//! has been silent for syncLimit, and after the network heals it rejoins
//! and holds every acknowledged write. And a longer run of faults — kill -9
//! of the leader and of followers, silent partitions — over a tree of a
//! few MB ends, once healed, with one leader and two followers within 30 s
//! (no member restarted to get there) and every acknowledged write on
//! every member.
//!
//! Three real `zk-server` processes; each member's zoo.cfg names its peers
//! through proxies (one per direction and port), so stalling the proxies
//! to and from one member isolates it for real.

mod ensemble_support;
#[path = "ensemble_support/link_proxy.rs"]
mod link_proxy;
#[path = "ensemble_support/process.rs"]
mod process;
mod server_common;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use ensemble_support::{create_request, synced_get, try_call, try_create, try_session, SETTLE};
use link_proxy::LinkProxy;
use process::{mode_of, port_of, reserve_ports, spawn_server_logged, Proc};
use server_common::RawClient;

const MEMBERS: usize = 3;

fn local(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// The proxies member `from` dials to reach member `to`.
struct Link {
    quorum: LinkProxy,
    election: LinkProxy,
}

struct Ensemble {
    procs: Vec<Option<Proc>>,
    cfgs: Vec<PathBuf>,
    clients: Vec<SocketAddr>,
    logs: Vec<PathBuf>,
    links: BTreeMap<(usize, usize), Link>,
}

impl Ensemble {
    fn start(dir: &Path) -> Ensemble {
        let reserved = reserve_ports(3 * MEMBERS);
        let ports: Vec<(u16, u16, u16)> = reserved
            .chunks(3)
            .map(|p| (port_of(&p[0]), port_of(&p[1]), port_of(&p[2])))
            .collect();
        let mut links = BTreeMap::new();
        for from in 0..MEMBERS {
            for to in (0..MEMBERS).filter(|&to| to != from) {
                let link = Link {
                    quorum: LinkProxy::start(local(ports[to].1)).expect("proxy"),
                    election: LinkProxy::start(local(ports[to].2)).expect("proxy"),
                };
                links.insert((from, to), link);
            }
        }
        drop(reserved);
        let mut procs = Vec::new();
        let mut cfgs = Vec::new();
        let mut logs = Vec::new();
        for me in 0..MEMBERS {
            let servers: String = (0..MEMBERS)
                .map(|j| {
                    let (quorum, election) = if j == me {
                        (local(ports[j].1), local(ports[j].2))
                    } else {
                        let link = &links[&(me, j)];
                        (link.quorum.addr(), link.election.addr())
                    };
                    format!(
                        "server.{}=127.0.0.1:{}:{};127.0.0.1:{}\n",
                        j + 1,
                        quorum.port(),
                        election.port(),
                        ports[j].0
                    )
                })
                .collect();
            let data = dir.join(format!("data{}", me + 1));
            std::fs::create_dir_all(&data).expect("data dir");
            std::fs::write(data.join("myid"), format!("{}\n", me + 1)).expect("myid");
            let cfg = dir.join(format!("zoo{}.cfg", me + 1));
            let text = format!(
                "tickTime=100\ninitLimit=20\nsyncLimit=5\ndataDir={}\nforceSync=no\n\
                 preAllocSize=1024\n4lw.commands.whitelist=*\n{servers}",
                data.display()
            );
            std::fs::write(&cfg, text).expect("zoo.cfg");
            let log = dir.join(format!("server{}.log", me + 1));
            procs.push(Some(spawn_server_logged(&cfg, &log)));
            cfgs.push(cfg);
            logs.push(log);
        }
        Ensemble {
            procs,
            cfgs,
            clients: ports.iter().map(|p| local(p.0)).collect(),
            logs,
            links,
        }
    }

    /// Stalls (or resumes) every link to and from `member`.
    fn silence(&self, member: usize, silent: bool) {
        for (&(from, to), link) in &self.links {
            if from == member || to == member {
                for proxy in [&link.quorum, &link.election] {
                    if silent {
                        proxy.stall();
                    } else {
                        proxy.resume();
                    }
                }
            }
        }
    }

    /// kill -9 of `member`'s process.
    fn kill(&mut self, member: usize) {
        self.procs[member] = None;
    }

    /// Starts `member` again on its data dir.
    fn restart(&mut self, member: usize) {
        self.procs[member] = Some(spawn_server_logged(&self.cfgs[member], &self.logs[member]));
    }

    fn log_tail(&self, member: usize) -> String {
        let text = std::fs::read_to_string(&self.logs[member]).unwrap_or_default();
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(25)..].join("\n")
    }

    async fn modes(&self) -> Vec<Option<String>> {
        let mut modes = Vec::new();
        for addr in &self.clients {
            modes.push(mode_of(*addr).await);
        }
        modes
    }

    /// The leader's index once one member leads and the others follow.
    async fn settled_leader(&self) -> usize {
        self.settled_leader_within(SETTLE).await
    }

    async fn settled_leader_within(&self, bound: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + bound;
        loop {
            let modes = self.modes().await;
            let leaders: Vec<usize> = (0..MEMBERS)
                .filter(|&i| modes[i].as_deref() == Some("leader"))
                .collect();
            let followers = modes
                .iter()
                .filter(|m| m.as_deref() == Some("follower"))
                .count();
            if leaders.len() == 1 && followers == MEMBERS - 1 {
                return leaders[0];
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "no settled ensemble within {bound:?}: {modes:?}; logs end with:\n{}",
                (0..MEMBERS)
                    .map(|m| format!("--- member {m}\n{}", self.log_tail(m)))
                    .collect::<Vec<_>>()
                    .join("\n")
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_silently_cut_off_follower_rejoins_after_healing_with_every_acknowledged_write() {
    let dir = tempfile::tempdir().unwrap();
    let ensemble = Ensemble::start(dir.path());
    let leader = ensemble.settled_leader().await;
    let cut = (leader + 1) % MEMBERS;
    let mut c = try_session(ensemble.clients[leader])
        .await
        .expect("the leader serves");
    let mut acked = Vec::new();
    for i in 0..50 {
        let path = format!("/before-{i}");
        assert!(try_create(&mut c, i + 1, &path).await, "{path}");
        acked.push(path);
    }

    ensemble.silence(cut, true);
    // The leader goes on with the other follower.
    for i in 0..1500 {
        let path = format!("/during-{i}");
        assert!(
            try_create(&mut c, 1000 + i, &path).await,
            "the leader and one follower still acknowledge {path}"
        );
        acked.push(path);
    }
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mode_of(ensemble.clients[cut]).await.as_deref() == Some("follower") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the cut-off follower still serves after 10 s of a silent leader"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    ensemble.silence(cut, false);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while mode_of(ensemble.clients[cut]).await.as_deref() != Some("follower") {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the follower did not rejoin within 30 s of healing; its log ends with:\n{}",
            ensemble.log_tail(cut)
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        mode_of(ensemble.clients[leader]).await.as_deref(),
        Some("leader"),
        "the leader kept its role"
    );
    let mut r = try_session(ensemble.clients[cut])
        .await
        .expect("the rejoined follower serves");
    let mut xid = 10_000;
    for path in &acked {
        xid += 2;
        let data = synced_get(&mut r, xid, path).await;
        assert_eq!(
            data.as_deref(),
            Ok(path.as_bytes()),
            "{path} on the rejoined follower"
        );
    }
}

/// `n` creates through whichever member serves, each path recorded when
/// it was acknowledged. A write whose fate is unknown (no reply, a member
/// going down) is simply not counted.
async fn write_through_any(ensemble: &Ensemble, acked: &mut Vec<String>, prefix: &str, n: usize) {
    let mut client: Option<RawClient> = None;
    let mut member = 0;
    for i in 0..n {
        if client.is_none() {
            for _ in 0..MEMBERS {
                member = (member + 1) % MEMBERS;
                client = try_session(ensemble.clients[member]).await;
                if client.is_some() {
                    break;
                }
            }
        }
        let Some(c) = client.as_mut() else {
            tokio::time::sleep(Duration::from_millis(50)).await;
            continue;
        };
        let path = format!("/{prefix}-{i}");
        let xid = i32::try_from(i).unwrap_or(i32::MAX) + 1;
        match tokio::time::timeout(Duration::from_secs(5), try_create(c, xid, &path)).await {
            Ok(true) => acked.push(path),
            _ => client = None,
        }
    }
}

/// The faults of a long run, each healed before the next: kill -9 and
/// restart of the leader or a follower, a silent partition of one member.
#[derive(Debug, Clone, Copy)]
enum Fault {
    KillLeader,
    KillFollower,
    SilenceLeader,
    SilenceFollower,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_kills_and_partitions_over_a_few_mb_the_ensemble_is_healthy_within_30_s_of_healing() {
    let dir = tempfile::tempdir().unwrap();
    let mut ensemble = Ensemble::start(dir.path());
    let leader = ensemble.settled_leader().await;
    // A tree past a few MB, so that a member that fell behind needs more
    // than one peer message to catch up.
    let mut c = try_session(ensemble.clients[leader])
        .await
        .expect("the leader serves");
    let filler = vec![b'x'; 1024];
    for i in 0..4000 {
        let path = format!("/filler-{i}");
        let reply = try_call(&mut c, i + 1, create_request(&path, &filler)).await;
        assert_eq!(reply.map(|r| r.header.err), Some(0), "{path}");
    }
    drop(c);

    let mut acked = Vec::new();
    let schedule = [
        Fault::KillFollower,
        Fault::SilenceLeader,
        Fault::KillLeader,
        Fault::SilenceFollower,
        Fault::KillLeader,
        Fault::SilenceLeader,
    ];
    for (round, fault) in schedule.into_iter().enumerate() {
        let leader = ensemble.settled_leader().await;
        let victim = match fault {
            Fault::KillLeader | Fault::SilenceLeader => leader,
            Fault::KillFollower | Fault::SilenceFollower => (leader + 1) % MEMBERS,
        };
        match fault {
            Fault::KillLeader | Fault::KillFollower => ensemble.kill(victim),
            Fault::SilenceLeader | Fault::SilenceFollower => ensemble.silence(victim, true),
        }
        write_through_any(&ensemble, &mut acked, &format!("round{round}"), 300).await;
        match fault {
            Fault::KillLeader | Fault::KillFollower => ensemble.restart(victim),
            Fault::SilenceLeader | Fault::SilenceFollower => ensemble.silence(victim, false),
        }
    }

    // Healed, nobody restarted since: one leader, two followers, soon.
    let leader = ensemble
        .settled_leader_within(Duration::from_secs(30))
        .await;
    let mut w = try_session(ensemble.clients[leader])
        .await
        .expect("the leader serves");
    assert!(try_create(&mut w, 1, "/after-healing").await);
    acked.push("/after-healing".to_string());
    assert!(
        acked.len() > 1000,
        "too few writes went through: {}",
        acked.len()
    );
    for member in 0..MEMBERS {
        let mut r = try_session(ensemble.clients[member])
            .await
            .unwrap_or_else(|| panic!("member {member} serves"));
        let mut xid = 10_000;
        for path in &acked {
            xid += 2;
            let data = synced_get(&mut r, xid, path).await;
            assert_eq!(
                data.as_deref(),
                Ok(path.as_bytes()),
                "{path} on member {member}"
            );
        }
    }
}
