//! Leader election on Curator's layouts: the long-lived [`LeaderLatch`]
//! (§B9) and the run-while-leader [`LeaderSelector`] (§B8).

pub mod latch;
pub mod participants;
pub mod selector;
pub mod transitions;

pub use latch::LeaderLatch;
pub use participants::Participant;
pub use selector::{LeaderSelector, LeaderSelectorBuilder};
pub use transitions::LeadershipEvent;
