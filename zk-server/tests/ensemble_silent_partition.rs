//! A follower cut off silently — its packets dropped, not refused, so no
//! connection ever closes — while writes go on: the leader keeps serving
//! with the other follower, the cut-off one stops serving once its leader
//! has been silent for syncLimit, and after the network heals it rejoins
//! and holds every acknowledged write.
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

use ensemble_support::{synced_get, try_create, try_session, SETTLE};
use link_proxy::LinkProxy;
use process::{mode_of, port_of, reserve_ports, spawn_server_logged, Proc};

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
    _procs: Vec<Proc>,
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
            procs.push(spawn_server_logged(&cfg, &log));
            logs.push(log);
        }
        Ensemble {
            _procs: procs,
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
        let deadline = tokio::time::Instant::now() + SETTLE;
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
                "no settled ensemble: {modes:?}"
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
