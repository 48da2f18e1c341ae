//! Shared helpers for the workspace-level tests: starting Apache ZooKeeper
//! 3.8 as the oracle for differential and interop tests, our own server as
//! a shared target, and a fault-injecting TCP proxy.

pub mod apache;
pub mod ours;
pub mod proxy;
