//! Curator-style recipes on top of `zk-client`, on the same znode layouts
//! as Apache Curator so Rust and Java services can share a lock or an
//! election (see `shared/spec/RECIPES.md`).
//!
//! The framework layer: [`Curator`] (one live session at a time, connection
//! states derived with Curator's rules, the retry loop, protected creates,
//! guaranteed deletes); then the recipes, each in its own module.

pub mod connection;
pub mod error;
pub mod framework;
pub mod lock;
pub mod local_addr;
pub mod paths;
pub mod retry;

pub use connection::{ConnectionState, ConnectionStateMachine, ErrorPolicy, SessionEvent};
pub use error::{Error, Result};
pub use framework::{Curator, CuratorBuilder};
pub use retry::{Retriable, RetryPolicy};
pub use lock::{
    InterProcessMutex, InterProcessReadWriteLock, InterProcessSemaphoreMutex,
    InterProcessSemaphoreV2, Lease, MutexGuard, SemaphoreGuard,
};
