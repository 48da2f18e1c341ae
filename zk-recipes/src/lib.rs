//! Curator-style recipes on top of `zk-client`, on the same znode layouts
//! as Apache Curator so Rust and Java services can share a lock or an
//! election (see `shared/spec/RECIPES.md`).
//!
//! The framework layer: [`ConnectionState`]s derived from session events
//! with Curator's rules, and [`RetryPolicy`]s.

pub mod connection;
pub mod retry;

pub use connection::{ConnectionState, ConnectionStateMachine, ErrorPolicy, SessionEvent};
pub use retry::{Retriable, RetryPolicy};
