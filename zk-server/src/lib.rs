//! The ZooKeeper server: standalone now, a ZAB ensemble next. See
//! `DESIGN.md` for the module map and the contracts between modules.
//!
//! Start one in-process with [`Server::start`], or, in integration tests,
//! with [`testing::TestingServer`]; run the `zk-server` binary with an
//! Apache `zoo.cfg`.

pub mod db;
pub mod quorum;
pub mod storage;

pub mod admin;
pub mod config;
pub mod net;
mod pipeline;
pub mod server;
pub mod testing;

pub use config::{ConfigError, ServerConfig};
pub use server::{Server, ServerError};
