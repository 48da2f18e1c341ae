//! Shared helpers for the workspace-level tests: starting Apache ZooKeeper
//! 3.8 as the oracle for differential and interop tests, and a
//! fault-injecting TCP proxy.

pub mod apache;
pub mod proxy;
