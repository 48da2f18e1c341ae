//! The ZooKeeper server: standalone or a ZAB ensemble (`ensemble`). See
//! `DESIGN.md` for the module map and the contracts between modules.
//!
//! Start one in-process with [`Server::start`], or, in integration tests,
//! with `testing::TestingServer` (feature `testing`, for dev-dependencies);
//! run the `zk-server` binary with an Apache `zoo.cfg`.

pub mod db;
pub mod ensemble;
pub mod quorum;
pub mod storage;

pub mod admin;
pub mod admin_commands;
pub mod admin_http;
pub mod auth;
pub mod config;
pub mod fail_stop;
pub mod log_limit;
pub mod metrics;
pub mod net;
mod ops_log;
mod pipeline;
pub mod server;
#[cfg(feature = "testing")]
pub mod testing;
pub mod tls;
pub mod tree_digest;

pub use config::{ConfigError, ServerConfig};
pub use fail_stop::FailStop;
pub use server::{Server, ServerError};
