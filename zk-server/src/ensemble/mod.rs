//! The ZAB ensemble, wired: the tokio side of the quorum core.
//!
//! The pipeline task owns the [`Peer`](crate::quorum::Peer) next to the
//! database and the txn log, so the core's outputs run in the one writer
//! task: `Persist` appends to the txn log (its durability notices come back
//! as `LogDurable`), `PersistEpoch` writes the epoch files ([`epochs`]),
//! `Truncate` / `InstallSnapshot` change the files ([`disk`]) and reload the
//! database, `SendSnapshot` / `SendLoggedDiff` stream a SNAP or a DIFF
//! from the log files to a learner ([`snapsync`]),
//! `Apply` applies in zxid order and answers clients. Peer links
//! ([`transport`], [`codec`]) carry core messages in and out, and the
//! driver's own traffic: learners forward writes, new sessions, session
//! touches and syncs to the leader. A learner disconnects the clients
//! whose forwarded requests the leader link may have lost (the links count
//! their losses), rather than leave them waiting.
//!
//! Modules: `membership` (server.N lines, myid), `epochs`, `disk`, `codec`,
//! `transport`, `snapsync`.

pub mod codec;
pub mod disk;
pub(crate) mod driver;
pub mod epochs;
mod membership;
pub mod snapsync;
pub mod transport;

pub use membership::{read_my_id, EnsembleError, Membership};

use crate::quorum::{Epoch, Role, ServerId, SyncCounts};

/// What a member reports about itself (for `srvr`, tests and tools).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuorumStatus {
    pub my_id: ServerId,
    pub role: Role,
    /// True once the member serves clients (leader broadcasting, learner
    /// after UPTODATE).
    pub serving: bool,
    pub epoch: Option<Epoch>,
    /// On a leader: learners connected and learners synced.
    pub learners: usize,
    pub synced_learners: usize,
    /// As a learner: how many DIFF / TRUNC / SNAP syncs it took since start.
    pub syncs: SyncCounts,
}

impl QuorumStatus {
    /// The member's state before its first election.
    pub fn looking(my_id: ServerId) -> Self {
        QuorumStatus {
            my_id,
            role: Role::Looking,
            serving: false,
            epoch: None,
            learners: 0,
            synced_learners: 0,
            syncs: SyncCounts::default(),
        }
    }

    /// The `Mode:` of `srvr` / `zk_server_state` of `mntr`. A member that
    /// does not serve prints no mode at all (see `admin::NOT_SERVING`);
    /// `looking` is what `mntr` would say if asked.
    pub fn mode(&self) -> &'static str {
        match self.role {
            Role::Looking => "looking",
            Role::Leading => "leader",
            Role::Following { .. } => "follower",
            Role::Observing { .. } => "observer",
        }
    }

    pub fn is_leader(&self) -> bool {
        self.serving && self.role == Role::Leading
    }
}
