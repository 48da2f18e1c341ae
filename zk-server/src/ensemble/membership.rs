//! Who is in the ensemble: `server.N` lines, `myid`, `peerType`, and the
//! quorum core's configuration they imply (ZAB.md §1).

use std::collections::{BTreeMap, BTreeSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

use super::transport::PeerAddrs;
use crate::config::{PeerRole, PeerSpec, ServerConfig};
use crate::quorum::{PeerConfig, ServerId};

/// Apache's defaults when zoo.cfg has no initLimit / syncLimit.
const DEFAULT_INIT_LIMIT: u32 = 10;
const DEFAULT_SYNC_LIMIT: u32 = 5;

/// Why ensemble mode cannot start.
#[derive(Debug, thiserror::Error)]
pub enum EnsembleError {
    #[error("cannot read {path}: {source}")]
    MyIdRead {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}: myid must be a number, got {text:?}")]
    MyIdBad { path: PathBuf, text: String },
    #[error("myid {0} has no server.{0} line")]
    NotAMember(ServerId),
    #[error("server.{id}: cannot resolve host {host:?}")]
    Resolve { id: ServerId, host: String },
    #[error("the ensemble has no voting member")]
    NoVoters,
}

/// The ensemble as this member sees it.
#[derive(Debug, Clone)]
pub struct Membership {
    pub my_id: ServerId,
    pub peer_config: PeerConfig,
    pub addrs: BTreeMap<ServerId, PeerAddrs>,
    /// Client port from our `server.N` line (after `;`), if it has one.
    pub client_addr: Option<(Option<IpAddr>, u16)>,
}

/// Reads `<dataDir>/myid`: one decimal number.
pub fn read_my_id(data_dir: &Path) -> Result<ServerId, EnsembleError> {
    let path = data_dir.join("myid");
    let text = std::fs::read_to_string(&path).map_err(|source| EnsembleError::MyIdRead {
        path: path.clone(),
        source,
    })?;
    text.trim().parse().map_err(|_| EnsembleError::MyIdBad {
        path,
        text: text.clone(),
    })
}

fn resolve(spec: &PeerSpec, port: u16) -> Result<SocketAddr, EnsembleError> {
    let fail = || EnsembleError::Resolve {
        id: spec.id,
        host: spec.host.clone(),
    };
    let mut addrs = (spec.host.as_str(), port)
        .to_socket_addrs()
        .map_err(|_| fail())?;
    addrs.next().ok_or_else(fail)
}

impl Membership {
    /// Derives the membership from zoo.cfg settings; `config.my_id` or
    /// else `<dataDir>/myid` names us.
    pub fn from_config(config: &ServerConfig) -> Result<Membership, EnsembleError> {
        let my_id = match config.my_id {
            Some(id) => id,
            None => read_my_id(&config.data_dir)?,
        };
        let me = config
            .peers
            .iter()
            .find(|p| p.id == my_id)
            .ok_or(EnsembleError::NotAMember(my_id))?;
        let mut voters = BTreeSet::new();
        let mut observers = BTreeSet::new();
        let mut addrs = BTreeMap::new();
        for p in &config.peers {
            let observer = p.role == PeerRole::Observer
                || (p.id == my_id && config.peer_type == Some(PeerRole::Observer));
            if observer {
                observers.insert(p.id);
            } else {
                voters.insert(p.id);
            }
            addrs.insert(
                p.id,
                PeerAddrs {
                    quorum: resolve(p, p.quorum_port)?,
                    election: resolve(p, p.election_port)?,
                },
            );
        }
        if voters.is_empty() {
            return Err(EnsembleError::NoVoters);
        }
        let tick = u64::from(config.tick_time_ms);
        let mut peer_config = PeerConfig::new(my_id, voters, observers);
        peer_config.tick_ms = tick;
        peer_config.init_limit = u64::from(config.init_limit.unwrap_or(DEFAULT_INIT_LIMIT));
        peer_config.sync_limit = u64::from(config.sync_limit.unwrap_or(DEFAULT_SYNC_LIMIT));
        if let Some(count) = config.commit_log_count {
            peer_config.commit_log_count = count;
        }
        if let Some(factor) = config.snapshot_size_factor_permille {
            peer_config.snapshot_size_factor_permille = factor;
        }
        // Resends back off up to 60 s in Apache; with short test ticks a
        // rejoining peer should not wait that long to be heard.
        peer_config.max_notification_interval_ms = (20 * tick).clamp(1_000, 60_000);
        let client_addr = me.client.as_ref().map(|(host, port)| {
            let ip = host.parse::<IpAddr>().ok();
            (
                ip.filter(|ip| *ip != IpAddr::V4(Ipv4Addr::UNSPECIFIED)),
                *port,
            )
        });
        Ok(Membership {
            my_id,
            peer_config,
            addrs,
            client_addr,
        })
    }

    /// Where we listen for peers: our own line's addresses.
    pub fn my_addrs(&self) -> Option<PeerAddrs> {
        self.addrs.get(&self.my_id).copied()
    }

    pub fn is_observer(&self) -> bool {
        self.peer_config.is_observer(self.my_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ServerConfig;

    fn cfg(text: &str) -> ServerConfig {
        ServerConfig::parse(text, Path::new(".")).unwrap().config
    }

    #[test]
    fn voters_observers_and_limits_come_from_zoo_cfg() {
        let mut c = cfg("dataDir=/d\ntickTime=100\ninitLimit=7\nsyncLimit=3\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n\
             server.3=127.0.0.1:2890:3890:observer;2183\n");
        c.my_id = Some(3);
        let m = Membership::from_config(&c).unwrap();
        assert_eq!(m.peer_config.voters, BTreeSet::from([1, 2]));
        assert_eq!(m.peer_config.observers, BTreeSet::from([3]));
        assert!(m.is_observer());
        assert_eq!(m.peer_config.tick_ms, 100);
        assert_eq!(m.peer_config.init_limit, 7);
        assert_eq!(m.peer_config.sync_limit, 3);
        assert_eq!(m.client_addr, Some((None, 2183)));
        assert_eq!(m.my_addrs().unwrap().quorum.port(), 2890);
    }

    #[test]
    fn peer_type_observer_makes_us_an_observer() {
        let mut c = cfg("dataDir=/d\npeerType=observer\n\
             server.1=127.0.0.1:2888:3888\nserver.2=127.0.0.1:2889:3889\n");
        c.my_id = Some(2);
        let m = Membership::from_config(&c).unwrap();
        assert!(m.is_observer());
        assert_eq!(m.peer_config.voters, BTreeSet::from([1]));
    }

    #[test]
    fn myid_is_read_from_the_data_dir_and_must_be_listed() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("myid"), "2\n").unwrap();
        let mut c = cfg("dataDir=/d\nserver.1=127.0.0.1:2888:3888\n");
        c.data_dir = dir.path().to_path_buf();
        assert_eq!(read_my_id(dir.path()).unwrap(), 2);
        assert!(matches!(
            Membership::from_config(&c),
            Err(EnsembleError::NotAMember(2))
        ));
    }
}
