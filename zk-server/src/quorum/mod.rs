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
//! observers), `sync` (DIFF / TRUNC / SNAP decisions), `peer` (the state
//! machine tying them together).

mod election;
mod leader;
mod learner;
mod peer;
pub mod sync;
pub mod types;
pub mod wire;

pub use peer::Peer;
pub use types::*;
