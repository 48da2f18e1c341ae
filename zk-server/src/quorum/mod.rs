//! The ZAB quorum core: a deterministic, sans-IO state machine (ZAB.md
//! §4-§7).
//!
//! A [`Peer`] is one server's view of the ensemble. The driver feeds it
//! [`Input`]s — messages from other peers, clock ticks, "the log is durable
//! up to zxid" notices, client writes — and carries out the [`Output`]s it
//! returns: messages to send, txns to log, epochs to persist, txns to apply.
//! No IO, no clock and no randomness happen inside, so the same core runs
//! under the tokio server and under the seeded simulator in
//! `tests/quorum_sim.rs`.
//!
//! Modules: `types` (the vocabulary), `election` (Fast Leader Election),
//! `leader` (discovery, sync, broadcast), `learner` (followers and
//! observers), `sync` (DIFF / TRUNC / SNAP decisions), `history` (what
//! the log files hold beyond the window), `peer` (the state
//! machine tying them together), `wire` (core messages as Apache's
//! QuorumPacket and Notification records).
//!
//! State and log: the core's log is a window of the newest txns
//! (`commit_log_count`, plus anything not yet applied and durable) after
//! [`Peer::log_start`]; older ones are in the driver's files, which hold
//! everything after the disk floor ([`DurableState::snapshot_zxid`]), and
//! the core keeps only their shape ([`LogHistory`]). The driver's state
//! machine starts at [`DurableState::applied_zxid`]; the core emits
//! `Apply` only for what follows. A learner within the window gets DIFF
//! (or TRUNC); one behind it gets a DIFF read from the files
//! ([`Output::SendLoggedDiff`], a range, no bytes) when Apache's size rule
//! allows, else SNAP: the leader's driver sends its state at the core's
//! applied zxid ([`Output::SendSnapshot`]; the core carries only the SNAP
//! marker, never the bytes of the state) followed by the later txns; the
//! learner's driver stages the state as it arrives and installs it with
//! the txns at NEWLEADER in one durable step ([`Output::InstallSnapshot`]).
//!
//! In the server (`crate::ensemble`, `crate::pipeline`), the pipeline task
//! owns the peer and runs every output in order next to the database and
//! the txn log: `Persist` appends to the log, `Apply` applies and answers
//! the client, `Truncate` / `InstallSnapshot` change the files and reload
//! the database. See DESIGN.md, "Ensemble mode".

mod election;
pub mod history;
mod leader;
mod learner;
mod peer;
pub mod sync;
pub mod types;
pub mod wire;

pub use peer::Peer;
pub use types::*;
