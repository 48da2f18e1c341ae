//! Shared helpers for the workspace-level tests: starting Apache ZooKeeper
//! 3.8 as the oracle for differential and interop tests, our own server as
//! a shared target, a fault-injecting TCP proxy, and the one decision every
//! test makes when an oracle is missing ([`oracle::require`]).

pub mod apache;
pub mod oracle;
pub mod ours;
pub mod proxy;

#[cfg(test)]
mod oracle_tests;
