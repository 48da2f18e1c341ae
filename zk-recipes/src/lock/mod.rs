//! Locks and semaphores on Curator's layouts (RECIPES.md §B1–§B7).

pub(crate) mod internals;
pub mod multi;
pub mod mutex;
pub mod revocation;
pub mod rwlock;
pub mod semaphore;

pub use multi::{InterProcessMultiLock, MultiLockGuard};
pub use mutex::{InterProcessMutex, MutexGuard};
pub use revocation::{RevocationRequest, Revoker, REVOKE_MESSAGE};
pub use rwlock::InterProcessReadWriteLock;
pub use semaphore::{InterProcessSemaphoreMutex, InterProcessSemaphoreV2, Lease, SemaphoreGuard};
