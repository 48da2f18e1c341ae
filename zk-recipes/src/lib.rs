//! Curator-style recipes on top of `zk-client`, on the same znode layouts
//! as Apache Curator so Rust and Java services can share a lock or an
//! election (see `shared/spec/RECIPES.md`).
//!
//! The framework layer: [`Curator`] (one live session at a time, connection
//! states derived with Curator's rules, the retry loop, protected creates,
//! guaranteed deletes); then the recipes, each in its own module.
//!
//! Where this crate departs from Curator, on purpose:
//!
//! * **Fencing.** Every lock hold and leadership term comes with a
//!   [`Fence`]: a token that grows from holder to holder (the holder
//!   node's czxid), writes the server refuses once the hold is gone, and a
//!   future that resolves when it is lost ([`fence`] explains why a paused
//!   holder needs this).
//! * **No implicit re-entrancy.** Curator's mutex is re-entrant per
//!   thread; tasks have no such identity, so [`InterProcessMutex`] is not
//!   re-entrant and re-entry goes through [`MutexGuard::reenter`].
//! * **Leadership as transitions.** [`LeaderLatch::transitions`] and
//!   [`LeaderSelector::transitions`] deliver every change in order.
//! * **No runtime context needed.** Recipes spawn on the framework's
//!   runtime ([`CuratorBuilder::runtime`]), so they can be built anywhere.

#![warn(missing_docs)]

pub mod acl;
pub mod atomic;
pub mod barrier;
pub mod cache;
pub mod connection;
pub mod discovery;
pub mod error;
pub mod fence;
pub mod framework;
pub mod leader;
pub mod local_addr;
pub mod lock;
pub mod paths;
pub mod persistent_node;
pub mod queue;
pub mod retry;
pub mod shared_count;
pub mod shared_value;
pub mod ttl_node;

pub use acl::{AclProvider, FixedAclProvider, OpenAclProvider};
pub use atomic::{
    AtomicNumber, AtomicValue, DistributedAtomicInteger, DistributedAtomicLong,
    DistributedAtomicValue, PromotedToLock,
};
pub use barrier::{DistributedBarrier, DistributedDoubleBarrier};
pub use cache::{
    ChildData, CuratorCache, CuratorCacheEvent, Events, NodeCache, PathChildrenCache,
    PathChildrenEvent, StartMode, TreeCache, TreeCacheBuilder, TreeCacheEvent,
};
pub use connection::{ConnectionState, ConnectionStateMachine, ErrorPolicy, SessionEvent};
pub use discovery::{
    DownInstancePolicy, ProviderStrategy, ServiceCache, ServiceCacheEvent, ServiceDiscovery,
    ServiceInstance, ServiceProvider, ServiceProviderBuilder, ServiceType,
};
pub use error::{Error, Result};
pub use fence::{multi_fenced, Fence, LossReason};
pub use framework::{Curator, CuratorBuilder};
pub use leader::{
    LeaderLatch, LeaderSelector, LeaderSelectorBuilder, LeadershipEvent, Participant,
};
pub use lock::{
    InterProcessMultiLock, InterProcessMutex, InterProcessReadWriteLock,
    InterProcessSemaphoreMutex, InterProcessSemaphoreV2, Lease, MultiLockGuard, MutexGuard,
    RevocationRequest, Revoker, SemaphoreGuard,
};
pub use persistent_node::{GroupMember, PersistentNode};
pub use queue::{
    DistributedDelayQueue, DistributedIdQueue, DistributedPriorityQueue, DistributedQueue,
};
pub use retry::{Retriable, RetryPolicy};
pub use shared_count::SharedCount;
pub use shared_value::{SharedData, SharedValue, VersionedValue};
pub use ttl_node::PersistentTtlNode;
